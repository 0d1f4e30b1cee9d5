"""Only an absent file is silent: permission and I/O errors are counted per file name and become one notice each."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading

import pytest
from support.trees import copy_tree

from ctop.collector import Collector, CollectorConfig
from ctop.model.notices import Notice, NoticeKind
from ctop.sources.cgroupfs import CgroupReader
from ctop.sources.cgroupfs_layout import detect_layout
from ctop.sources.procfs_ns import host_namespaces, namespace_inode
from ctop.sources.readfile import MAX_NAMES, ReadErrors, read_bytes, read_int, read_limit

KUBELET = "/system.slice/kubelet.service"
CONTAINERD = "/system.slice/containerd.service"
NOBODY = 65534


def collector(cgroup_root: str, proc_root: str) -> Collector:
    return Collector(CollectorConfig(cgroup_root=cgroup_root, proc_root=proc_root, containers=False, ebpf=False,
                                     idle_reread_s=0))


def unreadable(notices: list[Notice]) -> list[Notice]:
    return [n for n in notices if n.kind is NoticeKind.UNREADABLE_FILE]


def dir_in_place_of(path: str) -> None:
    """Replace a file by a directory: it opens, and reading it fails with EISDIR (an error that is not absence)."""
    os.remove(path)
    os.mkdir(path)


def test_absent_files_stay_silent(tmp_path) -> None:
    errors = ReadErrors()
    (tmp_path / "file").write_text("1\n")
    assert read_bytes(str(tmp_path / "none"), errors) is None  # ENOENT
    assert read_int(str(tmp_path / "file" / "below"), errors) is None  # ENOTDIR
    assert read_limit(str(tmp_path / "gone" / "pids.max"), errors) == (False, None)
    assert errors.notices() == () and errors.counts() == {}


def test_a_vanished_cgroup_and_missing_files_give_no_notice(tmp_path) -> None:
    cgroup_root, proc_root = copy_tree("v2-k8s-systemd", str(tmp_path / "t"))
    c = collector(cgroup_root, proc_root)
    assert KUBELET in c.collect().rows
    os.remove(cgroup_root + CONTAINERD + "/memory.stat")
    shutil.rmtree(cgroup_root + KUBELET)
    frame = c.collect()
    assert KUBELET not in frame.rows and frame.rows[CONTAINERD].sample.memory_rss_bytes is None
    assert unreadable(list(frame.notices)) == [] and c.read_errors.counts() == {}


def test_an_unreadable_file_is_one_notice_naming_it_and_counted_per_name(tmp_path) -> None:
    cgroup_root, proc_root = copy_tree("v2-k8s-systemd", str(tmp_path / "t"))
    for path in (KUBELET, CONTAINERD):
        dir_in_place_of(cgroup_root + path + "/memory.stat")
    c = collector(cgroup_root, proc_root)
    frame = c.collect()
    row = frame.rows[KUBELET]
    assert row.sample.memory_rss_bytes is None and row.sample.memory_usage_bytes is not None
    notes = unreadable(list(frame.notices))
    assert len(notes) == 1, notes  # two cgroups, one file name: one notice
    first = notes[0].sentence
    assert first.startswith(f"Cannot read {cgroup_root}") and first.endswith(
        "/memory.stat: is a directory; some memory fields show as no data.")
    assert c.read_errors.counts() == {"memory.stat": 2}
    again = c.collect()
    assert unreadable(list(again.notices)) == notes  # the same notice again, not a new one per refresh
    assert c.read_errors.counts() == {"memory.stat": 4}


def test_the_idle_check_and_host_files_report_too(tmp_path) -> None:
    cgroup_root, proc_root = copy_tree("v2-k8s-systemd", str(tmp_path / "t"))
    reader = CgroupReader(detect_layout(cgroup_root))
    reader.read_all(idle_reread_s=10, now=0.0)
    dir_in_place_of(cgroup_root + KUBELET + "/cpu.stat")
    samples = reader.read_all(idle_reread_s=10, now=1.0)
    assert samples[KUBELET].cpu_usage_ns is None  # not idle (unknown): read in full, where it fails again
    assert reader.errors.counts() == {"cpu.stat": 2}
    dir_in_place_of(proc_root + "/meminfo")
    c = collector(cgroup_root, proc_root)
    sentences = [n.sentence for n in unreadable(list(c.collect().notices))]
    assert f"Cannot read {proc_root}/meminfo: is a directory; some host memory fields show as no data." in sentences


def test_a_fifo_in_place_of_a_file_reads_as_empty_and_never_blocks(tmp_path) -> None:
    fifo = str(tmp_path / "memory.current")
    os.mkfifo(fifo)
    errors = ReadErrors()
    result: list[bytes | None] = []
    reader = threading.Thread(target=lambda: result.append(read_bytes(fifo, errors)), daemon=True)
    reader.start()
    reader.join(30)  # a liveness guard: without O_NONBLOCK the open waits for a writer forever
    assert result == [b""] and errors.notices() == ()


def test_a_namespace_link_that_is_not_a_link_is_counted(tmp_path) -> None:
    ns = tmp_path / "42" / "ns"
    (ns / "net").mkdir(parents=True)
    errors = ReadErrors()
    assert namespace_inode(42, "net", str(tmp_path), errors) is None  # EINVAL: not a symbolic link
    assert namespace_inode(42, "pid", str(tmp_path), errors) is None  # ENOENT: silent
    assert errors.counts() == {"net": 1}
    assert errors.notices()[0].sentence.endswith("; some network fields show as no data.")


def test_names_counted_are_bounded(tmp_path) -> None:
    errors = ReadErrors()
    error = IsADirectoryError(21, "Is a directory")
    for i in range(MAX_NAMES + 50):
        errors.add(f"/sys/fs/cgroup/c{i}/file{i}", error)
        errors.add(f"/sys/fs/cgroup/other{i}/memory.stat", error)
    assert len(errors.notices()) == MAX_NAMES and errors.counts()["memory.stat"] == MAX_NAMES + 50


# --- permission denied: chmod 000 works only for a user other than root, so root runs the reader as nobody ----------

READ_AS_ANOTHER_USER = """
import json, sys
from ctop.sources.cgroupfs import CgroupReader
from ctop.sources.cgroupfs_layout import detect_layout
reader = CgroupReader(detect_layout(sys.argv[1]))
samples = reader.read_all()
print(json.dumps({"counts": reader.errors.counts(), "notices": [[n.kind.value, n.sentence] for n in
                  reader.errors.notices()], "rss": samples[sys.argv[2]].memory_rss_bytes,
                  "usage": samples[sys.argv[2]].memory_usage_bytes}))
