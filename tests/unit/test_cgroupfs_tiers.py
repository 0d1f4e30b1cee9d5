"""An idle cgroup's periodic read takes only what changes while its tasks sleep; written files are read at once.

Recorded trees stand in for cgroupfs. A counter the kernel changes is replaced by a rename (inotify reports no
write for it), a setting a person changes is written in place (a write that inotify reports, as on cgroupfs).
"""

from __future__ import annotations

import os
import shutil

import pytest
from support.trees import copy_tree, paths_the_reader_opens

from ctop.sources import cgroupfs
from ctop.sources.cgroupfs import AMBIENT_FIELDS, LIMIT_FIELDS, V2_AMBIENT_FIELDS, CgroupReader
from ctop.sources.cgroupfs_layout import detect_layout

V2_SERVICE = "/system.slice/kubelet.service"
V1_DOCKER = "/docker/8c3f2d5a016e74f9d1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70"
V2_POD = ("/kubepods.slice/kubepods-burstable.slice/"
          "kubepods-burstable-pod1a2b3c4d_5e6f_7081_92a3_b4c5d6e7f809.slice")
V2_CONTAINER = V2_POD + "/cri-containerd-6a1d0b3e8f4c52d7b9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e.scope"
TIERS = {"idle_reread_s": 10, "idle_full_reread_s": 60, "rescan_s": 10, "limits_reread_s": 5}


def kernel_sets(path: str, text: str) -> None:
    """Change a file as the kernel changes a counter: no write that inotify reports (a rename into place)."""
    scratch = os.path.join(os.path.dirname(os.path.dirname(path)), ".scratch-" + os.path.basename(path))
    with open(scratch, "w") as f:
        f.write(text)
    os.replace(scratch, path)


def person_writes(path: str, text: str) -> None:
    """Change a file as a person or a container manager sets a limit: a write(2), which inotify reports."""
    with open(path, "w") as f:
        f.write(text)


def test_an_idle_v2_cgroups_periodic_read_takes_memory_io_pressure_and_limits_only(tmp_path, monkeypatch) -> None:
    root, _ = copy_tree("v2-k8s-systemd", str(tmp_path / "t"))
    base = root + V2_SERVICE
    reader = CgroupReader(detect_layout(root))
    first = reader.read_all(**TIERS, now=100.0)[V2_SERVICE]
    stagger = cgroupfs._stagger(first.inode)
    kernel_sets(base + "/memory.current", "1234\n")
    kernel_sets(base + "/io.stat", "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n")
    kernel_sets(base + "/memory.pressure", "some avg10=1.00 avg60=0.50 avg300=0.10 total=777\n"
                                           "full avg10=0.00 avg60=0.00 avg300=0.00 total=5\n")
    kernel_sets(base + "/memory.max", "1048576\n")  # not watched here (a recorded tree): read with the ambient files
    kernel_sets(base + "/cgroup.procs", "900\n901\n")  # these move only when its tasks run: not read while idle
    kernel_sets(base + "/pids.current", "21\n")
    kernel_sets(base + "/memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n")

    assert reader.read_all(**TIERS, now=100.0 + 10 * stagger - 0.01)[V2_SERVICE] is first  # not due yet
    opened = paths_the_reader_opens(monkeypatch)
    ambient = reader.read_all(**TIERS, now=100.0 + 10 * stagger)[V2_SERVICE]
    assert (ambient.memory_usage_bytes, ambient.memory_limit_bytes) == (1234, 1048576)
    assert ambient.io_total is not None and (ambient.io_total.read_bytes, ambient.io_total.write_bytes) == (4096, 8192)
    assert ambient.pressure_memory is not None and ambient.pressure_memory.some_total_ns == 777000
    assert (ambient.processes, ambient.pids_current, ambient.memory_oom_kills, ambient.cpu_usage_ns) == (
        first.processes, first.pids_current, first.memory_oom_kills, first.cpu_usage_ns)
    names = {p.rsplit("/", 1)[1] for p in opened if p.startswith(base + "/")}
    assert names.isdisjoint({"cgroup.procs", "cgroup.threads", "pids.current", "memory.events"}), names
    assert {"memory.current", "memory.stat", "io.stat", "memory.max", "cpu.max"} <= names, names
    changed = {f for f in V2_AMBIENT_FIELDS + LIMIT_FIELDS if getattr(ambient, f) != getattr(first, f)}
    assert changed <= set(V2_AMBIENT_FIELDS + LIMIT_FIELDS) and "memory_usage_bytes" in changed

    full = reader.read_all(**TIERS, now=100.0 + 60 * stagger)[V2_SERVICE]  # everything, at idle_full_reread_s
    assert (full.processes, full.pids_current, full.memory_oom_kills, full.memory_failcnt) == (2, 21, 1, 3)


