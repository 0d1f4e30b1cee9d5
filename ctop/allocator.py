"""glibc malloc settings for a process that runs for days: few arenas, large buffers handed back at once.

By default glibc gives threads up to eight arenas per CPU and, after the first large buffer is freed, serves
buffers of up to 32 MiB from the heap (the "dynamic mmap threshold"). Each scrape in its own thread and exposition
bodies of megabytes then leave freed memory in arenas it is never returned from: the exporter's RSS rose by a
megabyte or two every few minutes. Settings a user made through the environment (MALLOC_ARENA_MAX,
MALLOC_MMAP_THRESHOLD_, GLIBC_TUNABLES) are left alone; on a C library without mallopt nothing changes.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Mapping

M_MMAP_THRESHOLD = -3  # malloc.h
M_ARENA_MAX = -8
ARENAS = 2  # the main arena and one for every other thread
MMAP_THRESHOLD = 128 * 1024  # glibc's default, made fixed: larger buffers are mapped and unmapped on free
USER_SETTINGS = ("MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES")


def settings_for(environ: Mapping[str, str]) -> list[tuple[int, int]]:
    """The mallopt (parameter, value) pairs to apply; none where the user set the allocator up."""
    if any(name in environ for name in USER_SETTINGS):
        return []
    return [(M_ARENA_MAX, ARENAS), (M_MMAP_THRESHOLD, MMAP_THRESHOLD)]


def settle(environ: Mapping[str, str] = os.environ) -> bool:
    """Apply the settings to this process (before it starts threads); True if the C library took them all."""
    settings = settings_for(environ)
    if not settings:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return all(mallopt(parameter, value) == 1 for parameter, value in settings)
