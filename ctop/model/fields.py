"""The one table of fields: each entry says everything about one field, and every output derives from it.

An entry carries the JSON/CSV key, the table header, unit and meaning, how the value is computed from a row, how
it sorts and is coloured, whether and where the batch table and the interactive list show it, its sort hotkey and
``--order`` alias, and the exporter metric family that carries it. Entries are module constants named after their
key (``RUNQ_LATENCY_P99_SECONDS``), so code names a field by a constant that mypy and the import check, never by
a string. JSON keys are a stable interface for scripts: new fields may be added, none is renamed, and the JSON/CSV
order is the order of this table. Adding a field is one entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from .ebpf_rates import EbpfRates
from .frame import CgroupRow
from .sample import UNLIMITED, Pressure

# What a getter returns; None (or "" for text) is "no data". A mapping (preempted_by) is a JSON object whose str()
# is its text and CSV form.
Value = str | int | float | Mapping[str, float] | None
SortValue = str | int | float | tuple[str, str] | Mapping[str, float] | None
Getter = Callable[[CgroupRow], Value]
SortGetter = Callable[[CgroupRow], SortValue]
Unit = Literal["", "percent", "bytes", "bytes_per_s", "count", "per_s", "cores", "seconds", "duration", "ratio",
               "age"]
Level = Literal["warn", "crit"] | None  # a cell that needs attention: the palette entries of the interactive view


@dataclass(frozen=True)
class Threshold:
    """Colour rule: "warn" from ``warn``, "crit" from ``crit``; judged on the fields keyed ``on`` (the worst of them)
    instead of the field's own value when given. ``falling``: the smaller the value, the worse (an age)."""

    warn: float
    crit: float
    on: tuple[str, ...] = ()
    falling: bool = False


@dataclass(frozen=True, eq=False)
class Field:
    """One field. ``key`` is the JSON/CSV key (``in_json`` False: only the interactive list shows it)."""

    key: str
    header: str
    unit: Unit  # "" is text
    description: str
    get: Getter
    width: int = 8  # list column width (at least the header and a space)
    in_json: bool = True
    batch: int | None = None  # place in the default ``ctop -b`` table, left to right; None: not in it
    place: int | None = None  # place in the list's default columns, left to right; None: not shown by default
    priority: int | None = None  # narrow terminals drop the highest first, 0 never; None: not shown by default
    listable: bool = True  # offered by the list's column chooser
    sortable: bool = True
    sort: SortGetter | None = None  # the sort key where it differs from the value
    descending: bool | None = None  # the natural sort direction; None: numbers descending, text ascending
    colour: Threshold | None = None
    hotkey: str = ""  # sorts the list by this field
    long_name: str = ""  # what help lines call it ("sort by <long_name>"); the header when empty
    order: str = ""  # the ``--order`` alias
    filter: str = ""  # the ``--filter`` key (text fields)
    metric: str = ""  # the exporter metric family that carries it

    @property
    def sort_key(self) -> SortGetter:
        return self.sort or self.get

    @property
    def sorts_descending(self) -> bool:
        return self.unit != "" if self.descending is None else self.descending


def _limit(value: int | None) -> int | None:
    return None if value is None or value == UNLIMITED else value


def _psi(attr: str, resource: str) -> Getter:
    def get(row: CgroupRow) -> float | None:
        pressure: Pressure | None = getattr(row.sample, f"pressure_{resource}")
        return None if pressure is None else getattr(pressure, attr)
    return get


def _ebpf(get: Callable[[EbpfRates], Value]) -> Getter:
    """A getter of an eBPF rate: None while eBPF is off or not ready."""
    return lambda r: None if r.ebpf_rates is None else get(r.ebpf_rates)


def _ns(value: int | None) -> float | None:
    return None if value is None else value / 1e9


def display_name(row: CgroupRow) -> str:
    """What a person calls this cgroup: the container or unit name when known, else the path."""
    return row.identity.name or row.sample.path


def pids(row: CgroupRow) -> int | None:
    """Tasks in the cgroup and below: pids.current where the pids controller has it, else counted threads; None
    where neither covers the cgroup (a v1 cgroup outside the pids hierarchy)."""
    s = row.sample
    if s.pids_current is not None:
        return s.pids_current
    return row.tasks_recursive if s.threads is not None else None


