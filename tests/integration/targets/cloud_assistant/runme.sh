#!/usr/bin/env bash
# The sshkeys.ecs.cloud_assistant connection against the emulator with podman instances whose SSH
# port is closed to the controller (emulator_options): Ansible's ping, command, copy and slurp and
# this collection's authorized_keys role and authorized_keys_info run over Cloud Assistant only;
# then the port is opened and the key the role added logs in over SSH, and authorized_keys_info
# over SSH reports the same keys. Faults: a Windows instance, a stopped one, a command timeout,
# throttling while polling, an output over the API's limit. The API calls of one role run are
# counted from the emulator's request log and printed; no command sent holds the AccessKey secret.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
python=${ANSIBLE_TEST_PYTHON_INTERPRETER:-python3}
eval "$("$python" "$here/../setup_ecs_sdk/files/emulator_env.py" "$here/../../integration_config.yml")"
fleet="$python $here/files/ca_fleet.py"
work=$(mktemp -d "${TMPDIR:-/tmp}/cloud_assistant.XXXXXX")
export ANSIBLE_HOST_KEY_CHECKING=False ANSIBLE_NOCOLOR=1
export ANSIBLE_SSH_ARGS="-o UserKnownHostsFile=/dev/null -o ControlMaster=no -o ControlPath=none -o IdentitiesOnly=yes"
ssh_login=(ssh -o UserKnownHostsFile=/dev/null -o ControlPath=none -o IdentitiesOnly=yes -o BatchMode=yes
           -o StrictHostKeyChecking=no)
unset ANSIBLE_PYTHON_INTERPRETER

cleanup() {
  local code=$?
  if [ -f "$work/fleet.json" ]; then $fleet cleanup "$work" >/dev/null 2>&1 || true; fi
  $fleet faults clear >/dev/null 2>&1 || true
  rm -rf "$work"
  exit "$code"
}
trap cleanup EXIT

step() { echo "=== $*"; }
fail() { echo "FAILED: $*" >&2; exit 1; }
field() { "$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$work/fleet.json" "$1"; }

step "fleet: a running and a stopped Linux instance, a Windows one; SSH closed"
$fleet make "$work" >/dev/null
linux=$(field linux); stopped=$(field stopped); windows=$(field windows); address=$(field address)
if (exec 3<>"/dev/tcp/$address/22") 2>/dev/null; then fail "the SSH port of $linux is open"; fi

cat >"$work/inventory.yml" <<YAML
all:
  vars:
    ansible_connection: sshkeys.ecs.cloud_assistant
    ansible_pipelining: true
    ansible_python_interpreter: /usr/bin/python3
  hosts:
    box:
      ansible_host: $linux
    stopped_box:
      ansible_host: $stopped
    windows_box:
      ansible_host: $windows
YAML
inv=(-i "$work/inventory.yml")

step "ping, command, copy and slurp over Cloud Assistant"
ansible "${inv[@]}" box -m ansible.builtin.ping >"$work/out" || { cat "$work/out"; fail "ping"; }
grep -q '"ping": "pong"' "$work/out" || fail "no pong"
ansible "${inv[@]}" box -m ansible.builtin.command -a "id -un" -e ansible_user=ecs-user >"$work/out" \
  || { cat "$work/out"; fail "command"; }
grep -q '^ecs-user$' "$work/out" || { cat "$work/out"; fail "the command did not run as ecs-user"; }
# 60 KB: over one command's content and over one Output, so both travel in pieces.
head -c 61440 /dev/urandom | base64 -w 76 >"$work/big.txt"
ansible "${inv[@]}" box -m ansible.builtin.copy -a "src=$work/big.txt dest=/root/big.txt mode=0640" >"$work/out" \
  || { cat "$work/out"; fail "copy"; }
ansible "${inv[@]}" box -m ansible.builtin.slurp -a "src=/root/big.txt" -o >"$work/out" || { cat "$work/out"; fail "slurp"; }
"$python" - "$work/out" "$work/big.txt" <<'PY' || fail "slurp did not give back what copy sent"
import base64, json, sys
line = open(sys.argv[1]).read()
result = json.loads(line[line.index("{"):])
assert base64.b64decode(result["content"]) == open(sys.argv[2], "rb").read()
PY

step "the authorized_keys role over Cloud Assistant adds a key for ecs-user; a second run changes nothing"
ssh-keygen -q -t ed25519 -N "" -C ca-added -f "$work/added"
cat >"$work/role.yml" <<YAML
- hosts: box
  gather_facts: false
  roles:
    - role: sshkeys.ecs.authorized_keys
      vars:
        authorized_keys_users: [ecs-user]
        authorized_keys_add: ["$(cat "$work/added.pub")"]
