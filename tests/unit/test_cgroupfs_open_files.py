"""Files kept open between refreshes (openfiles.py) read exactly what reopening them reads; the quicker parsing
of key-value and PSI files gives what the full parse gives."""

from __future__ import annotations

import os
import resource
import shutil

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.trees import copy_tree

from ctop.model.sample import Pressure
from ctop.sources import parsers
from ctop.sources.cgroupfs import CgroupReader
from ctop.sources.cgroupfs_layout import detect_layout
from ctop.sources.openfiles import FD_FLOOR, OpenFiles
from ctop.sources.readfile import ReadErrors, parse_flat_keyed, parse_keys

TREES = ("v1-k8s-cgroupfs", "hybrid-k8s-cgroupfs", "v2-k8s-systemd")


def _rewrite_every_number(root: str, step: int) -> None:
    """Add ``step`` to the first number of every small file, in place (as the kernel changes its files)."""
    for directory, _, files in os.walk(root):
        for name in files:
            path = os.path.join(directory, name)
            with open(path, "rb") as f:
                data = f.read()
            head, _, rest = data.partition(b"\n")
            words = head.split(b" ")
            for i, word in enumerate(words):
                if word.isdigit():
                    words[i] = str(int(word) + step).encode()
                    break
            with open(path, "r+b") as f:  # the same inode, as a kernel file keeps it
                f.write(b" ".join(words) + (b"\n" + rest if rest or data.endswith(b"\n") else b""))
                f.truncate()


@pytest.mark.parametrize("name", TREES)
def test_kept_open_files_read_the_same_as_reopened_ones(tmp_path, name: str) -> None:
    kept_root, _ = copy_tree(name, str(tmp_path / "kept"))
    fresh_root, _ = copy_tree(name, str(tmp_path / "fresh"))
    kept = CgroupReader(detect_layout(kept_root), keep_open=True)
    fresh = CgroupReader(detect_layout(fresh_root), keep_open=False)
    for refresh in range(3):
        a = kept.read_all(idle_reread_s=10, rescan_s=10, now=100.0 + refresh * 11)
        b = fresh.read_all(idle_reread_s=10, rescan_s=10, now=100.0 + refresh * 11)
        assert a.keys() == b.keys()
        for path in a:
            assert {k: v for k, v in vars_of(a[path]).items() if k != "inode"} == \
                {k: v for k, v in vars_of(b[path]).items() if k != "inode"}, path
        assert kept.errors.counts() == fresh.errors.counts()
        _rewrite_every_number(kept_root, refresh + 1)
        _rewrite_every_number(fresh_root, refresh + 1)
    assert kept._files is not None and kept._files.open_count > 0
    kept.close()
    assert kept._files.open_count == 0


def vars_of(sample: object) -> dict[str, object]:
    return {name: getattr(sample, name) for name in sample.__slots__}  # type: ignore[attr-defined]


def test_a_recreated_cgroup_is_read_afresh_not_through_the_old_files(tmp_path) -> None:
    root, _ = copy_tree("v1-k8s-cgroupfs", str(tmp_path / "t"))
    reader = CgroupReader(detect_layout(root), keep_open=True)
    path = "/kubepods/burstable"
    first = reader.read_all()[path]
    for controller in os.listdir(root):  # removed and made again in every hierarchy: new directory inodes
        directory = root + "/" + controller + path
        if os.path.isdir(directory):
            saved = str(tmp_path / "saved" / controller)
            shutil.copytree(directory, saved)
            shutil.rmtree(directory)  # files still open in the reader would keep the old content
            shutil.copytree(saved, directory)
    with open(root + "/memory" + path + "/memory.limit_in_bytes", "w") as f:
        f.write("33554432\n")
    second = reader.read_all(rescan_s=0)[path]
    assert second.inode != first.inode
    assert first.memory_limit_bytes != 33554432 and second.memory_limit_bytes == 33554432


def test_vanished_cgroups_have_their_files_closed(tmp_path) -> None:
    root, _ = copy_tree("v1-k8s-cgroupfs", str(tmp_path / "t"))
    reader = CgroupReader(detect_layout(root), keep_open=True)
    reader.read_all()
    before = reader.read_all()  # read in full twice: every file is kept open now
    files = reader._files
    assert files is not None
    kept = files.open_count
    gone = "/kubepods/besteffort"
    for controller in os.listdir(root):
        shutil.rmtree(root + "/" + controller + gone, ignore_errors=True)
    after = reader.read_all(rescan_s=0)
    assert gone in before and not any(p == gone or p.startswith(gone + "/") for p in after)
    assert files.open_count < kept and reader.errors.counts() == {}


