"""The interactive replay's source: Frames from a store at a position that steps, jumps, stays put or follows.

The UI thread only queues commands (``request``); ``collect`` runs on the Feed's thread, applies them, reads the
store and posts a ``ReplayState`` just before it returns the Frame, so the view never touches the store.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..model.events import Event, EventDetector
from ..model.frame import Frame
from ..model.workload import workload_key
from .frames import replayed_frame
from .store import FrameRecord, StoreError, StoreReader

Post = Callable[[tuple[Any, ...]], None]
EVENTS_AROUND_S = 3600.0  # the timeline shows events this long before and after the position
EVENTS_REFRESH_S = 5.0  # how often events near the end of a growing store are read again
SERIES_SAMPLES = 300  # the detail view's sparklines: this many samples up to the position (as History keeps live)
START, END = "start", "end"


@dataclass(frozen=True)
class ReplayState:
    """Where the replay is: the shown frame's time, whether it follows, which end it met, and events around it."""

    time: float
    following: bool
    edge: str = ""  # START or END when the last move met that end of the recording
    first: float | None = None
    last: float | None = None
    events: tuple[Event, ...] = ()
    problems: tuple[str, ...] = ()
    series: Series | None = None  # the detail view's cgroup: its CPU % and working set up to the position


@dataclass(frozen=True)
class Series:
    """The last values of one cgroup up to the position, oldest first (None: no value then)."""

    path: str
    time: float
    cpu: tuple[float | None, ...]
    memory: tuple[float | None, ...]


@dataclass
class _EventCache:
    low: float
    high: float
    last_frame: float
    read_at: float
    events: tuple[Event, ...]


