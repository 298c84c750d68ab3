#!/usr/bin/env bash
# Builds the podman image of the test instances, localhost/sshkeys-ecs-instance:latest, from
# Debian packages (no registry needed): Debian bookworm minbase with openssh-server, python3
# and sudo, the user ecs-user with passwordless sudo, no host keys (each container makes its
# own), and /usr/local/sbin/ecs-instance-boot (tools/instance/boot.sh) as its command.
#
# The root file system is cached as .cache/instance-image.tar.zst, keyed by a hash of this
# script, tools/debian-image.sh (how it is built) and tools/instance/*, and the image carries
# that key as a label: an image in place is reused, a cached archive is imported (seconds), and
# otherwise mmdebstrap builds it (about a minute).
# Usage: tools/instance-image.sh [--rebuild] [--print-key] [--print-image]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=tools/debian-image.sh
source "$ROOT/tools/debian-image.sh"

NAME=instance-image
IMAGE=localhost/sshkeys-ecs-instance:latest
LABEL=io.github.sshkeys-ecs.instance-image.key
SUITE=bookworm
PACKAGES=openssh-server,python3,sudo
CUSTOMIZE=$ROOT/tools/instance/customize.sh
# Expanded from ROOT, not from the caller's directory (pytest runs this from anywhere).
mapfile -t KEY_FILES < <(cd "$ROOT" && printf '%s\n' tools/instance-image.sh tools/instance/*)
IMPORT_CHANGES=('CMD ["/usr/local/sbin/ecs-instance-boot"]' 'EXPOSE 22')
MESSAGE="sshkeys.ecs test instance"
HELP_LINES=$(sed -n '2,11s/^# \{0,1\}//p' "$0")
debian_image_main "$@"
