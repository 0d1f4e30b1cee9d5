"""The "host" row: what the node spends outside every container, as the root cgroup minus the top-level workloads.

Counters that add up over the tree (CPU time, memory, IO, faults, threads, eBPF counts) are the root's minus
those of each top-level container or pod; what does not add up (limits, PSI, throttling) is no data. The row is
derived from the same samples as every other row, so live, batch and replay agree.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping

from .culprits import HOST
from .ebpf import EbpfCgroupCounters, added_counters
from .frame import Identity
from .sample import CgroupSample, IoCounters

HOST_PATH = HOST  # not a cgroup path (those start with "/"), so it never collides with one
HOST_IDENTITY = Identity(kind="host", name=HOST)
WORKLOAD_KINDS = frozenset({"container", "pod"})


def _parent(path: str) -> str | None:
    return None if path == "/" or not path.startswith("/") else path.rsplit("/", 1)[0] or "/"


def top_level_workloads(identities: Mapping[str, Identity], present: Container[str] | None = None) -> list[str]:
    """Paths of the containers and pods (of those ``present``, when given) that no other container or pod contains."""
    workloads = {p for p, ident in identities.items()
                 if ident.kind in WORKLOAD_KINDS and (present is None or p in present)}
    out = []
    for path in workloads:
        at = _parent(path)
        while at is not None and at not in workloads:
            at = _parent(at)
        if at is None:
            out.append(path)
    return sorted(out)


def inside(path: str, workloads: Iterable[str]) -> bool:
    """Whether ``path`` is one of ``workloads`` or below one."""
    return any(path == w or path.startswith(w + "/") for w in workloads)


def _minus(total: int | None, parts: Iterable[int | None]) -> int | None:
    if total is None:
        return None
    return max(0, total - sum(p for p in parts if p is not None))


def _io_minus(total: IoCounters | None, parts: list[IoCounters | None]) -> IoCounters | None:
    if total is None:
        return None
    known = [p for p in parts if p is not None]
    return IoCounters(*(max(0, getattr(total, f) - sum(getattr(p, f) for p in known))
                        for f in ("read_bytes", "write_bytes", "read_ops", "write_ops")))


def host_sample(cgroups: Mapping[str, CgroupSample], workloads: Iterable[str],
                same_as: Mapping[str, CgroupSample] | None = None) -> CgroupSample | None:
    """The root's sample minus ``workloads``'; None without a root.

    For the earlier snapshot of a pair, ``same_as`` is the later one: a workload counts only where it is the same
    cgroup (same inode) in both. A container that started since counts from zero, and one that went keeps its
    usage in the host's (the root still holds it), so neither makes the host's rate jump.
    """
    root = cgroups.get("/")
    if root is None:
        return None
    parts = [cgroups[w] for w in workloads if w in cgroups]
    if same_as is not None:
        parts = [s for s in parts if (o := same_as.get(s.path)) is not None and o.inode == s.inode]

    def rest(name: str) -> int | None:
        return _minus(getattr(root, name), [getattr(s, name) for s in parts])

    major = root.memory_pgmajfault_hierarchy if root.memory_pgmajfault_hierarchy is not None \
        else root.memory_pgmajfault
    minor = root.memory_pgfault_hierarchy if root.memory_pgfault_hierarchy is not None else root.memory_pgfault
    return CgroupSample(
        path=HOST_PATH, inode=root.inode,
        cpu_usage_ns=rest("cpu_usage_ns"), cpu_user_ns=rest("cpu_user_ns"), cpu_system_ns=rest("cpu_system_ns"),
        memory_usage_bytes=rest("memory_usage_bytes"), memory_inactive_file_bytes=rest("memory_inactive_file_bytes"),
        memory_rss_bytes=rest("memory_rss_bytes"), memory_cache_bytes=rest("memory_cache_bytes"),
        memory_mapped_file_bytes=rest("memory_mapped_file_bytes"), memory_swap_bytes=rest("memory_swap_bytes"),
        memory_pgmajfault=_minus(major, [s.memory_pgmajfault_hierarchy for s in parts]),
        memory_pgfault=_minus(minor, [s.memory_pgfault_hierarchy for s in parts]),
        io_total=_io_minus(root.io_total, [s.io_total for s in parts]),
    )


def host_threads(tasks_recursive: Mapping[str, int], workloads: Iterable[str]) -> int | None:
    """Threads outside the workloads: the root's subtree total minus theirs."""
    total = tasks_recursive.get("/")
    return None if total is None else _minus(total, [tasks_recursive.get(w) for w in workloads])


def host_ebpf(by_cgroup: Mapping[str, EbpfCgroupCounters], workloads: list[str],
              same_ids: Mapping[str, EbpfCgroupCounters] | None = None) -> EbpfCgroupCounters:
    """The eBPF counters of every cgroup outside the workloads, added up (eBPF counts each cgroup's own tasks).

    For the earlier reading of a pair, ``same_ids`` is the later one: a cgroup counts only where it kept its kernel
    id, so that a cgroup that came, went or was recreated between two readings adds no negative delta.
    """
    total = EbpfCgroupCounters()
    for path, c in by_cgroup.items():
        if inside(path, workloads):
            continue
        if same_ids is not None and ((o := same_ids.get(path)) is None or o.cgroup_id != c.cgroup_id):
            continue
        total = add_counters(total, c)
    return total


def add_counters(a: EbpfCgroupCounters, b: EbpfCgroupCounters) -> EbpfCgroupCounters:
    """Two cgroups' counters as one (kernel id 0: no cgroup of its own)."""
    return added_counters(a, b, 0)
