#!/usr/bin/env bash
# Builds the base image of the local execution environment build, localhost/sshkeys-ecs-ee-base:
# bookworm, from Debian packages (no registry needed): Debian bookworm minbase with Python 3.11,
# pip (python3-pip: Debian's Python refuses `ensurepip`), the ssh client and the CA certificates.
# `make ee` builds execution-environment.yml on it in place of the default base image, which
# would come from a registry (docs/execution-environment.md).
#
# Built and cached like the instance image (tools/debian-image.sh): .cache/ee-base-image.tar.zst,
# keyed by a hash of this script, its customize hook (ee-base-customize.sh) and how it is built;
# mmdebstrap takes about 40 s when nothing is cached.
# Usage: tools/publish/ee-base-image.sh [--rebuild] [--print-key] [--print-image]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tools/debian-image.sh
source "$ROOT/tools/debian-image.sh"

NAME=ee-base-image
IMAGE=localhost/sshkeys-ecs-ee-base:bookworm
LABEL=io.github.sshkeys-ecs.ee-base-image.key
SUITE=bookworm
# Everything the execution environment needs from the system, so that its build installs no
# system package: bindep finds the ssh client (bindep.txt) already there.
PACKAGES=python3,python3-pip,openssh-client,ca-certificates
CUSTOMIZE=$ROOT/tools/publish/ee-base-customize.sh
KEY_FILES=(tools/publish/ee-base-image.sh tools/publish/ee-base-customize.sh)
IMPORT_CHANGES=('ENV LANG=C.UTF-8' 'CMD ["/bin/bash"]')
MESSAGE="sshkeys.ecs execution environment base"
HELP_LINES=$(sed -n '2,11s/^# \{0,1\}//p' "$0")
debian_image_main "$@"
