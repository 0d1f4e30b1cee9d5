"""Row filters (``--filter``): ``key=value`` on the text fields that have a filter key (Field.filter), or plain text."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import CtopError
from .fields import FIELDS, Field
from .frame import CgroupRow

FILTER_KEYS: dict[str, Field] = {f.filter: f for f in FIELDS if f.filter}


def _text(field: Field, row: CgroupRow) -> str:
    value = field.get(row)
    return value if isinstance(value, str) else ""


@dataclass(frozen=True)
class RowFilter:
    """All terms must match: ``key=value`` compares one field (case-insensitive substring); plain text matches
    the name, pod, namespace or cgroup path."""

    terms: tuple[tuple[str, str], ...] = ()

    def __call__(self, row: CgroupRow) -> bool:
        for key, value in self.terms:
            if key == "":
                haystack = (row.identity.name, row.identity.pod, row.identity.namespace, row.sample.path)
                if not any(value in h.lower() for h in haystack):
                    return False
            elif value not in _text(FILTER_KEYS[key], row).lower():
                return False
        return True


def parse_filters(texts: tuple[str, ...] | list[str]) -> RowFilter:
    """Parse ``--filter`` values; an unknown key is a CtopError naming the known ones."""
    terms = []
    for text in texts:
        key, sep, value = text.partition("=")
        if not sep:
            terms.append(("", text.lower()))
            continue
        key = key.strip().lower()
        if key not in FILTER_KEYS:
            raise CtopError(f"Unknown filter key '{key}': use one of {', '.join(FILTER_KEYS)}, or plain text.")
        terms.append((key, value.strip().lower()))
    return RowFilter(tuple(terms))