YAML
mark=$($fleet mark)
ansible-playbook "${inv[@]}" "$work/role.yml" >"$work/out" || { cat "$work/out"; fail "role"; }
grep -q "changed=1" "$work/out" || { cat "$work/out"; fail "the role changed nothing"; }
echo "API calls of the role's run (one authorized_keys task): $($fleet calls "$mark")"
ansible-playbook "${inv[@]}" "$work/role.yml" >"$work/out" || { cat "$work/out"; fail "role again"; }
grep -q "changed=0" "$work/out" || { cat "$work/out"; fail "the second run changed something"; }

step "authorized_keys_info over Cloud Assistant"
cat >"$work/info.yml" <<'YAML'
- hosts: box
  gather_facts: false
  tasks:
    - sshkeys.ecs.authorized_keys_info:
        user: ecs-user
      register: info
    - ansible.builtin.copy:
        content: "{{ info.public_keys | to_json }}"
        dest: "{{ keys_out }}"
      delegate_to: localhost
YAML
mark=$($fleet mark)
ansible-playbook "${inv[@]}" "$work/info.yml" -e "keys_out=$work/keys_ca.json" >"$work/out" \
  || { cat "$work/out"; fail "info over Cloud Assistant"; }
echo "API calls of authorized_keys_info: $($fleet calls "$mark")"

step "the ECS inventory sets the connection for Linux instances and marks running agents"
cat >"$work/fleet.ecs.yml" <<YAML
plugin: sshkeys.ecs.ecs
cloud_assistant_connection: all
cloud_assistant_status: true
compose:
  ansible_python_interpreter: "'/usr/bin/python3'"
YAML
mark=$($fleet mark)
ansible-inventory -i "$work/fleet.ecs.yml" --list >"$work/inventory.json" || fail "ansible-inventory"
echo "API calls of the inventory: $($fleet calls "$mark")"
"$python" - "$work/inventory.json" "$linux" "$stopped" "$windows" <<'PY' || fail "inventory: wrong connection or agent marks"
import json, sys
doc = json.load(open(sys.argv[1]))
linux, stopped, windows = sys.argv[2:5]
# ansible-inventory writes the plugin's strings as {"__ansible_unsafe": value}.
plain = lambda v: v.get("__ansible_unsafe", v) if isinstance(v, dict) else v
hostvars = {h: {k: plain(v) for k, v in hv.items()} for h, hv in doc["_meta"]["hostvars"].items()}
assert doc["cloud_assistant_running"]["hosts"] == [linux], doc.get("cloud_assistant_running")
assert hostvars[linux]["ansible_connection"] == "sshkeys.ecs.cloud_assistant"
assert hostvars[linux]["ansible_ecs_instance_id"] == linux and hostvars[linux]["ecs_cloud_assistant_running"] is True
assert hostvars[stopped]["ecs_cloud_assistant_running"] is False
assert "ansible_connection" not in hostvars[windows] and hostvars[windows]["ecs_cloud_assistant_running"] is False
PY
ansible -i "$work/fleet.ecs.yml" cloud_assistant_running -m ansible.builtin.ping -e ansible_pipelining=true \
  >"$work/out" 2>&1 || { cat "$work/out"; fail "ping through the inventory's connection"; }
grep -q '"ping": "pong"' "$work/out" || fail "no pong through the inventory"

step "open SSH: the added key logs in, and authorized_keys_info over SSH reports the same keys"
$fleet open "$linux" >/dev/null
login=$("${ssh_login[@]}" -i "$work/added" "ecs-user@$address" id -un)
[ "$login" = ecs-user ] || fail "the added key did not log in"
# info.yml names its host; over SSH the host is the address.
sed "s/- hosts: box/- hosts: all/" "$work/info.yml" >"$work/info_ssh.yml"
ansible-playbook -i "$address," -c ssh -u ecs-user --private-key "$work/added" "$work/info_ssh.yml" \
  -e "keys_out=$work/keys_ssh.json" -e ansible_python_interpreter=/usr/bin/python3 >"$work/out" \
  || { cat "$work/out"; fail "info over SSH"; }
cmp -s "$work/keys_ca.json" "$work/keys_ssh.json" || fail "the keys differ between Cloud Assistant and SSH"
grep -q ca-added "$work/keys_ca.json" || fail "the added key is not reported"

step "recover_access: the only private key is gone; a new key goes in over Cloud Assistant, no restart"
rm -f "$work/added"
ssh-keygen -q -t ed25519 -N "" -C ca-recovered -f "$work/recovered"
cat >"$work/recover_inventory.yml" <<YAML
all:
  hosts:
    rbox:
      ansible_host: $address
      ecs_instance_id: $linux
      ansible_python_interpreter: /usr/bin/python3
YAML
recover=(-i "$work/recover_inventory.yml" -e recover_hosts=rbox -e recover_user=ecs-user
         -e "recover_public_key_file=$work/recovered.pub" -e "recover_private_key_file=$work/recovered")
