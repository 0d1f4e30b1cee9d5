"""cAdvisor-compatible metric families (names, labels, units and semantics of METRICS.md) built from one Frame."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ctop.model.frame import CgroupRow, Frame
from ctop.model.sample import UNLIMITED, CgroupSample, Pressure

from .families import Family, escape_label_value
from .labels import clean

NS_PER_S = 1e9
# An exported cgroup: its escaped label text (id, name, image, container, pod, namespace) and its row.
Labeled = tuple[str, CgroupRow]


@dataclass(frozen=True)
class Spec:
    """One per-cgroup family with a single value per cgroup: name, type, help and how to get the value."""

    name: str
    kind: str  # counter or gauge
    help: str
    value: Callable[[CgroupSample], float | None]
    extra: tuple[tuple[str, str], ...] = ()  # constant labels, e.g. cpu="total"


def _ns(attr: str) -> Callable[[CgroupSample], float | None]:
    def get(s: CgroupSample) -> float | None:
        v = getattr(s, attr)
        return None if v is None else v / NS_PER_S

    return get


def _raw(attr: str) -> Callable[[CgroupSample], float | None]:
    def get(s: CgroupSample) -> float | None:
        return getattr(s, attr)

    return get


def _limit_or_zero(attr: str) -> Callable[[CgroupSample], float | None]:
    """A limit as cAdvisor exports it: 0 when unlimited."""

    def get(s: CgroupSample) -> float | None:
        v = getattr(s, attr)
        if v is None:
            return None
        return 0 if v == UNLIMITED else v

    return get


def _oom_kills(s: CgroupSample) -> float | None:
    return s.memory_oom_kills if s.memory_oom_kills is not None else s.memory_oom_events


def _quota(s: CgroupSample) -> float | None:
    """cAdvisor emits the quota (in microseconds) only for a cgroup that has one."""
    return s.cpu_quota_us if has_cpu_limit(s) else None


def has_cpu_limit(s: CgroupSample) -> bool:
    return s.cpu_quota_us is not None and s.cpu_quota_us != UNLIMITED and s.cpu_quota_us > 0


# Every family with one value per cgroup. The cfs family is separate: it exists only with a CPU limit.
PER_CGROUP: tuple[Spec, ...] = (
    Spec("container_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed in seconds.",
           _ns("cpu_usage_ns"), (("cpu", "total"),)),
    Spec("container_cpu_user_seconds_total", "counter", "Cumulative user cpu time consumed in seconds.",
           _ns("cpu_user_ns")),
    Spec("container_cpu_system_seconds_total", "counter", "Cumulative system cpu time consumed in seconds.",
           _ns("cpu_system_ns")),
    Spec("container_memory_usage_bytes", "gauge",
           "Current memory usage in bytes, including all memory regardless of when it was accessed.",
           _raw("memory_usage_bytes")),
    Spec("container_memory_working_set_bytes", "gauge",
           "Current working set in bytes (usage minus inactive file cache).",
           lambda s: s.working_set_bytes),
    Spec("container_memory_rss", "gauge", "Size of RSS in bytes.", _raw("memory_rss_bytes")),
    Spec("container_memory_cache", "gauge", "Number of bytes of page cache memory.", _raw("memory_cache_bytes")),
    Spec("container_memory_swap", "gauge", "Container swap usage in bytes.", _raw("memory_swap_bytes")),
    Spec("container_memory_mapped_file", "gauge", "Size of memory mapped files in bytes.",
           _raw("memory_mapped_file_bytes")),
    Spec("container_memory_max_usage_bytes", "gauge", "Maximum memory usage recorded in bytes.",
           _raw("memory_max_usage_bytes")),
    Spec("container_memory_failcnt", "counter", "Number of memory usage hits limits.", _raw("memory_failcnt")),
    Spec("container_oom_events_total", "counter", "Count of out of memory events observed for the container.",
           _oom_kills),
    Spec("container_processes", "gauge", "Number of processes running inside the container.",
           _raw("processes")),
    Spec("container_threads", "gauge", "Number of threads running inside the container.", _raw("threads")),
    Spec("container_threads_max", "gauge",
           "Maximum number of threads allowed inside the container, 0 if unlimited.", _limit_or_zero("pids_max")),
    Spec("container_spec_cpu_quota", "gauge", "CPU quota of the container (microseconds per period).", _quota),
    Spec("container_spec_cpu_period", "gauge", "CPU period of the container (microseconds).",
           _raw("cpu_period_us")),
    Spec("container_spec_cpu_shares", "gauge", "CPU share of the container.", _raw("cpu_shares")),
    Spec("container_spec_memory_limit_bytes", "gauge", "Memory limit for the container, 0 if unlimited.",
           _limit_or_zero("memory_limit_bytes")),
    Spec("container_spec_memory_swap_limit_bytes", "gauge",
           "Memory swap limit for the container, 0 if unlimited.", _limit_or_zero("memory_swap_limit_bytes")),
)

CFS: tuple[Spec, ...] = (
    Spec("container_cpu_cfs_periods_total", "counter", "Number of elapsed enforcement period intervals.",
           _raw("cpu_periods")),
    Spec("container_cpu_cfs_throttled_periods_total", "counter", "Number of throttled period intervals.",
           _raw("cpu_throttled_periods")),
    Spec("container_cpu_cfs_throttled_seconds_total", "counter",
           "Total time duration the container has been throttled.", _ns("cpu_throttled_ns")),
)

NETWORK: tuple[tuple[str, str, str], ...] = (
    ("container_network_receive_bytes_total", "rx_bytes", "Cumulative count of bytes received."),
    ("container_network_receive_packets_total", "rx_packets", "Cumulative count of packets received."),
    ("container_network_receive_packets_dropped_total", "rx_dropped",
     "Cumulative count of packets dropped while receiving."),
    ("container_network_receive_errors_total", "rx_errors", "Cumulative count of errors encountered while receiving."),
    ("container_network_transmit_bytes_total", "tx_bytes", "Cumulative count of bytes transmitted."),
    ("container_network_transmit_packets_total", "tx_packets", "Cumulative count of packets transmitted."),
    ("container_network_transmit_packets_dropped_total", "tx_dropped",
     "Cumulative count of packets dropped while transmitting."),
    ("container_network_transmit_errors_total", "tx_errors",
     "Cumulative count of errors encountered while transmitting."),
)

FS: tuple[tuple[str, str, str], ...] = (
    ("container_fs_reads_total", "read_ops", "Cumulative count of reads completed."),
    ("container_fs_writes_total", "write_ops", "Cumulative count of writes completed."),
    ("container_fs_reads_bytes_total", "read_bytes", "Cumulative count of bytes read."),
    ("container_fs_writes_bytes_total", "write_bytes", "Cumulative count of bytes written."),
)

# container_memory_failures_total: (failure_type, scope, CgroupSample field), in cAdvisor's order.
MEMORY_FAILURES: tuple[tuple[str, str, str], ...] = (
    ("pgfault", "container", "memory_pgfault"),
    ("pgmajfault", "container", "memory_pgmajfault"),
    ("pgfault", "hierarchy", "memory_pgfault_hierarchy"),
    ("pgmajfault", "hierarchy", "memory_pgmajfault_hierarchy"),
)

PSI: tuple[tuple[str, str, str], ...] = (
    ("cpu", "pressure_cpu", "CPU"),
    ("memory", "pressure_memory", "memory"),
    ("io", "pressure_io", "IO"),
)


def _extra(name: str, value: str) -> str:
    return f',{name}="{escape_label_value(clean(value))}"'


def device_name(major_minor: str, block_devices: dict[str, str]) -> str:
    """cAdvisor's device label: ``/dev/<name>``; an unknown device keeps its kernel number as /dev/block/M:m."""
    name = block_devices.get(major_minor)
    return f"/dev/{name}" if name else f"/dev/block/{major_minor}"


