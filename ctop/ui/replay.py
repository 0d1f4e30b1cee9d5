"""What the interactive view says in replay: the banner that cannot be taken for live, and events per workload."""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Iterable, Sequence, Set
from typing import TYPE_CHECKING, Protocol

from ..model.events import EXEC_EVENTS, Event
from ..model.frame import CgroupRow
from ..model.workload import workload_key

if TYPE_CHECKING:
    from ..history.replay import ReplayState

NOT_IN_REPLAY = "not available in replay: inspect reads the running system, and this is a recording."
EVENTS_PER_WORKLOAD = 50
WORKLOADS_KEPT = 2000
ABSENT_KEPT_S = 900.0  # events of a workload without a row are kept this long (a crash loop backs off up to 5 min)
ABSENT_WORKLOADS_KEPT = 256  # and of at most this many such workloads, the longest absent go first (churn)


class ReplayControl(Protocol):
    """What the view asks of a replay source (from the UI thread): queue a move."""

    def request(self, command: str) -> None: ...


def ago(seconds: float) -> str:
    """A short age: "12s", "7m12s", "2h05m", "3d04h"."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def stamp(when: float) -> str:
    return dt.datetime.fromtimestamp(when).strftime("%Y-%m-%d %H:%M:%S")


def banner(state: ReplayState | None, now: float) -> str:
    """The replay line at the top of every screen: "REPLAY 2026-11-29 14:05:03 (7m12s ago) — paused"."""
    if state is None:
        return " REPLAY — reading the recording…"
    parts = [f" REPLAY {stamp(state.time)} ({ago(now - state.time)} ago)",
             "following" if state.following else "paused"]
    if state.edge == "start":
        parts.append("start of the recording")
    elif state.edge == "end":
        parts.append("end of the recording" + (": waiting for new samples" if state.following else ""))
    return " — ".join(parts)


def status_part(state: ReplayState | None, delay: float) -> str:
    """The replay's part of the status line, where live says "every 1s" or "PAUSED"."""
    if state is None or not state.following:
        return "REPLAY paused: [ ] { } b f move, p follows"
    return f"REPLAY following every {delay:g}s"


def workload_events(events: Iterable[Event], row: CgroupRow) -> list[Event]:
    """The events of ``row``'s workload (for a pod: of its containers too), oldest first, and the OOM kills the
    detector could only name by this cgroup's path."""
    key = workload_key(row.identity, row.path)
    by_path = f"cgroup:{row.path}"
    return sorted((e for e in events if e.workload == key or e.workload.startswith(key + "/")
                   or (e.workload == by_path and e.type == "oom_kill")), key=lambda e: e.time)


class RecentEvents:
    """The last events of every workload this process saw in live Frames: of workloads with a row, and of those
    without one for ABSENT_KEPT_S, at most ABSENT_WORKLOADS_KEPT of them (a stopped container's events stay for its
    restart; under churn they go)."""

    def __init__(self) -> None:
        self._by_key: OrderedDict[str, list[Event]] = OrderedDict()  # lists: a deque costs 600 B even when empty
        self._absent_since: dict[str, float] = {}

    def add(self, events: Sequence[Event], present: Set[str], now: float) -> None:
        """Keep ``events``; forget the workloads not in ``present`` (the workload keys of the frame's rows, at
        ``now``) for longer than ABSENT_KEPT_S, and the longest absent beyond ABSENT_WORKLOADS_KEPT of them."""
        for e in events:
            if e.type in EXEC_EVENTS:  # the detail view lists recent execs on their own
                continue
            if e.workload not in self._by_key:
                self._by_key[e.workload] = []
                while len(self._by_key) > WORKLOADS_KEPT:
                    self._absent_since.pop(self._by_key.popitem(last=False)[0], None)
            self._by_key.move_to_end(e.workload)
            kept = self._by_key[e.workload]
            kept.append(e)
            if len(kept) > EVENTS_PER_WORKLOAD:
                del kept[0]
        for key in list(self._by_key):
            if key in present:
                self._absent_since.pop(key, None)
            elif now - self._absent_since.setdefault(key, now) > ABSENT_KEPT_S:
                del self._by_key[key], self._absent_since[key]
        while len(self._absent_since) > ABSENT_WORKLOADS_KEPT:  # in the order they went absent
            oldest = next(iter(self._absent_since))
            del self._by_key[oldest], self._absent_since[oldest]

    def for_row(self, row: CgroupRow) -> list[Event]:
        """The events kept of ``row``'s workload (for a pod: of its containers too), oldest first."""
        key = workload_key(row.identity, row.path)
        keys = [k for k in self._by_key if k in (key, f"cgroup:{row.path}") or k.startswith(key + "/")]
        return workload_events((e for k in keys for e in self._by_key[k]), row)
