"""One row per container, with its limits: crun's inner cgroup folded into the container's scope, and limits read
from the cgroup each controller really holds the container's processes in.

- systemd hosts (v2, and v1 in the controllers crun nests in): crun makes ``libpod-<id>.scope/container`` and
  moves the processes there. The scope is the container's one row: it takes the inner cgroup's limits where its
  own do not say, with the throttling and memory-failure counters that go with them, and the inner cgroup's tasks;
  the inner cgroup gets no row of its own, and the eBPF counters of its tasks are the container's (fold_reading).
- cgroup v1: a controller may hold the container's processes in a cgroup below the row's (a runtime that nests its
  own cgroup in some controllers only); a container row whose limit is unknown takes it from the cgroup
  /proc/<pid>/cgroup names for that controller, when that is below the row.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping

from ..model.ebpf import EbpfCgroupCounters, EbpfReading, ExecRecord, added_counters, merged_culprits
from ..model.sample import UNLIMITED, CgroupSample
from ..sources.readfile import read_bytes
from .identify import identify

INNER = "container"  # crun's sub-cgroup (run.oci.systemd.subgroup) on cgroup v2
MEMORY_LIMITS = ("memory_limit_bytes", "memory_swap_limit_bytes")
CPU_LIMITS = ("cpu_quota_us", "cpu_period_us")
LIMITS = (*MEMORY_LIMITS, *CPU_LIMITS, "pids_max")


THROTTLING = ("cpu_periods", "cpu_throttled_periods", "cpu_throttled_ns")  # counted where the quota is
# Counters that are the subtree's on v2 (the scope's then include the inner cgroup's) and the cgroup's own on v1
# (the scope's then count none of its tasks): the larger of the two is the container's in both.
LARGER = ("memory_failcnt", "memory_oom_events", "memory_oom_kills", "memory_pgfault", "memory_pgmajfault")
TASKS = ("processes", "threads")  # the cgroup's own members: the scope's and the inner cgroup's add up


def fold_inner(samples: dict[str, CgroupSample]) -> tuple[dict[str, CgroupSample], dict[str, str]]:
    """``samples`` with each crun inner cgroup folded into its container scope and left out (a new dict when any
    was), and the folded paths: inner path -> the container's path."""
    out = samples
    into: dict[str, str] = {}
    for path, inner in samples.items():
        if not path.endswith("/" + INNER):
            continue
        outer_path = path[:-len(INNER) - 1]
        outer = samples.get(outer_path)
        if outer is None or identify(outer_path).kind != "container":
            continue
        if out is samples:
            out = dict(samples)
        out[outer_path] = _completed(out[outer_path], inner)
        del out[path]
        into[path] = outer_path
    return out, into


def _completed(outer: CgroupSample, inner: CgroupSample) -> CgroupSample:
    """The container's sample: the scope's, completed from crun's inner cgroup."""
    changes: dict[str, object] = {f: getattr(inner, f) for f in LIMITS
                                  if _unknown_or_unlimited(getattr(outer, f))
                                  and not _unknown_or_unlimited(getattr(inner, f))}
    if "cpu_quota_us" in changes:  # the quota is the inner cgroup's: so are its period and throttling
        changes.update({f: getattr(inner, f) for f in ("cpu_period_us", *THROTTLING)})
    else:
        changes.pop("cpu_period_us", None)
    for f in LARGER:
        values = [v for v in (getattr(outer, f), getattr(inner, f)) if v is not None]
        if values:
            changes[f] = max(values)
    for f in TASKS:
        if getattr(inner, f) is not None:
            changes[f] = (getattr(outer, f) or 0) + getattr(inner, f)
    if outer.first_pid is None and inner.first_pid is not None:
        changes["first_pid"] = inner.first_pid
    return dataclasses.replace(outer, **changes)  # type: ignore[arg-type]


def fold_reading(reading: EbpfReading, into: Mapping[str, str]) -> EbpfReading:
    """``reading`` with the counters, culprits, OOM kills and execs of folded inner cgroups (``into``: inner path
    -> container path) counted as their container's."""
    if not into:
        return reading

    def moved(path: str) -> str:
        return into.get(path, path)

    by_cgroup: dict[str, EbpfCgroupCounters] = {}
    for path, counters in reading.by_cgroup.items():
        counters = _renamed_culprits(counters, into)
        target = moved(path)
        if target in by_cgroup:  # the scope's own and the inner cgroup's: under the inner id (where the tasks are)
            earlier = by_cgroup[target]
            counters = added_counters(earlier, counters, counters.cgroup_id if path in into else earlier.cgroup_id)
        by_cgroup[target] = counters
    execs: dict[str, tuple[ExecRecord, ...]] = {}
    for path, records in reading.execs.items():
        target = moved(path)
        execs[target] = tuple(sorted(execs.get(target, ()) + records, key=lambda r: r.unix_time))
    return dataclasses.replace(
        reading, by_cgroup=by_cgroup, execs=execs,
        oom_kills=tuple(k if k.cgroup is None else dataclasses.replace(k, cgroup=moved(k.cgroup))
                        for k in reading.oom_kills),
        new_cgroups=tuple(dict.fromkeys(map(moved, reading.new_cgroups))),
        removed_cgroups=tuple(dict.fromkeys(p for p in reading.removed_cgroups if p not in into)),
        covered=None if reading.covered is None else reading.covered | {moved(p) for p in reading.covered})


def _renamed_culprits(counters: EbpfCgroupCounters, into: Mapping[str, str]) -> EbpfCgroupCounters:
    if not any(culprit in into for culprit, _ in counters.preempted_by):
        return counters
    return dataclasses.replace(counters, preempted_by=merged_culprits(
        [(into.get(culprit, culprit), n) for culprit, n in counters.preempted_by]))


def controller_paths(pid: int, proc_root: str = "/proc") -> dict[str, str]:
    """Controller -> cgroup path of ``pid`` from /proc/<pid>/cgroup (v1 lines; "" for the unified one)."""
    out: dict[str, str] = {}
    for line in (read_bytes(os.path.join(proc_root, str(pid), "cgroup")) or b"").decode("utf-8", "replace").split("\n"):
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(","):
                out[controller] = parts[2]
    return out


def limits_where_set(samples: dict[str, CgroupSample], read: Callable[[str], CgroupSample | None],
                     proc_root: str = "/proc", paths_of: Callable[[int, str], Mapping[str, str]] = controller_paths,
                     ) -> dict[str, CgroupSample]:
    """``samples`` with the unknown memory and CPU limits of container rows read at the path the memory and cpu
    controllers hold their first process in (v1), when that is below the row's own path."""
    out = samples
    for path, sample in samples.items():
        pid = sample.first_pid
        if pid is None:  # most cgroups of a node: no process to follow (and the check below is per cgroup)
            continue
        missing = [(c, fields) for c, fields in (("memory", MEMORY_LIMITS), ("cpu", CPU_LIMITS))
                   if getattr(sample, fields[0]) is None]
        if not missing or identify(path).kind != "container":
            continue
        where = paths_of(pid, proc_root)
        changes: dict[str, object] = {}
        for controller, fields in missing:
            other = where.get(controller)
            if not other or not other.startswith(path + "/"):  # only a cgroup of the container's own, below its row
                continue
            found = read(other)
            if found is not None and getattr(found, fields[0]) is not None:
                changes.update({f: getattr(found, f) for f in fields})
        if changes:
            if out is samples:
                out = dict(samples)
            out[path] = dataclasses.replace(sample, **changes)  # type: ignore[arg-type]
    return out


def _unknown_or_unlimited(value: object) -> bool:
    return value is None or value == UNLIMITED
