"""Parses the times people type for --at, --since, --from and --to: "10m", "2h ago", "yesterday 14:05", ISO, epoch."""

from __future__ import annotations

import datetime as dt
import re

_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hr": 3600, "hour": 3600,
          "d": 86400, "day": 86400, "w": 604800, "week": 604800}
_AGO = re.compile(r"^\s*((?:\d+(?:\.\d+)?\s*[a-z]+\s*)+)(?:ago)?\s*$")
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)")
_DAY_AND_TIME = re.compile(r"^(today|yesterday)(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?)?$")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
FORMS = '"10m", "2h ago", "1 day 3 hours ago", "yesterday 14:05", "14:05", "2026-11-29T14:05:00", or epoch seconds'


class BadTime(ValueError):
    """A time that could not be understood; the message names the forms that work."""


def parse_when(text: str, now: float) -> float:
    """Unix time for ``text``, relative to ``now`` where it is relative; raises BadTime."""
    t = text.strip().lower()
    if not t:
        raise BadTime(f"Empty time: use {FORMS}.")
    if t == "now":
        return now
    try:
        value = float(t)
    except ValueError:
        pass
    else:
        if value > 1e8:  # epoch seconds
            return value
    m = _AGO.match(t)
    if m:
        total = 0.0
        for amount, unit in _PART.findall(m.group(1)):
            unit = unit[:-1] if unit.endswith("s") and unit[:-1] in _UNITS else unit
            if unit not in _UNITS:
                raise BadTime(f"Unknown unit '{unit}' in '{text}': use s, m, h, d or w ({FORMS}).")
            total += float(amount) * _UNITS[unit]
        return now - total
    local_now = dt.datetime.fromtimestamp(now).astimezone()
    m = _DAY_AND_TIME.match(t)
    if m:
        day = local_now.date() - dt.timedelta(days=1 if m.group(1) == "yesterday" else 0)
        return _local(day, _clock(m.group(2), m.group(3), m.group(4), text), text)
    m = _CLOCK.match(t)
    if m:
        when = _local(local_now.date(), _clock(m.group(1), m.group(2), m.group(3), text), text)
        return when - 86400 if when > now else when  # "14:05" means the last 14:05
    try:
        parsed = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadTime(f"Cannot read the time '{text}': use {FORMS}.") from None
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()
    return parsed.timestamp()


def _clock(hours: str | None, minutes: str | None, seconds: str | None, text: str) -> dt.time:
    try:
        return dt.time(int(hours or 0), int(minutes or 0), int(seconds or 0))
    except ValueError:
        raise BadTime(f"Cannot read the time '{text}': use {FORMS}.") from None


def _local(day: dt.date, clock: dt.time, text: str) -> float:
    try:
        return dt.datetime.combine(day, clock).astimezone().timestamp()
    except ValueError:
        raise BadTime(f"Cannot read the time '{text}': use {FORMS}.") from None
