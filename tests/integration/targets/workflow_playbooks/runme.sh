#!/usr/bin/env bash
# Every workflow playbook of playbooks/ end to end against the emulator with real instances
# (podman containers running sshd, emulator_options), called the way users call them:
# `ansible-playbook sshkeys.ecs.<name>` with the credentials in the environment.
#
# Each change runs four times: --check --diff (something would change, and the API and the
# instances show that nothing did), apply, --check again and apply again (both change nothing).
# Every result is read back independently: the API through the official SDK (files/fleet.py),
# private key files with ssh-keygen and stat, and logins with a fresh ssh process per attempt.
# Bad variables fail with their message before anything changes. At the end every log, including
# -vvv runs, is searched for the private keys and the passphrase.
#
# Run by ansible-test (`ansible-test integration workflow_playbooks`) against the emulator of
# tests/integration/integration_config.yml, started with the options of emulator_options.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# ansible-test gives scripts an environment of their own: the emulator's variables come from the
# config file, the controller's Python from ansible-test (with the official SDK for fleet.py).
python=${ANSIBLE_TEST_PYTHON_INTERPRETER:-python3}
eval "$("$python" "$here/../setup_ecs_sdk/files/emulator_env.py" "$here/../../integration_config.yml")"
export ANSIBLE_HOST_KEY_CHECKING=False ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0
export ANSIBLE_PYTHON_INTERPRETER=$python
fleet() { "$python" "$here/files/fleet.py" "$@"; }

work=$(mktemp -d "${TMPDIR:-/tmp}/workflow-playbooks.XXXXXX")
mkdir -p "$work/logs" "$work/keys"
# Ansible's own connections may be shared within this run (control sockets in the work
# directory, gone with it); every login the test proves uses a fresh ssh process (login below).
export ANSIBLE_SSH_CONTROL_PATH_DIR=$work/cp ANSIBLE_PIPELINING=True
chmod 0700 "$work/keys"
instances=()
cleanup() {
  status=$?
  if [ ${#instances[@]} -gt 0 ]; then fleet delete "${instances[@]}" >/dev/null 2>&1 || true; fi
  fleet purge >/dev/null 2>&1 || true
  if [ "$status" -ne 0 ]; then
    echo "--- FAILED; the last log:" >&2
    last=$(find "$work/logs" -type f -printf '%T@ %p\n' | sort -n | tail -1 | cut -d' ' -f2-)
    [ -n "$last" ] && tail -40 "$last" >&2
  fi
  rm -rf "$work"
}
trap cleanup EXIT

step=0
fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "--- $*"; }

# play EXPECT PLAYBOOK [ansible-playbook arguments]
#   EXPECT: changed (rc 0, some task changed), unchanged (rc 0, nothing changed)
# Shows the playbook's summary, keeps the log for the secret scan, sets $log.
play() {
  local expect=$1 name=$2 rc changed
  shift 2
  step=$((step + 1))
  log=$work/logs/$(printf '%03d' "$step")-$name.log
  set +e
  ansible-playbook "sshkeys.ecs.$name" -i "$work/inventory.ini" "$@" >"$log" 2>&1
  rc=$?
  set -e
  [ "$rc" -eq 0 ] || fail "$name $* exited $rc (expected $expect)"
  changed=$(awk '/ : ok=[0-9]+ +changed=/ { for (i = 1; i <= NF; i++) if ($i ~ /^changed=/) { split($i, a, "="); s += a[2] } } END { print s + 0 }' "$log")
  case $expect in
    changed) [ "$changed" -gt 0 ] || fail "$name $*: expected a change, got none" ;;
    unchanged) [ "$changed" -eq 0 ] || fail "$name $*: expected no change, got changed=$changed" ;;
  esac
  echo "$name $* -> $expect"
  summary
}

# play_fails MESSAGE PLAYBOOK [arguments]: the run fails and its output says MESSAGE.
play_fails() {
  local message=$1 name=$2 rc
  shift 2
  step=$((step + 1))
  log=$work/logs/$(printf '%03d' "$step")-$name.log
  set +e
  ansible-playbook "sshkeys.ecs.$name" -i "$work/inventory.ini" "$@" >"$log" 2>&1
  rc=$?
  set -e
  [ "$rc" -ne 0 ] || fail "$name $* succeeded; expected a failure saying: $message"
  grep -qF -- "$message" "$log" || fail "$name $* failed without saying: $message"
  grep -q 'changed=[1-9]' "$log" && fail "$name $* changed something before failing"
  echo "$name $* -> refused: $message"
}

