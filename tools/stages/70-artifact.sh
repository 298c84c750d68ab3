#!/usr/bin/env bash
# The shipped artifact:
#   1. `ansible-galaxy collection build` of a clean copy holds the collection and nothing of the
#      emulator, benchmarks, CI or tooling, and exactly the files docs/development.md lists
#      (tools/artifact_files.py); the relative links of its Markdown files name files it holds
#      (tools/artifact_files.py --links: a file left out is linked in the repository instead);
#   2. installed into an empty path, ansible-doc finds every module, inventory plugin and filter;
#   3. a playbook that sees only the installed copy (tools/artifact/installed.yml) drives a fresh
#      emulator with virtual instances: create a key pair, read it back, attach, detach, delete,
#      each twice; then the collection's own create_keypair and delete_keypair playbooks, by
#      name; the verbose log must show modules and playbooks loaded from the installed copy, and
#      must not hold any private key;
#   4. execution-environment.yml: `ansible-builder create` builds the context (nothing pulled),
#      which must hold this tarball and the requirements; its galaxy step installs the collection
#      offline, and ansible-builder's own introspection finds its Python and system requirements;
#   5. the AWX credential type the tarball ships (extensions/awx/credential_type.json): its
#      injector, rendered as AWX renders it (tools/awx_credential.py), is the only source of the
#      Alibaba Cloud variables of an ecs_keypair_info run against a fresh emulator, which must
#      find the key pair made before; the same with a wrong secret must fail;
#   6. where podman is present, `make ee` (tools/publish/ee.sh) on this tarball: the execution
#      environment built from execution-environment.yml on a base image made here, and a job in
#      it run the way AWX runs one (figures in $STAGE_RESULTS/ee.json);
#   7. docs/getting-started.md, its commands exactly as written (tools/walkthrough.py), outside
#      the checkout: this tarball and the emulator's wheel in a fresh virtual environment with
#      the newest ansible-core, an emulator, instances, a first playbook and the inventory.
# One JUnit test case per part in $STAGE_RESULTS/artifact.xml; logs next to it.
set -uo pipefail
source "$(dirname "$0")/common.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/sshkeys-artifact.XXXXXX")
trap 'rm -rf "$work"' EXIT
src=$(copy_collection)
trap 'rm -rf "$work" "${src%/ansible_collections/sshkeys/ecs}"' EXIT

cases=$work/cases.tsv
failures=0
# record NAME STATUS MESSAGE: one test case; STATUS 0 passes.
record() {
  local name=$1 status=$2 message=${3:-}
  if [ "$status" -eq 0 ]; then
    echo "--- $name: passed"
  else
    echo "--- $name: FAILED: $message"
    failures=$((failures + 1))
  fi
  junit_case "$cases" artifact "$name" "$status" "" "$message"
}
write_junit() {
  junit_write artifact "$cases" "$STAGE_RESULTS/artifact.xml"
}

# --- 1. build and contents -------------------------------------------------------------------
if ! "$VENV/bin/ansible-galaxy" collection build "$src" --output-path "$work" >"$STAGE_RESULTS/build.log" 2>&1; then
  record build 1 "ansible-galaxy collection build failed: $(tail -n 5 "$STAGE_RESULTS/build.log")"
  write_junit; exit 1
fi
tarball=$(ls "$work"/sshkeys-ecs-*.tar.gz)
echo "built $(basename "$tarball") ($(du -h "$tarball" | cut -f1))"

problems=""
members=$(tar -tzf "$tarball")
forbidden=$(printf '%s\n' "$members" | grep -E '^(emulator|benchmarks|tools|dist|context|\.ci|\.cache|\.venv[^/]*|tests/output|\.test-results|\.github)/|__pycache__|(^|/)Makefile$|(^|/)pytest\.ini$|^execution-environment\.yml$' || true)
if [ -n "$forbidden" ]; then
  problems+="the artifact holds files that are not part of the collection: $(echo "$forbidden" | head -20 | tr '\n' ' ') "
fi
# galaxy.yml becomes MANIFEST.json; bindep.txt and requirements.txt are what ansible-builder
# reads from an installed collection.
for required in MANIFEST.json FILES.json meta/runtime.yml README.md requirements.txt bindep.txt; do
  printf '%s\n' "$members" | grep -x "$required" >/dev/null || problems+="the artifact lacks $required. "
