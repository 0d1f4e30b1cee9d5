"""Recent values per cgroup for the detail view's sparklines, kept by the main loop, and how to draw them."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from ..model.frame import Frame

BLOCKS = "▁▂▃▄▅▆▇█"


class History:
    """The last ``length`` CPU % and working-set values of every cgroup in the frames seen (None = no data)."""

    def __init__(self, length: int = 300) -> None:
        self.length = length
        self.cpu: dict[str, deque[float | None]] = {}
        self.memory: dict[str, deque[float | None]] = {}

    def backfill(self, path: str, cpu: Sequence[float | None], memory: Sequence[float | None]) -> None:
        """Put earlier values (a recorder's) before those seen live, keeping the newest ``length``."""
        for series, earlier in ((self.cpu, cpu), (self.memory, memory)):
            series[path] = deque([*earlier, *series.get(path, ())], maxlen=self.length)

    def add(self, frame: Frame) -> None:
        rows = frame.listed()
        for path, row in rows.items():
            self.cpu.setdefault(path, deque(maxlen=self.length)).append(row.cpu_percent)
            ws = row.sample.working_set_bytes
            self.memory.setdefault(path, deque(maxlen=self.length)).append(None if ws is None else float(ws))
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
