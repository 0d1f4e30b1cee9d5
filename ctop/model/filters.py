"""Row filters (``--filter``): ``key=value`` on name, pod, namespace, runtime, qos, kind, image, id, or plain text."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import CtopError
from .frame import CgroupRow

FILTER_KEYS: dict[str, Callable[[CgroupRow], str]] = {
    "name": lambda r: r.identity.name,
    "pod": lambda r: r.identity.pod,
    "namespace": lambda r: r.identity.namespace,
    "runtime": lambda r: r.identity.runtime,
    "qos": lambda r: r.identity.qos_class,
    "kind": lambda r: r.identity.kind,
    "image": lambda r: r.identity.image,
    "container": lambda r: r.identity.container,
    "id": lambda r: r.sample.path,
}


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
            elif value not in FILTER_KEYS[key](row).lower():
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