done
# Nothing else either: the files (or per-directory patterns) listed in docs/development.md.
if ! "$VENV/bin/python" "$ROOT/tools/artifact_files.py" "$tarball" "$src/docs/development.md" >"$STAGE_RESULTS/files.log" 2>&1; then
  problems+="the artifact's files differ from the list in docs/development.md: $(head -n 10 "$STAGE_RESULTS/files.log" | tr '\n' ' ') "
fi
record contents "$([ -z "$problems" ]; echo $?)" "$problems"
# The shipped pages' links work on Galaxy and once installed: a relative link names a file of the
# tarball, a file it leaves out is linked in the repository (tools/artifact_files.py --links).
"$VENV/bin/python" "$ROOT/tools/artifact_files.py" --links "$tarball" >"$STAGE_RESULTS/links.log" 2>&1
code=$?
record links "$code" "links of the shipped pages that are dead once installed: $(head -n 5 "$STAGE_RESULTS/links.log" | tr '\n' ' ')"

# --- 2. installed: ansible-doc ---------------------------------------------------------------
export ANSIBLE_COLLECTIONS_PATH=$work/installed ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
if ! "$VENV/bin/ansible-galaxy" collection install "$tarball" -p "$work/installed" >"$STAGE_RESULTS/install.log" 2>&1; then
  record install 1 "ansible-galaxy collection install failed: $(tail -n 5 "$STAGE_RESULTS/install.log")"
  write_junit; exit 1
