#!/bin/sh
# mmdebstrap customize hook for the execution environment's base image
# (tools/publish/ee-base-image.sh): runs on the host with the new root file system as $1.
set -eu
rootfs=$1
# No package lists (the build installs nothing from Debian), no logs, and no machine id: every
# container gets its own.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/log/*.log
: > "$rootfs/etc/machine-id"
