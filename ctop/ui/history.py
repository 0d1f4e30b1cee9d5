"""Recent values per cgroup for the detail view's sparklines, kept by the main loop, and how to draw them."""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import overload

from ..model.frame import Frame

BLOCKS = "▁▂▃▄▅▆▇█"


class Series(Sequence[float | None]):
    """The last ``capacity`` values of one figure, oldest first, 8 bytes each; None is kept as NaN. A deque of float
    objects took 34 bytes a value: with two series of 300 per cgroup, 20 MB on a node of 1000 cgroups (now 5)."""

    __slots__ = ("_start", "_values", "capacity")

    def __init__(self, capacity: int, values: Iterable[float | None] = ()) -> None:
        self.capacity = max(1, capacity)
        self._values = array("d")
        self._start = 0  # where the oldest value is, once the ring is full
        for value in values:
            self.append(value)

    def append(self, value: float | None) -> None:
        number = math.nan if value is None else float(value)
        if len(self._values) < self.capacity:
            self._values.append(number)
        else:
            self._values[self._start] = number
            self._start = (self._start + 1) % self.capacity

    def __len__(self) -> int:
        return len(self._values)

    @overload
    def __getitem__(self, index: int) -> float | None: ...

    @overload
    def __getitem__(self, index: slice) -> list[float | None]: ...

    def __getitem__(self, index: int | slice) -> float | list[float | None] | None:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        n = len(self._values)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError("series index out of range")
        value = self._values[(self._start + index) % n]
        return None if math.isnan(value) else value

    def __iter__(self) -> Iterator[float | None]:
        values, start = self._values, self._start
        for value in (*values[start:], *values[:start]):
            yield None if math.isnan(value) else value


class History:
    """The last ``length`` CPU % and working-set values of every cgroup in the frames seen (None = no data)."""

    def __init__(self, length: int = 300) -> None:
        self.length = length
        self.cpu: dict[str, Series] = {}
        self.memory: dict[str, Series] = {}

    def backfill(self, path: str, cpu: Sequence[float | None], memory: Sequence[float | None]) -> None:
        """Put earlier values (a recorder's) before those seen live, keeping the newest ``length``."""
        for series, earlier in ((self.cpu, cpu), (self.memory, memory)):
            series[path] = Series(self.length, [*earlier, *series.get(path, ())])

    def add(self, frame: Frame) -> None:
        rows = frame.listed()
        for path, row in rows.items():
            cpu, memory = self.cpu.get(path), self.memory.get(path)
            if cpu is None or memory is None:
                cpu = self.cpu[path] = Series(self.length)
                memory = self.memory[path] = Series(self.length)
            cpu.append(row.cpu_percent)
            ws = row.sample.working_set_bytes
            memory.append(None if ws is None else float(ws))
        for series in (self.cpu, self.memory):
            for gone in [p for p in series if p not in rows]:
                del series[gone]


def sparkline(values: Sequence[float | None], width: int, top: float | None = None) -> str:
    """The last ``width`` values as block characters scaled to ``top`` (default: their maximum); " " for no data."""
    if width <= 0:
        return ""
    tail = list(values)[-width:]
    known = [v for v in tail if v is not None]
    scale = top if top else (max(known) if known else 0.0)
    out = []
    for v in tail:
        if v is None:
            out.append(" ")
        elif scale <= 0:
            out.append(BLOCKS[0])
        else:
            out.append(BLOCKS[min(len(BLOCKS) - 1, max(0, round(v / scale * (len(BLOCKS) - 1))))])
    return "".join(out).rjust(width)
