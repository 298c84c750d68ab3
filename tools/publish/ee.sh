#!/usr/bin/env bash
# make ee: the execution environment of execution-environment.yml, built here and proven by a job
# run in it the way AWX runs one. Nothing is pulled or pushed.
#   1. .venv-publish (ansible-builder, ansible-runner) and the base image made here from Debian
#      packages (tools/publish/ee-base-image.sh), both cached;
#   2. `ansible-builder build` of execution-environment.yml itself, with the base image and its
#      Debian package names as build arguments, into localhost/sshkeys-ecs-ee:<version>. The
#      image carries a key of everything that went into it (the definition, requirements.txt,
#      bindep.txt, the files of the collection tarball, the base image, ansible-builder and the
#      build arguments): when nothing changed, the build is skipped;
#   3. the job: a fresh emulator (tools/with-emulator.sh) and one instance container on
#      127.0.50.1:22 (tools/instance-run.sh); a private data directory holding
#      tools/publish/ee-job/sshkeys_ee.yml, an inventory, env/envvars rendered from the injector
#      of extensions/awx/credential_type.json (tools/awx_credential.py) and env/ssh_key (the
#      machine credential); then, as AWX does with a container group,
#        ansible-runner transmit | podman run -i <image> ansible-runner worker | ansible-runner process
#      The container shares the host's network namespace (--network=host): the emulator listens
#      on the host's 127.0.0.1, and the instance's sshd is published on a host loopback address.
# Figures (image sizes, build and job times) go to ee.json, logs next to it, in $STAGE_RESULTS
# (the artifact stage) or tests/output/ee/.
#   tools/publish/ee.sh [--tarball PATH] [--rebuild]
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${STAGE_RESULTS:-$ROOT/tests/output/ee}
export STAGE_RESULTS=$OUT
source "$ROOT/tools/stages/common.sh"

IMAGE_NAME=localhost/sshkeys-ecs-ee
LABEL=io.github.sshkeys-ecs.ee.key
BASE_LABEL=io.github.sshkeys-ecs.ee-base-image.key
ADDRESS=${EE_INSTANCE_ADDRESS:-127.0.50.1}
INSTANCE=sshkeys-ee-instance-$$

log() { printf '[ee] %s\n' "$*"; }
die() { printf '[ee] error: %s\n' "$*" >&2; exit 1; }

tarball="" rebuild=false
while [ $# -gt 0 ]; do
  case "$1" in
    --tarball) tarball=$(realpath "$2"); shift 2 ;;
    --rebuild) rebuild=true; shift ;;
    -h | --help) sed -n '2,26s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
  esac
done
command -v podman >/dev/null 2>&1 || die "podman is missing (make bootstrap installs it)"