def io_total_per_s(row: CgroupRow) -> float | None:
    """Block IO read plus written per second; None when neither is known."""
    r, w = row.io_read_bytes_per_s, row.io_write_bytes_per_s
    return None if r is None and w is None else (r or 0.0) + (w or 0.0)


def net_total_per_s(row: CgroupRow) -> float | None:
    """Network received plus sent per second, on the cgroup owning the netns; None elsewhere."""
    if row.net is None:
        return None
    return (row.net_rx_bytes_per_s or 0) + (row.net_tx_bytes_per_s or 0)


def _namespace_pod(row: CgroupRow) -> str | None:
    ident = row.identity
    return None if not ident.pod and not ident.namespace else f"{ident.namespace or '-'}/{ident.pod or '-'}"


def _namespace_pod_sort(row: CgroupRow) -> tuple[str, str] | None:
    ident = row.identity
    return (ident.namespace, ident.pod) if ident.pod or ident.namespace else None


# The first JSON key and CSV column, before the fields: not a value of a row but of the refresh that read it.
TIME_KEY = "time"
TIME_DESCRIPTION = ("when the refresh was read, in seconds since the Unix epoch (to the millisecond); the first key of "
                    "every JSON row and the first CSV column")

# -- the table: JSON/CSV order is this order; a new JSON field goes after the last one (PSI_IO_FULL_AVG10) --------

ID = Field("id", "CGROUP", "", "cgroup path relative to the hierarchy root; / is the root", lambda r: r.sample.path,
           40, batch=0, order="path", filter="id")
NAME = Field("name", "NAME", "", "container name (Docker), container id (containerd) or unit name; empty when unknown",
             lambda r: r.identity.name, 24, batch=1, listable=False, filter="name")
KIND = Field("kind", "KIND", "", "container, pod, qos, slice, service, scope, cgroup or root",
             lambda r: r.identity.kind, 9, filter="kind", metric="ctop_container_info")
RUNTIME = Field("runtime", "RUNTIME", "", "docker, containerd, cri-o, podman, systemd, kubernetes; empty when unknown",
                lambda r: r.identity.runtime, 10, filter="runtime", metric="ctop_container_info")
CONTAINER_ID = Field("container_id", "ID", "", "full container id; empty when not a container",
                     lambda r: r.identity.container_id, 12, sortable=False)
IMAGE = Field("image", "IMAGE", "", "container image", lambda r: r.identity.image, 20, filter="image")
POD = Field("pod", "POD", "", "Kubernetes pod name", lambda r: r.identity.pod, 20, filter="pod")
NAMESPACE = Field("namespace", "NAMESPACE", "", "Kubernetes namespace", lambda r: r.identity.namespace, 12,
                  filter="namespace")
CONTAINER = Field("container", "CONTAINER", "", "Kubernetes container name (POD for a pause container)",
                  lambda r: r.identity.container, 12, filter="container")
QOS_CLASS = Field("qos_class", "QOS", "", "Kubernetes QoS class: guaranteed, burstable or besteffort",
                  lambda r: r.identity.qos_class, 10, place=2, priority=7, filter="qos",
                  metric="ctop_container_info")
DEPTH = Field("depth", "DEPTH", "count", "0 for the root cgroup, 1 for its children, ...", lambda r: r.sample.depth, 5)
CPU_PERCENT = Field("cpu_percent", "CPU%", "percent", "CPU used, 100 = one full CPU (docker stats formula)",
                    lambda r: r.cpu_percent, 6, batch=4, place=3, priority=0, hotkey="P", long_name="CPU %",
                    order="cpu", metric="container_cpu_usage_seconds_total")
CPU_LIMIT_CORES = Field("cpu_limit_cores", "CPULIM", "cores", "CPU limit in CPUs (quota / period); null when unlimited",
                        lambda r: r.cpu_limit_cores, 6, batch=5, metric="container_spec_cpu_quota")
CPU_LIMIT_PERCENT = Field("cpu_limit_percent", "%CPULIM", "percent", "CPU used as a share of the CPU limit",
                          lambda r: r.cpu_limit_percent, 7, place=4, priority=3, colour=Threshold(80.0, 95.0),
                          hotkey="L", long_name="CPU % of limit", order="limit")
