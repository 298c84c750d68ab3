#!/usr/bin/env bash
# Installs everything the tests, the demo and the benchmarks need, and skips what is already
# there, so that a second run takes seconds:
#   - Debian packages (podman and friends, sshd, image building tools, PuTTY tools);
#   - .venv (Python 3.11, ansible-core 2.19, the pinned test requirements) and .venv-2.21
#     (Python 3.12+, the newest ansible-core) for sanity and unit tests;
#   - the offline pip bootstrap that ansible-test needs (see tools/offline_get_pip.py);
#   - the ansible_collections/sshkeys/ecs layout that ansible-test and ansible expect.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[bootstrap] %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

DEBIAN_PACKAGES=(podman runc uidmap slirp4netns fuse-overlayfs mmdebstrap openssh-server
  openssh-client zstd putty-tools iproute2 procps shellcheck)

install_debian_packages() {
  local missing=()
  for pkg in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Finds an interpreter of at least the given minor version: on PATH first, then under pyenv.
find_python() {
  local want_min=$1 want_max=$2 candidate v
  for v in $(seq "$want_max" -1 "$want_min"); do
    candidate=$(command -v "python3.$v" 2>/dev/null || true)
    if [ -n "$candidate" ] && "$candidate" -c 'import venv' 2>/dev/null; then echo "$candidate"; return 0; fi
    if command -v pyenv >/dev/null 2>&1; then
      for candidate in "$(pyenv root)"/versions/3."$v".*/bin/python; do
        if [ -x "$candidate" ]; then echo "$candidate"; return 0; fi
      done
    fi
  done
  return 1
}

# pip prints a warning for every unreachable extra index; keep those out of the test log.
quiet_pip() {
  local venv=$1; shift
  "$venv/bin/python" -m pip -q --disable-pip-version-check "$@" 2> >(grep -v 'is ignored: it is neither' >&2)
}

# make_venv DIR PYTHON REQUIREMENTS: (re)creates DIR when the requirements file changed.
make_venv() {
  local dir=$1 python=$2 requirements=$3 stamp
  stamp=$(sha256sum "$requirements" | cut -c1-16)
  if [ -f "$dir/.stamp" ] && [ "$(cat "$dir/.stamp")" = "$stamp" ]; then return 0; fi
  log "creating $dir with $("$python" --version) from $requirements"
  rm -rf "$dir"
  "$python" -m venv "$dir"
  quiet_pip "$dir" install --upgrade pip
  quiet_pip "$dir" install -r "$requirements"
  echo "$stamp" > "$dir/.stamp"
}

# ansible-test fetches get-pip.py from a host that may be unreachable; PyPI is enough.
install_offline_pip_bootstrap() {
  local cache=$HOME/.ansible/test/cache venv version
  mkdir -p "$cache"
  for venv in .venv .venv-2.21; do
    [ -d "$venv" ] || continue
    version=$("$venv/bin/python" - <<'PY'
from ansible_test._internal.python_requirements import get_venv_packages
class P:  # get_venv_packages only reads the version
    version = "3.11"
print(get_venv_packages(P())["pip"])
PY
    ) || continue
    ls "$cache"/pip-"$version"-*.whl >/dev/null 2>&1 ||
      quiet_pip "$venv" download --no-deps "pip==$version" -d "$cache"
    # Our stand-in is used even where the original could be fetched: it does the same job.
    cp tools/offline_get_pip.py "$cache/get_pip_${version//./_}.py"
  done
}

# The emulator is installed editable into .venv, so that changes to it need no reinstall.
install_emulator() {
  [ -f emulator/pyproject.toml ] || return 0
  .venv/bin/python -c 'import ecs_emulator' 2>/dev/null && return 0
  log "installing the emulator into .venv"
  quiet_pip .venv install --no-deps -e emulator
}

link_collection() {
  mkdir -p .cache/collections/ansible_collections/sshkeys
  ln -sfn ../../../.. .cache/collections/ansible_collections/sshkeys/ecs
}

install_debian_packages
py311=$(find_python 11 11) || py311=$(find_python 10 13)
make_venv .venv "$py311" requirements-test.txt
if py_new=$(find_python 12 13); then
  make_venv .venv-2.21 "$py_new" requirements-test-2.21.txt
else
  log "no Python 3.12 or 3.13 found: the newest ansible-core stages will be skipped"
fi
install_emulator
install_offline_pip_bootstrap
link_collection
log "ready"
