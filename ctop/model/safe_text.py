"""Text from outside (container names, labels, cgroup paths, error reasons) made inert for terminals and exports."""

from __future__ import annotations

import unicodedata

REPLACEMENT = "?"


def _is_inert(ch: str) -> bool:
    cat = unicodedata.category(ch)
    # Cc: C0/C1 controls and DEL (ESC starts terminal sequences); Cf: bidi overrides and other invisible formatting;
    # Zl/Zp: line and paragraph separators; Cs/Co/Cn: surrogates, private use and unassigned code points.
    return cat not in ("Cc", "Cf", "Zl", "Zp", "Cs", "Cn")


def inert(text: object) -> str:
    """``text`` with every control or format character replaced, so nothing in it can drive a terminal."""
    s = text if isinstance(text, str) else str(text)
    if s.isprintable() and s.isascii():
        return s
    return "".join(ch if _is_inert(ch) else REPLACEMENT for ch in s)


def short_reason(error: BaseException, max_chars: int = 80) -> str:
    """An exception's message for a one-sentence notice: inert, on one line, cut to ``max_chars``."""
    text = inert(str(error) or type(error).__name__)
    return text if len(text) <= max_chars else text[:max_chars - 1] + "…"