THROTTLED_PERCENT = Field("throttled_percent", "THR%", "percent",
                          "share of CFS periods throttled since the previous refresh (over 10 s: "
                          "throttled_percent_avg); null without a CPU limit", lambda r: r.throttled_percent,
                          5, batch=6, place=5, priority=2, colour=Threshold(5.0, 25.0), hotkey="T",
                          long_name="throttled %", order="throttle", metric="container_cpu_cfs_throttled_periods_total")
CPU_USAGE_SECONDS = Field("cpu_usage_seconds", "CPUTIME", "seconds", "CPU time used since the cgroup was created",
                          lambda r: _ns(r.sample.cpu_usage_ns), 9, metric="container_cpu_usage_seconds_total")
CPU_THROTTLED_SECONDS = Field("cpu_throttled_seconds", "THRTIME", "seconds",
                              "time throttled since the cgroup was created", lambda r: _ns(r.sample.cpu_throttled_ns),
                              8, metric="container_cpu_cfs_throttled_seconds_total")
CPU_SHARES = Field("cpu_shares", "SHARES", "count", "CPU weight as v1 cpu.shares (converted on v2)",
                   lambda r: r.sample.cpu_shares, 6, metric="container_spec_cpu_shares")
CPU_WEIGHT = Field("cpu_weight", "WEIGHT", "count", "CPU weight as v2 cpu.weight (converted on v1)",
                   lambda r: r.sample.cpu_weight, 6)
CPUSET_CPUS = Field("cpuset_cpus", "CPUSET", "", "CPUs the cgroup may run on", lambda r: r.sample.cpuset_cpus, 8,
                    sortable=False)
MEMORY_USAGE_BYTES = Field("memory_usage_bytes", "MEMUSE", "bytes", "memory usage including page cache",
                           lambda r: r.sample.memory_usage_bytes, 8, metric="container_memory_usage_bytes")
MEMORY_WORKING_SET_BYTES = Field("memory_working_set_bytes", "MEM", "bytes",
                                 "working set: usage minus inactive file cache (docker stats, kubelet)",
                                 lambda r: r.sample.working_set_bytes, 7, batch=7, place=6, priority=0,
                                 colour=Threshold(80.0, 95.0, on=("memory_limit_percent",)), hotkey="M",
                                 long_name="memory (working set)", order="memory",
                                 metric="container_memory_working_set_bytes")
MEMORY_LIMIT_BYTES = Field("memory_limit_bytes", "MEMLIM", "bytes", "memory limit; null when unlimited",
                           lambda r: _limit(r.sample.memory_limit_bytes), 7, batch=8, place=7, priority=4,
                           metric="container_spec_memory_limit_bytes")
MEMORY_LIMIT_PERCENT = Field("memory_limit_percent", "%MEMLIM", "percent", "working set as a share of the memory limit",
                             lambda r: r.memory_limit_percent, 7, place=8, priority=1, colour=Threshold(80.0, 95.0))
MEMORY_RSS_BYTES = Field("memory_rss_bytes", "RSS", "bytes", "anonymous memory (v1 total_rss, v2 anon)",
                         lambda r: r.sample.memory_rss_bytes, 8, metric="container_memory_rss")
MEMORY_CACHE_BYTES = Field("memory_cache_bytes", "CACHE", "bytes", "page cache (v1 total_cache, v2 file)",
                           lambda r: r.sample.memory_cache_bytes, 8, metric="container_memory_cache")
MEMORY_SWAP_BYTES = Field("memory_swap_bytes", "SWAP", "bytes", "swap used", lambda r: r.sample.memory_swap_bytes, 8,
                          metric="container_memory_swap")
MEMORY_FAILCNT = Field("memory_failcnt", "MEMFAIL", "count",
                       "times usage hit the limit (v1 failcnt, v2 memory.events max)",
                       lambda r: r.sample.memory_failcnt, 7, metric="container_memory_failcnt")
MEMORY_OOM_KILLS = Field("memory_oom_kills", "OOMK", "count", "processes OOM-killed in the cgroup (kernel counter)",
                         lambda r: r.sample.memory_oom_kills, 4, place=16, priority=1, colour=Threshold(1, 1),
                         hotkey="K", long_name="OOM kills", metric="container_oom_events_total")
