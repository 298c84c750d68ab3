#!/usr/bin/env bash
# The sshkeys.ecs.ecs inventory plugin against the emulator with real instances (podman, pool
# 127.0.13.0/24): two key pairs, Linux instances in two regions (one stopped), a Windows one.
# `ansible-inventory --list/--graph` must show the groups, ansible_host and variables that the
# official SDK's reading of DescribeInstances implies; `ansible -m ping` over SSH through the
# inventory must log in with the right key pair and be refused with the wrong one; the cache,
# retries on throttling, clear errors, the file-name rule and secret hygiene are checked too.
# Run by ansible-test (`ansible-test integration inventory_ecs`) against the emulator of
# tests/integration/integration_config.yml, started with the options of emulator_options.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# ansible-test gives scripts an environment of their own: the emulator's variables (ALIBABA_CLOUD_*,
# ECS_EMULATOR_ADMIN_TOKEN) come from the config file. The helper needs the official SDK: the
# Python ansible-test runs Ansible with.
python=${ANSIBLE_TEST_PYTHON_INTERPRETER:-python3}
eval "$("$python" "$here/../setup_ecs_sdk/files/emulator_env.py" "$here/../../integration_config.yml")"
check="$python $here/files/inventory_check.py"
work=$(mktemp -d "${TMPDIR:-/tmp}/inventory_ecs.XXXXXX")
export ANSIBLE_HOST_KEY_CHECKING=False ANSIBLE_NOCOLOR=1 ANSIBLE_INVENTORY_UNPARSED_FAILED=True
export ANSIBLE_SSH_ARGS="-o UserKnownHostsFile=/dev/null -o ControlMaster=no -o ControlPath=none -o IdentitiesOnly=yes"
# Inventory host variables decide the interpreter on the instances, not the controller's venv.
unset ANSIBLE_PYTHON_INTERPRETER

cleanup() {
  local code=$?
  if [ -f "$work/fleet.json" ]; then $check cleanup "$work/fleet.json" >/dev/null 2>&1 || true; fi
  $check faults clear >/dev/null 2>&1 || true
  rm -rf "$work"
  exit "$code"
}
trap cleanup EXIT

step() { echo "=== $*"; }
fail() { echo "FAILED: $*" >&2; exit 1; }
faults() { $check faults add "$1" >/dev/null; }

step "fleet: key pairs inv-web.2024 and inv-db, web-1 web-2 db-1 (stopped) win-1 in cn-hangzhou, sh-1 in cn-shanghai"
$check make "$work"
python_on_instances="'/usr/bin/python3'"

cat >"$work/all.ecs.yml" <<YAML
plugin: sshkeys.ecs.ecs
regions: [cn-hangzhou, cn-shanghai]
compose:
  ansible_user: "'ecs-user'"
  ansible_python_interpreter: "$python_on_instances"
keyed_groups:
  - key: ecs_region
    prefix: region
groups:
  linux_with_key: ecs_os_type == 'linux' and ecs_key_pair_name is not none
YAML
cat >"$work/web.ecs.yaml" <<YAML
plugin: sshkeys.ecs.ecs
key_pair_names: [inv-web.2024]
statuses: [running]
hostnames: [instance_name, instance_id]
compose:
  ansible_user: "'ecs-user'"
  ansible_python_interpreter: "$python_on_instances"
YAML

step "ansible-inventory --list: every instance, groups, ansible_host and variables as DescribeInstances says"
ansible-inventory -i "$work/all.ecs.yml" --list >"$work/all.json"
$check list "$work/all.json" "$work/fleet.json" all

step "ansible-inventory --graph shows the groups"
ansible-inventory -i "$work/all.ecs.yml" --graph >"$work/graph.txt"
cat "$work/graph.txt"
for group in keypair_inv_web_2024 keypair_inv_db no_keypair status_running status_stopped os_linux os_windows \
    region_cn_hangzhou region_cn_shanghai linux_with_key; do
  grep -q "@$group:" "$work/graph.txt" || fail "group $group is not in the graph"
done

step "filters: key pair inv-web.2024, running, named by instance name"
ansible-inventory -i "$work/web.ecs.yaml" --list >"$work/web.json"
$check list "$work/web.json" "$work/fleet.json" web

step "ansible -m ping over SSH through the inventory, with the key pair's private key"
ansible -i "$work/web.ecs.yaml" keypair_inv_web_2024 -m ansible.builtin.ping \
  --private-key "$work/inv-web.2024.pem" -o | tee "$work/ping.txt"
[ "$(grep -c 'SUCCESS.*"ping": "pong"' "$work/ping.txt")" -eq 2 ] || fail "two pongs expected"
for name in web-1 web-2; do
  grep -q "^$name | SUCCESS" "$work/ping.txt" || fail "$name must answer under its instance name"
done

step "the other key pair's private key is refused by the same hosts"
set +e
ansible -i "$work/web.ecs.yaml" keypair_inv_web_2024 -m ansible.builtin.ping \
  --private-key "$work/inv-db.pem" -o >"$work/refused.txt" 2>&1
