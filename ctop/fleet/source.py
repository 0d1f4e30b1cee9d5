"""The fleet view's source of Frames: the refresh's queries evaluated now, or at a past time that steps and jumps.

It has what the interactive view asks of the local collector (``collect``) and, for time travel, of the history
replay (``request``, ``post``, a ReplayState before each Frame), so the same view, keys and batch outputs serve it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..history.replay import END, ReplayState
from ..model.frame import Frame
from .client import Answer, PrometheusClient
from .frames import build_frame
from .queries import Query, refresh_queries, window_s

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
        self.queries: tuple[Query, ...] = refresh_queries(selector, self.window_s)
        self.post: Post = lambda _message: None
        self._clock = clock
        self._lock = threading.Lock()
        self._commands: list[str] = []
        self._position = at
        self._following = False
        self._anchor = (at or 0.0, clock())
        self.last_queries = 0  # queries the last refresh sent

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
        """One refresh: every query of the refresh evaluated at ``at`` (None: now)."""
        when = self._clock() if at is None else at
        before = self.client.queries
        with ThreadPoolExecutor(len(self.queries), thread_name_prefix="ctop-fleet") as pool:
            answers: list[Answer] = list(pool.map(lambda q: self.client.query(q.expr, when), self.queries))
        self.last_queries = self.client.queries - before
        return build_frame(answers, when, self.window_s)

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