def _table(table: tuple[Spec, ...], rows: list[Labeled]) -> list[Family]:
    out: list[Family] = []
    for spec in table:
        fam = Family(spec.name, spec.kind, spec.help)
        extra = "".join(_extra(k, v) for k, v in spec.extra)
        get = spec.value
        for labels, row in rows:
            value = get(row.sample)
            if value is not None:
                fam.add(labels + extra, value)
        out.append(fam)
    return out


def cadvisor_families(frame: Frame, rows: list[Labeled]) -> list[Family]:
    """All cAdvisor families for the given (label text, row) pairs, plus the machine families."""
    out = _table(PER_CGROUP, rows)
    out.extend(_table(CFS, [(labels, row) for labels, row in rows if has_cpu_limit(row.sample)]))

    out.append(_memory_failures(rows))
    out.extend(_network(rows))
    out.extend(_fs(frame, rows))
    out.extend(_pressure(rows))
    out.extend(_times(frame, rows))
    out.extend(_machine(frame))
    return out


def _memory_failures(rows: list[Labeled]) -> Family:
    """Page faults by type, for the cgroup's own tasks (scope=container) and its subtree (scope=hierarchy)."""
    fam = Family("container_memory_failures_total", "counter", "Cumulative count of memory allocation failures.")
    extras = [(_extra("failure_type", kind) + _extra("scope", scope), attr) for kind, scope, attr in MEMORY_FAILURES]
    for labels, row in rows:
        for extra, attr in extras:
            value = getattr(row.sample, attr)
            if value is not None:
                fam.add(labels + extra, value)
    return fam


