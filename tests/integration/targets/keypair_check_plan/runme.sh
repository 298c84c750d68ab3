#!/usr/bin/env bash
# Create-then-attach planned with --check (issue 19, item 7): ecs_keypair only plans the key pair,
# and ecs_keypair_attach plans against it when given the create task's would_create, instead of
# failing on a key pair that does not exist yet. Without that flag the plan fails saying how to
# pass it. Then the real run, and --check again (nothing would change).
#
# Instances come from the emulator's own command (ecs-emulator instances create); what each run
# did is read back from the emulator (ecs-emulator instances list), never from the play alone.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
python=${ANSIBLE_TEST_PYTHON_INTERPRETER:-python3}
eval "$("$python" "$here/../setup_ecs_sdk/files/emulator_env.py" "$here/../../integration_config.yml")"
export ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_PYTHON_INTERPRETER=$python
emulator() { "$python" -m ecs_emulator.cli "$@"; }

work=$(mktemp -d "${TMPDIR:-/tmp}/keypair-check-plan.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$work/log" ] && tail -30 "$work/log" >&2; exit 1; }

emulator reset >/dev/null
ids=$(emulator instances create --count 2 --name plan --json | "$python" -c \
  'import json, sys; print(",".join(i["InstanceId"] for i in json.load(sys.stdin)["Instances"]))')
holders() {  # the key pair each of our instances holds, as the emulator has it
  emulator instances list --json | "$python" -c \
    'import json, sys; ids = sys.argv[1].split(","); print(" ".join(i["KeyPairName"] or "-" for i in json.load(sys.stdin)["Instances"] if i["InstanceId"] in ids))' "$ids"
}
vars=(-e "key_dir=$work" -e "{\"fleet_ids\": [\"${ids//,/\",\"}\"]}")

# 1. The plan without the flag fails on the key pair that does not exist yet, and says what to pass.
if ansible-playbook "$here/files/plan.yml" --check --diff "${vars[@]}" -e planned=false >"$work/log" 2>&1; then
  fail "the plan without key_pair_planned passed"
fi
grep -q "key pair plan-deploy does not exist" "$work/log" || fail "no 'does not exist' message"
grep -q "key_pair_planned" "$work/log" || fail "the message does not name key_pair_planned"

# 2. The plan with it: both tasks report a change, nothing changes.
ansible-playbook "$here/files/plan.yml" --check --diff "${vars[@]}" >"$work/log" 2>&1 || fail "the plan failed"
grep -q "would_create=True changed_instances=${ids}" "$work/log" || fail "the plan did not report both changes"
grep -q "changed=2" "$work/log" || fail "the plan did not report two changed tasks"
[ "$(holders)" = "- -" ] || fail "the plan changed the instances: $(holders)"
[ ! -e "$work/plan-deploy.pem" ] || fail "the plan wrote the private key"
emulator instances list --json | grep -q plan-deploy && fail "the plan created the key pair"

# 3. The real run does what the plan said; --check afterwards plans nothing.
ansible-playbook "$here/files/plan.yml" --diff "${vars[@]}" >"$work/log" 2>&1 || fail "the real run failed"
grep -q "would_create=False changed_instances=${ids}" "$work/log" || fail "the real run did not attach both"
[ "$(holders)" = "plan-deploy plan-deploy" ] || fail "the instances do not hold the key pair: $(holders)"
[ "$(stat -c %a "$work/plan-deploy.pem")" = 600 ] || fail "the private key file is not 0600"
ansible-playbook "$here/files/plan.yml" --check --diff "${vars[@]}" >"$work/log" 2>&1 || fail "the second plan failed"
grep -q "changed=0" "$work/log" || fail "the second plan would change something"

emulator reset >/dev/null
echo "keypair_check_plan: ok"
