"""Turns consecutive Frames into events: container start, stop and restart, OOM kills, limit changes, and episodes
of throttling, run-queue latency and exec storms. The same detector runs in the recorder and in the live view.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from operator import attrgetter

from .derive import counter_delta, cpu_limit_cores
from .frame import CgroupRow, Frame
from .sample import UNLIMITED
from .workload import workload_key, workload_name


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened to a workload, at a time, with its figures (JSON-able values)."""

    time: float
    type: str
    workload: str
    figures: Mapping[str, object] = field(default_factory=dict)


THROTTLE_WINDOW_S = 10.0  # throttling is judged over this many seconds of CFS periods, not one refresh
THROTTLE_MIN_WINDOW_S = 5.0
THROTTLE_START = 0.5  # share of periods throttled that starts an episode
THROTTLE_END = 0.25
RUNQ_P99_THRESHOLD_S = 0.05
EXEC_STORM_PER_S = 50.0
EPISODE_MIN_S = 3.0  # a run-queue or exec episode must last this long
EXECS_PER_REFRESH = 5  # exec events (with their arguments) per container per frame; the rest are one count
EXECS_PER_FRAME = 50  # exec events of all containers together per frame (a node of exec-ing containers)
EXEC_EVENTS = frozenset({"exec", "exec_more"})  # many per workload: listed by ``ctop events``, not in timelines
FORGET_AFTER_S = 3600.0  # a workload gone this long is forgotten (restart counts included)
GONE_KEPT = 512  # and at most this many gone workloads, the longest gone first (a node churning short-lived jobs)
NAMING_GRACE_S = 10.0  # a new container's start waits this long for the runtime's name (it comes after the cgroup)
UNNAMED = "cgroup:"  # the workload key prefix of a cgroup known by its path only


@dataclass
class WorkloadState:
    """What the detector remembers about one workload."""

    incarnation: tuple[str, int] | None = None  # (path, inode) of its current cgroup; None while stopped
    restarts: int = 0
    last_seen: float = 0.0
    last_oom_kill: float | None = None


@dataclass
class _Episode:
    started: float
    peak: float


@dataclass
class _Watch:
    """A value that starts an episode once it stays at or above a threshold for EPISODE_MIN_S, and ends it below."""

    since: float | None = None
    episode: _Episode | None = None

    def update(self, now: float, value: float, threshold: float) -> _Episode | None:
        """The episode that started (it is ``self.episode`` then) or ended with this value; None otherwise."""
        if value >= threshold:
            self.since = self.since if self.since is not None else now
            if self.episode is None and now - self.since >= EPISODE_MIN_S:
                self.episode = _Episode(self.since, value)
                return self.episode
            if self.episode is not None:
                self.episode.peak = max(self.episode.peak, value)
            return None
        self.since = None
        ended, self.episode = self.episode, None
        return ended


@dataclass
class _Incarnation:
    """Per-cgroup memory for limits and episodes."""

    window: deque[tuple[float, int, int]] = field(default_factory=deque)  # (time, periods, throttled), cumulative
    throttling: _Episode | None = None
    runq: _Watch = field(default_factory=_Watch)
    execs: _Watch = field(default_factory=_Watch)


_limit_inputs = attrgetter("memory_limit_bytes", "cpu_quota_us", "cpu_period_us", "pids_max")  # all _limits reads


def _limits(row: CgroupRow) -> dict[str, object]:
    s = row.sample
    memory = s.memory_limit_bytes
    pids = s.pids_max
    return {"memory_limit_bytes": None if memory == UNLIMITED else memory,
            "cpu_limit_cores": cpu_limit_cores(s),
            "pids_max": None if pids == UNLIMITED else pids}


