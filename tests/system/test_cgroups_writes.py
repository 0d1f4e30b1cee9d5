"""On the real cgroupfs: a limit set or a process moved into an idle cgroup shows at the next refresh (inotify reports
the write), and memory an idle cgroup loses while its tasks sleep shows at its next ambient read, without a full one."""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import pytest
from support.cgroups import fresh_cgroup
from support.env import need_root

from ctop.sources.cgroupfs import CgroupReader

pytestmark = pytest.mark.system

# Cadences long enough that only a write can explain a change seen within a second.
SLOW = {"idle_reread_s": 60, "idle_full_reread_s": 600, "rescan_s": 60, "limits_reread_s": 60}


@pytest.fixture
def cgroup():
    need_root()
    with fresh_cgroup("ctoph-wr") as cg:
        yield cg


def _settled(reader: CgroupReader, path: str, cadences: dict[str, float]):  # type: ignore[no-untyped-def]
    """Read until the cgroup's sample is reused (its tasks asleep, its CPU time still): that sample."""
    deadline = time.monotonic() + 30
    previous = None
    while time.monotonic() < deadline:
        sample = reader.read_all(**cadences)[path]
        if sample is previous:
            return sample
        previous = sample
        time.sleep(0.3)
    raise AssertionError(f"{path} never read as idle in 30 s")


def test_a_limit_set_and_a_process_moved_in_show_at_the_next_refresh(cgroup) -> None:
    idle = cgroup.child("idle")
    idle.spawn(["sleep", "300"])
    cgroup.processes += idle.processes
    reader = CgroupReader(idle.layout)
    assert reader._watch_writes  # on a live cgroupfs writes are watched
    before = _settled(reader, idle.path, SLOW)
    assert before.processes == 1

    limit = 48 * 2**20
    idle.limit_memory(limit)
    idle.limit_pids(77)
    after = reader.read_all(**SLOW)[idle.path]
    assert (after.memory_limit_bytes, after.pids_max) == (limit, 77)
    assert after.cpu_usage_ns == before.cpu_usage_ns  # still idle: the write, not its CPU time, had it read

    sleeper = subprocess.Popen(["sleep", "300"])  # started outside, moved in while it sleeps
    cgroup.processes.append(sleeper)
    time.sleep(0.2)
    for directory in idle.dirs():
        with open(os.path.join(directory, "cgroup.procs"), "w") as f:
            f.write(str(sleeper.pid))
    moved = reader.read_all(**SLOW)[idle.path]
    assert moved.processes == 2 and moved.cpu_usage_ns == before.cpu_usage_ns
    assert reader.read_all(**SLOW)[idle.path] is moved  # then idle again: reused
    reader.close()


def test_memory_freed_under_a_sleeping_cgroup_shows_at_its_ambient_read(cgroup) -> None:
    idle = cgroup.child("shm")
    shm = f"/dev/shm/ctoph-wr-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        idle.spawn(["sh", "-c", f"head -c 16777216 /dev/zero > {shm} && exec sleep 300"])
        cgroup.processes += idle.processes
        deadline = time.monotonic() + 30
        while not (os.path.exists(shm) and os.path.getsize(shm) == 16 * 2**20) and time.monotonic() < deadline:
            time.sleep(0.1)
        cadences = {**SLOW, "idle_reread_s": 1.0}  # memory, IO and pressure every 0.5-1 s; the rest every 5-10 min
        reader = CgroupReader(idle.layout)
        before = _settled(reader, idle.path, cadences)
        assert before.memory_usage_bytes is not None and before.memory_usage_bytes >= 16 * 2**20
        os.remove(shm)  # its pages leave the cgroup's charge; none of its tasks runs
        time.sleep(1.2)
        after = reader.read_all(**cadences)[idle.path]
        assert after.memory_usage_bytes is not None
        assert after.memory_usage_bytes <= before.memory_usage_bytes - 15 * 2**20, (before, after)
        assert after.cpu_usage_ns == before.cpu_usage_ns and after.cpu_user_ns == before.cpu_user_ns
        assert after is not before  # an ambient read, the CPU-tied fields carried over
        reader.close()
    finally:
        if os.path.exists(shm):
            os.remove(shm)
