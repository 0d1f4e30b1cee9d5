#!/bin/sh
# Runs in a guest (guest/run.py MODE --script guest/explore.sh): sets ctop up offline, starts real workloads (Docker
# with limits, a Docker container in a kubelet-shaped pod, hand-made kubelet pods of each QoS class under
# kubepods.slice, a podman container and a podman pod), then records what ctop sees into $CTOP_GUEST_RESULTS:
# doctor.txt, batch.json/batch.txt, facts.txt (the runtimes' own view and the limit files), tree-MODE.tar
# (guest/record.py).
set -u
R=$CTOP_GUEST_RESULTS
log() { echo "explore: $(date -u +%T) $*"; }
run() { log "$*"; "$@" || log "exit $? from: $*"; }
if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then mode=v2; else mode=v1; fi
log "mode $mode, kernel $(uname -r)"

run ./setup.sh guest-test --version  # sets up the virtualenv with the test tools once
mkdir -p /tmp/ctoph-guest-img/bin
cp /bin/busybox /tmp/ctoph-guest-img/bin/
for a in sh sleep yes cat; do ln -sf busybox /tmp/ctoph-guest-img/bin/$a; done
log "docker import"; tar -C /tmp/ctoph-guest-img -c . | docker import - ctoph-guest-busybox:1
log "podman import"; tar -C /tmp/ctoph-guest-img -c . | podman import - localhost/ctoph-guest-busybox:1

# Pod uids (kubelet's form) and container ids; systemd slice names use _ for -.
uid_g=0a1b2c3d-1111-4aaa-8bbb-0c1d2e3f4a01
uid_b=0a1b2c3d-2222-4aaa-8bbb-0c1d2e3f4a02
uid_be=0a1b2c3d-3333-4aaa-8bbb-0c1d2e3f4a03
uid_d=0a1b2c3d-4444-4aaa-8bbb-0c1d2e3f4a04
id_g=1111111111111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
id_b=2222222222222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
id_be=3333333333333333cccccccccccccccccccccccccccccccccccccccccccccccc
slice() { echo "$1" | tr - _; }

# Docker: a plain container with limits, and one in a kubelet-shaped burstable pod (dockershim's labels).
run docker run -d --name ctoph-guest-web --memory=128m --cpus=0.2 --pids-limit=100 ctoph-guest-busybox:1 sleep 1000000
if [ $mode = v2 ]; then parent=kubepods-burstable-pod$(slice $uid_d).slice; else parent=/kubepods/burstable/pod$uid_d; fi
run docker run -d --name "k8s_api_ctoph-guest-shop_default_${uid_d}_0" --cgroup-parent="$parent" \
    --memory=96m --cpu-shares=256 --label io.kubernetes.pod.name=ctoph-guest-shop \
    --label io.kubernetes.pod.namespace=default --label io.kubernetes.container.name=api \
    --label io.kubernetes.pod.uid=$uid_d ctoph-guest-busybox:1 sleep 1000000

# Kubelet-shaped pods made by hand with systemd (what kubelet's systemd driver asks systemd for), one per QoS class,
# with the kubelet's log directories that name them.
pod() {  # pod SLICE ID UID NAME [systemd properties]
    s=$1 id=$2 uid=$3 name=$4; shift 4
    log "systemd-run --scope --unit=cri-containerd-$id --slice=$s $*"
    systemd-run --quiet --scope --unit="cri-containerd-$id" --slice="$s" "$@" sleep 1000000 </dev/null >/dev/null 2>&1 &
    mkdir -p "/var/log/pods/default_${name}_$uid/app" /var/log/containers
    : >"/var/log/pods/default_${name}_$uid/app/0.log"
    : >"/var/log/containers/${name}_default_app-$id.log"
}
pod kubepods-pod$(slice $uid_g).slice $id_g $uid_g ctoph-guest-g -p MemoryMax=64M -p CPUQuota=20%
pod kubepods-burstable-pod$(slice $uid_b).slice $id_b $uid_b ctoph-guest-b -p MemoryMax=96M
pod kubepods-besteffort-pod$(slice $uid_be).slice $id_be $uid_be ctoph-guest-be
sleep 5

# podman: a container with limits, and a pod with one container.
run podman run -d --name ctoph-guest-pweb --network=none --memory=64m --cpus=0.3 localhost/ctoph-guest-busybox:1 \
    sleep 1000000
run podman pod create --name ctoph-guest-ppod --network=none
run podman run -d --pod ctoph-guest-ppod --name ctoph-guest-pdb --memory=48m localhost/ctoph-guest-busybox:1 \
    sleep 1000000

log "facts"
{
    echo "## mount"; grep cgroup /proc/mounts
    echo "## docker info"; docker info 2>/dev/null | grep -iE 'cgroup|runtime|storage driver|server version'
    echo "## docker ps"; docker ps --no-trunc --format '{{.ID}} {{.Names}}'
    echo "## podman ps"; podman ps -a --pod --no-trunc --format '{{.ID}} {{.Names}} {{.PodName}}'
    echo "## podman pod ps"; podman pod ps --no-trunc
    echo "## podman info"; podman info 2>/dev/null | grep -iE 'cgroup|ociRuntime|name: (crun|runc)'
    echo "## libpod/docker/kubepods cgroups and their limit files"
    find /sys/fs/cgroup -type d \( -name '*libpod*' -o -name 'docker*' -o -name 'kubepods*' -o -name 'cri-containerd*' \) \
        | sort | while read -r d; do
        printf '%s' "$d"
        for f in memory.max cpu.max memory.limit_in_bytes cpu.cfs_quota_us cgroup.procs; do
            [ -r "$d/$f" ] && printf ' %s=%s' "$f" "$(tr '\n' ',' <"$d/$f")"
        done
        echo
    done
} >"$R/facts.txt" 2>&1

run sh -c "ctop doctor >$R/doctor.txt 2>&1"
run sh -c "ctop -b --json -n 2 -d 3 --ebpf-wait 60 >$R/batch.json 2>$R/batch.err"
run sh -c "ctop -b -n 1 -d 2 >$R/batch.txt 2>&1"
# Recorded on the guest's disk, brought back as one tar (9p is slow per file).
run .venv/bin/python guest/record.py "/tmp/tree-$mode" /system.slice /kubepods.slice /machine.slice /kubepods /docker
run tar -C /tmp -cf "$R/tree-$mode.tar" "tree-$mode"
log "explore done"