# The summary tasks' messages, as a person sees them.
summary() {
  awk '/^TASK \[Summary/ { on = 1; next } on && /^(TASK|PLAY)/ { on = 0 } on && /^        "/ { print "    " $0 }' "$log"
}

# Whether the log's summary contains TEXT.
says() { grep -qF -- "$1" "$log" || fail "the output of $log does not say: $1"; }

# login KEY USER ADDRESS: one fresh ssh process, this key only; prints the remote user name.
login() {
  ssh -i "$1" -o IdentitiesOnly=yes -o IdentityAgent=none -o ControlMaster=no -o ControlPath=none \
    -o BatchMode=yes -o PasswordAuthentication=no -o KbdInteractiveAuthentication=no \
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=10 -o LogLevel=ERROR \
    "$2@$3" id -un 2>/dev/null
}
logs_in() { [ "$(login "$1" "$2" "$3")" = "$2" ] || fail "$(basename "$1") cannot log in as $2@$3"; }
refused() { if login "$1" "$2" "$3" >/dev/null; then fail "$(basename "$1") still logs in as $2@$3"; fi; }

has_keypair() { fleet keypairs | grep -qx -- "$1"; }
no_keypair() { if has_keypair "$1"; then fail "key pair $1 exists"; fi; }
api_public_key() { fleet public_key "$1" | awk '{ print $1, $2 }'; }
file_public_key() { ssh-keygen -y -f "$1" -P "${2:-}" | awk '{ print $1, $2 }'; }
sha256() { ssh-keygen -l -E sha256 -f "$1" | awk '{ print $2 }'; }
mode_of() { stat -c '%a' "$1"; }

printf '[instances]\n' >"$work/inventory.ini"
keys=$work/keys
passphrase="wp-$RANDOM-$RANDOM-passphrase"
printf 'keypair_private_key_passphrase: "%s"\n' "$passphrase" >"$work/passphrase.yml"

note "material: an ed25519 key to import, also as an encrypted PuTTY .ppk"
ssh-keygen -q -t ed25519 -N '' -C import@workflow -f "$keys/import"
puttygen "$keys/import" -O private -o "$keys/import.ppk" --new-passphrase <(printf '%s\n' "$passphrase")

note "bad variables: refused before anything changes"
play_fails "keypair_name is required" create_keypair
play_fails "keypair_name is required" create_keypair -e keypair_name=9-starts-with-a-digit
play_fails "keypair_generate_locally true or false" create_keypair -e keypair_name=wp-x -e keypair_generate_locally=maybe
play_fails "not both and not neither" import_keypair -e keypair_name=wp-x
play_fails "not both and not neither" import_keypair -e keypair_name=wp-x -e "keypair_public_key_file=$keys/import.pub" \
  -e "keypair_public_key='$(cat "$keys/import.pub")'"
play_fails "holds a private key" import_keypair -e keypair_name=wp-x -e "keypair_public_key_file=$keys/import"
play_fails "keypair_instance_ids is required" attach_keypair -e keypair_name=wp-x
play_fails "keypair_instance_ids is required" attach_keypair -e keypair_name=wp-x -e keypair_instance_ids=i-notalist
play_fails "keypair_reboot" detach_keypair -e keypair_name=wp-x -e '{"keypair_instance_ids": ["i-abc"]}' -e keypair_reboot=perhaps
play_fails "no '*' patterns" delete_keypair -e '{"keypair_names": ["wp-*"]}'
play_fails "keypair_reboot only applies with keypair_detach_first=true" delete_keypair -e '{"keypair_names": ["wp-x"]}' -e keypair_reboot=true
play_fails "Give keypair_private_key_file" show_public_key
play_fails "is not a file on the controller" show_public_key -e "keypair_private_key_file=$keys/missing"
play_fails "wrong passphrase" show_public_key -e "keypair_private_key_file=$keys/import.ppk" -e keypair_private_key_passphrase=wrong
[ -z "$(fleet keypairs)" ] || fail "a refused run left key pairs: $(fleet keypairs)"