MEMORY_MAJOR_FAULTS_PER_S = Field("memory_major_faults_per_s", "MAJFLT/s", "per_s",
                                  "major page faults (pages read back from disk): thrashing near the memory limit",
                                  lambda r: r.memory_major_faults_per_s, 8, metric="container_memory_failures_total")
IO_READ_BYTES_PER_S = Field("io_read_bytes_per_s", "IOR/s", "bytes_per_s", "block IO read",
                            lambda r: r.io_read_bytes_per_s, 8, batch=9, place=13, priority=4, sort=io_total_per_s,
                            hotkey="I", long_name="IO (read + write)", order="io",
                            metric="container_fs_reads_bytes_total")
IO_WRITE_BYTES_PER_S = Field("io_write_bytes_per_s", "IOW/s", "bytes_per_s", "block IO written",
                             lambda r: r.io_write_bytes_per_s, 8, batch=10, place=14, priority=4,
                             metric="container_fs_writes_bytes_total")
IO_READ_OPS_PER_S = Field("io_read_ops_per_s", "RIOPS", "per_s", "block IO read operations",
                          lambda r: r.io_read_ops_per_s, 6, metric="container_fs_reads_total")
IO_WRITE_OPS_PER_S = Field("io_write_ops_per_s", "WIOPS", "per_s", "block IO write operations",
                           lambda r: r.io_write_ops_per_s, 6, metric="container_fs_writes_total")
NET_RX_BYTES_PER_S = Field("net_rx_bytes_per_s", "NETRX/s", "bytes_per_s",
                           "network received, on the cgroup owning the netns", lambda r: r.net_rx_bytes_per_s, 8,
                           batch=11, place=11, priority=5, sort=net_total_per_s, order="net",
                           metric="container_network_receive_bytes_total")
NET_TX_BYTES_PER_S = Field("net_tx_bytes_per_s", "NETTX/s", "bytes_per_s",
                           "network sent, on the cgroup owning the netns", lambda r: r.net_tx_bytes_per_s, 8,
                           batch=12, place=12, priority=5,
                           metric="container_network_transmit_bytes_total")
RUNQ_LATENCY_P50_SECONDS = Field("runq_latency_p50_seconds", "RQP50", "duration",
                                 "eBPF: median wait for a CPU after wake-up or preemption",
                                 _ebpf(lambda e: e.runq_latency_p50_seconds), 7,
                                 metric="ctop_runqueue_latency_seconds")
RUNQ_LATENCY_P99_SECONDS = Field("runq_latency_p99_seconds", "RQP99", "duration",
                                 "eBPF: 99th percentile wait for a CPU",
                                 _ebpf(lambda e: e.runq_latency_p99_seconds), 7,
                                 batch=13, place=9, priority=3, colour=Threshold(0.005, 0.050), hotkey="Q",
                                 long_name="run-queue latency p99", metric="ctop_runqueue_latency_seconds")
RUNQ_WAIT_SECONDS_PER_S = Field("runq_wait_seconds_per_s", "RQWAIT", "ratio",
                                "eBPF: seconds its tasks waited for a CPU per second",
                                _ebpf(lambda e: e.runq_wait_seconds_per_s), 6,
                                metric="ctop_runqueue_latency_seconds")
CTX_SWITCHES_VOLUNTARY_PER_S = Field(
    "ctx_switches_voluntary_per_s", "VCSW/s", "per_s", "eBPF: voluntary context switches (blocked, slept)",
    _ebpf(lambda e: e.ctx_switches_voluntary_per_s), 7,
    metric="ctop_context_switches_total")
CTX_SWITCHES_INVOLUNTARY_PER_S = Field(
    "ctx_switches_involuntary_per_s", "ICSW/s", "per_s", "eBPF: involuntary context switches (preempted)",
    _ebpf(lambda e: e.ctx_switches_involuntary_per_s), 7,
    metric="ctop_context_switches_total")
PREEMPTED_BY_OTHERS_PER_S = Field(
    "preempted_by_others_per_s", "PREEMPT/s", "per_s", "eBPF: preemptions in favour of another container",
    _ebpf(lambda e: e.preempted_by_others_per_s), 9,
    metric="ctop_preemptions_total")
