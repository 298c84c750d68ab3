#!/bin/sh
# mmdebstrap customize hook for the instance image: runs on the host with the new root file
# system as $1, after the packages are installed.
set -eu
rootfs=$1
here=$(cd "$(dirname "$0")" && pwd)

# The default user of ECS images, with passwordless sudo like on the real thing. Its password
# field is "*" (no password, but not locked): sshd refuses key logins to locked accounts when
# PAM is off, and that should not depend on a setting.
chroot "$rootfs" useradd --create-home --shell /bin/bash --comment "ECS default user" ecs-user
chroot "$rootfs" usermod --password '*' ecs-user
chroot "$rootfs" usermod --password '*' root
printf 'ecs-user ALL=(ALL) NOPASSWD:ALL\n' > "$rootfs/etc/sudoers.d/ecs-user"
chmod 0440 "$rootfs/etc/sudoers.d/ecs-user"

install -m 0755 "$here/boot.sh" "$rootfs/usr/local/sbin/ecs-instance-boot"

# Host keys and the machine id must differ between instances: none are shipped, the boot
# script makes the keys on each container's first start.
rm -f "$rootfs"/etc/ssh/ssh_host_*
: > "$rootfs/etc/machine-id"
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/log/*.log