def test_an_idle_v1_cgroups_periodic_read_leaves_its_io_and_processes(tmp_path) -> None:
    root, _ = copy_tree("v1-k8s-cgroupfs", str(tmp_path / "t"))
    reader = CgroupReader(detect_layout(root))
    first = reader.read_all(**TIERS, now=100.0)[V1_DOCKER]
    stagger = cgroupfs._stagger(first.inode)
    kernel_sets(root + "/memory" + V1_DOCKER + "/memory.usage_in_bytes", "4321\n")
    kernel_sets(root + "/memory" + V1_DOCKER + "/memory.failcnt", "9\n")
    kernel_sets(root + "/pids" + V1_DOCKER + "/cgroup.procs", "7\n8\n9\n")
    kernel_sets(root + "/blkio" + V1_DOCKER + "/blkio.throttle.io_service_bytes_recursive",
                "8:0 Read 4096\n8:0 Write 0\nTotal 4096\n")

    ambient = reader.read_all(**TIERS, now=100.0 + 10 * stagger)[V1_DOCKER]
    assert ambient.memory_usage_bytes == 4321
    assert {f: getattr(ambient, f) for f in ("memory_failcnt", "processes", "io_total")} == {
        f: getattr(first, f) for f in ("memory_failcnt", "processes", "io_total")}
    assert set(AMBIENT_FIELDS) < set(V2_AMBIENT_FIELDS) and "io_total" not in AMBIENT_FIELDS  # v1 IO: by its tasks
    full = reader.read_all(**TIERS, now=100.0 + 60 * stagger)[V1_DOCKER]
    assert (full.memory_failcnt, full.processes) == (9, 3)
    assert full.io_total is not None and full.io_total.read_bytes == 4096


def test_without_idle_full_reread_an_idle_cgroup_is_read_in_full_when_due(tmp_path) -> None:
    root, _ = copy_tree("v2-k8s-systemd", str(tmp_path / "t"))
    reader = CgroupReader(detect_layout(root))
    first = reader.read_all(idle_reread_s=10, now=100.0)[V2_SERVICE]
    kernel_sets(root + V2_SERVICE + "/cgroup.procs", "900\n901\n")
    due = reader.read_all(idle_reread_s=10, now=100.0 + 10 * cgroupfs._stagger(first.inode))[V2_SERVICE]
    assert due.processes == 2


def test_a_written_file_gets_an_idle_cgroup_read_at_the_next_refresh(tmp_path) -> None:
    root, _ = copy_tree("v2-k8s-systemd", str(tmp_path / "t"))
    base = root + V2_SERVICE
    reader = CgroupReader(detect_layout(root), watch_writes=True)
    first = reader.read_all(**TIERS, now=100.0)[V2_SERVICE]
    kernel_sets(base + "/pids.current", "21\n")
    assert reader.read_all(**TIERS, now=101.0)[V2_SERVICE] is first  # idle, nothing written
    person_writes(base + "/memory.max", "1048576\n")
    limited = reader.read_all(**TIERS, now=102.0)[V2_SERVICE]
    assert limited.memory_limit_bytes == 1048576 and limited.pids_current == 21  # read in full
    person_writes(base + "/cgroup.procs", "900\n901\n")  # a process moved in
    assert reader.read_all(**TIERS, now=103.0)[V2_SERVICE].processes == 2
    assert reader.read_all(**TIERS, now=104.0)[V2_SERVICE].processes == 2  # and idle again


