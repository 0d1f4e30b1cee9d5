"""Linux inotify through libc: directory creations and removals as events, read without blocking.

cgroupfs (kernfs) reports a cgroup's mkdir, rmdir and rename to a watch on its parent like any filesystem, so a
watch per cgroup directory tells which ones appeared or vanished since the last read with one read(2).
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import weakref

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

_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len (of the NUL-padded name that follows)
_libc: ctypes.CDLL | None = None


class WatchLimit(OSError):
    """No watch could be added for a reason other than the directory having gone (the user's watch limit)."""


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

    def __init__(self) -> None:
        """Raises OSError where inotify is unavailable (no libc symbol, the per-user instance limit)."""
        try:
            lib = _lib()
            fd = lib.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        except (OSError, AttributeError) as exc:
            raise OSError(errno.ENOSYS, f"inotify is unavailable: {exc}") from exc
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
        self.fd = fd
        self._closer = weakref.finalize(self, os.close, fd)

    def add_watch(self, path: str, mask: int = DIRECTORY_CHANGES) -> int | None:
        """The watch descriptor; None when ``path`` is gone or not a directory; WatchLimit for anything else."""
        wd = _lib().inotify_add_watch(self.fd, os.fsencode(path), mask)
        if wd >= 0:
            return int(wd)
        code = ctypes.get_errno()
        if code in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise WatchLimit(code, os.strerror(code))

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
