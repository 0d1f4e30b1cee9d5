"""The model every view consumes: one Frame per refresh, holding each cgroup's raw sample, its rates and names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .ebpf import EbpfCgroupCounters, ExecRecord, OomKill, State
from .ebpf_rates import EbpfRates
from .notices import Notice
from .sample import CgroupSample, Snapshot

if TYPE_CHECKING:
    from .events import Event


@dataclass(frozen=True, slots=True)
class Identity:
    """Who owns a cgroup, as its owner knows it. Empty strings when unknown (like cAdvisor's labels)."""

    kind: str = "cgroup"  # container, pod, qos, slice, service, scope, cgroup, root
    runtime: str = ""  # docker, containerd, cri-o, podman, systemd, kubernetes, ""
    container_id: str = ""
    name: str = ""  # container name (Docker) or id (containerd), unit name for systemd
    image: str = ""
    pod: str = ""
    pod_uid: str = ""
    namespace: str = ""
    container: str = ""  # Kubernetes container name; "POD" for a pause container
    qos_class: str = ""  # guaranteed, burstable, besteffort
    compose_project: str = ""  # Docker Compose project and service (com.docker.compose.* labels)
    compose_service: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    start_time_s: float | None = None
    node: str = ""  # the node a fleet view read it from (Prometheus' node label, else the target); "" locally


@dataclass(frozen=True, slots=True)
class NetCounters:
    """Cumulative counters of one network interface (from /proc/<pid>/net/dev of the owning namespace)."""

    rx_bytes: int = 0
    rx_packets: int = 0
    rx_errors: int = 0
    rx_dropped: int = 0
    tx_bytes: int = 0
    tx_packets: int = 0
    tx_errors: int = 0
    tx_dropped: int = 0


@dataclass(frozen=True, slots=True)
class CgroupRow:
    """One cgroup in one refresh: the raw sample, who it is, and rates against the previous refresh.

    A rate is None when there is no previous sample of the same cgroup (first refresh, or the cgroup was
    recreated under the same path), or when its inputs are missing.
    """

    sample: CgroupSample
    identity: Identity = field(default_factory=Identity)
    cpu_percent: float | None = None  # 100 = one CPU (docker stats formula)
    cpu_limit_cores: float | None = None  # None when unlimited
    cpu_limit_percent: float | None = None  # CPU used as a share of the limit
    throttled_percent: float | None = None  # share of CFS periods that were throttled
    memory_limit_percent: float | None = None  # working set as a share of the limit
    io_read_bytes_per_s: float | None = None
    io_write_bytes_per_s: float | None = None
    io_read_ops_per_s: float | None = None
    io_write_ops_per_s: float | None = None
    memory_major_faults_per_s: float | None = None  # pages read back from disk: thrashing near the limit
    tasks_recursive: int | None = None  # threads in this cgroup and all below it
    # Network of the namespace this cgroup owns (None when it owns none or it is unknown).
    net: dict[str, NetCounters] | None = None
    net_rx_bytes_per_s: float | None = None
    net_tx_bytes_per_s: float | None = None
    # eBPF counters (cumulative since ctop loaded its programs) and rates; None while eBPF is off or not ready.
    ebpf: EbpfCgroupCounters | None = None
    ebpf_rates: EbpfRates | None = None
    # CFS throttling over at least 10 s (model/window.py); None without a CPU limit or before a second reading.
    throttled_percent_avg: float | None = None
    throttled_seconds_per_s: float | None = None
    # The workload's history (containers only; None elsewhere or while nobody watched it): restarts seen by ctop
    # or its recorder, and how long ago a task of it was last OOM-killed.
    restarts: int | None = None
    oom_kill_age_seconds: float | None = None

    @property
    def path(self) -> str:
        return self.sample.path


@dataclass(frozen=True, slots=True)
class Frame:
    """One refresh as every view sees it."""

    snapshot: Snapshot
    rows: dict[str, CgroupRow]
    interval_s: float | None  # seconds since the previous refresh, None on the first
    notices: tuple[Notice, ...] = ()  # what is missing and why (not root, no eBPF, no names, unreadable files)
    ebpf_state: State = "off"
    ebpf_execs: dict[str, tuple[ExecRecord, ...]] = field(default_factory=dict)  # cgroup path -> recent execs
    ebpf_oom_kills: tuple[OomKill, ...] = ()  # recent OOM kills, oldest first (eBPF)
    ebpf_monotonic_s: float | None = None  # time.monotonic() of the eBPF reading behind the eBPF rates
    events: tuple[Event, ...] = ()  # what this refresh revealed: restarts, OOM kills, limit changes, episodes
    host: CgroupRow | None = None  # the node outside every container (model/host.py); None without containers
    groups: dict[str, CgroupRow] = field(default_factory=dict)  # rows standing for groups of rows (model/groups.py)
    # Paths whose rows were derived from inputs unchanged since the previous refresh (every rate 0): the next
    # refresh keeps such a row, the very object, while its inputs stay the same (collector.build_frame).
    settled: frozenset[str] = frozenset()

    def row(self, path: str) -> CgroupRow | None:
        """The row listed under ``path``: a cgroup's, the host row or a group's."""
        found = self.rows.get(path)
        if found is None and self.host is not None and path == self.host.path:
            return self.host
        return found if found is not None else self.groups.get(path)

    def listed(self) -> dict[str, CgroupRow]:
        """Every row a view may list: the cgroups', the host row and the groups'."""
        if self.host is None and not self.groups:
            return self.rows
        return {**self.rows, **({self.host.path: self.host} if self.host is not None else {}), **self.groups}
