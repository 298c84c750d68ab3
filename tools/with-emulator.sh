#!/usr/bin/env bash
# Runs a command against a fresh ECS emulator:
#   tools/with-emulator.sh [ecs-emulator serve options] -- CMD [ARGS...]
# Starts `ecs-emulator serve` with a new state file in a temporary directory on a free loopback
# port, waits until it answers, exports
#   ALIBABA_CLOUD_ECS_ENDPOINT       http://127.0.0.1:PORT
#   ALIBABA_CLOUD_REGION_ID          cn-hangzhou (the first region served)
#   ALIBABA_CLOUD_ACCESS_KEY_ID      first key of the first account ("default")
#   ALIBABA_CLOUD_ACCESS_KEY_SECRET
#   ALIBABA_CLOUD_SECURITY_TOKEN     only when that key is an STS key (otherwise unset)
#   ECS_EMULATOR_SECOND_ACCESS_KEY_ID / ECS_EMULATOR_SECOND_ACCESS_KEY_SECRET
#                                    first key of the second account (isolation tests)
#   ECS_EMULATOR_ADMIN_TOKEN         token for the admin API (X-Admin-Token header)
#   ECS_EMULATOR_READY_FILE          JSON with all of the above and every account
#   ECS_EMULATOR_STATE, ECS_EMULATOR_LOG   the state file and the request log
#   ECS_EMULATOR_PID                 the emulator's process id
# runs CMD, always stops the emulator, and exits with CMD's exit code. Serve options given here
# override the defaults (for example --instances podman, --strict-delete, --fault ...).
# ECS_EMULATOR_KEEP=1 keeps the temporary directory (state, log) for a look afterwards.
set -uo pipefail

usage() {
  echo "usage: $0 [ecs-emulator serve options] -- CMD [ARGS...]" >&2
  exit 2
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
serve_args=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  serve_args+=("$1")
  shift
done
[ "${1:-}" = "--" ] || usage
shift
[ $# -gt 0 ] || usage

if [ -x "$ROOT/.venv/bin/ecs-emulator" ]; then
  emulator=$ROOT/.venv/bin/ecs-emulator
  python=$ROOT/.venv/bin/python
elif command -v ecs-emulator >/dev/null 2>&1; then
  emulator=$(command -v ecs-emulator)
  python=python3
else
  echo "with-emulator: ecs-emulator is not installed (run make bootstrap)" >&2
  exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/ecs-emulator.XXXXXX")
ready=$work/ready.json
"$emulator" serve --listen 127.0.0.1:0 --state "$work/state.sqlite" --ready-file "$ready" \
  --log-file "$work/requests.log" "${serve_args[@]}" >"$work/emulator.out" 2>"$work/emulator.err" &
pid=$!

# shellcheck disable=SC2317  # only ever called through the EXIT trap
stop_emulator() {
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  # Containers of podman instances outlive the emulator (a restart reconciles them); a
  # throw-away state must not leave them behind holding their loopback addresses.
  if [ -z "${ECS_EMULATOR_KEEP:-}" ] && [ -s "$ready" ] && command -v podman >/dev/null 2>&1; then
    local state_id
    state_id=$("$python" -c 'import json, sys; print(json.load(open(sys.argv[1])).get("state_id", ""))' "$ready" 2>/dev/null)
    if [ -n "$state_id" ]; then
      "$python" -m ecs_emulator.podman_backend purge "$state_id" >/dev/null 2>&1 ||
        echo "with-emulator: could not remove the containers of state $state_id" >&2
    fi
  fi
  if [ -n "${ECS_EMULATOR_KEEP:-}" ]; then
    echo "with-emulator: state and logs kept in $work" >&2
  else
    rm -rf "$work"
  fi
}
trap stop_emulator EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Podman reconciliation can take a while on a cold start; a virtual emulator is up in a second.
for _ in $(seq 1 1200); do
  [ -s "$ready" ] && break
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "with-emulator: the emulator exited before it was ready:" >&2
    tail -n 20 "$work/emulator.err" >&2
    exit 2
  fi
  sleep 0.1
done
if [ ! -s "$ready" ]; then
  echo "with-emulator: the emulator did not get ready in 120 s" >&2
  exit 2
fi

exports=$("$python" - "$ready" <<'PY'
import json, shlex, sys
doc = json.load(open(sys.argv[1]))
first = doc["accounts"][0]["access_keys"][0]
out = {
    "ALIBABA_CLOUD_ECS_ENDPOINT": doc["endpoint"],
    "ALIBABA_CLOUD_REGION_ID": doc["region"],
    "ALIBABA_CLOUD_ACCESS_KEY_ID": first["id"],
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": first["secret"],
    "ECS_EMULATOR_ADMIN_TOKEN": doc["admin_token"],
}
if first.get("security_token"):
    out["ALIBABA_CLOUD_SECURITY_TOKEN"] = first["security_token"]
if len(doc["accounts"]) > 1:
    second = doc["accounts"][1]["access_keys"][0]
    out["ECS_EMULATOR_SECOND_ACCESS_KEY_ID"] = second["id"]
    out["ECS_EMULATOR_SECOND_ACCESS_KEY_SECRET"] = second["secret"]
for name, value in out.items():
    print(f"export {name}={shlex.quote(value)}")
PY
) || { echo "with-emulator: cannot read $ready" >&2; exit 2; }
unset ALIBABA_CLOUD_SECURITY_TOKEN
eval "$exports"
export ECS_EMULATOR_READY_FILE=$ready ECS_EMULATOR_STATE=$work/state.sqlite
export ECS_EMULATOR_LOG=$work/requests.log ECS_EMULATOR_PID=$pid

"$@"
status=$?
exit "$status"