def test_a_watched_cgroups_limits_wait_for_a_write_but_an_unwatched_ones_are_read_every_few_seconds(tmp_path) -> None:
    root, _ = copy_tree("v2-k8s-systemd", str(tmp_path / "t"))
    base = root + V2_SERVICE
    depth = V2_SERVICE.count("/")
    watched = CgroupReader(detect_layout(root), watch_writes=True)
    unwatched = CgroupReader(detect_layout(root), watch_writes=True)  # at its depth limit: not watched
    readers = ((watched, None), (unwatched, depth))
    inode = next(iter(r.read_all(d, **TIERS, now=100.0)[V2_SERVICE].inode for r, d in readers))
    stagger = cgroupfs._stagger(inode)
    kernel_sets(base + "/memory.max", "1048576\n")  # a change no write announced (none does on cgroupfs)
    ambient_due = 100.0 + 10 * stagger
    assert watched.read_all(**TIERS, now=ambient_due)[V2_SERVICE].memory_limit_bytes == cgroupfs.UNLIMITED
    assert unwatched.read_all(depth, **TIERS, now=ambient_due)[V2_SERVICE].memory_limit_bytes == 1048576
    # Busy: limits every limits_reread_s where unwatched, and carried over where watched until written.
    kernel_sets(base + "/memory.max", "2097152\n")
    for now in (ambient_due + 1, ambient_due + 6, ambient_due + 12):
        with open(base + "/cpu.stat") as f:
            stat = f.read()
        value = int(stat.split()[1]) + 1000
        kernel_sets(base + "/cpu.stat", stat.replace(stat.split("\n")[0], f"usage_usec {value}", 1))
        busy_watched = watched.read_all(**TIERS, now=now)[V2_SERVICE]
        busy_unwatched = unwatched.read_all(depth, **TIERS, now=now)[V2_SERVICE]
        assert busy_watched.cpu_usage_ns == busy_unwatched.cpu_usage_ns == value * 1000
    assert busy_watched.memory_limit_bytes == cgroupfs.UNLIMITED
    assert busy_unwatched.memory_limit_bytes == 2097152
    person_writes(base + "/memory.max", "3145728\n")
    assert watched.read_all(**TIERS, now=ambient_due + 13)[V2_SERVICE].memory_limit_bytes == 3145728


def test_a_cpuset_write_in_a_parent_gets_its_children_read(tmp_path) -> None:
    root, _ = copy_tree("v2-k8s-systemd", str(tmp_path / "t"))
    reader = CgroupReader(detect_layout(root), watch_writes=True)
    first = reader.read_all(**TIERS, now=100.0)[V2_CONTAINER]
    kernel_sets(root + V2_CONTAINER + "/cpuset.cpus.effective", "1\n")  # what the kernel makes of the parent's
    person_writes(root + V2_POD + "/cpuset.cpus", "1\n")
    after = reader.read_all(**TIERS, now=101.0)[V2_CONTAINER]
    assert first.cpuset_cpus != "1" and after.cpuset_cpus == "1"


@pytest.mark.parametrize("tree, path", [("v2-k8s-systemd", V2_SERVICE), ("v1-k8s-cgroupfs", V1_DOCKER)])
def test_an_idle_cgroup_removed_before_its_periodic_read_is_dropped(tmp_path, tree: str, path: str) -> None:
    root, _ = copy_tree(tree, str(tmp_path / "t"))
    reader = CgroupReader(detect_layout(root))
    first = reader.read_all(**TIERS, now=100.0)[path]
    quick_check = reader._read_activity

    def idle_then_gone(cgroup: str, inode: int) -> bytes | None:
        data = quick_check(cgroup, inode)  # its CPU time says idle: the ambient files are due, then it is gone
        if cgroup == path:
            for directory in (root + path, *(root + "/" + c + path for c in os.listdir(root))):
                shutil.rmtree(directory, ignore_errors=True)
        return data

    reader._read_activity = idle_then_gone  # type: ignore[method-assign]
    samples = reader.read_all(**TIERS, now=100.0 + 10 * cgroupfs._stagger(first.inode))
    assert path not in samples and samples  # the others stand
    assert reader.errors.counts() == {}


@pytest.mark.parametrize("tree, path", [("v2-k8s-systemd", V2_SERVICE), ("v1-k8s-cgroupfs", V1_DOCKER)])
def test_a_periodic_read_that_finds_nothing_new_keeps_the_sample_object(tmp_path, monkeypatch, tree: str,
                                                                       path: str) -> None:
    """What was derived from an unchanged sample (the collector keeps such rows) stands only if it is the same
    object: an idle cgroup's ambient or full read that finds the same values gives back the previous sample."""
    root, _ = copy_tree(tree, str(tmp_path / "t"))
    reader = CgroupReader(detect_layout(root))
    first = reader.read_all(**TIERS, now=100.0)[path]
    stagger = cgroupfs._stagger(first.inode)
    opened = paths_the_reader_opens(monkeypatch)
    assert reader.read_all(**TIERS, now=100.0 + 10 * stagger)[path] is first  # ambient due, nothing moved
    assert reader.read_all(**TIERS, now=100.0 + 60 * stagger)[path] is first  # full read due, nothing moved
    assert any(p.endswith(("memory.stat", "memory.usage_in_bytes")) for p in opened)  # they were read
    kernel_sets(root + ("/memory" if "v1" in tree else "") + path +
                ("/memory.usage_in_bytes" if "v1" in tree else "/memory.current"), "5555\n")
    moved = reader.read_all(**TIERS, now=100.0 + 71 * stagger)[path]  # the next ambient read
    assert moved is not first and moved.memory_usage_bytes == 5555
