"""The fleet view's source of Frames: the refresh's queries evaluated now, or at a past time that steps and jumps.

The answers of the CACHED queries (limits, names, ctop's info) are kept and sent again only when the time shown is
CACHE_S away from when they were asked, or when a cgroup they do not name appears (then at once, in the same refresh).
The run-queue bucket series, the costliest answer, are asked only of targets that do not serve their quantiles as
gauges (older exporters): known from the previous refresh, or at the first refresh and after a move of CACHE_S or
more in time from one small query (runq_probe) sent before the others.

It has what the interactive view asks of the local collector (``collect``) and, for time travel, of the history
replay (``request``, ``post``, a ReplayState before each Frame), so the same view, keys and batch outputs serve it.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..history.replay import END, ReplayState
from ..model.frame import Frame
from .client import Answer, PrometheusClient
from .frames import Gatherer, frame_of, node_of
from .queries import (
    CACHE_S,
    NAMED_METRIC,
    NAMING_QUERIES,
    RUNQ_ALL_BOUNDS_SECONDS,
    RUNQ_COARSE_BOUNDS_SECONDS,
    RUNQ_FINE_MAX_CGROUPS,
    Query,
    probe_coverage,
    refresh_queries,
    runq_probe,
    window_s,
)

Post = Callable[[tuple[Any, ...]], None]
FALLBACK_SCRAPE_INTERVAL_S = 15.0


class FleetSource:
    """Frames of the whole fleet from ``client``; ``at`` (Unix time) starts at a past time instead of now."""

    remote = True  # not this node: no eBPF to wait for, no root needed, nothing to inspect locally

    def __init__(self, client: PrometheusClient, selector: str = "", scrape_interval_s: float | None = None,
                 at: float | None = None, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.selector = selector
        self.scrape_interval_s = scrape_interval_s or FALLBACK_SCRAPE_INTERVAL_S
        self.window_s = window_s(self.scrape_interval_s)
        self._built: dict[tuple[bool, frozenset[str], bool], tuple[Query, ...]] = {}
        # what the previous refresh (or runq_probe) said of the run-queue quantiles at _runq_at: (the instances
        # serving them, whether any target with eBPF figures does not); None: not known (the first refresh)
        self._runq: tuple[frozenset[str], bool] | None = None
        self._runq_at = 0.0
        self.post: Post = lambda _message: None
        self._clock = clock
        self._lock = threading.Lock()
        self._commands: list[str] = []
        self._position = at
        self._following = False
        self._anchor = (at or 0.0, clock())
        self.last_queries = 0  # queries the last refresh sent
        self._kept: tuple[float, list[Answer], frozenset[tuple[str, str]]] | None = None  # (at, answers, cgroups)

    @property
    def replaying(self) -> bool:
        return self._position is not None

    @property
    def position(self) -> float | None:
        """The time shown (None: live)."""
        return self._position

    def collect(self) -> Frame:
        """The Frame at the current position (now when live); FleetError (one sentence) when the server fails."""
        if self._position is None:
            return self.frame_at(None)
        with self._lock:
            commands, self._commands = self._commands, []
        now = self._clock()
        for command in commands:
            self._apply(command, now)
        if self._following and not any(c.split(":")[0] in ("step", "jump") for c in commands):
            self._position = self._anchor[0] + (now - self._anchor[1])
        edge = ""
        if self._position >= now:
            self._position, edge = now, END
        frame = self.frame_at(self._position)
        self.post(("replay", ReplayState(self._position, self._following, edge, None, now)))
        return frame

    def frame_at(self, at: float | None) -> Frame:
        """One refresh: the queries of the refresh evaluated at ``at`` (None: now), the CACHED ones when their kept
        answers are too far from ``at`` in time or miss a cgroup the others name. The answers are gathered as they
        come, while the server still evaluates the others."""
        with _cyclic_gc_paused():
            return self._frame_at(at)

    def _frame_at(self, at: float | None) -> Frame:
        when = self._clock() if at is None else at
        before = self.client.queries
        kept = self._kept
        fresh_kept = kept is None or abs(when - kept[0]) >= CACHE_S
        if self._runq is None or abs(when - self._runq_at) >= CACHE_S:  # not known near this time: one small query
            self._runq = probe_coverage(self.client.query(runq_probe(self.selector).expr, when).series)
        self._runq_at = when
        every = self.queries_for(len(kept[2]) if kept else 0)
        queries = [q for q in every if fresh_kept or not q.cached]
        gatherer = Gatherer()
        answers = self._ask(queries, when, lambda i, a: None if queries[i].cached else gatherer.add(a))
        named = [a for q, a in zip(queries, answers) if q.name in NAMING_QUERIES]
        if not fresh_kept and kept is not None and not _cgroups(named) <= kept[2]:  # a new cgroup: ask at once
            queries += [q for q in every if q.cached]
            answers += self._ask([q for q in every if q.cached], when)
            fresh_kept = True
        if fresh_kept:
            cached = [a for q, a in zip(queries, answers) if q.cached]
            kept = self._kept = (when, cached, _cgroups([a for q, a in zip(queries, answers)
                                                          if q.cached and q.name in NAMING_QUERIES]))
            answers = [a for q, a in zip(queries, answers) if not q.cached]
        self.last_queries = self.client.queries - before
        self._runq = gatherer.runq_coverage()
        for answer in kept[1] if kept else ():
            gatherer.add(answer, fresh=False)
        return frame_of(gatherer, answers, when, self.window_s)

    def queries_for(self, cgroups: int) -> tuple[Query, ...]:
        """The queries of a refresh of a scope of ``cgroups`` cgroups (0: not known yet, as at the first refresh):
        the run-queue buckets of the targets that do not serve their quantiles (of every target while that is not
        known), coarser for a scope of more than RUNQ_FINE_MAX_CGROUPS cgroups."""
        served, unserved = self._runq if self._runq is not None else (frozenset(), True)  # not known: every target
        key = (cgroups > RUNQ_FINE_MAX_CGROUPS, served if unserved else frozenset(), unserved)
        if key not in self._built:
            if len(self._built) > 8:  # the targets changed several times: the old sets are no use
                self._built.clear()
            bounds = RUNQ_COARSE_BOUNDS_SECONDS if key[0] else RUNQ_ALL_BOUNDS_SECONDS
            self._built[key] = refresh_queries(self.selector, self.window_s, bounds, key[1], runq=unserved)
        return self._built[key]

    def _ask(self, queries: list[Query], when: float,
             each: Callable[[int, Answer], None] | None = None) -> list[Answer]:
        """The answers of ``queries`` at ``when`` (a server evaluates them in parallel), each given to ``each`` with
        its index as it comes."""
        return self.client.query_all([q.expr for q in queries], when, each=each)

    def request(self, command: str) -> None:
        """Queue a move (as the history replay takes them): "step:N" scrape intervals, "jump:SECONDS", "follow",
        "pause"; "detail:..." is accepted and ignored."""
        with self._lock:
            self._commands.append(command)

    def _apply(self, command: str, now: float) -> None:
        name, _, arg = command.partition(":")
        position = self._position if self._position is not None else now
        if name == "step":
            position += int(arg) * self.scrape_interval_s
            self._following = False
        elif name == "jump":
            position += float(arg)
        elif name == "follow":
            self._following = True
        elif name == "pause":
            self._following = False
        else:
            return
        self._position = min(position, now)
        self._anchor = (self._position, now)

    def close(self) -> None:
        """Nothing to release (the interactive view and batch mode call it as they call the collector's)."""


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Python's cycle collector paused during a refresh: its hundreds of thousands of decoded JSON objects, none in a
    cycle, would otherwise be scanned again and again (a third of ctop's CPU per refresh, more with a big heap)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _cgroups(answers: list[Answer]) -> frozenset[tuple[str, str]]:
    """(node, cgroup) of every series of ``answers`` that says a cgroup exists (its working set, or its names)."""
    return frozenset((node_of(s.labels), s.labels["id"] or "/") for a in answers for s in a.series
                     if "id" in s.labels and (s.labels.get("__name__") == NAMED_METRIC
                                              or s.labels.get("ctop_field") == "names"))
