"""Grouping keys for the views: pods summing their containers, QoS classes, systemd slices and services."""

from __future__ import annotations

from collections.abc import Iterable

from .identify import Identity

# Group keys are strings a view can show and sort: "pod:<uid>", "qos:<class>", "slice:<unit>", "service:<unit>".


def pod_groups(rows: Iterable[tuple[str, Identity]]) -> dict[str, str]:
    """path -> "pod:<uid>" for every *container* cgroup of a pod (sandbox included), so a pod row sums them.

    Pod-level and deeper cgroups are left out: summing them as well would count the same usage twice.
    """
    return {path: f"pod:{ident.pod_uid}" for path, ident in rows if ident.kind == "container" and ident.pod_uid}


def qos_groups(rows: Iterable[tuple[str, Identity]]) -> dict[str, str]:
    """path -> "qos:<class>" for every pod cgroup (a QoS row sums its pods, not their containers again)."""
    return {path: f"qos:{ident.qos_class}" for path, ident in rows if ident.kind == "pod" and ident.qos_class}


def systemd_groups(rows: Iterable[tuple[str, Identity]]) -> dict[str, str]:
    """path -> "service:<unit>" or "slice:<unit>" for the nearest enclosing service, else slice.

    Only leaf-most members are mapped: a cgroup that is itself a unit maps to its *parent* unit, so a
    service's own usage is not added twice when a view sums a group and also shows the unit as a row.
    """
    out: dict[str, str] = {}
    for path, _ident in rows:
        parts = [p for p in path.split("/") if p]
        for i in range(len(parts) - 2, -1, -1):
            name = parts[i]
            if name.endswith(".service"):
                out[path] = f"service:{name}"
                break
            if name.endswith(".slice"):
                out[path] = f"slice:{name}"
                break
    return out


def pod_of(path: str, ident: Identity) -> str:
    """The pod group key of any cgroup inside a pod (pod itself, containers, scopes), or ""."""
    return f"pod:{ident.pod_uid}" if ident.pod_uid else ""


def top_level_paths(paths: Iterable[str]) -> list[str]:
    """The paths no other path in the set contains: summing these never double counts nested cgroups."""
    ordered = sorted({p.rstrip("/") or "/" for p in paths}, key=lambda p: (p.count("/"), p))
    kept: list[str] = []
    for p in ordered:
        if not any(p == k or p.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(p)
    return kept
