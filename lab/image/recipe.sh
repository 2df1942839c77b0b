#!/bin/bash
# Builds the root filesystem of the lab's "bare-metal" host image:
# Debian bookworm with systemd as PID 1, Python for Ansible and SSH.
# Usage: recipe.sh ROOTFS MIRROR
# The lab hashes this file to name the image, so any edit here rebuilds it.
set -euo pipefail
rootfs=$1
mirror=$2

debootstrap --variant=minbase \
  --include=systemd,systemd-sysv,dbus,python3,python3-apt,sudo,iproute2,iputils-ping,procps,ca-certificates,gnupg,kmod,iptables,openssh-server,curl,less \
  bookworm "$rootfs" "$mirror"

cat > "$rootfs/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
EOF

# A container must not share one machine-id; systemd writes a fresh one at boot.
: > "$rootfs/etc/machine-id"
rm -f "$rootfs/var/lib/dbus/machine-id"

# Nothing to log in on, and no timers that race the tests for the apt lock.
rm -f "$rootfs"/etc/systemd/system/getty.target.wants/* \
      "$rootfs"/etc/systemd/system/timers.target.wants/* \
      "$rootfs"/lib/systemd/system/multi-user.target.wants/getty.target
for unit in apt-daily.timer apt-daily-upgrade.timer systemd-tmpfiles-clean.timer \
            systemd-firstboot.service systemd-udevd.service systemd-modules-load.service \
            sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done

# kubelet and containerd need shared mount propagation, which Docker does not give PID 1.
cat > "$rootfs/etc/systemd/system/make-rshared.service" <<'EOF'
[Unit]
Description=Make / a shared mount (needed by kubelet and containerd)
DefaultDependencies=no
Before=local-fs.target

[Service]
Type=oneshot
ExecStart=/bin/mount --make-rshared /

[Install]
WantedBy=local-fs.target
EOF
ln -sf /etc/systemd/system/make-rshared.service "$rootfs/etc/systemd/system/local-fs.target.wants/make-rshared.service" 2>/dev/null \
  || { mkdir -p "$rootfs/etc/systemd/system/local-fs.target.wants"; ln -sf /etc/systemd/system/make-rshared.service "$rootfs/etc/systemd/system/local-fs.target.wants/make-rshared.service"; }

# SSH: key-only root login; the lab installs its public key at start.
mkdir -p "$rootfs/root/.ssh"
chmod 700 "$rootfs/root/.ssh"
sed -i 's/^#\?PermitRootLogin.*/PermitRootLogin prohibit-password/' "$rootfs/etc/ssh/sshd_config"
rm -f "$rootfs"/etc/ssh/ssh_host_*
cat > "$rootfs/etc/systemd/system/ssh-hostkeys.service" <<'EOF'
[Unit]
Description=Generate SSH host keys on first boot
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
EOF
ln -sf /etc/systemd/system/ssh-hostkeys.service "$rootfs/etc/systemd/system/multi-user.target.wants/ssh-hostkeys.service"

# Small image; and an old mtime so `apt: cache_valid_time` sees the empty cache as stale.
chroot "$rootfs" apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
touch -d 2000-01-01 "$rootfs/var/lib/apt/lists"
