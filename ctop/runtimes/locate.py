"""Finds one container by name or id: in the Docker list, or by walking the cgroup tree and naming each cgroup."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..sources.cgroupfs_layout import CgroupLayout
from .identify import Identity, identify
from .meta import ContainerMeta
from .metadata import MetadataService


@dataclass(frozen=True)
class Located:
    path: str
    cgroup_dir: str
    identity: Identity
    meta: ContainerMeta | None


def walk_root(layout: CgroupLayout) -> str:
    """The hierarchy to walk: memory (v1/hybrid: where runtimes place every container) or the unified one."""
    return layout.controllers.get("memory") or layout.controllers.get("pids") or str(layout.unified or layout.root)


def container_cgroups(layout: CgroupLayout) -> list[tuple[str, Identity]]:
    """(path, identity) for every cgroup that is a container."""
    root = walk_root(layout)
    out = []
    for d, _, _ in os.walk(root):
        path = "/" + os.path.relpath(d, root) if d != root else "/"
        ident = identify(path)
        if ident.kind == "container":
            out.append((path, ident))
    return out


def matches(query: str, ident: Identity, meta: ContainerMeta | None) -> bool:
    """Exact name (docker name, container name, namespace/pod/container) or an id prefix of 3+ characters."""
    if len(query) >= 3 and ident.container_id.startswith(query):
        return True
    if meta is None:
        return False
    names = {meta.name, f"{meta.namespace}/{meta.pod}/{meta.container}"}
    if meta.container and meta.container != "POD":
        names.add(meta.container)
    return query in names


def find_container(query: str, layout: CgroupLayout, service: MetadataService) -> list[Located]:
    """Every container cgroup matching ``query`` (ideally one)."""
    root = walk_root(layout)
    found = []
    for path, ident in container_cgroups(layout):
        meta = service.lookup(path, ident)
        if matches(query, ident, meta):
            found.append(Located(path, root + path, ident, meta))
    return found
