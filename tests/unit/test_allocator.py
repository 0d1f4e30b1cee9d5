"""The allocator settings of the long-lived commands: at most two glibc arenas however many threads allocate at
once, and nothing changed where the user set the allocator up through the environment."""

from __future__ import annotations

import os
import subprocess
import sys

from ctop import allocator

# Eight threads allocate at the same moment, then glibc's malloc_info tells how many arenas ("heaps") exist.
PROBE = """
import ctypes, os, sys, tempfile, threading
from ctop import allocator
settled = allocator.settle() if sys.argv[1] == "settle" else None
barrier = threading.Barrier(8)
def work():
    barrier.wait()
    kept = [bytes(4096) for _ in range(200)]
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
fd, path = tempfile.mkstemp()
os.close(fd)
stream = libc.fopen(path.encode(), b"w")
libc.malloc_info(0, ctypes.c_void_p(stream))
libc.fclose(ctypes.c_void_p(stream))
with open(path) as f:
    print(settled, f.read().count("<heap nr="))
os.unlink(path)
"""


def _arenas(mode: str, **env: str) -> tuple[str, int]:
    clean = {k: v for k, v in os.environ.items() if k not in allocator.USER_SETTINGS}
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=60,
                         env={**clean, **env}, check=True).stdout.split()
    return out[0], int(out[1])


def test_eight_threads_allocating_at_once_share_two_arenas() -> None:
    settled, arenas = _arenas("settle")
    assert settled == "True" and 1 <= arenas <= allocator.ARENAS
    _, unsettled = _arenas("none")
    assert unsettled > allocator.ARENAS  # what the settings prevent: an arena for each thread


def test_the_users_own_allocator_settings_are_left_alone() -> None:
    assert allocator.settings_for({"MALLOC_ARENA_MAX": "4"}) == []
    assert allocator.settings_for({"GLIBC_TUNABLES": "glibc.malloc.arena_max=4"}) == []
    assert allocator.settings_for({}) == [(allocator.M_ARENA_MAX, 2), (allocator.M_MMAP_THRESHOLD, 128 * 1024)]
    settled, arenas = _arenas("settle", MALLOC_ARENA_MAX="6")
    assert settled == "False" and arenas > allocator.ARENAS