def test_at_most_max_open_files_are_kept_and_they_sit_above_the_floor(tmp_path) -> None:
    for i in range(4):
        (tmp_path / f"f{i}").write_bytes(b"%d\n" % i)
    files = OpenFiles(max_open=2)
    errors = ReadErrors()
    assert [files.read("/c", 1, str(tmp_path / f"f{i}"), errors) for i in range(4)] == \
        [b"0\n", b"1\n", b"2\n", b"3\n"]
    assert files.open_count == 2
    kept = files._by_cgroup["/c"][1]
    assert all(fd >= FD_FLOOR for fd in kept.values())
    files.keep_only("/c", str(tmp_path / "f0"))
    assert files.open_count == 1
    files.retain(set())
    assert files.open_count == 0 and errors.counts() == {}


def test_a_fifo_is_read_the_ordinary_way(tmp_path) -> None:
    fifo = str(tmp_path / "memory.stat")
    os.mkfifo(fifo)
    files = OpenFiles()
    assert files.read("/c", 1, fifo, ReadErrors()) == b"" and files.open_count == 0


KEYS = frozenset({b"rss", b"total_rss", b"usage_usec", b"oom_kill"})
lines = st.lists(st.tuples(st.sampled_from([b"rss", b"total_rss", b"cache", b"usage_usec", b"oom_kill", b"r\xffss",
                                            b""]),
                           st.sampled_from([b" ", b"  ", b"\t", b""]),
                           st.one_of(st.integers(-2**70, 2**70).map(lambda i: str(i).encode()),
                                     st.sampled_from([b"", b"x", b"1_0", b" 7 ", b"max"]))),
                 max_size=12)


@given(lines)
def test_key_only_parsing_equals_the_full_parse_restricted(content: list[tuple[bytes, bytes, bytes]]) -> None:
    data = b"\n".join(k + sep + v for k, sep, v in content)
    full = parse_flat_keyed(data)
    assert parse_keys(data, KEYS) == {k: v for k, v in full.items() if k.encode() in KEYS}


number = st.one_of(st.floats(allow_nan=True).map(lambda f: repr(f).encode()), st.integers(-2**70, 2**70).map(
    lambda i: str(i).encode()), st.sampled_from([b"", b"x", b"1_0", b"1=2", b"0.00"]))
psi_line = st.tuples(st.sampled_from([b"some", b"full", b"none"]), st.lists(st.tuples(
    st.sampled_from([b"avg10", b"avg60", b"avg300", b"total", b"x"]), st.sampled_from([b"=", b""]), number),
    max_size=5), st.sampled_from([b" ", b"  ", b"\t"]))


@given(st.lists(psi_line, max_size=3), st.booleans())
def test_pressure_read_by_position_equals_the_full_parse(lines: list, trailing: bool) -> None:
    data = b"\n".join(head + sep + sep.join(k + eq + v for k, eq, v in items) for head, items, sep in lines)
    data += b"\n" if trailing else b""
    assert repr(parsers.parse_pressure(data)) == repr(parsers._parse_pressure(data) if data else None)


def test_pressure_as_the_kernel_writes_it_is_read_by_position() -> None:
    data = b"some avg10=0.12 avg60=0.50 avg300=1.00 total=1234\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=56\n"
    assert parsers._pressure_matched(data) == parsers._parse_pressure(data) == \
        Pressure(0.12, 1_234_000, 0.0, 56_000)


def test_only_cgroups_read_in_full_refresh_after_refresh_keep_every_file_open(tmp_path) -> None:
    root, _ = copy_tree("v1-k8s-cgroupfs", str(tmp_path / "t"))
    reader = CgroupReader(detect_layout(root), keep_open=True)
    files = reader._files
    assert files is not None
    path = "/kubepods/burstable"
    activity = root + "/cpuacct" + path + "/cpuacct.usage"

    def kept() -> set[str]:
        return set(files._by_cgroup[path][1])

    reader.read_all(idle_reread_s=10, now=100.0)
    assert kept() == {activity}  # read in full once: only the file read every refresh stays open
    with open(activity, "w") as f:  # busy: read in full again
        f.write("999999999999\n")
    reader.read_all(idle_reread_s=10, now=101.0)
    with open(activity, "w") as f:
        f.write("999999999998\n")
    reader.read_all(idle_reread_s=10, now=102.0)
    assert len(kept()) > 10 and not any(name.endswith(("/cgroup.procs", "/tasks")) for name in kept())
    reader.read_all(idle_reread_s=10, now=103.0)  # idle now: read alone until due
    assert kept() == {activity}


