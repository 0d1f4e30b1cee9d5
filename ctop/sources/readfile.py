"""Cheap, exception-safe reads of small kernel files (cgroupfs, procfs): the only place sources touch the disk.

Every reader returns ``None`` for "no data" (missing file, vanished cgroup, permission, malformed content) so a
single bad file never fails a refresh.
"""

from __future__ import annotations

import os

_READ_CHUNK = 65536
# Kernel counters and limits are 64-bit: a number outside this range is a damaged file, not data (and would
# overflow a float in the rates computed from it).
_KERNEL_MIN, _KERNEL_MAX = -(2**63), 2**64


def kernel_int(token: bytes | str, base: int = 10) -> int:
    """int(token) for a number a kernel file can hold; ValueError when malformed or beyond 64 bits."""
    value = int(token, base)
    if not _KERNEL_MIN <= value < _KERNEL_MAX:
        raise ValueError(f"{token[:20]!r} is beyond 64 bits")
    return value


def read_bytes(path: str) -> bytes | None:
    """Whole content of a small file, or None if it cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
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
    except OSError:
        return None
    finally:
        os.close(fd)


def read_int(path: str) -> int | None:
    """A file holding one integer; None when missing or malformed."""
    data = read_bytes(path)
    if data is None:
        return None
    try:
        return kernel_int(data)
    except ValueError:
        return None


def read_limit(path: str) -> tuple[bool, int | None]:
    """A file holding an integer or ``max``: (present, value) with value None meaning unlimited."""
    data = read_bytes(path)
    if data is None:
        return False, None
    data = data.strip()
    if data == b"max":
        return True, None
    try:
        return True, kernel_int(data)
    except ValueError:
        return False, None


def read_text(path: str) -> str | None:
    """A small text file decoded leniently; None if it cannot be read."""
    data = read_bytes(path)
    return None if data is None else data.decode("utf-8", "replace")


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