PREEMPTED_BY_HOST_PER_S = Field(
    "preempted_by_host_per_s", "HOSTPRE/s", "per_s", "eBPF: preemptions in favour of a host task",
    _ebpf(lambda e: e.preempted_by_host_per_s), 9,
    metric="ctop_preemptions_total")
FORKS_PER_S = Field("forks_per_s", "FORK/s", "per_s", "eBPF: tasks created",
                    _ebpf(lambda e: e.forks_per_s), 6, metric="ctop_forks_total")
EXECS_PER_S = Field("execs_per_s", "EXEC/s", "per_s", "eBPF: programs executed",
                    _ebpf(lambda e: e.execs_per_s), 6, metric="ctop_execs_total")
EXITS_PER_S = Field("exits_per_s", "EXIT/s", "per_s", "eBPF: tasks exited",
                    _ebpf(lambda e: e.exits_per_s), 6, metric="ctop_exits_total")
OOM_KILLS = Field("oom_kills", "OOM", "count", "eBPF: OOM-killer victims since ctop started; null when eBPF is off",
                  _ebpf(lambda e: e.oom_kills), 4, metric="ctop_oom_kills_total")
PIDS = Field("pids", "PIDS", "count", "tasks in the cgroup and below (pids.current)", pids, 5, batch=3, place=15,
             priority=2, order="pids")
PIDS_MAX = Field("pids_max", "PIDMAX", "count", "pids limit; null when unlimited", lambda r: _limit(r.sample.pids_max),
                 6, metric="container_threads_max")
PROCESSES = Field("processes", "PROCS", "count", "processes directly in this cgroup", lambda r: r.sample.processes, 6,
                  batch=2, metric="container_processes")
THREADS = Field("threads", "THREADS", "count", "threads directly in this cgroup", lambda r: r.sample.threads, 7,
                metric="container_threads")
PSI_CPU_SOME_AVG10 = Field("psi_cpu_some_avg10", "PSICPU", "percent",
                           "share of time some task waited for CPU (10 s avg)",
                           _psi("some_avg10", "cpu"), 6, metric="container_pressure_cpu_waiting_seconds_total")
PSI_MEMORY_SOME_AVG10 = Field("psi_memory_some_avg10", "PSIMEM", "percent",
                              "share of time some task stalled on memory (10 s avg)", _psi("some_avg10", "memory"), 6,
                              metric="container_pressure_memory_waiting_seconds_total")
PSI_MEMORY_FULL_AVG10 = Field("psi_memory_full_avg10", "PSIMEMF", "percent",
                              "share of time all tasks stalled on memory (10 s avg)", _psi("full_avg10", "memory"), 7,
                              metric="container_pressure_memory_stalled_seconds_total")
PSI_IO_SOME_AVG10 = Field("psi_io_some_avg10", "PSIIO", "percent", "share of time some task stalled on IO (10 s avg)",
                          _psi("some_avg10", "io"), 6, metric="container_pressure_io_waiting_seconds_total")
PSI_IO_FULL_AVG10 = Field("psi_io_full_avg10", "PSIIOF", "percent", "share of time all tasks stalled on IO (10 s avg)",
                          _psi("full_avg10", "io"), 6, metric="container_pressure_io_stalled_seconds_total")
THROTTLED_PERCENT_AVG = Field(
    "throttled_percent_avg", "THRAVG%", "percent",
    "share of CFS periods throttled over the last 10 s (one refresh interval when longer; over the time since ctop "
    "or the cgroup started when shorter); null without a CPU limit", lambda r: r.throttled_percent_avg, 8,
    colour=Threshold(5.0, 25.0), long_name="throttled % (10 s average)",
    metric="container_cpu_cfs_throttled_periods_total")
THROTTLED_SECONDS_PER_S = Field(
    "throttled_seconds_per_s", "THRs/s", "ratio",
    "seconds throttled per second (cpu.stat throttled time), over the same window as throttled_percent_avg; null "
    "without a CPU limit", lambda r: r.throttled_seconds_per_s, 7,
    metric="container_cpu_cfs_throttled_seconds_total")
