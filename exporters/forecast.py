"""When the next scrape burst is due: scrapers such as Prometheus come at a steady interval."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

STARTS_KEPT = 3  # burst starts remembered: two equal intervals make a forecast
TOLERANCE_S = 0.05  # two intervals are "equal" within this, or within TOLERANCE of the interval if larger
TOLERANCE = 0.1
MIN_LEAD_S = 0.1  # a prefetch starts at least this long before the burst is due
MAX_LEAD = 0.75  # and at most this share of the max age (the data must still be young enough when it comes)


@dataclass(frozen=True)
class Plan:
    """Make a collection and its bodies at ``start_at`` for the burst due at ``due_at``."""

    after: float  # the burst start this plan follows (one plan per burst)
    start_at: float
    due_at: float
    plain: bool  # encodings the last burst asked for
    gzipped: bool


class ScrapeForecast:
    """Forecasts the next burst of scrapes from the starts of the last ones.

    A burst starts with a scrape that comes more than ``max_age_s`` after the scrape before it (sooner, it is
    served from the collection the earlier one made). When the last intervals between burst starts are equal,
    the next burst is due one interval after the last start; a plan then says when to collect for it: early
    enough to be done when it comes, late enough for the data to be younger than ``max_age_s`` then. Scrapes
    that come back to back, or at uneven intervals, make no plan: each burst then collects as it comes.
    """

    def __init__(self, max_age_s: float) -> None:
        self.max_age_s = max_age_s
        self._starts: deque[float] = deque(maxlen=STARTS_KEPT)
        self._last_scrape: float | None = None
        self._encodings: set[bool] = set()  # gzip or not, of the scrapes since the last burst start
        self._planned_after: float | None = None
        self._duration_s = 0.0  # of the latest collection and render

    def observe(self, now: float, gzipped: bool) -> bool:
        """Note a scrape arriving at ``now``; True when it starts a burst."""
        starts = self._last_scrape is None or now - self._last_scrape > self.max_age_s
        self._last_scrape = now
        if starts:
            self._starts.append(now)
            self._encodings = set()
        self._encodings.add(gzipped)
        return starts

    def plan(self, now: float) -> Plan | None:
        """What to prefetch for the next burst; None without a steady interval, or when already done or late."""
        if len(self._starts) < STARTS_KEPT or self.max_age_s <= 0:
            return None
        last = self._starts[-1]
        if self._planned_after == last:
            return None
        intervals = [b - a for a, b in zip(self._starts, list(self._starts)[1:], strict=False)]
        interval = intervals[-1]
        if any(abs(i - interval) > max(TOLERANCE_S, TOLERANCE * interval) for i in intervals):
            return None
        due = last + interval
        if now >= due:
            return None
        lead = min(MAX_LEAD * self.max_age_s, max(MIN_LEAD_S, 3 * self._duration_s))
        return Plan(after=last, start_at=due - lead, due_at=due, plain=False in self._encodings,
                    gzipped=True in self._encodings)

    def taken(self, plan: Plan) -> None:
        """``plan`` is being carried out: no other plan until the next burst starts."""
        self._planned_after = plan.after

    def took(self, duration_s: float) -> None:
        """The latest collection and render took ``duration_s`` (prefetches start earlier if it grows)."""
        self._duration_s = duration_s