note "create_keypair, made by ECS"
cloud_args=(-e keypair_name=wp-cloud -e "keypair_private_key_path=$keys/cloud.pem")
play changed create_keypair "${cloud_args[@]}" --check --diff
says "would be created"
no_keypair wp-cloud
[ ! -e "$keys/cloud.pem" ] || fail "check mode wrote the private key"
play changed create_keypair "${cloud_args[@]}" --diff
says "created (made by ECS)"
[ "$(mode_of "$keys/cloud.pem")" = 600 ] || fail "cloud.pem has mode $(mode_of "$keys/cloud.pem")"
[ "$(api_public_key wp-cloud)" = "$(file_public_key "$keys/cloud.pem")" ] || fail "wp-cloud does not hold the saved key's public key"
says "$(sha256 "$keys/cloud.pem")"
play unchanged create_keypair "${cloud_args[@]}" --check --diff
play unchanged create_keypair "${cloud_args[@]}"
says "unchanged"

note "create_keypair, made on the controller, with tags"
local_args=(-e keypair_name=wp-local -e "keypair_private_key_path=$keys/local" -e keypair_generate_locally=true
  -e keypair_key_type=ed25519 -e '{"keypair_tags": {"team": "platform", "purpose": "workflow-test"}}')
play changed create_keypair "${local_args[@]}" --check --diff
no_keypair wp-local
[ ! -e "$keys/local" ] || fail "check mode wrote the private key"
play changed create_keypair "${local_args[@]}" --diff
says "made on the controller"
says "Tags: purpose=workflow-test, team=platform"
[ "$(mode_of "$keys/local")" = 600 ] || fail "local key has mode $(mode_of "$keys/local")"
[ "$(api_public_key wp-local)" = "$(file_public_key "$keys/local")" ] || fail "wp-local does not hold the saved key's public key"
play unchanged create_keypair "${local_args[@]}" --check --diff
play unchanged create_keypair "${local_args[@]}"

note "import_keypair"
import_args=(-e keypair_name=wp-import -e "keypair_public_key_file=$keys/import.pub")
play changed import_keypair "${import_args[@]}" --check --diff
says "would be imported"
no_keypair wp-import
play changed import_keypair "${import_args[@]}" --diff
[ "$(api_public_key wp-import)" = "$(awk '{ print $1, $2 }' "$keys/import.pub")" ] || fail "wp-import holds another key"
play unchanged import_keypair "${import_args[@]}" --check --diff
play unchanged import_keypair "${import_args[@]}"
play unchanged import_keypair -e keypair_name=wp-import -e "keypair_public_key='$(cat "$keys/import.pub")'"
ssh-keygen -y -f "$keys/local" >"$keys/local.pub"
play_fails "$(sha256 "$keys/local.pub")" import_keypair -e keypair_name=wp-import -e "keypair_public_key_file=$keys/local.pub"

note "show_public_key of key files (OpenSSH, PEM, encrypted .ppk)"
play unchanged show_public_key -e "keypair_private_key_file=$keys/cloud.pem" -e show_public_key_find_keypairs=true
says "Public key: $(file_public_key "$keys/cloud.pem")"
says "Fingerprint: $(sha256 "$keys/cloud.pem")"
says "ECS key pairs with this key: wp-cloud"
play unchanged show_public_key -e "keypair_private_key_file=$keys/local" --check --diff
says "Fingerprint: $(sha256 "$keys/local")"
play unchanged show_public_key -e "keypair_private_key_file=$keys/import.ppk" -e "@$work/passphrase.yml" -e show_public_key_find_keypairs=true
says "Public key: $(awk '{ print $1, $2 }' "$keys/import.pub")"
says "Fingerprint: $(sha256 "$keys/import.pub")"
says "ECS key pairs with this key: wp-import"

