"""Host-wide figures from /proc: CPU time (as docker stats counts it), online CPUs, memory, block device names."""

from __future__ import annotations

import os
import time

from ..model.sample import HostSample
from .readfile import ReadErrors, kernel_int, read_bytes

NS_PER_TICK = 1e9 / os.sysconf("SC_CLK_TCK")


def parse_proc_stat(data: bytes | None) -> tuple[int | None, int]:
    """/proc/stat: (sum of the first seven fields of the "cpu" line in ns, number of "cpuN" lines)."""
    if not data:
        return None, os.cpu_count() or 1
    total: int | None = None
    cpus = 0
    for line in data.split(b"\n"):
        if not line.startswith(b"cpu"):
            continue
        parts = line.split()
        if parts[0] == b"cpu":
            try:
                total = int(sum(kernel_int(x) for x in parts[1:8]) * NS_PER_TICK)
            except (ValueError, OverflowError):  # OverflowError: a number too large for a float
                total = None
        else:
            cpus += 1
    return total, cpus or (os.cpu_count() or 1)


def parse_meminfo(data: bytes | None) -> dict[str, int]:
    """/proc/meminfo in bytes (keys as in the file, e.g. "MemTotal")."""
    result: dict[str, int] = {}
    if not data:
        return result
    for line in data.split(b"\n"):
        key, _, rest = line.partition(b":")
        parts = rest.split()
        if not parts:
            continue
        try:
            value = kernel_int(parts[0])
        except ValueError:
            continue
        if len(parts) > 1 and parts[1] == b"kB":
            value *= 1024
        result[key.decode("ascii", "replace")] = value
    return result


def parse_partitions(data: bytes | None) -> dict[str, str]:
    """/proc/partitions as {"major:minor": "name"}."""
    result: dict[str, str] = {}
    if not data:
        return result
    for line in data.split(b"\n")[2:]:
        parts = line.split()
        if len(parts) == 4:
            major, minor = parts[0].decode("ascii", "replace"), parts[1].decode("ascii", "replace")
            result[f"{major}:{minor}"] = parts[3].decode("utf-8", "replace")
    return result


class HostReader:
    """Reads the host sample from a proc root (``/proc`` or a recorded tree)."""

    def __init__(self, proc_root: str = "/proc", errors: ReadErrors | None = None) -> None:
        self.proc_root = proc_root
        self.errors = errors  # where files that exist but cannot be read are counted (None: not counted)

    def read(self) -> tuple[HostSample, dict[str, int]]:
        """The host sample, plus the full meminfo (used to fill the root cgroup's memory on cgroup v2)."""
        errors = self.errors
        cpu_time_ns, cpus = parse_proc_stat(read_bytes(self.proc_root + "/stat", errors))
        meminfo = parse_meminfo(read_bytes(self.proc_root + "/meminfo", errors))
        devices = parse_partitions(read_bytes(self.proc_root + "/partitions", errors))
        sample = HostSample(
            monotonic_s=time.monotonic(),
            wall_time_s=time.time(),
            cpu_time_ns=cpu_time_ns,
            online_cpus=cpus,
            memory_total_bytes=meminfo.get("MemTotal"),
            block_devices=devices,
        )
        return sample, meminfo
