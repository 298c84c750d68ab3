#!/usr/bin/env bash
# The credentials chain end to end against the emulator's ECS and STS: playbooks that give no
# AccessKey create, list and delete key pairs with a CLI profile in RamRoleArn mode, a
# ChainableRamRoleArn profile, the assume-role variables on top of an AccessKey of the
# environment, an OIDC token file (RRSA), only the metadata service of an instance with a RAM
# role, and a ram_role_arn section of the credentials file; each run at -vvv names its source, and no secret, token or temporary key of the
# emulator shows in any output. Temporary credentials that expired fail naming their source;
# an AccessKey ID without its secret fails saying the secret is missing.
# Run by ansible-test (`ansible-test integration credentials_chain`) against the emulator of
# tests/integration/integration_config.yml.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
python=${ANSIBLE_TEST_PYTHON_INTERPRETER:-python3}
eval "$("$python" "$here/../setup_ecs_sdk/files/emulator_env.py" "$here/../../integration_config.yml")"
work=$(mktemp -d "${TMPDIR:-/tmp}/credentials_chain.XXXXXX")
private_pids=()
cleanup() {
  local code=$?
  for pid in "${private_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${private_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
  exit "$code"
}
trap cleanup EXIT
export ANSIBLE_NOCOLOR=1

step() { echo "=== $(date +%T) $*"; }
fail() { echo "FAILED: $*" >&2; exit 1; }