"""


def _become_nobody() -> None:
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def test_permission_denied_names_the_file_and_the_reason() -> None:
    top = tempfile.mkdtemp(prefix="ctop-test-perm-")  # under /tmp, traversable by nobody (pytest's tmp_path is not)
    try:
        os.chmod(top, 0o755)
        cgroup_root, _ = copy_tree("v2-k8s-systemd", os.path.join(top, "t"))
        locked = cgroup_root + KUBELET + "/memory.stat"
        os.chmod(locked, 0)
        as_root = os.geteuid() == 0
        out = subprocess.run([sys.executable, "-c", READ_AS_ANOTHER_USER, cgroup_root, KUBELET],
                             capture_output=True, text=True, timeout=120, cwd="/",
                             preexec_fn=_become_nobody if as_root else None)
        assert out.returncode == 0, out.stderr
        result = json.loads(out.stdout)
    finally:
        shutil.rmtree(top)
    assert result["counts"] == {"memory.stat": 1}
    assert result["notices"] == [["unreadable_file", f"Cannot read {locked}: permission denied; some memory fields "
                                                     "show as no data."]]
    assert result["rss"] is None and result["usage"] is not None


@pytest.mark.parametrize("name", ["cgroup.procs", "io.pressure", "cpuset.cpus.effective", "pids.max", "foo"])
def test_the_sentence_says_which_fields_go_missing(name: str) -> None:
    errors = ReadErrors()
    errors.add(f"/sys/fs/cgroup/a/{name}", PermissionError(13, "Permission denied"))
    sentence = errors.notices()[0].sentence
    assert sentence.startswith(f"Cannot read /sys/fs/cgroup/a/{name}: permission denied; ")
    expected = {"cgroup.procs": "some process fields", "io.pressure": "some pressure fields",
                "cpuset.cpus.effective": "some CPU set fields", "pids.max": "some pids fields", "foo": "what it holds"}
    assert expected[name] in sentence and sentence.endswith(" as no data.")


def test_pid_1_hiding_its_namespaces_is_no_notice_when_pid_2_shows_them(tmp_path) -> None:
    (tmp_path / "1" / "ns" / "net").mkdir(parents=True)  # unreadable as a link
    (tmp_path / "2" / "ns").mkdir(parents=True)
    (tmp_path / "2" / "ns" / "net").symlink_to("net:[4026531833]")
    errors = ReadErrors()
    assert host_namespaces(str(tmp_path), errors, ("net",)) == {"net": 4026531833}
    assert errors.counts() == {}
    (tmp_path / "2" / "ns" / "net").unlink()
    (tmp_path / "2" / "ns" / "net").mkdir()
    assert host_namespaces(str(tmp_path), errors, ("net",)) == {"net": None}
    assert errors.counts() == {"net": 1} and f"{tmp_path}/2/ns/net" in errors.notices()[0].sentence


def test_a_hostile_cgroup_name_in_the_notice_is_inert(tmp_path) -> None:
    cgroup_root, proc_root = copy_tree("v2-k8s-systemd", str(tmp_path / "t"))
    odd = os.path.join(os.fsencode(cgroup_root), b"bad\xff\x1b[2Jname")
    os.mkdir(odd)
    os.mkdir(os.path.join(odd, b"memory.stat"))
    notes = unreadable(list(collector(cgroup_root, proc_root).collect().notices))
    assert len(notes) == 1
    sentence = notes[0].sentence
    assert "\x1b" not in sentence and sentence.encode("utf-8") and "bad??[2Jname/memory.stat" in sentence
