#!/usr/bin/env bash
# Builds, once, the Debian 12 guest image that guest/run.py boots: a debootstrap tree with the distribution kernel
# (6.1 and its matching headers), systemd, Docker, containerd, podman, crun, bcc, Prometheus, tmux and a wheelhouse
# of the project's Python dependencies (the guest has no network), as a raw ext4 disk plus the kernel and initrd
# extracted for qemu's -kernel boot. Usage (root): guest/build-image.sh [--force]
# Output in $CTOP_GUEST_CACHE (default /var/cache/ctop-tests/guest): rootfs.raw, vmlinuz, initrd.img, image.stamp.
set -euo pipefail
here=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
cache=${CTOP_GUEST_CACHE:-/var/cache/ctop-tests/guest}
mirror=${CTOP_GUEST_MIRROR:-http://deb.debian.org/debian}
size=${CTOP_GUEST_DISK_SIZE:-12G}
# The stamp names what the image holds: raise the revision when the image's contents change; a change to the
# Python dependencies (pyproject.toml) builds it again too.
revision=3
stamp=$( (echo "$revision"; cat "$here/pyproject.toml") | sha256sum | cut -c1-16)

if [ "$(id -u)" -ne 0 ]; then
    echo "guest/build-image.sh needs root (debootstrap, chroot, mkfs): run it with sudo." >&2
    exit 1
fi
if [ "${1:-}" != --force ] && [ -f "$cache/image.stamp" ] && [ "$(cat "$cache/image.stamp")" = "$stamp" ]; then
    echo "guest: image $cache/rootfs.raw is up to date" >&2
    exit 0
fi

# Everything the project's setup.sh installs, plus what the guest needs to be a real node (podman needs apparmor and
# libpam-systemd; docker run needs apparmor_parser on Debian's AppArmor kernel).
packages=(linux-image-amd64 linux-headers-amd64 systemd systemd-sysv dbus udev libpam-systemd apparmor
          kmod e2fsprogs iproute2 procps util-linux less
          docker.io containerd runc podman crun catatonit conmon golang-github-containers-common
          containernetworking-plugins lxc lxc-templates systemd-container uidmap
          python3 python3-venv python3-pip python3-bpfcc bpfcc-tools bpftool python3-zstandard
          busybox-static prometheus tmux curl make gcc debootstrap ca-certificates)

work=$(mktemp -d /var/tmp/ctoph-guest-build.XXXXXX)
tree=$work/tree
mounted=()
cleanup() {
    for ((i=${#mounted[@]}-1; i>=0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

mkdir -p "$cache"
t0=$(date +%s)
echo "guest: debootstrap bookworm into $tree" >&2
debootstrap --variant=minbase bookworm "$tree" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; exit 1; }

for m in proc sys dev dev/pts; do
    mount --bind "/$m" "$tree/$m"
    mounted+=("$tree/$m")
done
cp /etc/resolv.conf "$tree/etc/resolv.conf"
# Services must not start inside the chroot.
printf '#!/bin/sh\nexit 101\n' >"$tree/usr/sbin/policy-rc.d"
chmod 755 "$tree/usr/sbin/policy-rc.d"
echo "guest: installing ${#packages[@]} packages" >&2
chroot "$tree" env DEBIAN_FRONTEND=noninteractive apt-get update -q >"$work/apt.log" 2>&1
chroot "$tree" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}" \
    >>"$work/apt.log" 2>&1 || { tail -30 "$work/apt.log" >&2; exit 1; }
chroot "$tree" apt-get clean
rm -f "$tree/usr/sbin/policy-rc.d"

echo "guest: wheelhouse" >&2
# pip download on the host, with the host's Debian 12 interpreter (3.11, the guest's), into the image.
mkdir -p "$tree/opt/ctop-wheelhouse"
/usr/bin/python3 - "$here/pyproject.toml" >"$work/requirements.txt" <<'PY'
import sys, tomllib
d = tomllib.load(open(sys.argv[1], "rb"))
print("\n".join(d["build-system"]["requires"] + d["project"]["dependencies"]
                + d["project"]["optional-dependencies"]["test"] + ["pip", "setuptools", "wheel"]))
PY
/usr/bin/python3 -m venv "$work/dl"
"$work/dl/bin/pip" download -q --disable-pip-version-check -d "$tree/opt/ctop-wheelhouse" \
    -r "$work/requirements.txt" >"$work/pip.log" 2>&1 || { tail -20 "$work/pip.log" >&2; exit 1; }

echo "guest: configuring" >&2
for ((i=${#mounted[@]}-1; i>=0; i--)); do umount -l "${mounted[$i]}"; done
mounted=()
echo ctoph-guest >"$tree/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 ctoph-guest\n::1 localhost\n' >"$tree/etc/hosts"
printf '/dev/vda / ext4 defaults,errors=remount-ro 0 1\n' >"$tree/etc/fstab"
: >"$tree/etc/resolv.conf"
chroot "$tree" passwd -d root >/dev/null
# The guest's job: guest/job.sh, handed in on the 9p share, run once the system is up; then power off.
install -m 755 "$here/guest/guest-run.sh" "$tree/usr/local/sbin/ctoph-guest-run"
cat >"$tree/etc/systemd/system/ctoph-guest-run.service" <<'UNIT'
[Unit]
Description=ctop guest test job (9p share ctop)
After=multi-user.target docker.service
Wants=docker.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/ctoph-guest-run
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
UNIT
chroot "$tree" systemctl enable ctoph-guest-run.service >/dev/null 2>&1
# Nothing waits for a network that is not there.
chroot "$tree" systemctl mask systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer \
    man-db.timer e2scrub_all.timer fstrim.timer podman-auto-update.timer podman-auto-update.service \
    >/dev/null 2>&1 || true
chroot "$tree" systemctl disable prometheus.service prometheus-node-exporter.service >/dev/null 2>&1 || true

kver=$(ls "$tree/lib/modules" | sort -V | tail -1)
cp "$tree/boot/vmlinuz-$kver" "$work/vmlinuz"
cp "$tree/boot/initrd.img-$kver" "$work/initrd.img"
echo "guest: mkfs.ext4 -d ($size, sparse)" >&2
truncate -s "$size" "$work/rootfs.raw"
mkfs.ext4 -q -F -L ctoph-guest -d "$tree" "$work/rootfs.raw"
mv "$work/rootfs.raw" "$work/vmlinuz" "$work/initrd.img" "$cache/"
echo "$kver" >"$cache/kernel.version"
echo "$stamp" >"$cache/image.stamp"
echo "guest: image ready in $cache ($(( $(date +%s) - t0 )) s, kernel $kver)" >&2
