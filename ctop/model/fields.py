"""The one table of fields every output uses: JSON/CSV keys, table headers, units, meaning and formatting.

JSON keys are a stable interface for scripts: new fields may be added, none is renamed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .frame import CgroupRow
from .sample import UNLIMITED, Pressure

Getter = Callable[[CgroupRow], Any]


@dataclass(frozen=True)
class Field:
    """One column: ``key`` is the JSON/CSV key, ``header`` the table heading, ``unit`` how values are shown."""

    key: str
    header: str
    unit: str  # "" (text), percent, bytes, bytes_per_s, count, per_s, cores, seconds, duration, ratio
    description: str
    get: Getter
    width: int = 8


def _limit(value: int | None) -> int | None:
    return None if value is None or value == UNLIMITED else value


def _psi(attr: str, resource: str) -> Getter:
    def get(row: CgroupRow) -> float | None:
        pressure: Pressure | None = getattr(row.sample, f"pressure_{resource}")
        return None if pressure is None else getattr(pressure, attr)
    return get


def _ebpf(key: str) -> Getter:
    def get(row: CgroupRow) -> float | None:
        return None if row.ebpf_rates is None else getattr(row.ebpf_rates, key)
    return get


def display_name(row: CgroupRow) -> str:
    """What a person calls this cgroup: the container or unit name when known, else the path."""
    return row.identity.name or row.sample.path


def pids(row: CgroupRow) -> int | None:
    """Tasks in the cgroup and below: pids.current where the pids controller has it, else counted threads."""
    s = row.sample
    return s.pids_current if s.pids_current is not None else row.tasks_recursive


def io_total_per_s(row: CgroupRow) -> float | None:
    r, w = row.io_read_bytes_per_s, row.io_write_bytes_per_s
    return None if r is None and w is None else (r or 0.0) + (w or 0.0)


FIELDS: tuple[Field, ...] = (
    Field("id", "CGROUP", "", "cgroup path relative to the hierarchy root; / is the root", lambda r: r.sample.path, 40),
    Field("name", "NAME", "", "container name (Docker), container id (containerd) or unit name; empty when unknown",
          lambda r: r.identity.name, 24),
    Field("kind", "KIND", "", "container, pod, qos, slice, service, scope, cgroup or root",
          lambda r: r.identity.kind, 9),
    Field("runtime", "RUNTIME", "", "docker, containerd, cri-o, podman, systemd, kubernetes; empty when unknown",
          lambda r: r.identity.runtime, 10),
    Field("container_id", "ID", "", "full container id; empty when not a container",
          lambda r: r.identity.container_id, 12),
    Field("image", "IMAGE", "", "container image", lambda r: r.identity.image, 20),
    Field("pod", "POD", "", "Kubernetes pod name", lambda r: r.identity.pod, 20),
    Field("namespace", "NAMESPACE", "", "Kubernetes namespace", lambda r: r.identity.namespace, 12),
    Field("container", "CONTAINER", "", "Kubernetes container name (POD for a pause container)",
          lambda r: r.identity.container, 12),
    Field("qos_class", "QOS", "", "Kubernetes QoS class: guaranteed, burstable or besteffort",
          lambda r: r.identity.qos_class, 10),
    Field("depth", "DEPTH", "count", "0 for the root cgroup, 1 for its children, ...", lambda r: r.sample.depth, 5),
    Field("cpu_percent", "CPU%", "percent", "CPU used, 100 = one full CPU (docker stats formula)",
          lambda r: r.cpu_percent, 7),
    Field("cpu_limit_cores", "CPULIM", "cores", "CPU limit in CPUs (quota / period); null when unlimited",
          lambda r: r.cpu_limit_cores, 6),
    Field("cpu_limit_percent", "%CPULIM", "percent", "CPU used as a share of the CPU limit",
          lambda r: r.cpu_limit_percent, 7),
    Field("throttled_percent", "THR%", "percent", "share of CFS periods throttled; null without a CPU limit",
          lambda r: r.throttled_percent, 6),
    Field("cpu_usage_seconds", "CPUTIME", "seconds", "CPU time used since the cgroup was created",
          lambda r: None if r.sample.cpu_usage_ns is None else r.sample.cpu_usage_ns / 1e9, 9),
    Field("cpu_throttled_seconds", "THRTIME", "seconds", "time throttled since the cgroup was created",
          lambda r: None if r.sample.cpu_throttled_ns is None else r.sample.cpu_throttled_ns / 1e9, 8),
    Field("cpu_shares", "SHARES", "count", "CPU weight as v1 cpu.shares (converted on v2)",
          lambda r: r.sample.cpu_shares, 6),
    Field("cpu_weight", "WEIGHT", "count", "CPU weight as v2 cpu.weight (converted on v1)",
          lambda r: r.sample.cpu_weight, 6),
    Field("cpuset_cpus", "CPUSET", "", "CPUs the cgroup may run on", lambda r: r.sample.cpuset_cpus, 8),
    Field("memory_usage_bytes", "MEMUSE", "bytes", "memory usage including page cache",
          lambda r: r.sample.memory_usage_bytes, 8),
    Field("memory_working_set_bytes", "MEM", "bytes",
          "working set: usage minus inactive file cache (docker stats, kubelet)",
          lambda r: r.sample.working_set_bytes, 8),
    Field("memory_limit_bytes", "MEMLIM", "bytes", "memory limit; null when unlimited",
          lambda r: _limit(r.sample.memory_limit_bytes), 8),
    Field("memory_limit_percent", "%MEMLIM", "percent", "working set as a share of the memory limit",
          lambda r: r.memory_limit_percent, 7),
    Field("memory_rss_bytes", "RSS", "bytes", "anonymous memory (v1 total_rss, v2 anon)",
          lambda r: r.sample.memory_rss_bytes, 8),
    Field("memory_cache_bytes", "CACHE", "bytes", "page cache (v1 total_cache, v2 file)",
          lambda r: r.sample.memory_cache_bytes, 8),
    Field("memory_swap_bytes", "SWAP", "bytes", "swap used", lambda r: r.sample.memory_swap_bytes, 8),
    Field("memory_failcnt", "MEMFAIL", "count", "times usage hit the limit (v1 failcnt, v2 memory.events max)",
          lambda r: r.sample.memory_failcnt, 7),
    Field("memory_oom_kills", "OOMK", "count", "processes OOM-killed in the cgroup (kernel counter)",
          lambda r: r.sample.memory_oom_kills, 5),
    Field("memory_major_faults_per_s", "MAJFLT/s", "per_s",
          "major page faults (pages read back from disk): thrashing near the memory limit",
          lambda r: r.memory_major_faults_per_s, 8),
    Field("io_read_bytes_per_s", "IOR/s", "bytes_per_s", "block IO read", lambda r: r.io_read_bytes_per_s, 8),
    Field("io_write_bytes_per_s", "IOW/s", "bytes_per_s", "block IO written", lambda r: r.io_write_bytes_per_s, 8),
    Field("io_read_ops_per_s", "RIOPS", "per_s", "block IO read operations", lambda r: r.io_read_ops_per_s, 6),
    Field("io_write_ops_per_s", "WIOPS", "per_s", "block IO write operations", lambda r: r.io_write_ops_per_s, 6),
    Field("net_rx_bytes_per_s", "NETRX/s", "bytes_per_s", "network received, on the cgroup owning the netns",
          lambda r: r.net_rx_bytes_per_s, 8),
    Field("net_tx_bytes_per_s", "NETTX/s", "bytes_per_s", "network sent, on the cgroup owning the netns",
          lambda r: r.net_tx_bytes_per_s, 8),
    Field("runq_latency_p50_seconds", "RQP50", "duration", "eBPF: median wait for a CPU after wake-up or preemption",
          _ebpf("runq_latency_p50_seconds"), 7),
    Field("runq_latency_p99_seconds", "RQP99", "duration", "eBPF: 99th percentile wait for a CPU",
          _ebpf("runq_latency_p99_seconds"), 7),
    Field("runq_wait_seconds_per_s", "RQWAIT", "ratio", "eBPF: seconds its tasks waited for a CPU per second",
          _ebpf("runq_wait_seconds_per_s"), 6),
    Field("ctx_switches_voluntary_per_s", "VCSW/s", "per_s", "eBPF: voluntary context switches (blocked, slept)",
          _ebpf("ctx_switches_voluntary_per_s"), 7),
    Field("ctx_switches_involuntary_per_s", "ICSW/s", "per_s", "eBPF: involuntary context switches (preempted)",
          _ebpf("ctx_switches_involuntary_per_s"), 7),
    Field("preempted_by_others_per_s", "PREEMPT/s", "per_s", "eBPF: preemptions in favour of another container",
          _ebpf("preempted_by_others_per_s"), 9),
    Field("preempted_by_host_per_s", "HOSTPRE/s", "per_s", "eBPF: preemptions in favour of a host task",
          _ebpf("preempted_by_host_per_s"), 9),
    Field("forks_per_s", "FORK/s", "per_s", "eBPF: tasks created", _ebpf("forks_per_s"), 6),
    Field("execs_per_s", "EXEC/s", "per_s", "eBPF: programs executed", _ebpf("execs_per_s"), 6),
    Field("exits_per_s", "EXIT/s", "per_s", "eBPF: tasks exited", _ebpf("exits_per_s"), 6),
    Field("oom_kills", "OOM", "count", "eBPF: OOM-killer victims since ctop started; null when eBPF is off",
          _ebpf("oom_kills"), 4),
    Field("pids", "PIDS", "count", "tasks in the cgroup and below (pids.current)", pids, 6),
    Field("pids_max", "PIDMAX", "count", "pids limit; null when unlimited", lambda r: _limit(r.sample.pids_max), 6),
    Field("processes", "PROCS", "count", "processes directly in this cgroup", lambda r: r.sample.processes, 6),
    Field("threads", "THREADS", "count", "threads directly in this cgroup", lambda r: r.sample.threads, 7),
    Field("psi_cpu_some_avg10", "PSICPU", "percent", "share of time some task waited for CPU (10 s avg)",
          _psi("some_avg10", "cpu"), 6),
    Field("psi_memory_some_avg10", "PSIMEM", "percent", "share of time some task stalled on memory (10 s avg)",
          _psi("some_avg10", "memory"), 6),
    Field("psi_memory_full_avg10", "PSIMEMF", "percent", "share of time all tasks stalled on memory (10 s avg)",
          _psi("full_avg10", "memory"), 7),
    Field("psi_io_some_avg10", "PSIIO", "percent", "share of time some task stalled on IO (10 s avg)",
          _psi("some_avg10", "io"), 6),
    Field("psi_io_full_avg10", "PSIIOF", "percent", "share of time all tasks stalled on IO (10 s avg)",
          _psi("full_avg10", "io"), 6),
)

FIELDS_BY_KEY: dict[str, Field] = {f.key: f for f in FIELDS}

# Sort orders: name -> (key function, descending). None values always sort last.
ORDERS: dict[str, tuple[Getter, bool]] = {
    "cpu": (lambda r: r.cpu_percent, True),
    "memory": (lambda r: r.sample.working_set_bytes, True),
    "io": (io_total_per_s, True),
    "pids": (pids, True),
    "throttle": (lambda r: r.throttled_percent, True),
    "limit": (lambda r: r.cpu_limit_percent, True),
    "net": (lambda r: (r.net_rx_bytes_per_s or 0) + (r.net_tx_bytes_per_s or 0) if r.net is not None else None, True),
    "name": (display_name, False),
    "path": (lambda r: r.sample.path, False),
}


def sort_rows(rows: list[CgroupRow], order: str, reverse: bool = False) -> list[CgroupRow]:
    """Rows sorted by an order name; rows without a value go last whatever the direction."""
    key, descending = ORDERS[order]
    descending = descending != reverse
    known = [r for r in rows if key(r) is not None]
    unknown = [r for r in rows if key(r) is None]
    known.sort(key=lambda r: (key(r), r.sample.path), reverse=descending)
    unknown.sort(key=lambda r: r.sample.path)
    return known + unknown


def _human_bytes(value: float) -> str:
    for unit in ("B", "K", "M", "G", "T"):
        if abs(value) < 1024 or unit == "T":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}T"


def format_value(field: Field, value: Any) -> str:
    """A value as a person reads it in a table; "-" for no data."""
    if value is None or value == "":
        return "-"
    unit = field.unit
    if unit == "percent":
        return f"{value:.1f}"
    if unit == "bytes":
        return _human_bytes(value)
    if unit == "bytes_per_s":
        return _human_bytes(value)
    if unit == "cores":
        return f"{value:.2f}"
    if unit == "seconds":
        return f"{value:.1f}"
    if unit == "per_s":
        return f"{value:.0f}"
    if unit == "ratio":
        return f"{value:.2f}"
    if unit == "duration":
        if value < 1e-3:
            return f"{value * 1e6:.0f}us"
        return f"{value * 1e3:.1f}ms" if value < 1 else f"{value:.2f}s"
    return str(value)


def json_value(value: Any) -> Any:
    """A value for JSON/CSV: floats rounded to a useful precision, everything else as is."""
    if isinstance(value, float):
        return round(value, 4)
    return value
