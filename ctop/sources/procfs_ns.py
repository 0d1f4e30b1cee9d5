"""Namespaces of a process (/proc/<pid>/ns/*) and which of them it shares with the host (pid 1)."""

from __future__ import annotations

import os
import re

from .readfile import ABSENT_ERRNOS, ReadErrors

NAMESPACE_TYPES = ("pid", "net", "mnt", "ipc", "uts", "user", "cgroup", "time")
_LINK = re.compile(r"^[a-z_]+:\[(\d+)\]$")


def namespace_inode(pid: int, ns_type: str, proc_root: str = "/proc",
                    errors: ReadErrors | None = None) -> int | None:
    """Inode number of one namespace of ``pid`` ("net:[4026532184]" -> 4026532184); None if unreadable.

    Failures other than "absent" (the process is gone, the kernel lacks the type) are counted in ``errors``.
    """
    path = os.path.join(proc_root, str(pid), "ns", ns_type)
    try:
        link = os.readlink(path)
    except OSError as e:
        if errors is not None and e.errno not in ABSENT_ERRNOS:
            errors.add(path, e)
        return None
    m = _LINK.match(link)
    return int(m.group(1)) if m else None


def namespaces(pid: int, proc_root: str = "/proc", errors: ReadErrors | None = None,
               types: tuple[str, ...] = NAMESPACE_TYPES) -> dict[str, int | None]:
    """Each namespace type of ``types`` -> inode (None where the kernel lacks it or the process is gone)."""
    return {t: namespace_inode(pid, t, proc_root, errors) for t in types}


def host_namespaces(proc_root: str = "/proc", errors: ReadErrors | None = None,
                    types: tuple[str, ...] = NAMESPACE_TYPES) -> dict[str, int | None]:
    """The host's namespaces: pid 1's, or kthreadd's (pid 2, always in the initial ones) where pid 1 hides them.

    Only pid 2's failures are counted in ``errors``: pid 1 may hide its namespaces (a sandbox's init) by design.
    """
    best: dict[str, int | None] = {}
    for pid in (1, 2):
        ns = namespaces(pid, proc_root, errors if pid == 2 else None, types)
        for t, inode in ns.items():
            if best.get(t) is None:
                best[t] = inode
        if all(v is not None for v in best.values()):
            break
    return best


def shared_with_host(ns: dict[str, int | None], host: dict[str, int | None]) -> dict[str, bool | None]:
    """Per type: True when the inode equals the host's (pid 1), False when it differs, None when unknown."""
    out: dict[str, bool | None] = {}
    for t in NAMESPACE_TYPES:
        mine, theirs = ns.get(t), host.get(t)
        out[t] = None if mine is None or theirs is None else mine == theirs
    return out