work=$(mktemp -d "${TMPDIR:-/tmp}/sshkeys-ee.XXXXXX")
cleanup() {
  "$ROOT/tools/instance-rm.sh" "$INSTANCE" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- 1. tools and base image ------------------------------------------------------------------
bash "$ROOT/tools/publish/venv.sh" || die "could not create .venv-publish"
publish=$ROOT/.venv-publish
started=$SECONDS
bash "$ROOT/tools/publish/ee-base-image.sh" 2>&1 || die "could not make the base image"
base_seconds=$((SECONDS - started))
base_image=$(bash "$ROOT/tools/publish/ee-base-image.sh" --print-image)

if [ -z "$tarball" ]; then
  src=$(copy_collection)
  "$publish/bin/ansible-galaxy" collection build "$src" --output-path "$work" >"$OUT/ee-collection-build.log" 2>&1 ||
    die "ansible-galaxy collection build failed: $(tail -n 3 "$OUT/ee-collection-build.log")"
  rm -rf "${src%/ansible_collections/sshkeys/ecs}"
  tarball=$(ls "$work"/sshkeys-ecs-*.tar.gz)
fi
[ -f "$tarball" ] || die "no tarball at $tarball"
version=$(tar -xzOf "$tarball" MANIFEST.json | "$publish/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["collection_info"]["version"])')
image=$IMAGE_NAME:$version

# --- 2. build, unless nothing that goes into the image changed --------------------------------
context=$work/build
mkdir -p "$context/dist"
cp "$ROOT/execution-environment.yml" "$ROOT/requirements.txt" "$ROOT/bindep.txt" "$context/"
cp "$tarball" "$context/dist/"
# The build's RUN steps reach PyPI through the host's network and trust the certificates the
# host trusts (where a proxy inspects TLS, its CA is only in the host's bundle).
ca_bundle=$("$publish/bin/python" -c 'import ssl; p = ssl.get_default_verify_paths(); print(p.cafile or p.openssl_cafile or "")')
extra="--network=host"
[ -n "$ca_bundle" ] && [ -f "$ca_bundle" ] && extra+=" --volume $ca_bundle:/etc/ssl/certs/ca-certificates.crt:ro"
build_args=(--build-arg "EE_BASE_IMAGE=$base_image" --build-arg PKGMGR=/usr/bin/apt-get
  --build-arg "PYPKG=python3.11 python3-pip")
key=$( {
  sha256sum "$context/execution-environment.yml" "$context/requirements.txt" "$context/bindep.txt" | cut -d' ' -f1
  tar -xzOf "$tarball" MANIFEST.json FILES.json | sha256sum
  podman image inspect --format "{{ index .Config.Labels \"$BASE_LABEL\" }}" "$base_image"
  "$publish/bin/ansible-builder" --version
  printf '%s\n' "${build_args[@]}"
} | sha256sum | cut -c1-16)
current=$(podman image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$image" 2>/dev/null || true)
build_seconds=null
if [ "$rebuild" = false ] && [ "$current" = "$key" ]; then
  log "$image is up to date (key $key): no build"
else
  old_id=$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
  log "building $image on $base_image (key $key)"
  builder=(ansible-builder build --file execution-environment.yml --context context --tag "$image"
    --container-runtime podman "${build_args[@]}" "--extra-build-cli-args=$extra --label $LABEL=$key" -v 2)
  log "\$ $(printf '%q ' "${builder[@]}")"
  started=$SECONDS
  (cd "$context" && PATH=$publish/bin:$PATH "${builder[@]}") >"$OUT/ee-build.log" 2>&1 ||
    die "ansible-builder build failed (log: $OUT/ee-build.log): $(tail -n 5 "$OUT/ee-build.log")"
  build_seconds=$((SECONDS - started))
  log "built in $build_seconds s (log: $OUT/ee-build.log)"
  if [ -n "$old_id" ] && [ "$old_id" != "$(podman image inspect --format '{{.Id}}' "$image")" ]; then
    podman rmi "$old_id" >/dev/null 2>&1 || true
  fi
  # The untagged stages of earlier builds on this base (galaxy, builder): nothing else uses them.
  podman image prune -f --filter "label=$BASE_LABEL" >/dev/null 2>&1 || true
fi
size_mb=$(( $(podman image inspect --format '{{.Size}}' "$image") / 1000000 ))
base_mb=$(( $(podman image inspect --format '{{.Size}}' "$base_image") / 1000000 ))
log "$image: $size_mb MB (base image $base_mb MB)"

# --- 3. the job -------------------------------------------------------------------------------
pdd=$work/job
mkdir -p "$pdd/project" "$pdd/inventory" "$pdd/env"
cp "$ROOT/tools/publish/ee-job/sshkeys_ee.yml" "$pdd/project/"
ssh-keygen -q -t ed25519 -N '' -C sshkeys-ee-machine-credential -f "$work/machine_key"
install -m 0600 "$work/machine_key" "$pdd/env/ssh_key"
cat >"$pdd/inventory/hosts.yml" <<EOF
all:
  hosts:
    localhost:
      ansible_connection: local
      ansible_python_interpreter: "{{ ansible_playbook_python }}"
  children:
    instances:
      hosts:
        ee-instance:
          ansible_host: $ADDRESS
          ansible_user: root
          ansible_python_interpreter: /usr/bin/python3
          ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
EOF
# An instance left by a run that was killed (its process is gone) would hold the address.
for stale in $(podman ps -a --format '{{.Names}}' | grep '^sshkeys-ee-instance-[0-9]*$' || true); do
  kill -0 "${stale##*-}" 2>/dev/null || "$ROOT/tools/instance-rm.sh" "$stale" >/dev/null 2>&1 || true
done
"$ROOT/tools/instance-run.sh" "$INSTANCE" "$ADDRESS" "$work/machine_key.pub" >"$OUT/ee-instance.log" 2>&1 ||
  die "could not start the instance container: $(tail -n 3 "$OUT/ee-instance.log")"

export EE_ROOT=$ROOT EE_PUBLISH=$publish EE_PDD=$pdd EE_IMAGE=$image EE_OUT=$OUT
# shellcheck disable=SC2317  # run by with-emulator.sh through bash -c
run_job() {
  # The cloud credential, as AWX would inject it: the emulator's key, region and endpoint as the
  # inputs of a credential of the shipped type, rendered into the job's environment.
  "$EE_ROOT/.venv/bin/python" "$EE_ROOT/tools/awx_credential.py" env "$EE_ROOT/extensions/awx/credential_type.json" \
    --input-env access_key_id=ALIBABA_CLOUD_ACCESS_KEY_ID --input-env access_key_secret=ALIBABA_CLOUD_ACCESS_KEY_SECRET \
    --input-env security_token=ALIBABA_CLOUD_SECURITY_TOKEN --input-env region_id=ALIBABA_CLOUD_REGION_ID \
    --input-env ecs_endpoint=ALIBABA_CLOUD_ECS_ENDPOINT >"$EE_PDD/env/envvars" || return 1
  chmod 0600 "$EE_PDD/env/envvars"
  printf '%s' "$ALIBABA_CLOUD_ACCESS_KEY_SECRET" >"$EE_OUT/.secret"
  local started=$SECONDS
  echo "[ee] \$ ansible-runner transmit job -p sshkeys_ee.yml -i job | podman run --rm -i --network=host" \
    "--pull=never $EE_IMAGE ansible-runner worker --private-data-dir=/runner | ansible-runner process job -i job" >&2
  "$EE_PUBLISH/bin/ansible-runner" transmit "$EE_PDD" -p sshkeys_ee.yml -i job |
    podman run --rm -i --network=host --pull=never "$EE_IMAGE" ansible-runner worker --private-data-dir=/runner |
    "$EE_PUBLISH/bin/ansible-runner" process "$EE_PDD" -i job |
    sed -u 's/\x1b\[[0-9;]*m//g'
  local codes=("${PIPESTATUS[@]::3}")
  echo "job seconds: $((SECONDS - started))" >&2
  echo "pipeline exit codes: ${codes[*]}" >&2
}
export -f run_job
log "running the job in $image (log: $OUT/ee-job.log)"
started=$SECONDS
"$ROOT/tools/with-emulator.sh" --fast -- bash -c run_job >"$OUT/ee-job.log" 2>"$OUT/ee-job.err"
job_seconds=$((SECONDS - started))
job_only=$(sed -n 's/^job seconds: //p' "$OUT/ee-job.err")
grep -F '[ee] $ ' "$OUT/ee-job.err"
status=$(cat "$pdd/artifacts/job/status" 2>/dev/null || echo missing)
rc=$(cat "$pdd/artifacts/job/rc" 2>/dev/null || echo missing)
grep -E '^(PLAY |PLAY RECAP|localhost|ee-instance|fatal|failed)' "$OUT/ee-job.log" | grep -v '^PLAY \[' || true

problems=""
[ "$status" = successful ] && [ "$rc" = 0 ] || problems+="the job ended $status (rc $rc); "
grep -qE '^localhost +: ok=[0-9]+ +changed=[0-9]+ +unreachable=0 +failed=0' "$OUT/ee-job.log" || problems+="no clean recap for localhost; "
grep -qE '^ee-instance +: ok=[0-9]+ +changed=[0-9]+ +unreachable=0 +failed=0' "$OUT/ee-job.log" || problems+="no clean recap for the instance; "
if [ -s "$OUT/.secret" ] && grep -qF -- "$(cat "$OUT/.secret")" "$OUT/ee-job.log" "$pdd/artifacts/job/stdout" 2>/dev/null; then
  problems+="the AccessKey secret appears in the job output; "
fi
rm -f "$OUT/.secret"

"$publish/bin/python" - "$OUT/ee.json" "$image" "$size_mb" "$base_image" "$base_mb" "$base_seconds" \
  "$build_seconds" "$key" "${job_only:-}" "$job_seconds" "$status" "$rc" <<'PY'
import json, sys
out, image, size, base, base_size, base_s, build_s, key, job_s, total_s, status, rc = sys.argv[1:]
number = lambda text: int(text) if text.isdigit() else None
json.dump({"image": image, "image_mb": number(size), "base_image": base, "base_image_mb": number(base_size),
           "base_image_seconds": number(base_s), "build_seconds": number(build_s), "key": key,
           "job_seconds": number(job_s), "job_with_emulator_and_instance_seconds": number(total_s),
           "status": status, "rc": rc}, open(out, "w"), indent=2)
PY
if [ "$build_seconds" = null ]; then built="skipped (up to date)"; else built="$build_seconds s"; fi
log "figures: image $size_mb MB, base image $base_mb MB, build $built, job ${job_only:-?} s ($OUT/ee.json)"
if [ -n "$problems" ]; then
  log "FAILED: $problems(logs: $OUT/ee-job.log, $OUT/ee-job.err)"
  exit 1
fi
log "passed: the job created, listed and deleted a key pair on the emulator and ran the authorized_keys role over SSH, inside $image"
