#!/bin/sh
# Runs inside the guest at boot (ctoph-guest-run.service): mounts the host's 9p share (tag ctop), runs its job.sh
# with the output in results/job.log, and powers the guest off. Without a share it does nothing (a debugging boot).
share=/mnt/ctop-share
mkdir -p "$share"
modprobe -q 9pnet_virtio 2>/dev/null; modprobe -q 9p 2>/dev/null
if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 ctop "$share" 2>/dev/null; then
    echo "ctoph-guest: no 9p share named ctop; staying up" >/dev/console
    exit 0
fi
if [ ! -f "$share/job.sh" ]; then
    echo "ctoph-guest: the share has no job.sh; staying up" >/dev/console
    exit 0
fi
mkdir -p "$share/results"
echo "ctoph-guest: job started $(date -u +%FT%TZ)" >/dev/console
sh "$share/job.sh" >"$share/results/job.log" 2>&1
rc=$?
echo "$rc" >"$share/results/job.rc"
sync
echo "ctoph-guest: job finished rc=$rc $(date -u +%FT%TZ)" >/dev/console
systemctl --no-block poweroff
