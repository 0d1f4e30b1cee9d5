"""One row per container, with its limits: crun's inner cgroup folded into the container's scope, and limits read
from the cgroup each controller really holds the container's processes in.

- Pure cgroup v2 with systemd: crun makes ``libpod-<id>.scope/container`` and moves the processes there; the
  scope is the container's row, and takes the limits, the first process and the process count of the inner cgroup
  where its own do not say (the inner cgroup stays a plain cgroup row).
- cgroup v1: a controller may hold the container's processes in a cgroup below the row's (a runtime that nests its
  own cgroup in some controllers only); a container row whose limit is unknown takes it from the cgroup
  /proc/<pid>/cgroup names for that controller, when that is below the row.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping

from ..model.sample import UNLIMITED, CgroupSample
from ..sources.readfile import read_bytes
from .identify import identify

INNER = "container"  # crun's sub-cgroup (run.oci.systemd.subgroup) on cgroup v2
MEMORY_LIMITS = ("memory_limit_bytes", "memory_swap_limit_bytes")
CPU_LIMITS = ("cpu_quota_us", "cpu_period_us")
LIMITS = (*MEMORY_LIMITS, *CPU_LIMITS, "pids_max")


def fold_inner(samples: dict[str, CgroupSample]) -> dict[str, CgroupSample]:
    """``samples`` with each container scope completed from its crun inner cgroup (a new dict when any changed)."""
    out = samples
    for path, inner in samples.items():
        if not path.endswith("/" + INNER):
            continue
        outer_path = path[:-len(INNER) - 1]
        outer = out.get(outer_path)
        if outer is None or identify(outer_path).kind != "container":
            continue
        changes: dict[str, object] = {f: getattr(inner, f) for f in LIMITS
                                      if _unknown_or_unlimited(getattr(outer, f))
                                      and not _unknown_or_unlimited(getattr(inner, f))}
        if "cpu_quota_us" not in changes:
            changes.pop("cpu_period_us", None)
        if outer.first_pid is None and inner.first_pid is not None:
            changes.update(first_pid=inner.first_pid, processes=inner.processes)
        if changes:
            if out is samples:
                out = dict(samples)
            out[outer_path] = dataclasses.replace(outer, **changes)  # type: ignore[arg-type]
    return out


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