mark=$($fleet mark)
ansible-playbook sshkeys.ecs.recover_access "${recover[@]}" >"$work/out" || { cat "$work/out"; fail "recover_access"; }
grep -q "login proven over SSH" "$work/out" || { cat "$work/out"; fail "recover_access did not prove the login"; }
calls=$($fleet calls "$mark")
echo "API calls of recover_access: $calls"
if echo "$calls" | grep -qE 'Reboot|Stop|Start|AttachKeyPair|DetachKeyPair'; then fail "recover_access restarted or re-keyed: $calls"; fi
login=$("${ssh_login[@]}" -i "$work/recovered" "ecs-user@$address" id -un)
[ "$login" = ecs-user ] || fail "the recovered key did not log in"
ansible-playbook sshkeys.ecs.recover_access "${recover[@]}" >"$work/out" || { cat "$work/out"; fail "recover_access again"; }
grep -q "changed=0" "$work/out" || { cat "$work/out"; fail "the second recover_access changed something"; }
if ansible-playbook sshkeys.ecs.recover_access -i "$work/recover_inventory.yml" -e recover_hosts=rbox \
  -e recover_public_key="-----BEGIN OPENSSH PRIVATE KEY-----" >"$work/out" 2>&1; then fail "a private key was taken"; fi
grep -q "never a" "$work/out" || { cat "$work/out"; fail "bad input: unclear error"; }

step "authorized_key_rotate over Cloud Assistant: refused without verify_host, proven on verify_host"
ssh-keygen -q -t ed25519 -N "" -C ca-rotated -f "$work/rotated"
cat >"$work/rotate.yml" <<YAML
- hosts: box
  gather_facts: false
  tasks:
    - sshkeys.ecs.authorized_key_rotate:
        user: ecs-user
        old_key: "$(cat "$work/recovered.pub")"
        new_key: "$(cat "$work/rotated.pub")"
        new_private_key_path: "$work/rotated"
        verify_host: "{{ proof_host | default(omit) }}"
        verify_ssh_args: [-o, StrictHostKeyChecking=no, -o, UserKnownHostsFile=/dev/null]
YAML
if ansible-playbook "${inv[@]}" "$work/rotate.yml" >"$work/out" 2>&1; then fail "rotated without a way to prove"; fi
grep -q "verify_host" "$work/out" || { cat "$work/out"; fail "rotation: unclear refusal"; }
[ "$("${ssh_login[@]}" -i "$work/recovered" "ecs-user@$address" id -un)" = ecs-user ] || fail "the refusal changed the file"
ansible-playbook "${inv[@]}" "$work/rotate.yml" -e "proof_host=$address" >"$work/out" \
  || { cat "$work/out"; fail "rotation with verify_host"; }
[ "$("${ssh_login[@]}" -i "$work/rotated" "ecs-user@$address" id -un)" = ecs-user ] || fail "the rotated key does not log in"
if "${ssh_login[@]}" -i "$work/recovered" "ecs-user@$address" true 2>/dev/null; then fail "the old key still logs in"; fi

step "faults: Windows, stopped, timeout, no agent, throttling while polling"
if ansible "${inv[@]}" windows_box -m ansible.builtin.ping >"$work/out" 2>&1; then fail "Windows answered"; fi
grep -q "cannot run shell scripts" "$work/out" || { cat "$work/out"; fail "Windows: unclear error"; }
if ansible "${inv[@]}" stopped_box -m ansible.builtin.ping >"$work/out" 2>&1; then fail "a stopped instance answered"; fi
grep -q "is not Running" "$work/out" || { cat "$work/out"; fail "stopped: unclear error"; }
if ansible "${inv[@]}" box -m ansible.builtin.command -a "sleep 20" -e ansible_cloud_assistant_timeout=2 \
  >"$work/out" 2>&1; then fail "the timeout did not stop the command"; fi
grep -q "timed out after 2 s" "$work/out" || { cat "$work/out"; fail "timeout: unclear error"; }
$fleet agent "$linux" false >/dev/null
if ansible "${inv[@]}" box -m ansible.builtin.ping >"$work/out" 2>&1; then fail "answered without an agent"; fi
grep -q "agent is not running" "$work/out" || { cat "$work/out"; fail "no agent: unclear error"; }
$fleet agent "$linux" true >/dev/null
$fleet faults add '{"faults": [{"action": "DescribeInvocationResults", "kind": "throttling", "count": 2}]}' >/dev/null
ansible "${inv[@]}" box -m ansible.builtin.command -a "echo after-throttling" >"$work/out" 2>&1 \
  || { cat "$work/out"; fail "throttling while polling was not ridden out"; }
grep -q after-throttling "$work/out" || fail "no output after throttling"
$fleet faults clear >/dev/null

step "no command sent to the instances holds the AccessKey secret"
$fleet contents "$ALIBABA_CLOUD_ACCESS_KEY_SECRET" >/dev/null || fail "a secret reached an instance"
echo "cloud_assistant: all checks passed"