class ReplaySource:
    """Frames of ``reader`` from ``at`` on. ``request`` (any thread) queues "step:N", "jump:SECONDS", "follow" or
    "pause"; ``collect`` (the Feed's thread) applies them and returns the Frame shown at the position."""

    def __init__(self, reader: StoreReader, at: float, *, following: bool = False,
                 clock: Callable[[], float] = time.time) -> None:
        self.reader = reader
        self.post: Post = lambda _message: None
        self._clock = clock
        self._lock = threading.Lock()
        self._commands: list[str] = []
        self._requested = at
        self._position: float | None = None
        self._following = following
        self._anchor = (at, clock())  # (position, wall clock) when following began
        self._edge = ""
        self._cache: _EventCache | None = None
        self._detail = ""  # the cgroup the detail view shows: its series goes with each state
        self._series: Series | None = None

    def request(self, command: str) -> None:
        """Queue a move for the next ``collect``: "step:-1", "jump:600", "follow", "pause"; or "detail:PATH" (""
        when the detail view closes)."""
        with self._lock:
            self._commands.append(command)

    def collect(self) -> Frame:
        """The Frame at the position after the queued moves (and, when following, the time that passed)."""
        with self._lock:
            commands, self._commands = self._commands, []
        span = self.reader.time_range()
        if span is None:
            raise StoreError(f"Nothing is recorded in {self.reader.directory} yet.")
        first, last = span
        if self._position is None:
            self._position, self._edge = self._clamp(self._requested, first, last)
            self._anchor = (self._position, self._clock())
        for command in commands:
            self._apply(command, first, last)
        if self._following and all(c.startswith("detail:") for c in commands):  # a move re-anchors instead
            target = self._anchor[0] + (self._clock() - self._anchor[1])
            self._position, self._edge = self._clamp(target, first, last)
        position = self._position
        current, previous = self._pair(position)
        if current is None:
            raise StoreError(f"No frame is recorded at or before {time.ctime(position)}.")
        shown = current.host.wall_time_s
        events = self._events_around(shown, last)
        frame = self._with_history(replayed_frame(current, previous), events, shown,
                                   previous.host.wall_time_s if previous is not None else None)
        series = self._series_of(frame, previous) if self._detail else None
        self.post(("replay", ReplayState(shown, self._following, self._edge, first, last, events,
                                         tuple(self.reader.problems), series)))
        return frame

    def _apply(self, command: str, first: float, last: float) -> None:
        name, _, arg = command.partition(":")
        if name == "detail":
            self._detail = arg
            return
        position = self._position if self._position is not None else first
        if name == "step":
            self._position, self._edge = self._step(position, int(arg))
            self._following = False
        elif name == "jump":
            self._position, self._edge = self._clamp(position + float(arg), first, last)
        elif name == "follow":
            self._following = True
        elif name == "pause":
            self._following = False
        self._edge = self._edge if name in ("step", "jump") else ""
        self._anchor = (self._position if self._position is not None else first, self._clock())

    def _clamp(self, when: float, first: float, last: float) -> tuple[float, str]:
        """The time of the last frame at or before ``when``, kept inside the recording; the end it met, if any."""
        if when <= first:
            return first, START
        if when >= last:
            return last, END
        before, _ = self.reader.neighbours(when + 1e-6)  # the last frame at or before ``when``
        return (before if before is not None else first), ""

    def _step(self, position: float, count: int) -> tuple[float, str]:
        for _ in range(abs(count)):
            before, after = self.reader.neighbours(position)
            nxt = after if count > 0 else before
            if nxt is None:
                return position, END if count > 0 else START
            position = nxt
        return position, ""

    def _pair(self, position: float) -> tuple[FrameRecord | None, FrameRecord | None]:
        """The frame at ``position`` and the one just before it (for its rates), in one pass over the store."""
        before, _ = self.reader.neighbours(position)
        frames = list(self.reader.frames(before if before is not None else position, position))
        if not frames:
            return None, None
        return frames[-1], frames[-2] if len(frames) > 1 else None

    def _series_of(self, frame: Frame, previous: FrameRecord | None) -> Series | None:
        """The detail cgroup's CPU % and working set over the last samples: one value added when the position moved
        to the next sample, otherwise read again from the store (that cgroup only)."""
        path, shown = self._detail, frame.snapshot.host.wall_time_s
        row = frame.rows.get(path)
        ws = row.sample.working_set_bytes if row is not None else None
        value = (row.cpu_percent if row is not None else None, None if ws is None else float(ws))
        old = self._series
        if old is not None and old.path == path and old.time == shown:
            return old
        if old is not None and old.path == path and previous is not None and old.time == previous.host.wall_time_s:
            cpu, memory = (*old.cpu, value[0])[-SERIES_SAMPLES:], (*old.memory, value[1])[-SERIES_SAMPLES:]
        else:
            interval = frame.interval_s or 1.0
            recorded = list(self.reader.frames(shown - SERIES_SAMPLES * interval, shown, {path}))
            cpu_list: list[float | None] = []
            mem_list: list[float | None] = []
            for before, current in zip([None, *recorded[:-1]], recorded):
                past = replayed_frame(current, before).rows.get(path)
                ws = past.sample.working_set_bytes if past is not None else None
                cpu_list.append(past.cpu_percent if past is not None else None)
                mem_list.append(None if ws is None else float(ws))
            cpu, memory = tuple(cpu_list[-SERIES_SAMPLES:]), tuple(mem_list[-SERIES_SAMPLES:])
        self._series = Series(path, shown, cpu, memory)
        return self._series

    def _events_around(self, position: float, last: float) -> tuple[Event, ...]:
        """The store's events within ``EVENTS_AROUND_S`` of ``position``, read again only when needed."""
        low, high = position - EVENTS_AROUND_S, position + EVENTS_AROUND_S
        cache = self._cache
        now = self._clock()
        if cache is not None and cache.low <= low and high <= cache.high and (
                high <= cache.last_frame or now - cache.read_at < EVENTS_REFRESH_S or last <= cache.last_frame):
            return tuple(e for e in cache.events if low <= e.time <= high)
        read_low, read_high = position - 2 * EVENTS_AROUND_S, position + 2 * EVENTS_AROUND_S
        events = tuple(sorted(self.reader.events(read_low, read_high), key=lambda e: e.time))
        self._cache = _EventCache(read_low, read_high, last, now, events)
        return tuple(e for e in events if low <= e.time <= high)

    @staticmethod
    def _with_history(frame: Frame, events: Iterable[Event], shown: float, previous: float | None) -> Frame:
        """``frame`` with the events of its interval and, on container rows, restarts and last OOM kill as of then."""
        past = [e for e in events if e.time <= shown]
        detector = EventDetector()
        detector.seed(past)
        rows = dict(frame.rows)
        for path, row in frame.rows.items():
            if row.identity.kind != "container":
                continue
            state = detector.state(workload_key(row.identity, path))
            oom = state.last_oom_kill if state is not None else None
            rows[path] = dataclasses.replace(row, restarts=state.restarts if state is not None else 0,
                                             oom_kill_age_seconds=None if oom is None else max(0.0, shown - oom))
        mine = tuple(e for e in past if previous is None or e.time > previous)
        return dataclasses.replace(frame, rows=rows, events=mine)


def open_replay(directory: str, at: float) -> tuple[ReplaySource, tuple[float, float]]:
    """A source over the store in ``directory`` and the recording's first and last times; StoreError (one
    sentence) when there is no store, it is empty, or a newer ctop wrote it."""
    reader = StoreReader(directory)
    try:
        span = reader.time_range()
    except StoreError:
        reader.close()
        raise
    if span is None:
        reader.close()
        raise StoreError(f"Nothing is recorded in {directory} yet: start 'ctop record --dir {directory}' first.")
    return ReplaySource(reader, at), span

