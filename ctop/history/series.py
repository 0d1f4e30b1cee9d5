"""A workload's recent CPU % and working set from a recorder's store, across its restarts (for the live detail
view's sparklines)."""

from __future__ import annotations

from dataclasses import dataclass

from ..model.derive import cpu_percent
from ..model.frame import CgroupRow
from ..model.sample import CgroupSample, HostSample
from ..model.workload import workload_key
from .store import StoreReader

WINDOW_S = 600.0  # how far back the store is read


@dataclass(frozen=True)
class RecordedSeries:
    """Values oldest first, one per recorded frame (None: the workload had no cgroup then, or no rate yet)."""

    cpu: tuple[float | None, ...]
    memory: tuple[float | None, ...]
    first_time: float
    last_time: float
    cgroups: int  # how many incarnations the values came from


def workload_series(reader: StoreReader, row: CgroupRow, end: float, samples: int = 300) -> RecordedSeries | None:
    """The last ``samples`` recorded values of ``row``'s workload up to ``end``; None when nothing was recorded."""
    key = workload_key(row.identity, row.path)
    paths = {row.path} | {str(e.figures["id"]) for e in reader.events(end - WINDOW_S, end)
                          if e.workload == key and isinstance(e.figures.get("id"), str)}
    cpu: list[float | None] = []
    memory: list[float | None] = []
    times: list[float] = []
    incarnations: set[tuple[str, int]] = set()
    previous: dict[str, tuple[CgroupSample, HostSample]] = {}
    for frame in reader.frames(end - WINDOW_S, end, paths=paths):
        found = next((c.sample for p, c in frame.cgroups.items() if p in paths), None)
        times.append(frame.host.wall_time_s)
        if found is None:
            cpu.append(None)
            memory.append(None)
            continue
        incarnations.add((found.path, found.inode))
        before = previous.get(found.path)
        same = before is not None and before[0].inode == found.inode
        cpu.append(cpu_percent(before[0], found, before[1], frame.host) if same and before else None)
        ws = found.working_set_bytes
        memory.append(None if ws is None else float(ws))
        previous[found.path] = (found, frame.host)
    if not incarnations:
        return None
    cut = max(0, len(times) - samples)
    return RecordedSeries(tuple(cpu[cut:]), tuple(memory[cut:]), times[cut], times[-1], len(incarnations))
