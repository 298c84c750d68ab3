#!/bin/sh
# Runs at every start of an instance container (the image's command), as ECS's first-boot and
# every-boot agents do on a real instance, then becomes sshd.
#
# Boot configuration comes from a read-only directory mounted by whoever starts the container
# (the emulator, or tools/instance-run.sh); every file in it is optional:
#   public_key      the bound key pair's public key line (absent or empty: no key pair bound)
#   password_login  "yes" or "no": whether sshd accepts passwords
#   password        the new root password, set when the file is present and not empty
# The key line injected at an earlier boot is remembered in the container's own filesystem, so
# that a new key pair replaces it while every line added by users or Ansible stays untouched.
set -eu

CONFIG_DIR=${ECS_INSTANCE_CONFIG:-/etc/ecs-instance}
STATE_DIR=/var/lib/ecs-instance
INJECTED=$STATE_DIR/injected-key
SSHD_DROPIN=/etc/ssh/sshd_config.d/50-ecs-instance.conf

log() { echo "ecs-instance-boot: $*" >&2; }

# First line of a config file, without a carriage return; empty when the file is missing.
read_config() {
  if [ -f "$CONFIG_DIR/$1" ]; then
    head -n 1 "$CONFIG_DIR/$1" | tr -d '\r'
  fi
}

# Rewrites USER's authorized_keys: drops the line injected earlier (and the new one, so that it
# is never doubled), keeps all other lines in their order, appends the new line. The new file is
# written next to the old one and renamed over it, so a reader never sees half a file.
update_authorized_keys() {
  user=$1 home=$2 old=$3 new=$4
  group=$(id -gn "$user")
  mkdir -p "$home/.ssh"
  chown "$user:$group" "$home/.ssh"
  chmod 0700 "$home/.ssh"
  file=$home/.ssh/authorized_keys
  tmp=$(mktemp "$home/.ssh/.authorized_keys.XXXXXX")
  if [ -f "$file" ]; then
    # ENVIRON, not -v: awk would interpret backslashes in a -v value.
    OLD_LINE=$old NEW_LINE=$new awk \
      '($0 != ENVIRON["OLD_LINE"] || ENVIRON["OLD_LINE"] == "") && ($0 != ENVIRON["NEW_LINE"] || ENVIRON["NEW_LINE"] == "")' \
      "$file" > "$tmp"
  fi
  if [ -n "$new" ]; then
    printf '%s\n' "$new" >> "$tmp"
  fi
  chown "$user:$group" "$tmp"
  chmod 0600 "$tmp"
  mv -f "$tmp" "$file"
}

mkdir -p /run/sshd "$STATE_DIR"
chmod 0755 /run/sshd
chmod 0700 "$STATE_DIR"

# Each container gets its own host keys, made on its first boot (the image carries none).
ssh-keygen -A >/dev/null

new_key=$(read_config public_key)
old_key=""
if [ -f "$INJECTED" ]; then
  old_key=$(head -n 1 "$INJECTED")
fi
update_authorized_keys root /root "$old_key" "$new_key"
if id ecs-user >/dev/null 2>&1; then
  update_authorized_keys ecs-user /home/ecs-user "$old_key" "$new_key"
fi
printf '%s\n' "$new_key" > "$INJECTED.tmp"
mv -f "$INJECTED.tmp" "$INJECTED"

password_login=$(read_config password_login)
case "$password_login" in
  yes) root_login=yes ;;
  no | "") password_login=no; root_login=prohibit-password ;;
  *) log "password_login must be yes or no, not '$password_login'"; exit 2 ;;
esac
# sshd takes the first value it reads for each option, and the Include of sshd_config.d comes
# first in Debian's sshd_config, so this file decides.
printf 'PasswordAuthentication %s\nPermitRootLogin %s\n' "$password_login" "$root_login" > "$SSHD_DROPIN.tmp"
mv -f "$SSHD_DROPIN.tmp" "$SSHD_DROPIN"

if [ -s "$CONFIG_DIR/password" ]; then
  printf 'root:%s\n' "$(read_config password)" | chpasswd
fi

log "key pair: $([ -n "$new_key" ] && echo bound || echo none), password login: $password_login"
/usr/sbin/sshd -t
exec /usr/sbin/sshd -D -e
