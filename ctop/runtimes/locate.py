"""Finds one container by name or id: in the Docker list, or by walking the cgroup tree and naming each cgroup."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..sources.cgroupfs_layout import CgroupLayout
from ..sources.procfs_ns import host_namespaces, namespace_init, own_namespaces
from ..sources.procfs_procs import read_pids
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


def container_cgroups(layout: CgroupLayout, plain: bool = False) -> list[tuple[str, Identity]]:
    """(path, identity) for every cgroup that is a container by its path; with ``plain`` also every cgroup no
    runtime or unit claims by its path (plain runc containers and namespaced cgroups are among them)."""
    root = walk_root(layout)
    out = []
    for d, _, _ in os.walk(root):
        path = "/" + os.path.relpath(d, root) if d != root else "/"
        ident = identify(path)
        if ident.kind == "container" or (plain and path != "/" and ident.runtime == "none" and ident.kind == "other"):
            out.append((path, ident))
    return out


def namespaced_meta(path: str, cgroup_dir: str, proc_root: str = "/proc") -> ContainerMeta | None:
    """A runtime-less container's meta (runtime "unshare", named by its cgroup) when the first process of the cgroup
    at ``cgroup_dir`` runs in its own pid or network namespace; None otherwise."""
    pids = read_pids(os.path.join(cgroup_dir, "cgroup.procs"))
    if not pids or not own_namespaces(pids[0], host_namespaces(proc_root, None, ("pid", "net")), proc_root):
        return None
    init = namespace_init(pids, proc_root)
    return ContainerMeta(runtime="unshare", name=path.rstrip("/").rsplit("/", 1)[-1], pid=init or pids[0],
                         state="running", source="namespaces")


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