note "two Linux instances (containers with sshd)"
mapfile -t instances < <(fleet run 2)
[ ${#instances[@]} -eq 2 ] || fail "RunInstances gave ${#instances[@]} instances"
fleet wait Running "${instances[@]}"
addresses=()
for id in "${instances[@]}"; do addresses+=("$(fleet field public_ip "$id")"); done
{
  echo '[instances]'
  printf '%s\n' "${addresses[@]}"
  echo '[instances:vars]'
  echo 'ansible_user=root'
  echo 'ansible_python_interpreter=/usr/bin/python3'
} >"$work/inventory.ini"
ids_json=$("$python" -c 'import json, sys; print(json.dumps({"keypair_instance_ids": sys.argv[1:]}))' "${instances[@]}")

note "attach_keypair with the restart that makes it effective"
attach_args=(-e keypair_name=wp-cloud -e "$ids_json" -e keypair_reboot=true)
play changed attach_keypair "${attach_args[@]}" --check --diff
says "would be attached, would be rebooted"
for id in "${instances[@]}"; do [ -z "$(fleet field key_pair_name "$id")" ] || fail "check mode attached $id"; done
refused "$keys/cloud.pem" root "${addresses[0]}"
play changed attach_keypair "${attach_args[@]}" --diff
says "attached, rebooted"
says "2 instance(s) changed, 2 rebooted"
for id in "${instances[@]}"; do [ "$(fleet field key_pair_name "$id")" = wp-cloud ] || fail "$id does not hold wp-cloud"; done
for address in "${addresses[@]}"; do
  logs_in "$keys/cloud.pem" root "$address"
  logs_in "$keys/cloud.pem" ecs-user "$address"
done
play unchanged attach_keypair "${attach_args[@]}" --check --diff
play unchanged attach_keypair "${attach_args[@]}"
says "0 instance(s) changed, 0 rebooted"

note "show_public_key of what the instances hold"
host_args=(--private-key "$keys/cloud.pem" -e show_public_key_hosts=instances -e '{"show_public_key_users": ["root", "ecs-user"]}')
play unchanged show_public_key "${host_args[@]}" -e "keypair_private_key_file=$keys/cloud.pem" --check --diff
play unchanged show_public_key "${host_args[@]}" -e "keypair_private_key_file=$keys/cloud.pem"
says "root (/root/.ssh/authorized_keys): 1 key(s)"
says "ecs-user (/home/ecs-user/.ssh/authorized_keys): 1 key(s)"
says "$(sha256 "$keys/cloud.pem") <- the key of $keys/cloud.pem"
[ "$(grep -c '<- the key of' "$log")" -eq 4 ] || fail "not every user of both hosts shows the key pair's key"

note "authorized_keys: add a key, then replace it"
play_fails "authorized_keys_users is required" authorized_keys --private-key "$keys/cloud.pem"
printf 'authorized_keys_users: [root, ecs-user]\nauthorized_keys_add: ["%s"]\n' "$(cat "$keys/import.pub")" >"$work/add.yml"
ak_args=(--private-key "$keys/cloud.pem" -e "@$work/add.yml")
play changed authorized_keys "${ak_args[@]}" --check --diff
says "would be added $(sha256 "$keys/import.pub")"
refused "$keys/import" root "${addresses[0]}"
play changed authorized_keys "${ak_args[@]}" --diff
says "added $(sha256 "$keys/import.pub")"
for address in "${addresses[@]}"; do logs_in "$keys/import" root "$address"; logs_in "$keys/import" ecs-user "$address"; done
play unchanged authorized_keys "${ak_args[@]}" --check --diff
play unchanged authorized_keys "${ak_args[@]}"
says "root (/root/.ssh/authorized_keys): unchanged"
printf 'authorized_keys_users: [root, ecs-user]\nauthorized_keys_replace:\n  - old: "%s"\n    new: "%s"\n' \
  "$(cat "$keys/import.pub")" "$(cat "$keys/local.pub")" >"$work/replace.yml"
rp_args=(--private-key "$keys/cloud.pem" -e "@$work/replace.yml")
play changed authorized_keys "${rp_args[@]}" --check --diff
logs_in "$keys/import" root "${addresses[0]}"
play changed authorized_keys "${rp_args[@]}" --diff
says "replaced $(sha256 "$keys/import.pub") by $(sha256 "$keys/local.pub")"
for address in "${addresses[@]}"; do
  logs_in "$keys/local" root "$address"
  logs_in "$keys/local" ecs-user "$address"
  refused "$keys/import" root "$address"
done
play unchanged authorized_keys "${rp_args[@]}" --check --diff
play unchanged authorized_keys "${rp_args[@]}"

note "detach_keypair with a restart: the key pair's key stops working, the role's key stays"
detach_args=(-e keypair_name=wp-cloud -e "$ids_json" -e keypair_reboot=true)
play changed detach_keypair "${detach_args[@]}" --check --diff
says "would be detached"
for id in "${instances[@]}"; do [ "$(fleet field key_pair_name "$id")" = wp-cloud ] || fail "check mode detached $id"; done
play changed detach_keypair "${detach_args[@]}" --diff
says "detached, rebooted"
for id in "${instances[@]}"; do [ -z "$(fleet field key_pair_name "$id")" ] || fail "$id still holds a key pair"; done
for address in "${addresses[@]}"; do
  refused "$keys/cloud.pem" root "$address"
  logs_in "$keys/local" root "$address"
done
play unchanged detach_keypair "${detach_args[@]}" --check --diff
play unchanged detach_keypair "${detach_args[@]}"

note "delete_keypair: refused while attached, then detach first"
play changed attach_keypair -e keypair_name=wp-import -e "{\"keypair_instance_ids\": [\"${instances[0]}\"]}"
says "takes effect at its next reboot"
play_fails "Instances still hold these key pairs: wp-import (${instances[0]})" delete_keypair -e '{"keypair_names": ["wp-import", "wp-cloud"]}'
for name in wp-import wp-cloud; do has_keypair "$name" || fail "a refused delete deleted $name"; done
delete_args=(-e '{"keypair_names": ["wp-cloud", "wp-local", "wp-import", "wp-never-made"]}' -e keypair_detach_first=true)
play changed delete_keypair "${delete_args[@]}" --check --diff
says "wp-import: would be deleted, would be detached first from ${instances[0]}"
says "wp-never-made: not found, nothing to delete"
for name in wp-cloud wp-local wp-import; do has_keypair "$name" || fail "check mode deleted $name"; done
play changed delete_keypair "${delete_args[@]}" --diff
says "wp-import: deleted, detached first from ${instances[0]}"
[ -z "$(fleet keypairs)" ] || fail "key pairs left: $(fleet keypairs)"
[ -z "$(fleet field key_pair_name "${instances[0]}")" ] || fail "${instances[0]} still holds wp-import"
play unchanged delete_keypair "${delete_args[@]}" --check --diff
play unchanged delete_keypair "${delete_args[@]}"

note "-vvv runs: no private key and no passphrase in any output"
play changed create_keypair -vvv -e keypair_name=wp-vvv -e "keypair_private_key_path=$keys/vvv.pem"
play unchanged show_public_key -vvv -e "keypair_private_key_file=$keys/vvv.pem"
play unchanged show_public_key -vvv -e "keypair_private_key_file=$keys/import.ppk" -e "@$work/passphrase.yml"
play changed delete_keypair -vvv -e '{"keypair_names": ["wp-vvv"]}'
secrets=$work/secrets.txt
# The body lines of every private key file: PEM/OpenSSH base64 lines, and the private part of
# the .ppk (its public lines are the public key, which may be shown).
for file in "$keys/cloud.pem" "$keys/local" "$keys/import" "$keys/vvv.pem"; do
  grep -v -e '^-----' -e '^$' "$file"
done >"$secrets"
awk '/^Private-Lines:/ { on = 1; next } /^Private-MAC:/ { on = 0 } on' "$keys/import.ppk" >>"$secrets"
printf '%s\n' "$passphrase" >>"$secrets"
[ "$(wc -l <"$secrets")" -gt 20 ] || fail "too few secret lines to search for"
if grep -rqF -f "$secrets" "$work/logs"; then
  fail "private key material or the passphrase appears in $(grep -rlF -f "$secrets" "$work/logs" | xargs -n1 basename)"
fi
if grep -rq -e 'BEGIN [A-Z ]*PRIVATE KEY' -e 'PuTTY-User-Key-File' "$work/logs"; then fail "a private key header appears in the output"; fi
echo "secret scan: $(wc -l <"$secrets") secret lines, $(find "$work/logs" -type f | wc -l) logs, none found"
echo "workflow_playbooks: all $step playbook runs as expected"
