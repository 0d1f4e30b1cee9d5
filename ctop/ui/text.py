"""Text that is safe and sized for the terminal: control characters made inert, widths fitted, durations shown."""

from __future__ import annotations

import urwid

from ..model.safe_text import REPLACEMENT, inert

__all__ = ["ELLIPSIS", "REPLACEMENT", "fit", "format_duration", "inert", "pad", "width"]

ELLIPSIS = "…"


def width(text: str) -> int:
    """Columns ``text`` takes on screen (wide characters count twice)."""
    return urwid.calc_width(text, 0, len(text))


def _cut(text: str, cols: int) -> str:
    """The longest prefix of ``text`` that fits in ``cols`` columns."""
    end, _ = urwid.calc_text_pos(text, 0, len(text), cols)
    return text[:end]


def _cut_tail(text: str, cols: int) -> str:
    """The longest suffix of ``text`` that fits in ``cols`` columns."""
    used = 0
    start = len(text)
    while start > 0:
        w = width(text[start - 1])
        if used + w > cols:
            break
        used += w
        start -= 1
    return text[start:]


def fit(text: str, cols: int, where: str = "end") -> str:
    """``text`` cut to ``cols`` columns with an ellipsis at the ``end`` or in the ``middle``; padding is not added."""
    if cols <= 0:
        return ""
    if width(text) <= cols:
        return text
    if cols == 1:
        return ELLIPSIS
    if where == "middle" and cols >= 5:
        head = (cols - 1) // 2
        tail = cols - 1 - head
        return _cut(text, head) + ELLIPSIS + _cut_tail(text, tail)
    return _cut(text, cols - 1) + ELLIPSIS


def pad(text: str, cols: int, align: str = "left") -> str:
    """``text`` fitted to exactly ``cols`` columns."""
    text = fit(text, cols)
    spaces = " " * (cols - width(text))
    return text + spaces if align == "left" else spaces + text


def format_duration(seconds: float | None) -> str:
    """A short latency: 850ns, 12us, 3.4ms, 1.20s; "-" for no data."""
    if seconds is None:
        return "-"
    ns = seconds * 1e9
    if ns < 1000:
        return f"{ns:.0f}ns"
    if ns < 1e6:
        return f"{ns / 1e3:.0f}us"
    if ns < 1e9:
        return f"{ns / 1e6:.1f}ms"
    return f"{seconds:.2f}s"