RESTARTS = Field(
    "restarts", "RESTARTS", "count",
    "times the workload was restarted (a new cgroup under the same container name, or pod and container name), as "
    "seen by ctop or the node's recorder (ctop record); null for cgroups that are not containers",
    lambda r: r.restarts, 8, place=17, priority=3, colour=Threshold(1, 5), long_name="restarts")
OOM_KILL_AGE_SECONDS = Field(
    "oom_kill_age_seconds", "LASTOOM", "age",
    "seconds since a task of the workload was last OOM-killed, across restarts (from eBPF, the kernel's counter or "
    "the node's recorder); null when none was seen", lambda r: r.oom_kill_age_seconds, 7, place=18, priority=3,
    colour=Threshold(3600, 300, falling=True), long_name="time since the last OOM kill")

COMPOSE_PROJECT = Field("compose_project", "PROJECT", "", "Docker Compose project (com.docker.compose.project)",
                        lambda r: r.identity.compose_project, 14, filter="project")
COMPOSE_SERVICE = Field("compose_service", "SERVICE", "", "Docker Compose service (com.docker.compose.service)",
                        lambda r: r.identity.compose_service, 14, filter="service")

TOP_PREEMPTOR = Field("top_preemptor", "PREEMPTOR", "",
                      "eBPF: who preempted its tasks most: a container's name, host (processes outside containers) "
                      "or a cgroup; null when nothing did", _ebpf(lambda e: e.top_preemptor), 14)
PREEMPTED_BY = Field("preempted_by", "PREEMPTED_BY", "",
                     "eBPF: preemptions per second by culprit, largest first: a JSON object name -> rate; "
                     "name:rate,... in CSV and text", _ebpf(lambda e: e.preempted_by), 24, listable=False,
                     sortable=False)
NODE = Field("node", "NODE", "", "fleet view (--prometheus): the node, from the node label, else the scrape target; "
             "empty on a single node", lambda r: r.identity.node, 14, filter="node")

# Only the interactive list shows these (not JSON/CSV keys).
DISPLAY_NAME = Field("display_name", "NAME", "", "container, unit or pod name; the cgroup path when unknown",
                     display_name, 12, in_json=False, place=0, priority=0,
                     colour=Threshold(1, 1, on=("memory_oom_kills", "oom_kills")), hotkey="N", long_name="name",
                     order="name")
NAMESPACE_POD = Field("namespace_pod", "NAMESPACE/POD", "", "Kubernetes namespace and pod", _namespace_pod, 20,
                      in_json=False, place=1, priority=6, sort=_namespace_pod_sort)
CTX_SWITCHES_PER_S = Field("ctx_switches_per_s", "CSW/s", "per_s",
                           "context switches per second (voluntary + involuntary), from eBPF",
                           _ebpf(lambda e: e.ctx_switches_per_s), 6,
                           in_json=False, place=10, priority=6, metric="ctop_context_switches_total")

FIELDS: tuple[Field, ...] = tuple(v for v in list(globals().values()) if isinstance(v, Field))
FIELDS_BY_KEY: dict[str, Field] = {f.key: f for f in FIELDS}
JSON_FIELDS: tuple[Field, ...] = tuple(f for f in FIELDS if f.in_json)  # the JSON/CSV keys, in their order
BATCH_FIELDS: tuple[Field, ...] = tuple(sorted((f for f in FIELDS if f.batch is not None),
                                               key=lambda f: f.batch or 0))
ORDER_ALIASES: dict[str, Field] = {f.order: f for f in FIELDS if f.order}


def sort_field(name: str) -> Field:
    """The field an ``--order`` value names: an alias (cpu, memory, ...) or a sortable field key; KeyError if none."""
    found = ORDER_ALIASES.get(name) or FIELDS_BY_KEY.get(name)
    if found is None or not found.sortable:
        raise KeyError(name)
    return found


def sort_rows(rows: Iterable[CgroupRow], key: SortGetter, descending: bool) -> list[CgroupRow]:
    """Rows by ``key``; rows without a value go last whatever the direction; ties by path."""
    keyed = [(key(r), r) for r in rows]
    present = [(k, r) for k, r in keyed if k is not None]
    absent = [r for k, r in keyed if k is None]
    try:
        present.sort(key=lambda kr: (kr[0], kr[1].sample.path), reverse=descending)
    except TypeError:  # mixed types in one field: order by their text instead
        present.sort(key=lambda kr: (str(kr[0]), kr[1].sample.path), reverse=descending)
    absent.sort(key=lambda r: r.sample.path)
    return [r for _, r in present] + absent


