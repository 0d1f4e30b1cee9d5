"""Who preempted a cgroup's tasks, by name: culprit cgroup paths turned into the workload names the list shows."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from .safe_text import inert

if TYPE_CHECKING:  # frame imports the eBPF rates, which import this module
    from .frame import Identity

HOST = "host"  # the root cgroup's own tasks and system services: processes outside any container
HOST_KINDS = frozenset({"root", "slice", "service", "scope"})  # systemd units outside containers are the host


class CulpritRates(dict[str, float]):
    """Culprit name -> preemptions per second, largest first: a JSON object; ``str()`` is the compact text and CSV
    form ``name:rate,...`` (rates rounded to whole preemptions per second)."""

    def __str__(self) -> str:
        return ",".join(f"{inert(name)}:{rate:.0f}" for name, rate in self.items())

    def top(self) -> str | None:
        """The name with the most preemptions; None when there were none."""
        return next(iter(self), None)

    def shares(self) -> list[tuple[str, float]]:
        """(name, percent of all preemptions) in rank order."""
        total = sum(self.values())
        return [(name, rate / total * 100.0) for name, rate in self.items()] if total > 0 else []


def _parent(path: str) -> str | None:
    return None if path == "/" else path.rsplit("/", 1)[0] or "/"


def workload_namer(identities: Mapping[str, Identity]) -> Callable[[str], str]:
    """name_of(cgroup path): the container it belongs to (the nearest container at or above it, by its name as the
    list shows it), ``host`` for the root cgroup and systemd units outside containers, else the nearest known
    cgroup's name or path. Results are remembered for the life of the namer (one refresh)."""
    memo: dict[str, str] = {}

    def name_of(path: str) -> str:
        found = memo.get(path)
        if found is not None:
            return found
        nearest: tuple[str, Identity] | None = None
        at: str | None = path
        while at is not None:
            ident = identities.get(at)
            if ident is not None:
                if ident.kind == "container":
                    nearest = (at, ident)
                    break
                if nearest is None:
                    nearest = (at, ident)
            at = _parent(at)
        if nearest is None:
            name = HOST if path == "/" else path
        elif nearest[1].kind == "container":
            name = nearest[1].name or nearest[0]
        elif nearest[0] == "/" or nearest[1].kind in HOST_KINDS:
            name = HOST
        else:
            name = nearest[1].name or nearest[0]
        memo[path] = name
        return name

    return name_of


def by_name(rates: Iterable[tuple[str, float]], name_of: Callable[[str], str]) -> CulpritRates:
    """Per-path rates added up by culprit name, largest first (ties by name); zero rates are left out."""
    totals: dict[str, float] = {}
    for path, rate in rates:
        if rate > 0:
            name = name_of(path)
            totals[name] = totals.get(name, 0.0) + rate
    return CulpritRates(sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])))
