#!/usr/bin/env bash
# (Re)creates .venv-publish from tools/publish/requirements.txt when that file changed, and does
# nothing otherwise (well under a second). galaxy-importer, ansible-builder and ansible-runner
# live there and nowhere else: galaxy-importer pins versions (attrs<24, flake8<7) that the test
# environment does not want. Used by the galaxy stage and by `make ee`.
#   tools/publish/venv.sh        prints nothing on success; the venv is $ROOT/.venv-publish
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
venv=$ROOT/.venv-publish
requirements=$ROOT/tools/publish/requirements.txt
# The same Python as .venv (3.11): ansible-core 2.19, the oldest release the collection supports.
python=$ROOT/.venv/bin/python
[ -x "$python" ] || { echo "publish-venv: .venv is missing (run make bootstrap)" >&2; exit 2; }
base_python=$("$python" -c 'import sys; print(sys._base_executable)')
stamp=$(sha256sum "$requirements" | cut -c1-16)
if [ -f "$venv/.stamp" ] && [ "$(cat "$venv/.stamp")" = "$stamp" ]; then exit 0; fi
echo "publish-venv: creating .venv-publish from tools/publish/requirements.txt" >&2
rm -rf "$venv"
"$base_python" -m venv "$venv"
# pip prints a warning for every unreachable extra index; keep those out of the logs.
"$venv/bin/python" -m pip -q --disable-pip-version-check install --upgrade pip \
  2> >(grep -v 'is ignored: it is neither' >&2)
"$venv/bin/python" -m pip -q --disable-pip-version-check install -r "$requirements" \
  2> >(grep -v 'is ignored: it is neither' >&2)
echo "$stamp" > "$venv/.stamp"