def _judged(rule: Threshold, value: Value) -> Level:
    if not isinstance(value, (int, float)):
        return None
    if rule.falling:
        return "crit" if value <= rule.crit else "warn" if value <= rule.warn else None
    return "crit" if value >= rule.crit else "warn" if value >= rule.warn else None


def level(field: Field, row: CgroupRow) -> Level:
    """How much attention the field's cell of ``row`` needs, by its colour rule."""
    rule = field.colour
    if rule is None:
        return None
    if not rule.on:
        return _judged(rule, field.get(row))
    levels = [_judged(rule, FIELDS_BY_KEY[key].get(row)) for key in rule.on]
    return "crit" if "crit" in levels else "warn" if "warn" in levels else None


def _human_bytes(value: float) -> str:
    for unit in ("B", "K", "M", "G", "T"):
        if abs(value) < 1024 or unit == "T":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}T"


def _duration(value: float) -> str:
    if value < 1e-3:
        return f"{value * 1e6:.0f}us"
    return f"{value * 1e3:.1f}ms" if value < 1 else f"{value:.2f}s"


def _age(value: float) -> str:
    """How long ago, in the largest whole unit: 45s, 12m, 5h, 3d."""
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if value >= size:
            return f"{value // size:.0f}{unit}"
    return f"{value:.0f}s"


FORMATS: dict[Unit, Callable[[float], str]] = {
    "percent": lambda v: f"{v:.1f}",
    "bytes": _human_bytes,
    "bytes_per_s": _human_bytes,
    "cores": lambda v: f"{v:.2f}",
    "seconds": lambda v: f"{v:.1f}",
    "per_s": lambda v: f"{v:.0f}",
    "ratio": lambda v: f"{v:.2f}",
    "duration": _duration,
    "age": _age,
}


def format_value(field: Field, value: Value) -> str:
    """A value as a person reads it in a table; "-" for no data."""
    if value is None or value == "":
        return "-"
    fmt = FORMATS.get(field.unit)
    return fmt(value) if fmt is not None and isinstance(value, (int, float)) else str(value)


def problems() -> list[str]:
    """What is wrong with the table: references to keys it does not have, clashes; empty when it is sound."""
    out = []
    keys = [f.key for f in FIELDS]
    out += [f"key {k!r} is defined twice" for k in set(keys) if keys.count(k) > 1]
    for name, value in globals().items():
        if isinstance(value, Field) and name != value.key.upper():
            out.append(f"the constant {name} holds the field {value.key!r}")
    for f in FIELDS:
        if f.colour is not None:
            unknown = [k for k in f.colour.on if k not in FIELDS_BY_KEY]
            out += [f"{f.key}: colour rule judged on unknown field {k!r}" for k in unknown]
        if (f.place is None) != (f.priority is None):
            out.append(f"{f.key}: place and priority go together (both None: not shown by default)")
        if f.place is not None and not f.listable:
            out.append(f"{f.key}: shown by default but not listable")
        if (f.hotkey or f.order or f.sort) and not f.sortable:
            out.append(f"{f.key}: a hotkey, --order alias or sort key on a field that does not sort")
        if f.hotkey and not f.listable:
            out.append(f"{f.key}: a sort hotkey on a field the list cannot show")
    for attr in ("hotkey", "order", "filter", "batch", "place"):
        taken = [getattr(f, attr) for f in FIELDS if getattr(f, attr) not in ("", None)]
        out += [f"{attr} {v!r} is used twice" for v in set(taken) if taken.count(v) > 1]
    headers = [f.header for f in FIELDS if f.listable]
    out += [f"list header {h!r} is used twice" for h in set(headers) if headers.count(h) > 1]
    return out


_PROBLEMS = problems()
if _PROBLEMS:  # a broken table fails at import, not when a view first reaches the entry
    raise ImportError("ctop.model.fields: " + "; ".join(_PROBLEMS))
