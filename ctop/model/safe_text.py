"""Text from outside (container names, labels, cgroup paths, error reasons) made inert for terminals and exports."""

from __future__ import annotations

import re
import unicodedata

REPLACEMENT = "?"


def _is_inert(ch: str) -> bool:
    cat = unicodedata.category(ch)
    # Cc: C0/C1 controls and DEL (ESC starts terminal sequences); Cf: bidi overrides and other invisible formatting;
    # Zl/Zp: line and paragraph separators; Cs/Co/Cn: surrogates, private use and unassigned code points.
    return cat not in ("Cc", "Cf", "Zl", "Zp", "Cs", "Cn")


def inert(text: object, keep: str = "") -> str:
    """``text`` with every control or format character replaced, so nothing in it can drive a terminal.

    Characters in ``keep`` stay (the exporter keeps newlines: its text format escapes them).
    """
    s = text if isinstance(text, str) else str(text)
    if s.isprintable() and s.isascii():
        return s
    return "".join(ch if ch in keep or _is_inert(ch) else REPLACEMENT for ch in s)


# JSON text escapes for what json.dumps(ensure_ascii=False) leaves raw: DEL and C1 controls (U+009B is a CSI to
# some terminals) and the line/paragraph separators; lone surrogates (bytes of a non-UTF-8 name) become U+FFFD.
_JSON_ESCAPES = {c: f"\\u{c:04x}" for c in (*range(0x7F, 0xA0), 0x2028, 0x2029)}
_JSON_ESCAPES.update({c: "\ufffd" for c in range(0xD800, 0xE000)})


_JSON_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff]")  # the characters of _JSON_ESCAPES


def json_text_safe(json_text: str) -> str:
    """A JSON document (from json.dumps with ensure_ascii=False) with no raw control bytes and valid UTF-8.

    Only the characters to escape are replaced (one name with an accent made a whole refresh's document go through
    str.translate, a dictionary lookup per character)."""
    if json_text.isascii() and "\x7f" not in json_text:
        return json_text
    return _JSON_UNSAFE.sub(_escaped, json_text)


def _escaped(match: re.Match[str]) -> str:
    return _JSON_ESCAPES[ord(match.group())]


def short_reason(error: BaseException, max_chars: int = 80) -> str:
    """An exception's message for a one-sentence notice: inert, on one line, cut to ``max_chars``."""
    text = inert(str(error) or type(error).__name__)
    return text if len(text) <= max_chars else text[:max_chars - 1] + "…"
