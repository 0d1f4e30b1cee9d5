"""Raw samples: what the sources read from the kernel at one instant, before any rate is computed.

Every numeric field is cumulative or instantaneous exactly as the kernel reports it, converted to base units
(nanoseconds, bytes). ``None`` means "no data" (file missing, unreadable or malformed). Limits use ``UNLIMITED``
(-1) for "no limit", which is different from ``None`` ("we could not tell").
"""

from __future__ import annotations

from dataclasses import dataclass, field

UNLIMITED = -1


@dataclass(frozen=True, slots=True)
class IoCounters:
    """Block IO of one cgroup on one device (or in total): bytes and operations since the cgroup was created."""

    read_bytes: int = 0
    write_bytes: int = 0
    read_ops: int = 0
    write_ops: int = 0


@dataclass(frozen=True, slots=True)
class Pressure:
    """One PSI resource (cpu, memory or io): share of time stalled over 10 s, and total stall time."""

    some_avg10: float | None = None
    some_total_ns: int | None = None
    full_avg10: float | None = None
    full_total_ns: int | None = None


@dataclass(frozen=True, slots=True)
class CgroupSample:
    """Everything ctop reads for one cgroup at one instant.

    ``path`` is relative to the hierarchy root ("/" for the root cgroup); ``inode`` is the inode of its
    directory, which changes when a cgroup is removed and recreated under the same path.
    """

    path: str
    inode: int
    # CPU time (cumulative, ns) and CPU configuration.
    cpu_usage_ns: int | None = None
    cpu_user_ns: int | None = None
    cpu_system_ns: int | None = None
    cpu_quota_us: int | None = None  # UNLIMITED when there is no quota
    cpu_period_us: int | None = None
    cpu_shares: int | None = None  # v1 shares; on v2 converted from cpu.weight
    cpu_weight: int | None = None  # v2 weight; on v1 converted from cpu.shares
    cpuset_cpus: str | None = None
    # CFS throttling (cumulative).
    cpu_periods: int | None = None
    cpu_throttled_periods: int | None = None
    cpu_throttled_ns: int | None = None
    # Memory (bytes).
    memory_usage_bytes: int | None = None
    memory_max_usage_bytes: int | None = None
    memory_limit_bytes: int | None = None  # UNLIMITED when there is no limit
    memory_inactive_file_bytes: int | None = None
    memory_rss_bytes: int | None = None  # v1 total_rss, v2 anon
    memory_cache_bytes: int | None = None  # v1 total_cache, v2 file
    memory_mapped_file_bytes: int | None = None
    memory_swap_bytes: int | None = None
    memory_swap_limit_bytes: int | None = None  # UNLIMITED when there is no limit
    # Memory failures and OOM (cumulative counters).
    memory_failcnt: int | None = None  # v1 memory.failcnt; v2 memory.events "max"
    memory_oom_events: int | None = None  # v2 memory.events "oom"
    memory_oom_kills: int | None = None  # v1 memory.oom_control oom_kill; v2 memory.events "oom_kill"
    # Page faults (cumulative): of the cgroup's own tasks (v1), and of its whole subtree. v2 counts only the
    # subtree, so there both pairs hold the same numbers (as in cAdvisor).
    memory_pgfault: int | None = None  # v1 memory.stat pgfault; v2 memory.stat pgfault
    memory_pgmajfault: int | None = None  # v1 pgmajfault; v2 pgmajfault
    memory_pgfault_hierarchy: int | None = None  # v1 total_pgfault; v2 pgfault
    memory_pgmajfault_hierarchy: int | None = None  # v1 total_pgmajfault; v2 pgmajfault
    # Block IO (cumulative), per "major:minor" device and in total.
    io_by_device: dict[str, IoCounters] | None = None
    io_total: IoCounters | None = None
    # Tasks.
    pids_current: int | None = None
    pids_max: int | None = None  # UNLIMITED when there is no limit
    processes: int | None = None  # members of this cgroup itself (cgroup.procs)
    threads: int | None = None  # threads of this cgroup itself (tasks / cgroup.threads)
    first_pid: int | None = None  # first member process (to find the cgroup's network namespace)
    # Pressure stall information, where the kernel has it enabled.
    pressure_cpu: Pressure | None = None
    pressure_memory: Pressure | None = None
    pressure_io: Pressure | None = None

    @property
    def depth(self) -> int:
        """0 for the root cgroup, 1 for its children, and so on."""
        return 0 if self.path == "/" else self.path.count("/")

    @property
    def working_set_bytes(self) -> int | None:
        """Memory usage minus inactive file cache, clamped at 0 (docker stats, kubelet, cAdvisor)."""
        if self.memory_usage_bytes is None:
            return None
        inactive = self.memory_inactive_file_bytes or 0
        return max(0, self.memory_usage_bytes - inactive)


@dataclass(frozen=True, slots=True)
class HostSample:
    """Host-wide figures read at the same instant as the cgroups."""

    monotonic_s: float
    wall_time_s: float
    cpu_time_ns: int | None  # sum of the first seven fields of /proc/stat "cpu", in ns (docker stats' system usage)
    online_cpus: int
    memory_total_bytes: int | None
    block_devices: dict[str, str] = field(default_factory=dict)  # "major:minor" -> device name ("sda")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One refresh: the host and every cgroup read, keyed by path."""

    host: HostSample
    cgroups: dict[str, CgroupSample]
    mode: str  # cgroup layout mode: v1, v2 or hybrid
    folded: dict[str, str] = field(default_factory=dict)  # crun's inner cgroups read into their container's sample
    # When each cgroup's CPU counter was read (time.monotonic()): a busy node can hold a reader back for a while
    # between the host's figures and a cgroup's, so each cgroup's rates go by its own read times (derive.py).
    read_at: dict[str, float] = field(default_factory=dict)