# The base AccessKey of the emulator's first account, then nothing of it left in the environment.
base_id=$ALIBABA_CLOUD_ACCESS_KEY_ID
base_secret=$ALIBABA_CLOUD_ACCESS_KEY_SECRET
region=$ALIBABA_CLOUD_REGION_ID
uid=$("$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["accounts"][0]["uid"])' "$ECS_EMULATOR_READY_FILE")
unset ALIBABA_CLOUD_ACCESS_KEY_ID ALIBABA_CLOUD_ACCESS_KEY_SECRET ALIBABA_CLOUD_SECURITY_TOKEN ALIBABA_CLOUD_REGION_ID
unset ALIBABA_CLOUD_CLI_PROFILE_DISABLED
# STS answers on the emulator's port (this collection's own override of the STS endpoint).
export ALIBABA_CLOUD_STS_ENDPOINT="${ALIBABA_CLOUD_ECS_ENDPOINT:?}"
export HOME=$work/home
mkdir -p "$HOME/.aliyun"
profiles=$HOME/.aliyun/config.json

# no_secret_in LOG: none of the emulator's secrets and issued credentials appears in LOG.
no_secret_in() {
  local values
  values=$("$python" "$here/files/sts_secrets.py") || fail "the emulator issued no STS credentials"
  while IFS= read -r value; do
    [ -n "$value" ] || continue
    if grep -qF -- "$value" "$1"; then fail "$1 shows a secret, token or temporary key of the emulator"; fi
  done <<<"$values"
}

# run_keypairs NAME EXPECTED_SOURCE: the playbook at -vvv, its source named in its results.
run_keypairs() {
  local log=$work/$1.log
  local extra
  extra=$("$python" -c 'import json, sys; print(json.dumps(dict(zip(("keypair_name", "key_dir", "expected_source"), sys.argv[1:]))))' \
    "$1" "$work" "$2")
  ansible-playbook -vvv "$here/files/keypairs.yml" -e "$extra" >"$log" 2>&1 \
    || { tail -40 "$log"; fail "the playbook of $1 failed"; }
  grep -qF "\"credentials_source\": \"$2\"" "$log" || fail "$1: -vvv does not name the source $2"
  no_secret_in "$log"
}

# start_private NAME SERVE_OPTIONS...: an emulator of this target's own (accounts of its own, a
# metadata endpoint); sets private_endpoint, private_ready and private_token.
start_private() {
  local name=$1; shift
  private_ready=$work/$name.ready.json
  "$python" -m ecs_emulator.cli serve --listen 127.0.0.1:0 --state "$work/$name.sqlite" --ready-file "$private_ready" \
    --fast --quiet "$@" >"$work/$name.out" 2>&1 &
  private_pids+=("$!")
  for _ in $(seq 1 300); do [ -s "$private_ready" ] && break; sleep 0.1; done
  [ -s "$private_ready" ] || { cat "$work/$name.out"; fail "the emulator $name did not start"; }
  private_endpoint=$("$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["endpoint"])' "$private_ready")
  private_token=$("$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["admin_token"])' "$private_ready")
}

# on_private VAR=VALUE... CMD...: CMD (a function too), in a subshell, against the emulator that
# start_private started, with the variables given.
on_private() (
  for setting in "ALIBABA_CLOUD_ECS_ENDPOINT=$private_endpoint" "ECS_EMULATOR_READY_FILE=$private_ready" \
      "ECS_EMULATOR_ADMIN_TOKEN=$private_token" "ALIBABA_CLOUD_REGION_ID=$region"; do
    export "${setting?}"
  done
  while [ $# -gt 0 ] && [[ $1 == *=* ]]; do export "${1?}"; shift; done
  "$@"
)

step "a CLI profile in RamRoleArn mode, and nothing else"
cat >"$profiles" <<JSON
{"current": "ci", "profiles": [
  {"name": "ci", "mode": "RamRoleArn", "access_key_id": "$base_id", "access_key_secret": "$base_secret",
   "ram_role_arn": "acs:ram::$uid:role/ci-deployer", "ram_session_name": "pipeline", "region_id": "$region"},
  {"name": "chained", "mode": "ChainableRamRoleArn", "source_profile": "ci",
   "ram_role_arn": "acs:ram::$uid:role/second-hop", "region_id": "$region"},
  {"name": "sso", "mode": "CloudSSO", "region_id": "$region"}]}
JSON
run_keypairs cc-ramrolearn "role acs:ram::$uid:role/ci-deployer assumed with profile 'ci' (RamRoleArn) of $profiles"

step "a ChainableRamRoleArn profile: the role of its source profile assumes another"
ALIBABA_CLOUD_PROFILE=chained run_keypairs cc-chainable \
  "role acs:ram::$uid:role/second-hop assumed with role acs:ram::$uid:role/ci-deployer assumed with profile 'ci' (RamRoleArn) of $profiles"

step "a profile mode the collection does not serve is named"
if ALIBABA_CLOUD_PROFILE=sso ansible localhost -m sshkeys.ecs.ecs_keypair_info >"$work/sso.log" 2>&1; then
  fail "a CloudSSO profile was accepted"
fi
grep -q "mode 'CloudSSO' is not supported" "$work/sso.log" || { cat "$work/sso.log"; fail "the CloudSSO mode is not named"; }

step "the assume-role variables on top of an AccessKey of the environment"
rm "$profiles"
ALIBABA_CLOUD_ACCESS_KEY_ID=$base_id ALIBABA_CLOUD_ACCESS_KEY_SECRET=$base_secret ALIBABA_CLOUD_REGION_ID=$region \
  ALICLOUD_ASSUME_ROLE_ARN="acs:ram::$uid:role/from-env" run_keypairs cc-assume-env \
  "role acs:ram::$uid:role/from-env assumed with the environment (ALIBABA_CLOUD_ACCESS_KEY_ID)"

step "temporary credentials (official STS client) that expired fail naming their source"
eval "$(ALIBABA_CLOUD_ACCESS_KEY_ID=$base_id ALIBABA_CLOUD_ACCESS_KEY_SECRET=$base_secret ALIBABA_CLOUD_REGION_ID=$region \
  "$python" "$here/files/assume_role.py" "acs:ram::$uid:role/short-lived")"
export ALIBABA_CLOUD_REGION_ID=$region
ansible localhost -m sshkeys.ecs.ecs_keypair_info >"$work/fresh.log" 2>&1 || { cat "$work/fresh.log"; fail "fresh temporary keys refused"; }
"$python" - <<'PY'
import os, urllib.request
request = urllib.request.Request(os.environ["ALIBABA_CLOUD_ECS_ENDPOINT"] + "/_admin/sts/expire", method="POST",
                                 headers={"X-Admin-Token": os.environ["ECS_EMULATOR_ADMIN_TOKEN"]})
urllib.request.urlopen(request, timeout=30).read()
PY
if ansible localhost -vvv -m sshkeys.ecs.ecs_keypair_info >"$work/expired.log" 2>&1; then fail "expired keys accepted"; fi
grep -q "the temporary credentials from the environment (ALIBABA_CLOUD_ACCESS_KEY_ID) have expired" "$work/expired.log" \
  || { tail -20 "$work/expired.log"; fail "the expiry does not name its source"; }
no_secret_in "$work/expired.log"
unset ALIBABA_CLOUD_ACCESS_KEY_ID ALIBABA_CLOUD_ACCESS_KEY_SECRET ALIBABA_CLOUD_SECURITY_TOKEN

step "an AccessKey ID in the options, its secret in the environment: the secret is missing"
if ALIBABA_CLOUD_ACCESS_KEY_SECRET=$base_secret ansible localhost -m sshkeys.ecs.ecs_keypair_info \
    -a "alicloud_access_key=$base_id" >"$work/mixed.log" 2>&1; then
  fail "an ID from the options was signed with the secret of the environment"
fi
grep -q "the secret is missing: alicloud_access_key is set in the options" "$work/mixed.log" \
  || { cat "$work/mixed.log"; fail "the missing secret is not said"; }
if ALIBABA_CLOUD_ACCESS_KEY_ID=$base_id ansible localhost -m sshkeys.ecs.ecs_keypair_info >"$work/alone.log" 2>&1; then
  fail "an ID alone was accepted"
fi
grep -q "the secret is missing: ALIBABA_CLOUD_ACCESS_KEY_ID is set in the environment" "$work/alone.log" \
  || { cat "$work/alone.log"; fail "the missing secret is not said for the environment"; }
no_secret_in "$work/mixed.log"
step "OIDC (RRSA) in the environment: a token file, a provider and a role of an emulator of its own"
oidc_uid=2222333344445555
"$python" "$here/files/oidc_setup.py" "$work/oidc-accounts.json" "$work/oidc-token" "$oidc_uid"
start_private oidc --accounts "$work/oidc-accounts.json"
oidc_role="acs:ram::$oidc_uid:role/ci-pods"
on_private ALIBABA_CLOUD_STS_ENDPOINT="$private_endpoint" ALIBABA_CLOUD_ROLE_ARN="$oidc_role" \
  ALIBABA_CLOUD_ROLE_SESSION_NAME=runner-pod ALIBABA_CLOUD_OIDC_PROVIDER_ARN="acs:ram::$oidc_uid:oidc-provider/ack" \
  ALIBABA_CLOUD_OIDC_TOKEN_FILE="$work/oidc-token" run_keypairs cc-oidc \
  "role $oidc_role assumed with the OIDC environment (ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_TOKEN_FILE)"
if grep -qF -- "$(cat "$work/oidc-token")" "$work/cc-oidc.log"; then fail "the OIDC token shows in the output"; fi

step "only the ECS metadata service: the instance's RAM role, asked last"
start_private metadata --metadata-listen 127.0.0.1:0 --metadata-role ci-instance
metadata_endpoint=$("$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["metadata_endpoint"])' "$private_ready")
metadata_uid=$("$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["accounts"][0]["uid"])' "$private_ready")
on_private ALIBABA_CLOUD_ECS_METADATA_ENDPOINT="$metadata_endpoint" ALIBABA_CLOUD_ECS_METADATA_DISABLED=false \
  run_keypairs cc-metadata "the ECS instance's RAM role (metadata service), role 'ci-instance'"
# The credentials are the role's, in the instance's account.
on_private "$python" "$here/files/sts_secrets.py" --roles | grep -q "acs:ram::$metadata_uid:role/ci-instance" \
  || fail "the metadata service did not hand out the role's credentials"

step "the official SDKs' credentials file: a ram_role_arn section"
cat >"$work/credentials" <<INI
[default]
type = ram_role_arn
access_key_id = $base_id
access_key_secret = $base_secret
role_arn = acs:ram::$uid:role/from-ini
role_session_name = ini-session
INI
ALIBABA_CLOUD_CREDENTIALS_FILE=$work/credentials ALIBABA_CLOUD_REGION_ID=$region run_keypairs cc-ini \
  "role acs:ram::$uid:role/from-ini assumed with section [default] (type ram_role_arn) of $work/credentials"

echo "credentials_chain: all steps passed"
