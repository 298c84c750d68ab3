#!/usr/bin/env bash
# make bench: (re)creates .venv-bench from benchmarks/requirements.txt when that file changed (the
# plots and the amazon.aws peer need packages that `make test` does not), then runs the runner:
#   benchmarks/bench.sh [--quick] [--only SECTIONS] [--out DIR]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export CONTAINERS_CONF=${CONTAINERS_CONF:-$ROOT/tools/containers.conf}
export ALIBABA_CLOUD_ECS_METADATA_DISABLED=true ALIBABA_CLOUD_CLI_PROFILE_DISABLED=true
venv=$ROOT/.venv-bench
requirements=$ROOT/benchmarks/requirements.txt
# The same Python as .venv (3.11), so that Ansible's modules run on the same version everywhere.
python=$ROOT/.venv/bin/python
[ -x "$python" ] || { echo "bench: .venv is missing (run make bootstrap)" >&2; exit 2; }
base_python=$("$python" -c 'import sys; print(sys._base_executable)')
stamp=$(sha256sum "$requirements" | cut -c1-16)
if [ ! -f "$venv/.stamp" ] || [ "$(cat "$venv/.stamp")" != "$stamp" ]; then
  echo "bench: creating .venv-bench from benchmarks/requirements.txt"
  rm -rf "$venv"
  "$base_python" -m venv "$venv"
  "$venv/bin/python" -m pip -q --disable-pip-version-check install -r "$requirements" \
    2> >(grep -v 'is ignored: it is neither' >&2)
  echo "$stamp" > "$venv/.stamp"
fi
exec "$venv/bin/python" "$ROOT/benchmarks/run.py" "$@"
