"""Namespaces of a process (/proc/<pid>/ns/*), which of them it shares with the host, and pid namespace inits."""

from __future__ import annotations

import os
import re

from .readfile import ABSENT_ERRNOS, ReadErrors, read_bytes

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


def nspid_levels(pid: int, proc_root: str = "/proc", errors: ReadErrors | None = None) -> list[int]:
    """The NSpid line of /proc/<pid>/status: the pid in each pid namespace, host first ([] when unreadable)."""
    data = read_bytes(os.path.join(proc_root, str(pid), "status"), errors)
    for line in (data or b"").split(b"\n"):
        if line.startswith(b"NSpid:"):
            try:
                return [int(v) for v in line[6:].split()]
            except ValueError:
                return []
    return []


def namespace_init(pids: list[int], proc_root: str = "/proc") -> int | None:
    """The task among ``pids`` that is pid 1 of a pid namespace below the host's (the workload's init: of the
    shallowest such namespace when there are nested ones); None when every task runs in the host's."""
    best: tuple[int, int] | None = None
    for pid in pids:
        levels = nspid_levels(pid, proc_root)
        if len(levels) > 1 and levels[-1] == 1 and (best is None or len(levels) < best[0]):
            best = (len(levels), pid)
    return best[1] if best else None


def own_namespaces(pid: int, host: dict[str, int | None], proc_root: str = "/proc",
                   errors: ReadErrors | None = None) -> tuple[str, ...]:
    """Which of the pid and network namespaces of ``pid`` are not the host's: "pid" when the process or the children
    it makes (``unshare --pid`` stays outside the namespace it made) run in another pid namespace."""
    own = []
    pid_ns = {namespace_inode(pid, t, proc_root, errors) for t in ("pid", "pid_for_children")} - {None}
    if host.get("pid") is not None and pid_ns - {host["pid"]}:
        own.append("pid")
    net = namespace_inode(pid, "net", proc_root, errors)
    if net is not None and host.get("net") is not None and net != host["net"]:
        own.append("net")
    return tuple(own)
