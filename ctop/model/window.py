"""Cumulative counters over a sliding window of refreshes, per cgroup incarnation: CFS throttling over >= 10 s.

One refresh covers only a few CFS periods (100 ms each by default), so a throttled share computed per refresh jumps
between 0 and 100 %. The window keeps, for each cgroup of the latest refresh, the readings of its counters over the
last ``window_s`` seconds and gives deltas against the newest reading that is at least that old (so a window is
never shorter than ``window_s``, nor than one refresh interval). Until that much history exists, the deltas cover
what there is. A cgroup recreated under the same path (a new inode) or a counter that went backwards starts over:
no delta spans two incarnations.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from .sample import UNLIMITED, CgroupSample, Snapshot

THROTTLE_WINDOW_S = 10.0
Counters = tuple[int | None, ...]


@dataclass(frozen=True, slots=True)
class WindowDelta:
    """Counters' growth over ``seconds``; a delta is None where a counter was unknown at either end."""

    seconds: float
    deltas: tuple[int | None, ...]


@dataclass(frozen=True, slots=True)
class _Reading:
    at_s: float
    counters: Counters


@dataclass
class _History:
    incarnation: int
    readings: deque[_Reading]


def _went_back(old: Counters, new: Counters) -> bool:
    return len(old) != len(new) or any(a is not None and b is not None and b < a for a, b in zip(old, new))


class CounterWindow:
    """Cumulative counters of many keys over the last ``window_s`` seconds; only the keys of the latest update."""

    def __init__(self, window_s: float = THROTTLE_WINDOW_S) -> None:
        if window_s <= 0:
            raise ValueError("the window must be longer than 0 s")
        self.window_s = window_s
        self._by_key: dict[str, _History] = {}

    def __len__(self) -> int:
        return len(self._by_key)

    def update(self, now_s: float, readings: Mapping[str, tuple[int, Counters]]) -> dict[str, WindowDelta]:
        """Add one refresh (key -> (incarnation, counters)) read at ``now_s``; deltas for keys with an older reading.

        Keys missing from ``readings`` are forgotten, so memory follows the latest refresh.
        """
        previous, self._by_key = self._by_key, {}
        out: dict[str, WindowDelta] = {}
        for key, (incarnation, counters) in readings.items():
            history = previous.get(key)
            if (history is None or history.incarnation != incarnation
                    or _went_back(history.readings[-1].counters, counters) or history.readings[-1].at_s >= now_s):
                history = _History(incarnation, deque())
            readings_ = history.readings
            readings_.append(_Reading(now_s, counters))
            # Drop the oldest while the next one is already old enough to start a full window.
            while len(readings_) > 2 and now_s - readings_[1].at_s >= self.window_s:
                readings_.popleft()
            self._by_key[key] = history
            if len(readings_) >= 2:
                first = readings_[0]
                deltas = tuple(None if a is None or b is None else b - a for a, b in zip(first.counters, counters))
                out[key] = WindowDelta(now_s - first.at_s, deltas)
        return out


@dataclass(frozen=True, slots=True)
class Throttling:
    """CFS throttling of one cgroup over a window: share of periods throttled, throttled seconds per second."""

    percent: float | None
    seconds_per_s: float | None
    window_s: float


def _has_cpu_limit(sample: CgroupSample) -> bool:
    quota = sample.cpu_quota_us
    return quota is not None and quota != UNLIMITED and quota > 0


class ThrottleWindow:
    """Throttling of every cgroup with a CPU limit over at least ``window_s`` seconds (see the module docstring)."""

    def __init__(self, window_s: float = THROTTLE_WINDOW_S) -> None:
        self._window = CounterWindow(window_s)

    def __len__(self) -> int:
        return len(self._window)

    def update(self, snapshot: Snapshot) -> dict[str, Throttling]:
        """Feed one refresh; the throttling of each limited cgroup that has a reading before this one."""
        readings = {
            path: (s.inode, (s.cpu_periods, s.cpu_throttled_periods, s.cpu_throttled_ns))
            for path, s in snapshot.cgroups.items()
            if _has_cpu_limit(s) and s.cpu_periods is not None
        }
        out: dict[str, Throttling] = {}
        for path, delta in self._window.update(snapshot.host.monotonic_s, readings).items():
            periods, throttled, throttled_ns = delta.deltas
            percent = None
            if periods is not None and throttled is not None:
                percent = 0.0 if periods == 0 else min(100.0, throttled / periods * 100.0)
            per_s = None if throttled_ns is None else throttled_ns / 1e9 / delta.seconds
            out[path] = Throttling(percent, per_s, delta.seconds)
        return out
