"""Record the cgroup files ctop reads (and /proc/stat, meminfo, partitions) from a live host into a directory.

Usage: record_tree.py OUT_DIR [CGROUP_PREFIX ...]   (as root; only cgroups under the prefixes, plus the root)
The result is a recorded tree that ``ctop --cgroup-root OUT_DIR/cgroup --proc-root OUT_DIR/proc`` reads.
"""

from __future__ import annotations

import os
import shutil
import sys

FILES = {
    "cpu": ["cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.shares", "cpu.stat"],
    "cpuacct": ["cpuacct.usage", "cpuacct.stat"],
    "cpuset": ["cpuset.cpus", "cpuset.effective_cpus"],
    "memory": ["memory.usage_in_bytes", "memory.max_usage_in_bytes", "memory.limit_in_bytes", "memory.stat",
               "memory.failcnt", "memory.oom_control"],
    "blkio": ["blkio.throttle.io_service_bytes", "blkio.throttle.io_serviced",
              "blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_serviced_recursive"],
    "pids": ["pids.current", "pids.max"],
    "unified": ["cgroup.controllers", "cpu.stat", "cpu.pressure", "memory.pressure", "io.pressure"],
}
COMMON = ["cgroup.procs", "tasks"]


def copy_file(src: str, dst: str) -> None:
    try:
        with open(src, "rb") as f:
            data = f.read()
    except OSError:
        return
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    with open(dst, "wb") as f:
        f.write(data)


def record(out: str, prefixes: list[str], cgroup_root: str = "/sys/fs/cgroup") -> None:
    for hierarchy, names in FILES.items():
        top = os.path.join(cgroup_root, hierarchy)
        if not os.path.isdir(top):
            continue
        for dirpath, _dirs, _files in os.walk(top):
            rel = dirpath[len(top):] or "/"
            if rel != "/" and not any(rel == p or rel.startswith(p + "/") for p in prefixes):
                continue
            for name in names + COMMON:
                copy_file(os.path.join(dirpath, name), os.path.join(out, "cgroup", hierarchy, rel.lstrip("/"), name))
    for name in ("stat", "meminfo", "partitions"):
        copy_file(f"/proc/{name}", os.path.join(out, "proc", name))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    shutil.rmtree(sys.argv[1], ignore_errors=True)
    record(sys.argv[1], sys.argv[2:])
