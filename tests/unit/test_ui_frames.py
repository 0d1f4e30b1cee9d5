"""Frames built in code for the UI tests: a small Kubernetes-shaped node with containers, pods and QoS classes."""

from __future__ import annotations

import zlib
from typing import Any

from ctop.model.ebpf_rates import EbpfRates
from ctop.model.frame import CgroupRow, Frame, Identity
from ctop.model.notices import Notice
from ctop.model.sample import UNLIMITED, CgroupSample, HostSample, Snapshot

GIB = 1024**3
MIB = 1024**2


def make_row(path: str, kind: str = "cgroup", name: str = "", pod: str = "", namespace: str = "", qos: str = "",
             memory: int | None = None, limit: int | None = UNLIMITED, oom_kills: int | None = 0,
             ebpf: Any = None, ebpf_rates: EbpfRates | None = None, **rates: Any) -> CgroupRow:
    sample = CgroupSample(path=path, inode=zlib.crc32(path.encode()), memory_usage_bytes=memory,
                          memory_inactive_file_bytes=0 if memory is not None else None, memory_limit_bytes=limit,
                          memory_oom_kills=oom_kills, pids_current=3)
    ident = Identity(kind=kind, name=name, pod=pod, namespace=namespace, qos_class=qos,
                     runtime="docker" if kind == "container" else "")
    if "memory_limit_percent" not in rates and memory is not None and limit not in (None, UNLIMITED):
        rates["memory_limit_percent"] = memory / limit * 100
    return CgroupRow(sample=sample, identity=ident, ebpf=ebpf, ebpf_rates=ebpf_rates, **rates)


def make_frame(rows: list[CgroupRow], notices: tuple[Notice, ...] = (), ebpf_state: str = "off") -> Frame:
    host = HostSample(monotonic_s=100.0, wall_time_s=1.7e9, cpu_time_ns=10**12, online_cpus=2,
                      memory_total_bytes=24 * GIB)
    snapshot = Snapshot(host=host, cgroups={r.sample.path: r.sample for r in rows}, mode="hybrid")
    return Frame(snapshot=snapshot, rows={r.sample.path: r for r in rows}, interval_s=1.0, notices=notices,
                 ebpf_state=ebpf_state)


POD_A = "/kubepods/burstable/poda1"
POD_B = "/kubepods/besteffort/podb2"


def node_rows() -> list[CgroupRow]:
    """Root, two QoS classes, two pods with three containers, a plain Docker container and a systemd service."""
    return [
        make_row("/", "root", memory=4 * GIB, cpu_percent=80.0),
        make_row("/kubepods", "cgroup", memory=2 * GIB, cpu_percent=60.0),
        make_row("/kubepods/burstable", "qos", qos="burstable", memory=GIB, cpu_percent=50.0),
        make_row("/kubepods/besteffort", "qos", qos="besteffort", memory=GIB, cpu_percent=10.0),
        make_row(POD_A, "pod", name="web-7d9", pod="web-7d9", namespace="shop", qos="burstable", memory=900 * MIB,
                 cpu_percent=50.0),
        make_row(POD_A + "/c1", "container", name="nginx", pod="web-7d9", namespace="shop", qos="burstable",
                 memory=500 * MIB, limit=512 * MIB, cpu_percent=45.0, cpu_limit_cores=0.5, cpu_limit_percent=90.0,
                 throttled_percent=30.0),
        make_row(POD_A + "/c2", "container", name="sidecar", pod="web-7d9", namespace="shop", qos="burstable",
                 memory=100 * MIB, cpu_percent=5.0, oom_kills=2),
        make_row(POD_B, "pod", name="batch-x", pod="batch-x", namespace="jobs", qos="besteffort", memory=GIB,
                 cpu_percent=10.0),
        make_row(POD_B + "/c3", "container", name="cruncher", pod="batch-x", namespace="jobs", qos="besteffort",
                 memory=GIB, cpu_percent=None),
        make_row("/docker/abc", "container", name="redis", memory=64 * MIB, cpu_percent=20.0),
        make_row("/system.slice", "slice", name="system.slice", memory=300 * MIB, cpu_percent=2.0),
        make_row("/system.slice/cron.service", "service", name="cron.service", memory=3 * MIB, cpu_percent=0.5),
    ]
