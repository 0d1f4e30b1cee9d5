"""Files kept open on the real cgroupfs: a cgroup that vanishes mid-read is no data without an error, and one
recreated under the same path is read afresh, never through a descriptor of the old one."""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import pytest
from support.cgroups import host_layout, make_cgroup, remove_tree
from support.env import need_root

from ctop.sources.cgroupfs import CgroupReader

pytestmark = pytest.mark.system

LIMIT_A = 64 * 2**20
LIMIT_B = 32 * 2**20


@pytest.fixture
def parent():
    need_root()
    layout = host_layout()
    path = f"/ctoph-sp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    make_cgroup(layout, path)
    try:
        yield layout, path
    finally:
        remove_tree(layout, path)


def _make(layout, path: str, limit: int) -> None:
    cg = make_cgroup(layout, path)
    cg.limit_memory(limit)


def _remove(layout, path: str) -> None:
    remove_tree(layout, path)


def test_kept_files_on_cgroupfs_vanish_and_recreate(parent) -> None:
    layout, top = parent
    path = top + "/child"
    _make(layout, path, LIMIT_A)
    reader = CgroupReader(layout, keep_open=None)  # kept open on a real cgroup mount
    assert reader._files is not None  # a live cgroupfs: files are kept open
    first = reader.read_all(rescan_s=0)[path]
    assert first.memory_limit_bytes == LIMIT_A and reader._files.open_count > 0

    _remove(layout, path)  # vanishes between the walk and the read: no data, no error
    assert reader.read(path, first.inode) is None
    assert reader.errors.counts() == {}
    assert path not in reader.read_all(rescan_s=0)

    _make(layout, path, LIMIT_A)
    again = reader.read_all(rescan_s=0)[path]
    _remove(layout, path)
    _make(layout, path, LIMIT_B)  # recreated under the same path after the walk saw the old one
    recreated = reader.read(path, again.inode)
    assert recreated is not None and recreated.memory_limit_bytes == LIMIT_B
    fresh = reader.read_all(rescan_s=0)[path]
    assert fresh.inode != again.inode and fresh.memory_limit_bytes == LIMIT_B
    assert reader.errors.counts() == {}
    reader.close()
    assert reader._files.open_count == 0


def test_the_collectors_reader_keeps_what_it_reads_every_refresh_open_and_reads_it_fresh(parent) -> None:
    """The default reader (the collector's) on the host: a busy cgroup's counters are read through kept descriptors
    and still move; its limits are not kept (read every few seconds only); an idle one keeps its CPU-time file."""
    from ctop.collector import Collector, CollectorConfig
    from ctop.sources.openfiles import FD_FLOOR

    layout, top = parent
    busy, idle = top + "/busy", top + "/idle"
    _make(layout, busy, LIMIT_A)
    _make(layout, idle, LIMIT_B)
    cgroup = make_cgroup(layout, busy)
    spinner = cgroup.spawn(["sh", "-c", "while :; do :; done"])
    sleeper: subprocess.Popen | None = None
    collector = Collector(CollectorConfig(containers=False, ebpf=False, history_dir=None), layout)
    try:
        reader = collector.cgroups
        assert reader._files is not None, "the collector's reader keeps no files open on a cgroup mount"
        usages = []
        for _ in range(4):
            usages.append(collector.snapshot().cgroups[busy].cpu_usage_ns or 0)
            time.sleep(0.3)
        assert usages == sorted(usages) and usages[-1] > usages[1] > 0, usages  # read fresh through kept files
        kept = {os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd") if int(fd) >= FD_FLOOR}
        names_busy = {p.rsplit("/", 1)[1] for p in kept if p.rsplit("/", 1)[0].endswith(busy)}
        names_idle = {p.rsplit("/", 1)[1] for p in kept if p.rsplit("/", 1)[0].endswith(idle)}
        activity = "cpu.stat" if layout.mode == "v2" else "cpuacct.usage"
        assert activity in names_busy and len(names_busy) > 5, names_busy
        assert not names_busy & {"memory.max", "memory.limit_in_bytes", "pids.max", "cpu.max", "cpu.shares"}
        assert names_idle == {activity}, names_idle
        # Task lists: kept on cgroup2 (listed afresh at every read), opened afresh on v1 (which serves a cached copy).
        assert ("cgroup.procs" in names_busy) is (layout.mode == "v2"), names_busy
        assert collector.snapshot().cgroups[busy].processes == 1
        sleeper = cgroup.spawn(["sleep", "60"])
        time.sleep(0.3)
        assert collector.snapshot().cgroups[busy].processes == 2
    finally:
        for proc in (spinner, sleeper):
            if proc is not None:
                proc.kill()
                proc.wait()
        collector.close()
    assert reader._files.open_count == 0
