"""Processes of a container: host pid, pid inside its namespace (NSpid), command, CPU time and RSS."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from .readfile import ReadErrors, parse_pid, read_bytes

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class ProcessInfo:
    """One process as /proc shows it (cpu_seconds: user plus system time since it started)."""

    pid: int
    ns_pid: int | None
    command: str
    state: str
    threads: int | None
    cpu_seconds: float | None
    rss_bytes: int | None
    uid: int | None = None  # real uid (the owner a person knows), from the Uid line of /proc/<pid>/status


def parse_stat(data: bytes | None) -> tuple[str, str, float, int, int] | None:
    """(comm, state, utime+stime seconds, threads, rss pages) from /proc/<pid>/stat; None if malformed."""
    if not data:
        return None
    open_paren, close_paren = data.find(b"("), data.rfind(b")")
    if open_paren < 0 or close_paren < open_paren:
        return None
    comm = data[open_paren + 1:close_paren].decode("utf-8", "replace")
    rest = data[close_paren + 2:].split()
    if len(rest) < 22:
        return None
    try:
        cpu = (int(rest[11]) + int(rest[12])) / CLOCK_TICKS
        return comm, rest[0].decode(), cpu, int(rest[17]), int(rest[21])
    except (ValueError, OverflowError):  # OverflowError: a number too large for a float
        return None


def _status_numbers(status: bytes | None, key: bytes) -> list[int] | None:
    """The numbers on the ``key`` line of /proc/<pid>/status (``b"Uid:"``); None when absent or malformed."""
    if not status:
        return None
    for line in status.split(b"\n"):
        if line.startswith(key):
            try:
                return [int(v) for v in line[len(key):].split()] or None
            except ValueError:
                return None
    return None


def parse_nspid(status: bytes | None) -> int | None:
    """The innermost pid from the NSpid line of /proc/<pid>/status."""
    values = _status_numbers(status, b"NSpid:")
    return values[-1] if values else None


def parse_uid(status: bytes | None) -> int | None:
    """The real uid from the Uid line of /proc/<pid>/status."""
    values = _status_numbers(status, b"Uid:")
    return values[0] if values else None


def read_process(pid: int, proc_root: str = "/proc", errors: ReadErrors | None = None) -> ProcessInfo | None:
    """One process, or None when it is gone (or its stat cannot be read: counted in ``errors``)."""
    base = os.path.join(proc_root, str(pid))
    stat = parse_stat(read_bytes(os.path.join(base, "stat"), errors))
    if stat is None:
        return None
    comm, state, cpu, threads, rss_pages = stat
    cmdline = read_bytes(os.path.join(base, "cmdline"), errors) or b""
    command = cmdline.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace") or f"[{comm}]"
    status = read_bytes(os.path.join(base, "status"), errors)
    return ProcessInfo(pid=pid, ns_pid=parse_nspid(status), command=command, state=state, threads=threads,
                       cpu_seconds=cpu, rss_bytes=rss_pages * PAGE_SIZE, uid=parse_uid(status))


def read_pids(procs_file: str, errors: ReadErrors | None = None) -> list[int]:
    """The pids in a cgroup.procs file ([] when unreadable)."""
    data = read_bytes(procs_file, errors)
    if not data:
        return []
    return [pid for pid in map(parse_pid, data.split()) if pid is not None]


def all_pids(proc_root: str = "/proc") -> list[int]:
    """Every process id under ``proc_root`` (those that end while listed may still be in it)."""
    try:
        names = os.listdir(proc_root)
    except OSError:
        return []
    return sorted(int(name) for name in names if name.isdigit())


def cgroup_paths(pid: int, proc_root: str = "/proc") -> list[str]:
    """The cgroup paths of a process in every hierarchy, from /proc/<pid>/cgroup ([] when it is gone)."""
    data = read_bytes(os.path.join(proc_root, str(pid), "cgroup")) or b""
    paths = []
    for line in data.decode("utf-8", "replace").splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3 and parts[2].startswith("/"):
            paths.append(parts[2])
    return paths


def read_processes(pids: Iterable[int], proc_root: str = "/proc",
                   errors: ReadErrors | None = None) -> list[ProcessInfo]:
    """The processes of ``pids`` that still exist."""
    return [p for p in (read_process(pid, proc_root, errors) for pid in pids) if p is not None]
