#!/usr/bin/env bash
# Starts one SSH host from the instance image, without the emulator: for Molecule scenarios and
# ad-hoc tests that only need real sshd hosts.
#   tools/instance-run.sh NAME ADDRESS PUBKEYFILE [PORT]
# NAME      container name (letters, digits, . _ -)
# ADDRESS   a loopback address of its own, e.g. 127.0.40.7 (see the ranges in docs/development.md)
# PUBKEYFILE  its first line goes to root's and ecs-user's authorized_keys at every boot
# PORT      host port, 22 by default
# Builds or imports the image first when needed, and returns once sshd answers on ADDRESS:PORT.
# The boot configuration lives in .cache/instances/NAME; edit it and `podman restart NAME` to
# boot with other settings. Remove the host with tools/instance-rm.sh NAME.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$ROOT/tools/containers.conf}
IMAGE=localhost/sshkeys-ecs-instance:latest
LABEL=io.github.sshkeys-ecs.instance-run

die() { printf 'instance-run: error: %s\n' "$*" >&2; exit 1; }

if [ $# -lt 3 ] || [ $# -gt 4 ]; then die "usage: $0 NAME ADDRESS PUBKEYFILE [PORT]"; fi
name=$1 address=$2 keyfile=$3 port=${4:-22}
[[ $name =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$ ]] || die "invalid container name '$name'"
# Only loopback: the hosts must never be reachable from outside this machine.
[[ $address =~ ^127\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] || die "'$address' is not a 127.x.y.z address"
for octet in "${BASH_REMATCH[@]:1}"; do [ "$octet" -le 255 ] || die "'$address' is not an IPv4 address"; done
if [[ ! $port =~ ^[0-9]{1,5}$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then die "invalid port '$port'"; fi
[ -r "$keyfile" ] || die "cannot read public key file '$keyfile'"
key=$(head -n 1 "$keyfile")
[[ $key =~ ^(ssh-|ecdsa-|sk-)[A-Za-z0-9@.-]+\ [A-Za-z0-9+/=]+ ]] || die "'$keyfile' does not start with an OpenSSH public key line"
if podman container exists "$name"; then die "a container named '$name' exists already"; fi

"$ROOT/tools/instance-image.sh"

config=$ROOT/.cache/instances/$name
rm -rf "$config"
mkdir -p "$config"
chmod 0700 "$config"
printf '%s\n' "$key" > "$config/public_key"
echo no > "$config/password_login"

podman run --detach --name "$name" --hostname "$name" --label "$LABEL=true" \
  --publish "$address:$port:22" --volume "$config:/etc/ecs-instance:ro" "$IMAGE" >/dev/null

# sshd is up when it sends its banner; until then the published port refuses or closes.
for _ in $(seq 1 300); do
  # shellcheck disable=SC2016 # $0 and $1 belong to the inner bash
  if banner=$(timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1" && head -c 4 <&3' "$address" "$port" 2>/dev/null) &&
    [ "$banner" = "SSH-" ]; then
    echo "$name: sshd on $address:$port"
    exit 0
  fi
  if [ "$(podman container inspect --format '{{.State.Running}}' "$name")" != true ]; then
    podman logs "$name" >&2 || true
    die "container '$name' stopped during boot (its log is above)"
  fi
  sleep 0.1
done
podman logs "$name" >&2 || true
die "sshd in '$name' did not answer on $address:$port within 30 s"
