"""Feeds Frames to a store: their counters, names and the events they reveal; says once when it cannot write."""

from __future__ import annotations

from collections.abc import Callable

from ..model.frame import Frame
from .events import EventDetector
from .frames import record_of
from .store import Event, StoreReader, StoreWriter

Tell = Callable[[str], None]
RESTART_MEMORY_S = 7 * 86400.0  # restart counts carry over from the store's events of this long


def restart_counts(directory: str, now: float) -> dict[str, int]:
    """The latest restart count of each workload, from the events already in the store."""
    counts: dict[str, int] = {}
    try:
        reader = StoreReader(directory)
    except Exception:  # no store yet, or unreadable: counts start at zero
        return counts
    try:
        for event in reader.events(now - RESTART_MEMORY_S, now):
            restarts = event.figures.get("restarts")
            if isinstance(restarts, int):
                counts[event.workload] = restarts
    finally:
        reader.close()
    return counts


class Recorder:
    """Appends every Frame it is given to ``writer``, with the events the detector finds in it."""

    def __init__(self, writer: StoreWriter, detector: EventDetector | None = None, tell: Tell | None = None) -> None:
        self.writer = writer
        self.detector = detector or EventDetector()
        self._tell = tell or (lambda text: None)
        self._paused = False

    def record(self, frame: Frame) -> list[Event]:
        """Store one Frame and its events; returns the events (also when the store could not take them)."""
        ok = self.writer.append(record_of(frame))
        events = self.detector.observe(frame)
        for event in events:
            ok = self.writer.add_event(event) and ok
        if not ok and not self._paused:
            self._paused = True
            self._tell(f"Recording into {self.writer.directory} paused: {self.writer.last_error}; it resumes by "
                       "itself when the store can be written again.")
        elif ok and self._paused:
            self._paused = False
            self._tell(f"Recording into {self.writer.directory} resumed.")
        return events

    @property
    def paused(self) -> bool:
        return self._paused
