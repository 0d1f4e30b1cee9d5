"""The one filter language of ``--filter`` and the interactive ``/``: terms ``key=value`` or plain text, all must match.

A filter text is split into terms at spaces (quotes keep a space inside a term: ``name="my app"``); several
``--filter`` options add their terms, so ``--filter a --filter b`` and ``/a b`` select the same rows. ``key=value``
is a case-insensitive substring of one text field that has a filter key (Field.filter); plain text is a
case-insensitive substring of the name, pod, namespace, container name or cgroup path.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import CtopError
from .fields import FIELDS, Field
from .frame import CgroupRow

FILTER_KEYS: dict[str, Field] = {f.filter: f for f in FIELDS if f.filter}


def _text(field: Field, row: CgroupRow) -> str:
    value = field.get(row)
    return value if isinstance(value, str) else ""


def plain_text_haystack(row: CgroupRow) -> tuple[str, ...]:
    """What a plain-text term is looked for in."""
    ident = row.identity
    return ident.name, ident.pod, ident.namespace, ident.container, row.sample.path


@dataclass(frozen=True)
class RowFilter:
    """All terms must match: ``(key, value)`` compares one field, ``("", value)`` is plain text (values lower case)."""

    terms: tuple[tuple[str, str], ...] = ()

    def __call__(self, row: CgroupRow) -> bool:
        for key, value in self.terms:
            if key == "":
                if not any(value in h.lower() for h in plain_text_haystack(row) if h):
                    return False
            elif value not in _text(FILTER_KEYS[key], row).lower():
                return False
        return True

    def __bool__(self) -> bool:
        return bool(self.terms)

    @property
    def text(self) -> str:
        """The filter as one text that parses back to it (what the interactive view shows and saves)."""
        return " ".join(_quoted(value) if not key else f"{key}={_quoted(value)}" for key, value in self.terms)


def _quoted(value: str) -> str:
    return value if value and not any(c.isspace() or c in "\"'" for c in value) else shlex.quote(value)


def split_terms(text: str) -> list[str]:
    """The terms of one filter text: split at spaces, quotes keep spaces (a backslash is just a backslash); an
    unclosed quote is a CtopError."""
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace_split = True
    lexer.escape = ""  # a backslash is itself: systemd escapes (\x2d) stay as the paths have them
    lexer.commenters = ""
    try:
        return list(lexer)
    except ValueError:
        raise CtopError(f"The filter {text!r} has an unclosed quote: close it or remove it.") from None


def parse_filters(texts: Iterable[str]) -> RowFilter:
    """Parse filter texts (each ``--filter`` value, or what was typed after ``/``) into one filter of all their terms;
    an unknown key or an unclosed quote is a CtopError that says what to do."""
    terms = []
    for text in texts:
        for term in split_terms(text):
            key, sep, value = term.partition("=")
            if not sep:
                terms.append(("", term.lower()))
                continue
            key = key.strip().lower()
            if key not in FILTER_KEYS:
                raise CtopError(f"Unknown filter key '{key}': use one of {', '.join(FILTER_KEYS)}, or plain text.")
            terms.append((key, value.strip().lower()))
    return RowFilter(tuple(terms))


def parse_filter_text(text: str) -> RowFilter:
    """Parse one filter text as typed after ``/`` in the interactive view: the same language as ``--filter``."""
    return parse_filters([text])
