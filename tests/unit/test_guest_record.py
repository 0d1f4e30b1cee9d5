"""guest/record.py keeps a v1 host's co-mounted hierarchies as systemd mounts them: the mount once, with the files of
every controller in it, and the controllers' names as links to it."""

from __future__ import annotations

import os

from support.scripts import load_script

from ctop.sources.cgroupfs import CgroupReader
from ctop.sources.cgroupfs_layout import detect_layout


def _write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def test_co_mounted_controllers_are_recorded_once_behind_their_links(tmp_path) -> None:
    record = load_script("guest/record.py", "guest_record")
    host = tmp_path / "host"
    both = str(host / "cpu,cpuacct")
    for rel in ("", "/app"):
        _write(f"{both}{rel}/cpu.cfs_quota_us", "20000\n")
        _write(f"{both}{rel}/cpu.cfs_period_us", "100000\n")
        _write(f"{both}{rel}/cpuacct.usage", "123456789\n")
        _write(f"{both}{rel}/cgroup.procs", "")
        _write(f"{host}/memory{rel}/memory.usage_in_bytes", "4096\n")
        _write(f"{host}/memory{rel}/cgroup.procs", "")
    for name in ("cpu", "cpuacct"):
        os.symlink("cpu,cpuacct", host / name)
    out = str(tmp_path / "out")
    record.record_cgroups(out, [], root=str(host))
    cgroup = os.path.join(out, "sys/fs/cgroup")
    assert os.readlink(os.path.join(cgroup, "cpu")) == "cpu,cpuacct" == os.readlink(os.path.join(cgroup, "cpuacct"))
    recorded = sorted(os.listdir(os.path.join(cgroup, "cpu,cpuacct", "app")))
    assert recorded == ["cgroup.procs", "cpu.cfs_period_us", "cpu.cfs_quota_us", "cpuacct.usage"]
    sample = CgroupReader(detect_layout(cgroup)).read_all(rescan_s=0)["/app"]
    assert (sample.cpu_usage_ns, sample.cpu_quota_us, sample.memory_usage_bytes) == (123456789, 20000, 4096)
