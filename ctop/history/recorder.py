"""Feeds Frames to a store: their counters, names and the events the collector found; says once when it cannot
write, and once when it can again."""

from __future__ import annotations

from collections.abc import Callable

from ..model.frame import Frame
from .frames import record_of
from .store import StoreWriter

Tell = Callable[[str], None]


class Recorder:
    """Appends every Frame it is given, and the events that came with it, to ``writer``."""

    def __init__(self, writer: StoreWriter, tell: Tell | None = None) -> None:
        self.writer = writer
        self._tell = tell or (lambda text: None)
        self._paused = False

    def record(self, frame: Frame) -> bool:
        """Store one Frame and its events; False when the store could not take them."""
        ok = self.writer.append(record_of(frame))
        for event in frame.events:
            ok = self.writer.add_event(event) and ok
        if not ok and not self._paused:
            self._paused = True
            self._tell(f"Recording into {self.writer.directory} paused: {self.writer.last_error}; it resumes by "
                       "itself when the store can be written again.")
        elif ok and self._paused:
            self._paused = False
            self._tell(f"Recording into {self.writer.directory} resumed.")
        return ok

    @property
    def paused(self) -> bool:
        return self._paused