class EventDetector:
    """Feed it every Frame in order (``observe``); it returns the events that frame revealed.

    ``seed`` takes earlier events (a recorder's store) so restart counts and OOM kills carry over.
    """

    def __init__(self, restarts: Mapping[str, int] | None = None) -> None:
        self.workloads: dict[str, WorkloadState] = {
            key: WorkloadState(restarts=count) for key, count in (restarts or {}).items()}
        self.by_path: dict[str, WorkloadState] = {}  # the containers of the latest frame
        self._keys: dict[tuple[str, int], str] = {}  # workload key of each cgroup of the latest frame
        self._unnamed: dict[tuple[str, int], float] = {}  # new containers waiting for their name: first seen
        self._rows: dict[str, CgroupRow] = {}
        self._incarnations: dict[tuple[str, int], _Incarnation] = {}
        self._oom_seen: set[tuple[int, float]] = set()
        self._exec_seen: dict[str, float] = {}  # time of the latest exec turned into an event, by cgroup path
        self._exec_budget = EXECS_PER_FRAME  # exec events the current frame may still list
        self._first = True

    def state(self, key: str) -> WorkloadState | None:
        return self.workloads.get(key)

    def seed(self, events: Iterable[Event]) -> None:
        """Take restart counts and OOM-kill times from earlier events (oldest first)."""
        for event in events:
            state = self.workloads.setdefault(event.workload, WorkloadState(last_seen=event.time))
            restarts = event.figures.get("restarts")
            if isinstance(restarts, int) and not isinstance(restarts, bool):
                state.restarts = restarts
            if event.type == "oom_kill":
                state.last_oom_kill = max(state.last_oom_kill or 0.0, event.time)
            state.last_seen = max(state.last_seen, event.time)

    def observe(self, frame: Frame) -> list[Event]:
        now = frame.snapshot.host.wall_time_s
        events: list[Event] = []
        rows = frame.rows
        containers = {path: row for path, row in rows.items() if row.identity.kind == "container"}
        self._exec_budget = EXECS_PER_FRAME
        events += self._lifecycle(now, containers)
        events += self._oom_kills(now, frame)
        for path, row in containers.items():
            inc_key = (path, row.sample.inode)
            inc = self._incarnations.get(inc_key)
            if inc is None:  # not setdefault: an _Incarnation per container per refresh was made and thrown away
                inc = self._incarnations[inc_key] = _Incarnation()
            previous = self._rows.get(path)
            if previous is not None and previous.sample.inode == row.sample.inode and (
                    _limit_inputs(previous.sample) != _limit_inputs(row.sample)):
                before, after = _limits(previous), _limits(row)
                changed = {k: {"old": before[k], "new": after[k]} for k in after if after[k] != before[k]}
                if changed:
                    events.append(self._event(now, "limit_change", row, changes=changed))
            events += self._throttling(now, row, inc)
            events += self._runq(now, row, inc)
            events += self._exec_storm(now, row, inc)
            events += self._execs(now, frame, row)
        live = {(p, r.sample.inode) for p, r in containers.items()}
        for gone in [k for k in self._incarnations if k not in live]:
            del self._incarnations[gone]
        self._exec_seen = {p: t for p, t in self._exec_seen.items() if p in containers}
        self._rows = dict(containers)
        self._forget(now)
        self._first = False
        return events

    def _event(self, now: float, kind: str, row: CgroupRow, **figures: object) -> Event:
        key = workload_key(row.identity, row.path)
        state = self.workloads.get(key)
        return Event(now, kind, key, {"name": workload_name(row.identity, row.path), "id": row.path,
                                      "restarts": state.restarts if state else 0, **figures})

    def _lifecycle(self, now: float, containers: Mapping[str, CgroupRow]) -> list[Event]:
        events: list[Event] = []
        present: dict[str, tuple[str, int]] = {}
        self.by_path = {}
        keys: dict[tuple[str, int], str] = {}
        unnamed: dict[tuple[str, int], float] = {}
        for path, row in containers.items():
            key = workload_key(row.identity, path)
            incarnation = (path, row.sample.inode)
            first_seen = self._unnamed.get(incarnation, now)
            if (not self._first and key.startswith(UNNAMED) and key not in self.workloads
                    and (incarnation in self._unnamed or incarnation not in self._keys)
                    and now - first_seen < NAMING_GRACE_S):
                unnamed[incarnation] = first_seen  # its start is told once it has a name, or the grace is over
                continue
            present[key] = incarnation
            keys[incarnation] = key
            renamed_from = self._keys.get(incarnation)
            if renamed_from is not None and renamed_from != key:
                # The same cgroup, now with a name (names come from the runtime a moment after the cgroup): it is
                # the same workload, not a stop and a start.
                old_state = self.workloads.pop(renamed_from, None)
                if old_state is not None and key not in self.workloads:
                    self.workloads[key] = old_state
                elif old_state is not None and self.workloads[key].incarnation is None:
                    self.workloads[key].incarnation = old_state.incarnation  # known (seeded): not a restart
            state = self.workloads.get(key)
            if state is None:
                state = self.workloads[key] = WorkloadState()
                if not self._first:
                    events.append(self._event(first_seen, "start", row))
            elif not self._first and state.incarnation != (path, row.sample.inode) and (
                    state.incarnation is not None or state.last_seen):
                state.restarts += 1  # a new cgroup for a workload seen before (a seeded one counts on)
                events.append(self._event(first_seen, "restart", row))
            state.incarnation = incarnation
            state.last_seen = now
            self.by_path[path] = state
        self._keys = keys
        for incarnation, first_seen in self._unnamed.items():  # gone before it had a name: it started and stopped
            old = self._rows.get(incarnation[0])
            if incarnation not in unnamed and incarnation not in keys and old is not None and (
                    old.sample.inode == incarnation[1]):
                events += [self._event(first_seen, "start", old), self._event(now, "stop", old)]
                # Remembered as gone: its next cgroup (a restart of a container no runtime names) is a restart.
                self.workloads[workload_key(old.identity, old.path)] = WorkloadState(last_seen=now)
        self._unnamed = unnamed
        for key, state in self.workloads.items():
            if state.incarnation is not None and key not in present:
                old = self._rows.get(state.incarnation[0])
                state.incarnation = None
                if old is not None:
                    events.append(self._event(now, "stop", old))
        return events

    def _oom_kills(self, now: float, frame: Frame) -> list[Event]:
        events: list[Event] = []
        if frame.ebpf_state == "ready":
            for kill in frame.ebpf_oom_kills:
                ident = (kill.pid, kill.unix_time)
                if ident in self._oom_seen:
                    continue
                self._oom_seen.add(ident)
                path = kill.cgroup or "/"
                row = frame.rows.get(path) or self._rows.get(path)
                if row is None:
                    events.append(Event(kill.unix_time, "oom_kill", f"cgroup:{path}",
                                        {"name": path, "id": path, "pid": kill.pid, "comm": kill.comm}))
                    continue
                events.append(self._oom_event(kill.unix_time, row, pid=kill.pid, comm=kill.comm))
            if len(self._oom_seen) > 4096:
                self._oom_seen = set(sorted(self._oom_seen, key=lambda k: k[1])[-1024:])
            return events
        for path, row in frame.rows.items():  # without eBPF: the kernel's counter, without the victim
            previous = self._rows.get(path)
            if row.identity.kind != "container" or previous is None or previous.sample.inode != row.sample.inode:
                continue
            killed = counter_delta(previous.sample.memory_oom_kills, row.sample.memory_oom_kills)
            if killed:
                events.append(self._oom_event(now, row, kills=killed))
        return events

    def _oom_event(self, when: float, row: CgroupRow, **figures: object) -> Event:
        key = workload_key(row.identity, row.path)
        state = self.workloads.setdefault(key, WorkloadState(last_seen=when))
        state.last_oom_kill = when
        return self._event(when, "oom_kill", row, working_set_bytes=row.sample.working_set_bytes,
                           memory_limit_bytes=_limits(row)["memory_limit_bytes"], **figures)

    def _throttling(self, now: float, row: CgroupRow, inc: _Incarnation) -> list[Event]:
        s = row.sample
        if s.cpu_periods is None or s.cpu_throttled_periods is None or cpu_limit_cores(s) is None:
            return []
        window = inc.window
        window.append((now, s.cpu_periods, s.cpu_throttled_periods))
        while len(window) > 2 and now - window[1][0] >= THROTTLE_WINDOW_S:
            window.popleft()
        t0, p0, th0 = window[0]
        periods, throttled = s.cpu_periods - p0, s.cpu_throttled_periods - th0
        if now - t0 < THROTTLE_MIN_WINDOW_S or periods <= 0 or throttled < 0:
            return []
        share = throttled / periods
        if inc.throttling is None and share >= THROTTLE_START:
            inc.throttling = _Episode(now, share)
            return [self._event(now, "throttling", row, throttled_percent=round(share * 100, 1),
                                window_s=round(now - t0, 1), cpu_limit_cores=cpu_limit_cores(s))]
        if inc.throttling is not None:
            inc.throttling.peak = max(inc.throttling.peak, share)
            if share < THROTTLE_END:
                episode, inc.throttling = inc.throttling, None
                return [self._event(now, "throttling_end", row, duration_s=round(now - episode.started, 1),
                                    peak_throttled_percent=round(episode.peak * 100, 1))]
        return []

    def _runq(self, now: float, row: CgroupRow, inc: _Incarnation) -> list[Event]:
        p99 = row.ebpf_rates.runq_latency_p99_seconds if row.ebpf_rates is not None else None
        change = None if p99 is None else inc.runq.update(now, p99, RUNQ_P99_THRESHOLD_S)
        if change is None:
            return []
        if change is inc.runq.episode:
            return [self._event(now, "runq_latency", row, runq_latency_p99_seconds=p99,
                                threshold_seconds=RUNQ_P99_THRESHOLD_S)]
        return [self._event(now, "runq_latency_end", row, duration_s=round(now - change.started, 1),
                            peak_runq_latency_p99_seconds=change.peak)]

    def _exec_storm(self, now: float, row: CgroupRow, inc: _Incarnation) -> list[Event]:
        rate = row.ebpf_rates.execs_per_s if row.ebpf_rates is not None else None
        change = None if rate is None else inc.execs.update(now, rate, EXEC_STORM_PER_S)
        if change is None or rate is None:
            return []
        if change is inc.execs.episode:
            return [self._event(now, "exec_storm", row, execs_per_s=round(rate, 1))]
        return [self._event(now, "exec_storm_end", row, duration_s=round(now - change.started, 1),
                            peak_execs_per_s=round(change.peak, 1))]

    def _execs(self, now: float, frame: Frame, row: CgroupRow) -> list[Event]:
        """The container's execs since the previous frame, with their arguments: the first EXECS_PER_REFRESH (while
        the frame's EXECS_PER_FRAME last) as ``exec`` events, the others (also those the bounded logs dropped) as one
        ``exec_more`` count."""
        records = frame.ebpf_execs.get(row.path, ()) if frame.ebpf_state == "ready" else ()
        seen = self._exec_seen.get(row.path)
        new = [r for r in records if seen is None or r.unix_time > seen]
        if not new:
            return []
        self._exec_seen[row.path] = max(r.unix_time for r in new)
        events = [self._event(r.unix_time, "exec", row, pid=r.pid, ppid=r.ppid, comm=r.comm, args=r.args,
                              filename=r.filename) for r in new[:min(EXECS_PER_REFRESH, self._exec_budget)]]
        self._exec_budget -= len(events)
        previous = self._rows.get(row.path)
        same = previous is not None and previous.sample.inode == row.sample.inode
        counted = counter_delta(previous.ebpf.execs if same and previous and previous.ebpf else None,
                                row.ebpf.execs if row.ebpf else None)
        rest = max(len(new), counted or 0) - len(events)
        if rest > 0:
            events.append(self._event(now, "exec_more", row, execs=rest))
        return events

    def _forget(self, now: float) -> None:
        """Forget workloads gone longer than FORGET_AFTER_S, and the longest gone beyond GONE_KEPT of them."""
        gone = [(s.last_seen, k) for k, s in self.workloads.items() if s.incarnation is None]
        stale = [k for seen, k in gone if now - seen > FORGET_AFTER_S]
        if len(gone) - len(stale) > GONE_KEPT:
            stale = [k for _, k in heapq.nsmallest(len(gone) - GONE_KEPT, gone)]
        for key in stale:
            del self.workloads[key]