def test_a_busy_v2_cgroup_keeps_its_task_lists_open_and_reads_them_afresh(tmp_path) -> None:
    """cgroup2 lists a cgroup's tasks afresh at every read of a kept descriptor (v1 would serve a cached copy)."""
    root, _ = copy_tree("v2-k8s-systemd", str(tmp_path / "t"))
    reader = CgroupReader(detect_layout(root), keep_open=True)
    files = reader._files
    assert files is not None
    path = "/system.slice/kubelet.service"
    stat, procs = root + path + "/cpu.stat", root + path + "/cgroup.procs"
    with open(stat) as f:
        text = f.read()
    for now, usage in ((100.0, "1"), (101.0, "2"), (102.0, "3")):  # busy: read in full refresh after refresh
        with open(stat, "w") as f:
            f.write(text.replace("usage_usec ", "usage_usec " + usage, 1))
        before = reader.read_all(idle_reread_s=10, now=now)[path]
    assert {procs, root + path + "/cgroup.threads"} <= set(files._by_cgroup[path][1])
    with open(procs, "a") as f:  # a process more (the file is replaced in place: the kept descriptor sees it)
        f.write("424242\n")
    with open(stat, "w") as f:
        f.write(text.replace("usage_usec ", "usage_usec 4", 1))
    after = reader.read_all(idle_reread_s=10, now=103.0)[path]
    assert after.processes == (before.processes or 0) + 1


def test_no_descriptor_above_the_floor_means_reading_the_usual_way(tmp_path) -> None:
    (tmp_path / "f").write_bytes(b"1\n")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    files = OpenFiles(max_open=4)
    files.max_open = 4
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_FLOOR, hard))  # nothing can sit at or above the floor now
    try:
        errors = ReadErrors()
        assert files.read("/c", 1, str(tmp_path / "f"), errors) == b"1\n"
        assert files.open_count == 0 and files.max_open == 0 and errors.counts() == {}
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _co_mounted(tmp_path) -> str:
    """The v1 tree with cpu and cpuacct co-mounted as systemd mounts them: one ``cpu,cpuacct`` directory holding
    both controllers' files, ``cpu`` and ``cpuacct`` links to it."""
    from support.trees import copy_tree

    root, _ = copy_tree("v1-k8s-cgroupfs", str(tmp_path / "t"))
    both = os.path.join(root, "cpu,cpuacct")
    shutil.copytree(os.path.join(root, "cpu"), both)
    shutil.copytree(os.path.join(root, "cpuacct"), both, dirs_exist_ok=True)
    for name in ("cpu", "cpuacct"):
        shutil.rmtree(os.path.join(root, name))
        os.symlink("cpu,cpuacct", os.path.join(root, name))
    return root


def test_co_mounted_cpu_and_cpuacct_are_one_hierarchy_whose_files_are_kept_open(tmp_path, monkeypatch) -> None:
    from ctop.sources import cgroupfs

    root = _co_mounted(tmp_path)
    mounts = {os.path.join(root, d) for d in os.listdir(root) if not os.path.islink(os.path.join(root, d))}
    monkeypatch.setattr(cgroupfs, "_cgroup_mounts", lambda: mounts)  # the real directories are the mounts
    reader = CgroupReader(detect_layout(root), keep_open=None)  # kept where the hierarchies are cgroup mounts
    assert reader._files is not None  # the links resolve to mounts: files are kept open
    walked = [os.path.realpath(r) for r in reader._roots]
    assert len(walked) == len(set(walked)) and os.path.join(root, "cpu,cpuacct") in walked  # walked once
    samples = reader.read_all(rescan_s=0)
    assert samples and reader._files.open_count > 0
    assert any(s.cpu_usage_ns for s in samples.values()) and any(s.cpu_quota_us for s in samples.values())
    reader.close()
