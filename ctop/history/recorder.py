"""Feeds Frames to a store: their counters, names and the events the collector found; says once when it cannot
write, and once when it can again."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Protocol

from ..model.events import Event
from ..model.frame import CgroupRow, Frame
from .frames import record_of
from .store import StoreWriter

Tell = Callable[[str], None]


class RowFilter(Protocol):
    """Which cgroups to record (the exporter's ``--cgroup.include/exclude`` filter is one)."""

    def accepts(self, row: CgroupRow) -> bool: ...

    def accepts_path(self, path: str) -> bool: ...


class Recorder:
    """Appends every Frame it is given, and the events that came with it, to ``writer``; with ``row_filter`` only
    the rows (and the events of rows) it accepts."""

    def __init__(self, writer: StoreWriter, tell: Tell | None = None, row_filter: RowFilter | None = None) -> None:
        self.writer = writer
        self._tell = tell or (lambda text: None)
        self._filter = row_filter
        self._previous: set[str] = set()  # paths of the previous frame: a stop event names a path now gone
        self._paused = False
        self._told: set[str] = set()

    def record(self, frame: Frame, events: Iterable[Event] | None = None) -> bool:
        """Store one Frame and ``events`` (default: the Frame's own); False when the store could not take them."""
        events = list(frame.events if events is None else events)
        if self._filter is not None:
            frame, events = self._filtered(frame, events, self._filter)
        ok = self.writer.append(record_of(frame))
        for event in events:
            ok = self.writer.add_event(event) and ok
        if not ok and not self._paused:
            self._paused = True
            self._tell(f"Recording into {self.writer.directory} paused: {self.writer.last_error}; it resumes by "
                       "itself when the store can be written again.")
        elif ok and self._paused:
            self._paused = False
            self._tell(f"Recording into {self.writer.directory} resumed.")
        return ok

    def _filtered(self, frame: Frame, events: list[Event], row_filter: RowFilter) -> tuple[Frame, list[Event]]:
        rows = {p: r for p, r in frame.rows.items() if row_filter.accepts(r)}
        gone, self._previous = self._previous - set(frame.rows), set(frame.rows)
        kept = [e for e in events if (path := str(e.figures.get("id", ""))) in rows
                or (path in gone and row_filter.accepts_path(path))]
        return (frame if len(rows) == len(frame.rows) else dataclasses.replace(frame, rows=rows)), kept

    def tell_once(self, text: str) -> None:
        """Say ``text`` unless it was said before."""
        if text not in self._told:
            self._told.add(text)
            self._tell(text)

    @property
    def paused(self) -> bool:
        return self._paused
