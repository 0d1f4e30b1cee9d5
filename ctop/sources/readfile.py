"""Cheap reads of small kernel files (cgroupfs, procfs): the only place sources touch the disk.

Every reader returns ``None`` for "no data" so a single bad file never fails a refresh. Only an absent file
(see ABSENT_ERRNOS) is silent: any other error (permission, I/O) is counted per file name in the ``errors``
given, which turns it into one notice naming the file and the reason.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass

from ..model.notices import Notice, NoticeKind
from ..model.safe_text import inert

_READ_CHUNK = 65536
# O_NONBLOCK: a FIFO in place of a kernel file (a damaged recorded tree) reads as empty instead of hanging.
_OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK
# Kernel counters and limits are 64-bit: a number outside this range is a damaged file, not data (and would
# overflow a float in the rates computed from it).
_KERNEL_MIN, _KERNEL_MAX = -(2**63), 2**64
# "There is no such data (now)": the file or its cgroup/process is gone or was never there (ENOENT, ENOTDIR), a
# cgroup vanished while it was read (ENODEV), a process exited (ESRCH), or the kernel has the file but not the
# feature here (EOPNOTSUPP: PSI turned off, cgroup.procs of a threaded cgroup).
ABSENT_ERRNOS = frozenset({errno.ENOENT, errno.ENOTDIR, errno.ENODEV, errno.ESRCH, errno.EOPNOTSUPP})
# Which fields a file feeds, for the notice's sentence: (file name prefix or suffix, what shows as no data).
_FIELDS_OF = (
    (".pressure", "pressure"), ("cpuset.", "CPU set"), ("cpuacct.", "CPU"), ("cpu.", "CPU"),
    ("memory.", "memory"), ("blkio.", "IO"), ("io.", "IO"), ("pids.", "pids"),
    ("cgroup.procs", "process"), ("cgroup.threads", "thread"), ("tasks", "thread"), ("meminfo", "host memory"),
    ("partitions", "device name"), ("dev", "network"), ("net", "network"),
)
MAX_NAMES = 256  # file names counted at most (ctop reads a few dozen; a bound whatever the caller reads)


def _fields_of(name: str) -> str:
    for affix, fields in _FIELDS_OF:
        if name.startswith(affix) or name.endswith(affix):
            return f"some {fields} fields show"
    return "what it holds shows"


@dataclass(slots=True)
class Unreadable:
    """One file name that could not be read: the first path and notice, and how many reads failed since."""

    notice: Notice
    count: int = 1


class ReadErrors:
    """Files that exist but cannot be read, per file name ("memory.stat"): bounded by the names, not the paths."""

    def __init__(self) -> None:
        self._by_name: dict[str, Unreadable] = {}

    def add(self, path: str, error: OSError) -> None:
        """Count a failed read of ``path`` (a new file name also gets its notice)."""
        name = path.rsplit("/", 1)[-1]
        known = self._by_name.get(name)
        if known is not None:
            known.count += 1
        elif len(self._by_name) < MAX_NAMES:
            reason = os.strerror(error.errno).lower() if error.errno else inert(str(error))
            sentence = f"Cannot read {inert(path)}: {reason}; {_fields_of(name)} as no data."  # paths hold any byte
            self._by_name[name] = Unreadable(Notice(NoticeKind.UNREADABLE_FILE, sentence))

    def counts(self) -> dict[str, int]:
        """File name -> failed reads so far."""
        return {name: u.count for name, u in self._by_name.items()}

    def notices(self) -> tuple[Notice, ...]:
        """One notice per file name that failed, in the order they first failed."""
        return tuple(u.notice for u in self._by_name.values())


def _failed(path: str, error: OSError, errors: ReadErrors | None) -> None:
    if errors is not None and error.errno not in ABSENT_ERRNOS:
        errors.add(path, error)


def kernel_int(token: bytes | str, base: int = 10) -> int:
    """int(token) for a number a kernel file can hold; ValueError when malformed or beyond 64 bits."""
    value = int(token, base)
    if not _KERNEL_MIN <= value < _KERNEL_MAX:
        raise ValueError(f"{token[:20]!r} is beyond 64 bits")
    return value


def read_bytes(path: str, errors: ReadErrors | None = None) -> bytes | None:
    """Whole content of a small file, or None if it cannot be read (counted in ``errors`` unless absent)."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as e:
        _failed(path, e, errors)
        return None
    try:
        chunk = os.read(fd, _READ_CHUNK)
        if len(chunk) < _READ_CHUNK:
            return chunk
        parts = [chunk]
        while chunk:
            chunk = os.read(fd, _READ_CHUNK)
            parts.append(chunk)
        return b"".join(parts)
    except OSError as e:
        _failed(path, e, errors)
        return None
    finally:
        os.close(fd)


def parse_int(data: bytes | None) -> int | None:
    """The one integer a file holds; None when there is no data or it is malformed."""
    if data is None:
        return None
    try:
        return kernel_int(data)
    except ValueError:
        return None


def read_int(path: str, errors: ReadErrors | None = None) -> int | None:
    """A file holding one integer; None when missing or malformed."""
    data = read_bytes(path, errors)
    if data is None:
        return None
    try:
        return kernel_int(data)
    except ValueError:
        return None


def read_limit(path: str, errors: ReadErrors | None = None) -> tuple[bool, int | None]:
    """A file holding an integer or ``max``: (present, value) with value None meaning unlimited."""
    return parse_limit(read_bytes(path, errors))


def parse_limit(data: bytes | None) -> tuple[bool, int | None]:
    """An integer or ``max`` (see read_limit)."""
    if data is None:
        return False, None
    data = data.strip()
    if data == b"max":
        return True, None
    try:
        return True, kernel_int(data)
    except ValueError:
        return False, None


def parse_flat_keyed(data: bytes | None) -> dict[str, int]:
    """``key value`` lines (memory.stat, cpu.stat, memory.events) as a dict; bad lines are skipped."""
    result: dict[str, int] = {}
    if not data:
        return result
    for line in data.split(b"\n"):
        key, _, value = line.partition(b" ")
        if not value:
            continue
        try:
            result[key.decode("ascii", "replace")] = kernel_int(value)
        except ValueError:
            continue
    return result


def parse_keys(data: bytes | None, keys: frozenset[bytes]) -> dict[str, int]:
    """parse_flat_keyed(data) restricted to ``keys``, without converting the values of other keys."""
    result: dict[str, int] = {}
    if not data:
        return result
    for line in data.split(b"\n"):
        key, _, value = line.partition(b" ")
        if not value or key not in keys:
            continue
        try:
            result[key.decode("ascii")] = kernel_int(value)
        except ValueError:
            continue
    return result


def parse_pid(token: bytes) -> int | None:
    """A pid (decimal, at most 19 digits: a longer one is a damaged file, and int() refuses very long ones)."""
    return int(token) if token.isdigit() and len(token) < 20 else None


def first_int(data: bytes | None) -> int | None:
    """The integer on the first line (a cgroup.procs file's first pid); None when empty or malformed."""
    if not data:
        return None
    return parse_pid(data.split(b"\n", 1)[0].strip())


def count_lines(data: bytes | None) -> int | None:
    """Number of non-empty lines (cgroup.procs, tasks); None when there is no data."""
    if data is None:
        return None
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
