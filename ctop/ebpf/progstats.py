"""Kernel run-time statistics of loaded BPF programs (BPF_OBJ_GET_INFO_BY_FD) and a context-switch load."""

from __future__ import annotations

import ctypes
import os
import struct
from dataclasses import dataclass

from .rawbpf import OBJ_GET_INFO_BY_FD, bpf

BPF_STATS_SYSCTL = "/proc/sys/kernel/bpf_stats_enabled"
_BPF_ENABLE_STATS = 32
_BPF_STATS_RUN_TIME = 0
_INFO_SIZE = 256
# Offsets in struct bpf_prog_info (include/uapi/linux/bpf.h).
_OFF_ID = 4
_OFF_NAME = 64
_OFF_RUN_TIME_NS = 192

@dataclass(frozen=True)
class ProgStats:
    """Cumulative run time and run count of one program (zero while kernel.bpf_stats_enabled is 0)."""

    prog_id: int
    name: str
    run_time_ns: int
    run_cnt: int


def prog_stats(fd: int) -> ProgStats | None:
    """Statistics of the program behind ``fd``, or None when the kernel refuses."""
    buf = ctypes.create_string_buffer(_INFO_SIZE)
    addr = ctypes.cast(buf, ctypes.c_void_p).value or 0
    if bpf(OBJ_GET_INFO_BY_FD, struct.pack("<IIQ", fd, _INFO_SIZE, addr)) != 0:
        return None
    raw = buf.raw
    prog_id = struct.unpack_from("<I", raw, _OFF_ID)[0]
    name = raw[_OFF_NAME:_OFF_NAME + 16].split(b"\0", 1)[0].decode("ascii", "replace")
    run_time_ns, run_cnt = struct.unpack_from("<QQ", raw, _OFF_RUN_TIME_NS)
    return ProgStats(prog_id, name, run_time_ns, run_cnt)


def stats_enabled() -> bool | None:
    """Whether the kernel counts program run time (None when the sysctl is missing)."""
    try:
        with open(BPF_STATS_SYSCTL) as f:
            return f.read().strip() == "1"
    except OSError:
        return None


def set_stats_enabled(on: bool) -> bool:
    """Switch kernel.bpf_stats_enabled; False when it cannot be written."""
    try:
        with open(BPF_STATS_SYSCTL, "w") as f:
            f.write("1" if on else "0")
        return True
    except OSError:
        return False


def enable_stats_fd() -> int | None:
    """BPF_ENABLE_STATS (kernel >= 5.8): run-time statistics stay on while the returned fd is open.

    The kernel counts these holders apart from the sysctl and drops the hold when the fd is closed or the
    process dies, so nothing is left switched on. None when the kernel refuses (older kernel, no CAP_SYS_ADMIN).
    """
    fd = bpf(_BPF_ENABLE_STATS, struct.pack("<I", _BPF_STATS_RUN_TIME).ljust(8, b"\0"))
    return fd if fd >= 0 else None


def pipe_pingpong(round_trips: int) -> int:
    """Bounce one byte between this process and a child over two pipes; returns the child's pid (reaped).

    Every round trip blocks and wakes each side once: about two context switches per side.
    """
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(w1)
            os.close(r2)
            for _ in range(round_trips):
                if not os.read(r1, 1):
                    break
                os.write(w2, b"x")
        finally:
            os._exit(0)
    os.close(r1)
    os.close(w2)
    try:
        for _ in range(round_trips):
            os.write(w1, b"x")
            if not os.read(r2, 1):
                break
    finally:
        os.close(w1)
        os.close(r2)
        os.waitpid(pid, 0)
    return pid
