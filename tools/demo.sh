#!/usr/bin/env bash
# make demo: the whole life of SSH key pairs on ECS, offline, in a few minutes (docs/demo.md).
#
# Installs what is missing (tools/bootstrap.sh), builds or loads the instance image, starts the
# local ECS emulator with 3 Linux instances (podman containers running sshd on 127.0.30.x) and 1
# Windows instance, then runs the story (tools/demo/story/main.yml) through the collection's
# workflow playbooks and prints a short summary per step. Everything it started - emulator,
# containers, keys - is removed when it ends, also after a failure or Ctrl-C.
#
# DEMO_KEEP=1 keeps the working directory (keys, logs) - the emulator and containers still go.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$ROOT/.cache/demo
PREFIX=demo
started=$(date +%s)

log() { printf '==> %s\n' "$*"; }

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  log "cleaning up: emulator, containers$([ -n "${DEMO_KEEP:-}" ] || echo ', keys')"
  if ! "$ROOT/.venv/bin/python" "$ROOT/tools/demo/fleet.py" down "$WORK/fleet"; then
    # fleet.py keeps its directory (with the state id) when something could not be removed.
    echo "demo: something could not be removed; try again: .venv/bin/python tools/demo/fleet.py down $WORK/fleet" >&2
    [ -n "${DEMO_KEEP:-}" ] || rm -rf "$WORK/keys"
    status=${status/#0/1}
  elif [ -z "${DEMO_KEEP:-}" ]; then
    rm -rf "$WORK"
  else
    log "kept $WORK"
  fi
  local outcome="demo FAILED (exit $status)"
  # 130: Ctrl-C reached this script; 99: ansible-playbook's own exit code for Ctrl-C.
  case $status in 0) outcome="demo finished" ;; 130 | 99) outcome="demo interrupted" ;; esac
  log "$outcome in $(( $(date +%s) - started )) s"
  exit "$status"
}
trap cleanup EXIT
trap 'echo; log "interrupted"; exit 130' INT
trap 'exit 143' TERM

log "installing what is missing (tools/bootstrap.sh)"
bash "$ROOT/tools/bootstrap.sh" || exit 1

export CONTAINERS_CONF=$ROOT/tools/containers.conf
# A run that was killed hard may have left its emulator behind: stop it first.
"$ROOT/.venv/bin/python" "$ROOT/tools/demo/fleet.py" down "$WORK/fleet" || exit 1
rm -rf "$WORK"
mkdir -p "$WORK/keys"
chmod 0700 "$WORK" "$WORK/keys"

log "starting the ECS emulator and running 3 Linux and 1 Windows instances"
"$ROOT/.venv/bin/python" "$ROOT/tools/demo/fleet.py" up "$WORK/fleet" --address-pool 127.0.30.0/24 \
  --prefix "$PREFIX" --linux 3 --windows 1 --launch-key-pair "$PREFIX-legacy" \
  --login-key "$WORK/keys/$PREFIX-admin.pem" || exit 1

# The emulator's endpoint and AccessKey, for the playbooks and the inventory plugin.
# shellcheck disable=SC1091
source "$WORK/fleet/env.sh"
export PATH=$ROOT/.venv/bin:$PATH
export ANSIBLE_COLLECTIONS_PATH=$ROOT/.cache/collections
export ANSIBLE_STDOUT_CALLBACK=sshkeys_demo ANSIBLE_CALLBACK_PLUGINS=$ROOT/tools/demo/callback
export ANSIBLE_HOST_KEY_CHECKING=false ANSIBLE_PIPELINING=true ANSIBLE_LOCALHOST_WARNING=false
export ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=false
# Ansible's default SSH arguments without -C: compressing loopback traffic only costs CPU.
export ANSIBLE_SSH_ARGS="-o ControlMaster=auto -o ControlPersist=120s"
export SSHKEYS_DEMO_LOG=$WORK/tasks.log

log "ready after $(( $(date +%s) - started )) s; running the story: playbooks of sshkeys.ecs against the emulator (inventory: sshkeys.ecs.ecs plugin)"
# keypair_private_key_file also as an extra var: the host play of show_public_key.yml reads it
# from localhost's variables, where the story's import vars do not reach.
ansible-playbook -i "$WORK/fleet/inventory" "$ROOT/tools/demo/story/main.yml" \
  -e "story_dir=$WORK" -e "story_prefix=$PREFIX" \
  -e "keypair_private_key_file=$WORK/keys/$PREFIX-admin.pem"
