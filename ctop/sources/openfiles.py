"""cgroup files kept open between refreshes and re-read with pread: no path lookup, open or close per read.

Files are kept per cgroup incarnation (the inode of its directory): a cgroup that vanished or was recreated
under the same path never serves a read through a descriptor of the old one. Only seekable files are kept (a
FIFO in a damaged recorded tree is read the ordinary way), and the descriptors live at or above ``FD_FLOOR`` so
that the low numbers stay free for the rest of the process (select() cannot watch descriptors past 1023).
"""

from __future__ import annotations

import errno
import fcntl
import os
import resource
import weakref
from collections.abc import Collection

from .readfile import _OPEN_FLAGS, _READ_CHUNK, ABSENT_ERRNOS, ReadErrors, _failed, read_bytes

FD_FLOOR = 1024  # kept descriptors are moved to this number or above
MAX_OPEN = 2048  # descriptors kept at most: each holds about 4.8 KB of kernel memory once read (a page and its file)
RESERVE = 64  # descriptors left under the soft limit for whatever else opens files above FD_FLOOR
# v1 task lists are never kept open: v1 serves a list read again through the same descriptor from a copy it keeps
# until a second after the last read (so, read every refresh, forever). cgroup2 lists each read afresh.
V1_TASK_LISTS = ("/cgroup.procs", "/tasks", "/cgroup.threads")


def _fd_budget(wanted: int) -> int:
    """How many descriptors may be kept above FD_FLOOR: the soft limit is raised towards the hard one if needed."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        need = FD_FLOOR + wanted + RESERVE
        if soft != resource.RLIM_INFINITY and soft < need:
            target = need if hard == resource.RLIM_INFINITY else min(hard, need)
            if target > soft:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
                soft = target
    except (OSError, ValueError):
        return 0
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(0, min(wanted, soft - FD_FLOOR - RESERVE))


def _pread_all(fd: int) -> bytes:
    chunk = os.pread(fd, _READ_CHUNK, 0)
    if len(chunk) < _READ_CHUNK:
        return chunk
    parts = [chunk]
    offset = len(chunk)
    while chunk:
        chunk = os.pread(fd, _READ_CHUNK, offset)
        parts.append(chunk)
        offset += len(chunk)
    return b"".join(parts)


def _close_all(by_cgroup: dict[str, tuple[int, dict[str, int]]]) -> None:
    for _, files in by_cgroup.values():
        for fd in files.values():
            try:
                os.close(fd)
            except OSError:
                pass
    by_cgroup.clear()


class OpenFiles:
    """Reads cgroup files through descriptors kept open per cgroup incarnation, up to ``max_open`` of them."""

    def __init__(self, max_open: int = MAX_OPEN, reopened: tuple[str, ...] = V1_TASK_LISTS) -> None:
        """``reopened``: file name endings that are always opened afresh (V1_TASK_LISTS where any hierarchy is v1)."""
        self.max_open = _fd_budget(max_open) if max_open > 0 else 0
        self._reopened = reopened
        self._by_cgroup: dict[str, tuple[int, dict[str, int]]] = {}  # cgroup path -> (inode, file path -> fd)
        self._open = 0
        self._finalizer = weakref.finalize(self, _close_all, self._by_cgroup)

    @property
    def open_count(self) -> int:
        """Descriptors kept now."""
        return self._open

    def read(self, cgroup: str, inode: int, path: str, errors: ReadErrors | None, keep: bool = True) -> bytes | None:
        """Content of ``path``, a file of ``cgroup`` whose directory has ``inode`` (as read_bytes answers).

        A file read for the first time is kept open if ``keep``; else it is opened, read and closed as usual.
        """
        entry = self._by_cgroup.get(cgroup)
        if entry is None or entry[0] != inode:
            if entry is not None:
                self.forget(cgroup)  # recreated: the old incarnation's descriptors read nothing of the new one
            entry = (inode, {})
            self._by_cgroup[cgroup] = entry
        files = entry[1]
        fd = files.get(path)
        if fd is not None:
            try:
                return _pread_all(fd)
            except OSError as e:
                del files[path]
                self._close(fd)
                if e.errno not in ABSENT_ERRNOS:
                    _failed(path, e, errors)
                    return None
                # The cgroup vanished since the file was opened: look the path up again below.
        if not keep or self._open >= self.max_open or (self._reopened and path.endswith(self._reopened)):
            return read_bytes(path, errors)
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except OSError as e:
            _failed(path, e, errors)
            return None
        try:
            high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, FD_FLOOR)
        except OSError:  # no descriptor free above the floor: keep no more, read this one the usual way
            os.close(fd)
            self.max_open = self._open
            return read_bytes(path, errors)
        os.close(fd)
        fd = high
        try:
            data = _pread_all(fd)
        except OSError as e:
            os.close(fd)
            if e.errno == errno.ESPIPE:  # not a regular file (a FIFO in a damaged recorded tree)
                return read_bytes(path, errors)
            _failed(path, e, errors)
            return None
        files[path] = fd
        self._open += 1
        return data

    def keep_only(self, cgroup: str, path: str) -> None:
        """Close the descriptors of ``cgroup`` other than that of ``path`` (it is read alone for a while)."""
        entry = self._by_cgroup.get(cgroup)
        if entry is None or len(entry[1]) <= 1:
            return
        files = entry[1]
        for name in [name for name in files if name != path]:
            self._close(files.pop(name))

    def forget(self, cgroup: str) -> None:
        """Close every descriptor of ``cgroup`` (it vanished or was recreated)."""
        entry = self._by_cgroup.pop(cgroup, None)
        if entry is not None:
            for fd in entry[1].values():
                self._close(fd)

    def retain(self, cgroups: Collection[str]) -> None:
        """Forget every cgroup not in ``cgroups`` (those read this refresh)."""
        if len(self._by_cgroup) > len(cgroups) or any(c not in cgroups for c in self._by_cgroup):
            for cgroup in [c for c in self._by_cgroup if c not in cgroups]:
                self.forget(cgroup)

    def close(self) -> None:
        """Close every kept descriptor."""
        _close_all(self._by_cgroup)
        self._open = 0

    def _close(self, fd: int) -> None:
        self._open -= 1
        try:
            os.close(fd)
        except OSError:
            pass