code=$?
set -e
cat "$work/refused.txt"
[ "$code" -ne 0 ] || fail "a login with the wrong key pair succeeded"
[ "$(grep -c 'UNREACHABLE' "$work/refused.txt")" -eq 2 ] || fail "both hosts must refuse the wrong key"
grep -q 'Permission denied' "$work/refused.txt" || fail "refusal must be an authentication failure"

step "throttling on DescribeInstances is retried"
faults '{"faults": [{"action": "DescribeInstances", "kind": "throttling", "count": 2}]}'
ansible-inventory -i "$work/all.ecs.yml" --list >"$work/throttled.json"
$check list "$work/throttled.json" "$work/fleet.json" all
# Both throttled answers were given (the rule retires after its count): the retries happened.
$check faults used-up >/dev/null

step "server errors beyond the retries: a clear error, no secret even at -vvvv"
cat >"$work/impatient.ecs.yml" <<YAML
plugin: sshkeys.ecs.ecs
ecs_retries: 1
ecs_retry_delay: 0
YAML
faults '{"faults": [{"action": "DescribeInstances", "kind": "internal", "count": 10}]}'
if ansible-inventory -vvvv -i "$work/impatient.ecs.yml" --list >"$work/internal.txt" 2>&1; then
  fail "an inventory that cannot be read must fail"
fi
grep -q 'cannot list the instances of region cn-hangzhou: DescribeInstances failed: InternalError' "$work/internal.txt" ||
  { tail -20 "$work/internal.txt"; fail "the error must name the region and the code"; }
$check faults clear >/dev/null

step "a wrong secret: SignatureDoesNotMatch, neither secret shown"
wrong="wrong-secret-$RANDOM$RANDOM"
if ALIBABA_CLOUD_ACCESS_KEY_SECRET=$wrong ansible-inventory -vvvv -i "$work/impatient.ecs.yml" --list >"$work/wrong.txt" 2>&1; then
  fail "a wrong secret must fail"
fi
grep -q 'SignatureDoesNotMatch' "$work/wrong.txt" || { tail -20 "$work/wrong.txt"; fail "the error must name the code"; }
ansible-inventory -vvvv -i "$work/all.ecs.yml" --list >"$work/verbose.txt" 2>&1
for file in "$work/internal.txt" "$work/wrong.txt" "$work/verbose.txt" "$work/all.json" "$work/graph.txt"; do
  if grep -qF -e "$ALIBABA_CLOUD_ACCESS_KEY_SECRET" -e "$wrong" "$file"; then fail "a secret is in $(basename "$file")"; fi
done

step "the file name must end in ecs.yml or ecs.yaml"
cp "$work/all.ecs.yml" "$work/inventory.yml"
if ansible-inventory -i "$work/inventory.yml" --list >"$work/badname.txt" 2>&1; then
  fail "inventory.yml must not be taken by the plugin"
fi
grep -q "could not be verified by inventory plugin 'sshkeys.ecs.ecs'" "$work/badname.txt" ||
  { cat "$work/badname.txt"; fail "the reason must be the file name"; }
grep -q "rename it, for example to inventory.ecs.yml" "$work/badname.txt" ||
  { cat "$work/badname.txt"; fail "the plugin must say at the default verbosity how to rename the file"; }

step "a key that is no option (a misspelled filter) lists nothing and names the option"
sed 's/^plugin: .*/&\nkeypair_names: [none-such]/' "$work/all.ecs.yml" >"$work/typo.ecs.yml"
ansible-inventory -i "$work/typo.ecs.yml" --list >"$work/typo.json" 2>"$work/typo.txt" || true
grep -q "'keypair_names' (did you mean 'key_pair_names'?)" "$work/typo.txt" ||
  { cat "$work/typo.txt"; fail "the unknown key and the closest option must be named"; }
if grep -q '"i-' "$work/typo.json"; then fail "a file with an unknown key must list no instance"; fi

step "cache: a second run reads the cache, --flush-cache asks the API again"
cat >"$work/cached.ecs.yml" <<YAML
plugin: sshkeys.ecs.ecs
regions: [cn-hangzhou, cn-shanghai]
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: $work/cache
cache_timeout: 3600
YAML
ansible-inventory -i "$work/cached.ecs.yml" --list >"$work/cached1.json"
$check list "$work/cached1.json" "$work/fleet.json" cached-5
$check delete "$work/fleet.json" win-1
ansible-inventory -i "$work/cached.ecs.yml" --list >"$work/cached2.json"
$check list "$work/cached2.json" "$work/fleet.json" cached-5
ansible-inventory -i "$work/cached.ecs.yml" --list --flush-cache >"$work/cached3.json"
$check list "$work/cached3.json" "$work/fleet.json" cached-4
ansible-inventory -i "$work/all.ecs.yml" --list >"$work/after.json"
$check list "$work/after.json" "$work/fleet.json" all

echo "inventory_ecs: all checks passed"