fi
problems=""
# One ansible-doc call per plugin type (each call costs seconds); every name must come back.
documented() {
  local kind=$1 json missing; shift
  [ $# -gt 0 ] || return 0
  json=$work/ansible-doc-$kind.json
  "$VENV/bin/ansible-doc" -t "$kind" --json "$@" >"$json" 2>"$json.err"
  missing=$("$VENV/bin/python" -c 'import json, sys
try:
    found = json.load(open(sys.argv[1]))
except ValueError:
    found = {}
print(" ".join(n for n in sys.argv[2:] if not (found.get(n) or {}).get("doc")))' "$json" "$@")
  if [ -n "$missing" ]; then
    problems+="ansible-doc cannot render $kind $missing from the installed artifact. "
  else
    echo "installed artifact documents $kind: $*"
  fi
}
for kind_dir in modules:module inventory:inventory; do
  dir=${kind_dir%%:*} kind=${kind_dir##*:} names=()
  for plugin in "$ROOT"/plugins/"$dir"/*.py; do
    [ -e "$plugin" ] && names+=("sshkeys.ecs.$(basename "$plugin" .py)")
  done
  documented "$kind" "${names[@]}"
done
# A filter file may define several filters: ask ansible-doc for the documented ones.
mapfile -t filters < <("$VENV/bin/ansible-doc" -t filter -l sshkeys.ecs 2>/dev/null | awk '{print $1}')
[ "${#filters[@]}" -gt 0 ] || problems+="ansible-doc lists no filters in the installed artifact. "
documented filter "${filters[@]}"
record ansible-doc "$([ -z "$problems" ]; echo $?)" "$problems"

# --- 3. installed: playbooks against the emulator -------------------------------------------
# tools/artifact/installed.yml runs from a directory of its own (no playbook-adjacent
# collections, no checkout around it); instances come from the official SDK (the attach
# target's helper), not from the collection under test. Virtual instances need no podman and no
# loopback addresses. Then two of the collection's own playbooks, by name, from the installed copy.
play=$work/play
mkdir -p "$play/keys"
cp "$ROOT/tools/artifact/installed.yml" "$play/"
export ARTIFACT_FLEET="$VENV/bin/python $ROOT/tests/integration/targets/ecs_keypair_attach/files/ecs_fleet.py"
export ARTIFACT_PLAY=$play ARTIFACT_PLAYBOOK=$VENV/bin/ansible-playbook
# shellcheck disable=SC2317  # run by with-emulator.sh through bash -c
run_playbooks() {
  cd "$ARTIFACT_PLAY" || return 1
  "$ARTIFACT_PLAYBOOK" -vvv installed.yml \
    -e "{\"fleet\": \"$ARTIFACT_FLEET\", \"workdir\": \"$ARTIFACT_PLAY/keys\"}" || return 1
  "$ARTIFACT_PLAYBOOK" -vvv sshkeys.ecs.create_keypair -e keypair_name=artifact-playbook \
    -e "keypair_private_key_path=$ARTIFACT_PLAY/keys/artifact-playbook.pem" -e keypair_generate_locally=true || return 1
  "$ARTIFACT_PLAYBOOK" -vvv sshkeys.ecs.delete_keypair -e '{"keypair_names": ["artifact-playbook"]}'
}
export -f run_playbooks
log=$STAGE_RESULTS/installed-playbook.log
ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 "$ROOT/tools/with-emulator.sh" --fast -- bash -c run_playbooks >"$log" 2>&1
code=$?
grep -E '^(PLAYBOOK:|localhost +:)' "$log"
problems=""
[ "$code" -eq 0 ] || problems+="a playbook failed (exit $code): $(grep -E 'FAILED|fatal|ERROR' "$log" | tail -n 5 | tr '\n' ' ') "
installed_root=$work/installed/ansible_collections/sshkeys/ecs
for module in ecs_keypair ecs_keypair_info ecs_keypair_attach; do
  grep -qF "Using module file $installed_root/plugins/modules/$module.py" "$log" ||
    problems+="no sign that $module ran from the installed copy. "
done
for playbook in create_keypair delete_keypair; do
  grep -qF "1 plays in $installed_root/playbooks/$playbook.yml" "$log" ||
    problems+="no sign that the playbook $playbook ran from the installed copy. "
done
elsewhere=$(grep -E 'Using module file|plays in' "$log" | grep -F 'sshkeys' | grep -vF "$installed_root/" | head -3)
[ -z "$elsewhere" ] || problems+="something of the collection ran from somewhere else: $elsewhere "
grep -qE "collection location = $work/installed\$" "$log" || problems+="ansible-playbook did not report the installed path as its only collection location. "
# The private keys stayed in their files (0600): none of their lines appears in the verbose log.
written=0
for key in "$play"/keys/*; do
  # generate: local writes the public half beside each private key (NAME.pub): that one is public.
  if [ ! -f "$key" ] || [ "${key%.pub}" != "$key" ]; then continue; fi
  written=$((written + 1))
  [ "$(stat -c %a "$key")" = 600 ] || problems+="$(basename "$key") is not mode 0600. "
  mapfile -t key_lines < <(grep -v -e '^-----' -e '^$' "$key")
  for line in "${key_lines[@]}"; do
    if grep -qF -- "$line" "$log"; then problems+="a line of $(basename "$key") appears in the log. "; break; fi
  done
done
[ "$written" -eq 2 ] || problems+="expected 2 private key files, found $written. "
record installed-playbooks "$([ -z "$problems" ]; echo $?)" "$problems (log: $log)"

# --- 4. execution environment ------------------------------------------------------------------
ee=$work/ee
mkdir -p "$ee/dist"
cp "$src/execution-environment.yml" "$src/requirements.txt" "$src/bindep.txt" "$ee/"
cp "$tarball" "$ee/dist/"
problems=""
named=$(sed -n 's/^ *- *src: *dist\/\(sshkeys-ecs-[^ ]*\.tar\.gz\) *$/\1/p' "$ee/execution-environment.yml")
[ "$named" = "$(basename "$tarball")" ] ||
  problems+="execution-environment.yml names dist/$named, the build made $(basename "$tarball") (version in galaxy.yml). "
if (cd "$ee" && "$VENV/bin/ansible-builder" create --file execution-environment.yml --context "$ee/context") >"$STAGE_RESULTS/ansible-builder.log" 2>&1; then
  build=$ee/context/_build
  cmp -s "$tarball" "$build/collections/$(basename "$tarball")" || problems+="the build context lacks the collection tarball. "
  cmp -s "$src/requirements.txt" "$build/requirements.txt" || problems+="the build context lacks requirements.txt. "
  cmp -s "$src/bindep.txt" "$build/bindep.txt" || problems+="the build context lacks bindep.txt. "
  grep -q 'ansible-galaxy collection install .*-r requirements.yml' "$ee/context/Containerfile" ||
    problems+="the Containerfile installs no collections. "
  # The galaxy stage's command, run here: the requirements resolve to the tarball, offline.
  if (cd "$build" && ANSIBLE_COLLECTIONS_PATH=$ee/collections "$VENV/bin/ansible-galaxy" collection install \
        -r requirements.yml -p "$ee/collections") >"$STAGE_RESULTS/ee-galaxy.log" 2>&1 &&
     [ -f "$ee/collections/ansible_collections/sshkeys/ecs/MANIFEST.json" ]; then
    # The builder stage's introspection: what the collection itself declares.
    "$VENV/bin/python" "$build/scripts/introspect.py" introspect "$ee/collections" \
      --write-pip "$ee/pip.txt" --write-bindep "$ee/system.txt" >"$STAGE_RESULTS/ee-introspect.log" 2>&1 ||
      problems+="ansible-builder's introspection failed. "
    grep -q '^cryptography.*from collection sshkeys.ecs' "$ee/pip.txt" 2>/dev/null ||
      problems+="introspection does not find the collection's Python requirements. "
    grep -q '^openssh-client.*from collection sshkeys.ecs' "$ee/system.txt" 2>/dev/null ||
      problems+="introspection does not find the collection's system requirements. "
  else
    problems+="the EE's galaxy requirements do not install the collection: $(tail -n 3 "$STAGE_RESULTS/ee-galaxy.log" | tr '\n' ' ') "
  fi
else
  problems+="ansible-builder create failed: $(tail -n 5 "$STAGE_RESULTS/ansible-builder.log" | tr '\n' ' ') "
fi
record execution-environment "$([ -z "$problems" ]; echo $?)" "$problems"

# --- 5. the AWX credential type ----------------------------------------------------------------
# A key pair is made with the emulator's environment as tools/with-emulator.sh exports it; then
# ecs_keypair_info runs with nothing but the injector's output for the Alibaba Cloud variables
# (tools/awx_credential.py exec drops every other one) and must find exactly that key pair.
export ARTIFACT_CREDENTIAL_TYPE=$installed_root/extensions/awx/credential_type.json
export ARTIFACT_CREDENTIAL_TOOL=$ROOT/tools/awx_credential.py ARTIFACT_PYTHON=$VENV/bin/python
export ARTIFACT_ANSIBLE=$VENV/bin/ansible ARTIFACT_CREDENTIAL_OUT=$work/credential
mkdir -p "$work/credential"
# shellcheck disable=SC2317  # run by with-emulator.sh through bash -c
run_with_credential() {
  local out=$ARTIFACT_CREDENTIAL_OUT inputs
  inputs=(--input-env access_key_id=ALIBABA_CLOUD_ACCESS_KEY_ID --input-env region_id=ALIBABA_CLOUD_REGION_ID
    --input-env security_token=ALIBABA_CLOUD_SECURITY_TOKEN --input-env ecs_endpoint=ALIBABA_CLOUD_ECS_ENDPOINT)
  "$ARTIFACT_ANSIBLE" localhost -m sshkeys.ecs.ecs_keypair -e "ansible_python_interpreter=$ARTIFACT_PYTHON" \
    -a "name=awx-credential generate=local key_type=ed25519 private_key_path=$out/awx-credential" >"$out/create.log" 2>&1 || return 1
  "$ARTIFACT_PYTHON" "$ARTIFACT_CREDENTIAL_TOOL" env "$ARTIFACT_CREDENTIAL_TYPE" "${inputs[@]}" \
    --input-env access_key_secret=ALIBABA_CLOUD_ACCESS_KEY_SECRET >"$out/env.json" || return 1
  "$ARTIFACT_PYTHON" "$ARTIFACT_CREDENTIAL_TOOL" exec "$ARTIFACT_CREDENTIAL_TYPE" "${inputs[@]}" \
    --input-env access_key_secret=ALIBABA_CLOUD_ACCESS_KEY_SECRET \
    --keep ANSIBLE_COLLECTIONS_PATH --keep ANSIBLE_COLLECTIONS_SCAN_SYS_PATH -- \
    "$ARTIFACT_ANSIBLE" localhost -o -m sshkeys.ecs.ecs_keypair_info -a names=awx-credential \
    -e "ansible_python_interpreter=$ARTIFACT_PYTHON" >"$out/info.out" 2>"$out/info.err" || return 1
  # A wrong secret in the credential: the module must fail, so it did use these variables.
  ! "$ARTIFACT_PYTHON" "$ARTIFACT_CREDENTIAL_TOOL" exec "$ARTIFACT_CREDENTIAL_TYPE" "${inputs[@]}" \
    --input access_key_secret=not-the-secret \
    --keep ANSIBLE_COLLECTIONS_PATH --keep ANSIBLE_COLLECTIONS_SCAN_SYS_PATH -- \
    "$ARTIFACT_ANSIBLE" localhost -o -m sshkeys.ecs.ecs_keypair_info -a names=awx-credential \
    -e "ansible_python_interpreter=$ARTIFACT_PYTHON" >"$out/wrong.out" 2>"$out/wrong.err"
}
export -f run_with_credential
problems=""
if "$VENV/bin/python" "$ARTIFACT_CREDENTIAL_TOOL" check "$ARTIFACT_CREDENTIAL_TYPE" >"$STAGE_RESULTS/credential-type.log" 2>&1 &&
   "$ROOT/tools/with-emulator.sh" --fast -- bash -c run_with_credential >>"$STAGE_RESULTS/credential-type.log" 2>&1; then
  problems=$("$VENV/bin/python" - "$work/credential" <<'PY'
import json, subprocess, sys
out = sys.argv[1]
env = json.load(open(f"{out}/env.json"))
def one_line(path):
    """The result of `ansible localhost -o`: `localhost | SUCCESS => {...}`."""
    line = [line for line in open(path) if line.startswith("localhost | ")][0]
    status, _, data = line.partition(" => ")
    return status.split("|")[1].strip(), json.loads(data)
status, result = one_line(f"{out}/info.out")
wrong_status, wrong = one_line(f"{out}/wrong.out")
public = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", f"{out}/awx-credential"],
                        capture_output=True, text=True, check=True).stdout.split()[1]
problems = []
if sorted(env) != ["ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_ECS_ENDPOINT",
                   "ALIBABA_CLOUD_REGION_ID", "ALIBABA_CLOUD_SECURITY_TOKEN"]:
    problems.append(f"the injector set {sorted(env)}")
pairs = result.get("key_pairs") or []
if status != "SUCCESS" or [p.get("name") for p in pairs] != ["awx-credential"] or pairs[0].get("fingerprint_sha256") != public:
    problems.append(f"ecs_keypair_info with the injected environment: {status}, found {[p.get('name') for p in pairs]}")
if wrong_status != "FAILED!":
    problems.append(f"ecs_keypair_info with a wrong secret in the credential: {wrong_status}")
print(" ".join(problems))
PY
  ) || problems="could not read the results in $work/credential. "
else
  problems="the credential type check or its run failed: $(tail -n 5 "$STAGE_RESULTS/credential-type.log" | tr '\n' ' ') "
fi
record awx-credential-type "$([ -z "$problems" ]; echo $?)" "$problems (log: $STAGE_RESULTS/credential-type.log)"

# --- 7. the new user's walkthrough, docs/getting-started.md -----------------------------------
# Its commands exactly as written (tools/walkthrough.py extracts them), outside the checkout: a
# fresh virtual environment with the newest ansible-core this machine has a Python for (that of
# .venv-2.21), this tarball, the emulator as a wheel built from the same copy, a first playbook.
started=$SECONDS
newest=$(readlink -f "$ROOT/.venv-2.21/bin/python" 2>/dev/null || true)
[ -x "$newest" ] || newest=$(command -v python3)
problems=""
if ! "$VENV/bin/python" -m pip wheel --quiet --no-deps --disable-pip-version-check -w "$work/wheel" "$src/emulator" \
    >"$STAGE_RESULTS/walkthrough.log" 2>&1; then
  problems="the emulator wheel could not be built: $(tail -n 3 "$STAGE_RESULTS/walkthrough.log" | tr '\n' ' ')"
elif ! "$VENV/bin/python" "$ROOT/tools/walkthrough.py" "$src/docs/getting-started.md" "$tarball" \
    "$work"/wheel/ecs_emulator-*.whl --python "$newest" >>"$STAGE_RESULTS/walkthrough.log" 2>&1; then
  problems="$(grep '^walkthrough:' "$STAGE_RESULTS/walkthrough.log" | head -n 1)"
fi
grep '^walkthrough:' "$STAGE_RESULTS/walkthrough.log" || true
echo "walkthrough part: $((SECONDS - started)) s"
record walkthrough "$([ -z "$problems" ]; echo $?)" "$problems (log: $STAGE_RESULTS/walkthrough.log)"

# --- 6. the execution environment, built and run (make ee) ---------------------------------------
if command -v podman >/dev/null 2>&1; then
  started=$SECONDS
  if bash "$ROOT/tools/publish/ee.sh" --tarball "$tarball" >"$STAGE_RESULTS/ee.log" 2>&1; then
    grep -E '^\[ee\] (built|figures|.*up to date)' "$STAGE_RESULTS/ee.log"
    record execution-environment-run 0
  else
    record execution-environment-run 1 "make ee failed: $(grep -E '^\[ee\]' "$STAGE_RESULTS/ee.log" | tail -n 3 | tr '\n' ' ') (log: $STAGE_RESULTS/ee.log)"
  fi
  echo "execution environment part: $((SECONDS - started)) s"
else
  echo "--- execution-environment-run: skipped (no podman)"
fi

write_junit
[ "$failures" -eq 0 ]