def _network(rows: list[Labeled]) -> list[Family]:
    """Network counters, only on the cgroups that own a network namespace (for a pod: the pod's cgroup)."""
    owners = [(labels, row) for labels, row in rows if row.net]
    out: list[Family] = []
    for name, attr, help_text in NETWORK:
        fam = Family(name, "counter", help_text)
        for labels, row in owners:
            for iface, counters in sorted((row.net or {}).items()):
                fam.add(labels + _extra("interface", iface), getattr(counters, attr))
        out.append(fam)
    return out


def _fs(frame: Frame, rows: list[Labeled]) -> list[Family]:
    devices = frame.snapshot.host.block_devices
    names: dict[str, str] = {}
    out: list[Family] = []
    for name, attr, help_text in FS:
        fam = Family(name, "counter", help_text)
        for labels, row in rows:
            for dev, io in sorted((row.sample.io_by_device or {}).items()):
                extra = names.get(dev)
                if extra is None:
                    extra = names[dev] = _extra("device", device_name(dev, devices))
                fam.add(labels + extra, getattr(io, attr))
        out.append(fam)
    return out


def _pressure(rows: list[Labeled]) -> list[Family]:
    out: list[Family] = []
    for resource, attr, title in PSI:
        waiting = Family(f"container_pressure_{resource}_waiting_seconds_total", "counter",
                         f"Total time duration tasks in the container have waited due to {title} congestion.")
        stalled = Family(f"container_pressure_{resource}_stalled_seconds_total", "counter",
                         f"Total time duration no tasks in the container could make progress due to {title} "
                         "congestion.")
        for labels, row in rows:
            psi: Pressure | None = getattr(row.sample, attr)
            if psi is None:
                continue
            if psi.some_total_ns is not None:
                waiting.add(labels, psi.some_total_ns / NS_PER_S)
            if psi.full_total_ns is not None:
                stalled.add(labels, psi.full_total_ns / NS_PER_S)
        out.extend((waiting, stalled))
    return out


def _times(frame: Frame, rows: list[Labeled]) -> list[Family]:
    start = Family("container_start_time_seconds", "gauge", "Start time of the container since unix epoch in seconds.")
    seen = Family("container_last_seen", "gauge", "Last time a container was seen by the exporter.")
    now = frame.snapshot.host.wall_time_s
    for labels, row in rows:
        if row.identity.start_time_s is not None:
            start.add(labels, row.identity.start_time_s)
        seen.add(labels, now)
    return [start, seen]


def _machine(frame: Frame) -> list[Family]:
    host = frame.snapshot.host
    cores = Family("machine_cpu_cores", "gauge", "Number of logical CPU cores.")
    cores.add("", host.online_cpus)
    memory = Family("machine_memory_bytes", "gauge", "Amount of memory installed on the machine.")
    if host.memory_total_bytes is not None:
        memory.add("", host.memory_total_bytes)
    return [cores, memory]
