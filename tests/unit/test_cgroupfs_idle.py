"""Idle cgroups cost one read until their full re-read is due; cgroups outside the CPU hierarchy are still found."""

from __future__ import annotations

import os

from support.trees import copy_tree, paths_the_reader_opens

from ctop.sources import cgroupfs, parsers
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


V2_SERVICE = "/system.slice/kubelet.service"


def test_a_busy_v2_cgroup_reads_cpu_stat_once_per_refresh(tmp_path, monkeypatch) -> None:
    cgroup_root, _ = copy_tree("v2-k8s-systemd", str(tmp_path / "t"))
    reader = CgroupReader(detect_layout(cgroup_root))
    reader.read_all(idle_reread_s=10, rescan_s=10, now=100.0)
    stat = cgroup_root + V2_SERVICE + "/cpu.stat"
    with open(stat) as f:
        text = f.read()
    _write(stat, text.replace("usage_usec ", "usage_usec 1", 1))  # CPU time moved: a full read
    opened = paths_the_reader_opens(monkeypatch)
    busy = reader.read_all(idle_reread_s=10, rescan_s=10, now=101.0)[V2_SERVICE]
    assert opened.count(stat) == 1, opened
    assert busy.cpu_usage_ns is not None and str(busy.cpu_usage_ns // 1000).startswith("1")
    assert any(p.startswith(cgroup_root + V2_SERVICE + "/memory.") for p in opened)  # it was read in full
    idle = [p for p in opened if p.endswith("/cpu.stat") and p != stat]
    assert idle and len(idle) == len(set(idle))  # the idle ones: once each too, and nothing else of them


def test_a_busy_v1_cgroup_reads_cpuacct_usage_once_per_refresh(tmp_path, monkeypatch) -> None:
    cgroup_root, _ = copy_tree("v1-k8s-cgroupfs", str(tmp_path / "t"))
    reader = CgroupReader(detect_layout(cgroup_root))
    first = reader.read_all(idle_reread_s=10, rescan_s=10, now=100.0)[DOCKER]
    usage = cgroup_root + "/cpuacct" + DOCKER + "/cpuacct.usage"
    _write(usage, str((first.cpu_usage_ns or 0) + 1000) + "\n")
    opened = paths_the_reader_opens(monkeypatch)
    busy = reader.read_all(idle_reread_s=10, rescan_s=10, now=101.0)[DOCKER]
    assert opened.count(usage) == 1 and busy.cpu_usage_ns == (first.cpu_usage_ns or 0) + 1000
    assert cgroup_root + "/cpuacct" + DOCKER + "/cpuacct.stat" in opened  # read in full


def _bump_v2_cpu(stat: str) -> None:
    with open(stat) as f:
        lines = f.read().splitlines()
    key, value = lines[0].split()
    assert key == "usage_usec"
    _write(stat, "\n".join([f"usage_usec {int(value) + 1000}", *lines[1:]]) + "\n")


def test_a_busy_v2_cgroups_limits_are_read_again_when_due_and_its_counters_every_refresh(tmp_path) -> None:
    cgroup_root, _ = copy_tree("v2-k8s-systemd", str(tmp_path / "t"))
    base = cgroup_root + V2_SERVICE
    reader = CgroupReader(detect_layout(cgroup_root))
    first = reader.read_all(idle_reread_s=10, rescan_s=10, limits_reread_s=5, now=100.0)[V2_SERVICE]
    assert first.memory_limit_bytes == cgroupfs.UNLIMITED and first.cpu_weight == 100
    due = 100.0 + 5 * cgroupfs._stagger(first.inode)
    for name, text in (("memory.max", "1048576\n"), ("cpu.max", "50000 100000\n"), ("cpu.weight", "200\n"),
                       ("pids.max", "64\n"), ("memory.swap.max", "0\n"), ("cpuset.cpus.effective", "0-1\n")):
        _write(base + "/" + name, text)
    _write(base + "/memory.current", "777\n")
    _bump_v2_cpu(base + "/cpu.stat")
    busy = reader.read_all(idle_reread_s=10, rescan_s=10, limits_reread_s=5, now=due - 0.01)[V2_SERVICE]
    assert busy.memory_usage_bytes == 777  # counters: every refresh
    assert {f: getattr(busy, f) for f in cgroupfs.LIMIT_FIELDS} == {f: getattr(first, f) for f in cgroupfs.LIMIT_FIELDS}
    _bump_v2_cpu(base + "/cpu.stat")
    later = reader.read_all(idle_reread_s=10, rescan_s=10, limits_reread_s=5, now=due)[V2_SERVICE]
    assert (later.memory_limit_bytes, later.cpu_quota_us, later.cpu_period_us, later.cpu_weight, later.pids_max,
            later.memory_swap_limit_bytes, later.cpuset_cpus) == (1048576, 50000, 100000, 200, 64, 0, "0-1")
    assert later.cpu_shares == parsers.weight_to_shares(200) != busy.cpu_shares  # derived from the weight
    # Without the cadence (a one-off read, or limits_reread_s=0), limits are read every time.
    _write(base + "/memory.max", "2097152\n")
    _bump_v2_cpu(base + "/cpu.stat")
    assert reader.read_all(idle_reread_s=10, rescan_s=10, now=due + 0.5)[V2_SERVICE].memory_limit_bytes == 2097152


def test_a_busy_v1_cgroups_limits_are_carried_over_until_due(tmp_path) -> None:
    cgroup_root, _ = copy_tree("v1-k8s-cgroupfs", str(tmp_path / "t"))
    reader = CgroupReader(detect_layout(cgroup_root))
    first = reader.read_all(idle_reread_s=10, rescan_s=10, limits_reread_s=5, now=100.0)[DOCKER]
    due = 100.0 + 5 * cgroupfs._stagger(first.inode)
    usage = cgroup_root + "/cpuacct" + DOCKER + "/cpuacct.usage"
    _write(cgroup_root + "/memory" + DOCKER + "/memory.limit_in_bytes", "1048576\n")
    _write(cgroup_root + "/cpu" + DOCKER + "/cpu.cfs_quota_us", "25000\n")
    _write(cgroup_root + "/pids" + DOCKER + "/pids.max", "32\n")
    _write(cgroup_root + "/memory" + DOCKER + "/memory.usage_in_bytes", "4242\n")
    _write(usage, str((first.cpu_usage_ns or 0) + 1000) + "\n")
    busy = reader.read_all(idle_reread_s=10, rescan_s=10, limits_reread_s=5, now=due - 0.01)[DOCKER]
    assert busy.memory_usage_bytes == 4242
    assert (busy.memory_limit_bytes, busy.cpu_quota_us, busy.pids_max) == (
        first.memory_limit_bytes, first.cpu_quota_us, first.pids_max)
    _write(usage, str((first.cpu_usage_ns or 0) + 2000) + "\n")
    later = reader.read_all(idle_reread_s=10, rescan_s=10, limits_reread_s=5, now=due)[DOCKER]
    assert (later.memory_limit_bytes, later.cpu_quota_us, later.pids_max) == (1048576, 25000, 32)


def test_an_idle_cgroups_due_reread_reads_its_limits(tmp_path) -> None:
    cgroup_root, _ = copy_tree("v2-k8s-systemd", str(tmp_path / "t"))
    base = cgroup_root + V2_SERVICE
    reader = CgroupReader(detect_layout(cgroup_root))
    first = reader.read_all(idle_reread_s=1, rescan_s=10, limits_reread_s=100, now=100.0)[V2_SERVICE]
    _write(base + "/memory.max", "1048576\n")
    # Idle (its CPU time did not move): re-read in full when due, limits included whatever their own cadence.
    reread = reader.read_all(idle_reread_s=1, rescan_s=10, limits_reread_s=100, now=101.0)[V2_SERVICE]
    assert reread is not first and reread.memory_limit_bytes == 1048576
    assert first.memory_limit_bytes != 1048576
