"""The only orchestrator: reads the sources, keeps the previous snapshot, and hands out one Frame per refresh."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .model.derive import derive_row
from .model.frame import CgroupRow, Frame, Identity
from .model.sample import CgroupSample, Snapshot
from .sources.cgroupfs import CgroupReader
from .sources.cgroupfs_layout import CgroupLayout, detect_layout
from .sources.procfs import HostReader


@dataclass(frozen=True)
class CollectorConfig:
    """Where to read from and how much."""

    cgroup_root: str = "/sys/fs/cgroup"
    proc_root: str = "/proc"
    max_depth: int | None = None  # None: the whole tree
    idle_reread_s: float = 10.0  # idle cgroups (CPU time unchanged) are re-read in full at least this often
    rescan_s: float = 10.0  # cgroups present only in non-CPU v1 hierarchies are looked for this often


def root_identity(path: str) -> Identity:
    return Identity(kind="root") if path == "/" else Identity()


class Collector:
    """Reads a snapshot per call and derives rates against the previous one."""

    def __init__(self, config: CollectorConfig | None = None, layout: CgroupLayout | None = None) -> None:
        self.config = config or CollectorConfig()
        self.layout = layout or detect_layout(self.config.cgroup_root)
        self.cgroups = CgroupReader(self.layout)
        self.host = HostReader(self.config.proc_root)
        self._previous: Snapshot | None = None

    def snapshot(self) -> Snapshot:
        """Read the host and every cgroup once."""
        host, meminfo = self.host.read()
        samples = self.cgroups.read_all(self.config.max_depth, idle_reread_s=self.config.idle_reread_s,
                                        rescan_s=self.config.rescan_s)
        root = samples.get("/")
        if root is not None and root.memory_usage_bytes is None and meminfo:
            samples["/"] = _root_memory_from_meminfo(root, meminfo)
        return Snapshot(host=host, cgroups=samples, mode=self.layout.mode)

    def collect(self) -> Frame:
        """One refresh: a new snapshot turned into rows with rates against the previous refresh."""
        current = self.snapshot()
        previous = self._previous
        self._previous = current
        return build_frame(current, previous)


def build_frame(current: Snapshot, previous: Snapshot | None) -> Frame:
    """Rows for ``current`` with rates against ``previous`` (pure: used by tests on recorded snapshots)."""
    host_prev = previous.host if previous else None
    prev_cgroups = previous.cgroups if previous else {}
    tasks = subtree_threads(current.cgroups)
    rows: dict[str, CgroupRow] = {}
    for path, sample in current.cgroups.items():
        row = derive_row(sample, prev_cgroups.get(path), current.host, host_prev, root_identity(path))
        rows[path] = dataclasses.replace(row, tasks_recursive=tasks.get(path))
    interval = None if previous is None else current.host.monotonic_s - previous.host.monotonic_s
    return Frame(snapshot=current, rows=rows, interval_s=interval)


def subtree_threads(samples: dict[str, CgroupSample]) -> dict[str, int]:
    """Threads in each cgroup plus all its descendants (only cgroups that were read count)."""
    totals: dict[str, int] = {}
    for path in sorted(samples, key=lambda p: p.count("/") if p != "/" else 0, reverse=True):
        own = samples[path].threads or 0
        totals[path] = totals.get(path, 0) + own
        if path != "/":
            parent = path.rsplit("/", 1)[0] or "/"
            totals[parent] = totals.get(parent, 0) + totals[path]
    return totals


def _root_memory_from_meminfo(root: CgroupSample, meminfo: dict[str, int]) -> CgroupSample:
    """cgroup v2 has no memory.current at the root: take the host's from /proc/meminfo, as cAdvisor does."""
    total, free = meminfo.get("MemTotal"), meminfo.get("MemFree")
    if total is None or free is None:
        return root
    return dataclasses.replace(
        root,
        memory_usage_bytes=total - free,
        memory_inactive_file_bytes=meminfo.get("Inactive(file)"),
        memory_cache_bytes=meminfo.get("Cached"),
        memory_rss_bytes=meminfo.get("AnonPages"),
    )
