"""Idle cgroups cost one read until their full re-read is due; cgroups outside the CPU hierarchy are still found."""

from __future__ import annotations

import os

from support.trees import copy_tree

from ctop.sources.cgroupfs import CgroupReader
from ctop.sources.cgroupfs_layout import detect_layout

DOCKER = "/docker/8c3f2d5a016e74f9d1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70"


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def test_idle_cgroup_is_reused_until_due_and_busy_one_is_reread(tmp_path) -> None:
    cgroup_root, _ = copy_tree("v1-k8s-cgroupfs", str(tmp_path / "t"))
    reader = CgroupReader(detect_layout(cgroup_root))
    first = reader.read_all(idle_reread_s=10, rescan_s=10, now=100.0)[DOCKER]
    memory = cgroup_root + "/memory" + DOCKER
    _write(memory + "/memory.usage_in_bytes", "999999\n")
    idle = reader.read_all(idle_reread_s=10, rescan_s=10, now=101.0)[DOCKER]
    assert idle is first  # CPU time did not move: the previous sample stands
    due = reader.read_all(idle_reread_s=10, rescan_s=10, now=111.0)[DOCKER]
    assert due.memory_usage_bytes == 999999  # at most idle_reread_s later it is read in full
    _write(memory + "/memory.usage_in_bytes", "123456\n")
    _write(cgroup_root + "/cpuacct" + DOCKER + "/cpuacct.usage", str((first.cpu_usage_ns or 0) + 1000) + "\n")
    busy = reader.read_all(idle_reread_s=10, rescan_s=10, now=112.0)[DOCKER]
    assert busy.memory_usage_bytes == 123456 and busy.cpu_usage_ns == (first.cpu_usage_ns or 0) + 1000


def test_cgroup_only_in_another_hierarchy_is_found_and_kept(tmp_path) -> None:
    cgroup_root, _ = copy_tree("v1-k8s-cgroupfs", str(tmp_path / "t"))
    only_memory = cgroup_root + "/memory/machine-infra"
    os.makedirs(only_memory)
    _write(only_memory + "/memory.usage_in_bytes", "4096\n")
    reader = CgroupReader(detect_layout(cgroup_root))
    for now in (0.0, 1.0, 2.0):
        samples = reader.read_all(idle_reread_s=10, rescan_s=10, now=now)
        assert samples["/machine-infra"].memory_usage_bytes == 4096
    os.remove(only_memory + "/memory.usage_in_bytes")
    os.rmdir(only_memory)
    assert "/machine-infra" not in reader.read_all(idle_reread_s=10, rescan_s=10, now=3.0)
