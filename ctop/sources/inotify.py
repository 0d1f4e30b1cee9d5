"""Linux inotify through libc: directory creations and removals as events, read without blocking.

cgroupfs (kernfs) reports a cgroup's mkdir, rmdir and rename to a watch on its parent like any filesystem, so a
watch per cgroup directory tells which ones appeared or vanished since the last read with one read(2).

Watches count against a per-user limit (``fs.inotify.max_user_watches``) that root shares with kubelet (cAdvisor
watches every cgroup too), containerd and log shippers; when it runs out, *their* watches fail. So ctop takes at
most BUDGET_SHARE of that limit, for the whole process (WatchBudget), and does without inotify beyond it.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import threading
import weakref

IN_MODIFY = 0x2  # a file was written (write(2), or a kernfs change notice such as cgroup.events)
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x01000000
IN_ISDIR = 0x40000000
DIRECTORY_CHANGES = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_ONLYDIR

BUDGET_SHARE = 1 / 8  # of the per-user watch limit, at most, for this process
MAX_USER_WATCHES = "/proc/sys/fs/inotify/max_user_watches"
_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len (of the NUL-padded name that follows)
_libc: ctypes.CDLL | None = None


class WatchLimit(OSError):
    """No watch could be added for a reason other than the directory having gone (the user's watch limit, or this
    process's share of it)."""


class WatchBudget:
    """How many inotify watches this process may still hold: a share of the per-user limit, taken and given back."""

    def __init__(self, total: int | None = None) -> None:
        """``total`` None: BUDGET_SHARE of the kernel's per-user limit (none where that cannot be read)."""
        self.total = _share_of_user_limit() if total is None else total
        self.held = 0
        self._lock = threading.Lock()  # collectors of several threads (a view and a recorder) share it

    def take(self) -> bool:
        with self._lock:
            if self.held >= self.total:
                return False
            self.held += 1
            return True

    def give(self, count: int = 1) -> None:
        with self._lock:
            self.held = max(0, self.held - count)


def _share_of_user_limit() -> int:
    try:
        with open(MAX_USER_WATCHES) as f:
            return int(int(f.read()) * BUDGET_SHARE)
    except (OSError, ValueError):
        return 0


_budget: WatchBudget | None = None


def process_budget() -> WatchBudget:
    """The one budget every watch of this process draws from."""
    global _budget
    if _budget is None:
        _budget = WatchBudget()
    return _budget


def _lib() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        lib = ctypes.CDLL(None, use_errno=True)
        lib.inotify_init1.argtypes = [ctypes.c_int]
        lib.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        _libc = lib
    return _libc


class Inotify:
    """One inotify instance; its descriptor is closed by close() or when the object is collected."""

    def __init__(self, budget: WatchBudget | None = None) -> None:
        """Raises OSError where inotify is unavailable (no libc symbol, the per-user instance limit). Watches draw
        from ``budget`` (default: the process's); forget() gives one back."""
        try:
            lib = _lib()
            fd = lib.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        except (OSError, AttributeError) as exc:
            raise OSError(errno.ENOSYS, f"inotify is unavailable: {exc}") from exc
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
        self.fd = fd
        self.budget = process_budget() if budget is None else budget
        self._wds: set[int] = set()  # the watches held: given back to the budget when dropped or closed
        self._closer = weakref.finalize(self, _close, fd, self.budget, self._wds)

    def add_watch(self, path: str, mask: int = DIRECTORY_CHANGES) -> int | None:
        """The watch descriptor; None when ``path`` is gone or not a directory; WatchLimit for anything else,
        the process's share of the per-user limit spent included."""
        if not self.budget.take():
            raise WatchLimit(errno.ENOSPC, "this process's share of the inotify watches is spent")
        wd = _lib().inotify_add_watch(self.fd, os.fsencode(path), mask)
        if wd >= 0 and wd not in self._wds:
            self._wds.add(wd)
            return int(wd)
        self.budget.give()  # nothing new held: an error, or a watch this instance had already (the same inode)
        if wd >= 0:
            return int(wd)
        code = ctypes.get_errno()
        if code in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise WatchLimit(code, os.strerror(code))

    def forget(self, wd: int) -> None:
        """Note that the kernel dropped watch ``wd`` (its directory is gone): its share goes back to the budget."""
        if wd in self._wds:
            self._wds.discard(wd)
            self.budget.give()

    def read_events(self) -> list[tuple[int, int, str]]:
        """Every queued event as (watch descriptor, mask, name); [] when none are queued."""
        events: list[tuple[int, int, str]] = []
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return events
            offset = 0
            while offset + _HEADER.size <= len(data):
                wd, mask, _cookie, length = _HEADER.unpack_from(data, offset)
                start = offset + _HEADER.size
                name = os.fsdecode(data[start:start + length].rstrip(b"\0"))
                events.append((wd, mask, name))
                offset = start + length

    def close(self) -> None:
        self._closer()


def _close(fd: int, budget: WatchBudget, wds: set[int]) -> None:
    os.close(fd)
    budget.give(len(wds))
    wds.clear()
