"""The eBPF source with real Docker containers from a private dockerd: new containers at once, OOM kills."""

from __future__ import annotations

import time

import pytest
from support.cgroups import host_layout, oom_kills_in
from support.dockerd import IMAGE, PrivateDockerd, cgroup_dir, cgroup_of, dockerd, unique  # noqa: F401
from support.ebpf import read

from ctop.ebpf.source import EbpfSource
from ctop.model.ebpf import EbpfCgroupCounters

pytestmark = pytest.mark.system


def test_container_started_while_running_appears_in_next_reading(ebpf: EbpfSource,
                                                                 dockerd: PrivateDockerd) -> None:  # noqa: F811
    read(ebpf)
    name = unique("ebpf-new")
    dockerd.run("run", "-d", "--name", name, IMAGE, "sleep", "60")
    try:
        pid = dockerd.inspect(name)["State"]["Pid"]
        path = cgroup_of(pid, "")
        reading = read(ebpf)
        assert path in reading.new_cgroups
    finally:
        dockerd.run("rm", "-f", name, check=False)


def test_container_oom_kill_attributed_with_victim(ebpf: EbpfSource, dockerd: PrivateDockerd) -> None:  # noqa: F811
    name = unique("ebpf-oom")
    r0 = read(ebpf)  # before the container's cgroup exists: its baseline is zero however slowly docker answers
    # dd reads /dev/zero into a 96 MiB buffer: past the 32 MiB limit; the shell survives to keep the cgroup.
    dockerd.run("run", "-d", "--name", name, "--memory=32m", "--memory-swap=32m", IMAGE, "sh", "-c",
                "sleep 1; dd if=/dev/zero of=/dev/null bs=96M count=1; sleep 60")
    try:
        pid = dockerd.inspect(name)["State"]["Pid"]
        unified_path = cgroup_of(pid, "")
        memory_dir = cgroup_dir(pid, "memory")
        deadline = time.monotonic() + 20
        c1 = EbpfCgroupCounters()
        while time.monotonic() < deadline:
            r1 = read(ebpf)
            c1 = r1.by_cgroup.get(unified_path, EbpfCgroupCounters())
            if c1.oom_kills:
                break
            time.sleep(0.2)
        c0 = r0.by_cgroup.get(unified_path, EbpfCgroupCounters())
        assert c1.oom_kills - c0.oom_kills == 1
        kills = [k for k in r1.oom_kills if k.cgroup == unified_path]
        assert len(kills) == 1 and kills[0].comm == "dd" and kills[0].pid != pid
        assert oom_kills_in(memory_dir, "memory" in host_layout().controllers) == 1
    finally:
        dockerd.run("rm", "-f", name, check=False)
