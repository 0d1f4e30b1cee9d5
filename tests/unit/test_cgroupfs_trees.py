"""The cgroup readers on recorded trees of pure v1, pure v2 (systemd driver) and hybrid hosts."""

from __future__ import annotations

import pytest
from support.trees import tree

from ctop.collector import Collector, CollectorConfig
from ctop.errors import NoCgroupsError
from ctop.model.sample import UNLIMITED
from ctop.sources.cgroupfs_layout import detect_layout

POD_G_V1 = "/kubepods/pod0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
CTR_G_V1 = POD_G_V1 + "/5f0c9a2d7e3b41c6a8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"
CTR_B_V1 = ("/kubepods/burstable/pod1a2b3c4d-5e6f-7081-92a3-b4c5d6e7f809/"
            "6a1d0b3e8f4c52d7b9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e")
DOCKER_V1 = "/docker/8c3f2d5a016e74f9d1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70"
POD_G_V2 = "/kubepods.slice/kubepods-pod0f1e2d3c_4b5a_6978_8a9b_0c1d2e3f4a5b.slice"
CTR_G_V2 = POD_G_V2 + "/cri-containerd-5f0c9a2d7e3b41c6a8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d.scope"


def snapshot(name: str):
    cgroup_root, proc_root = tree(name)
    return Collector(CollectorConfig(cgroup_root=cgroup_root, proc_root=proc_root)).snapshot()


@pytest.mark.parametrize(("name", "mode"), [("v1-k8s-cgroupfs", "v1"), ("hybrid-k8s-cgroupfs", "hybrid"),
                                            ("v2-k8s-systemd", "v2")])
def test_layout_is_detected(name: str, mode: str) -> None:
    layout = detect_layout(tree(name)[0])
    assert layout.mode == mode
    if mode != "v2":
        assert set(layout.controllers) == {"cpu", "cpuacct", "cpuset", "memory", "blkio", "pids"}
    assert (layout.unified is not None) == (mode != "v1")


def test_missing_root_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(NoCgroupsError, match="--cgroup-root"):
        detect_layout(str(tmp_path / "nothing"))
    with pytest.raises(NoCgroupsError, match="cgroupfs"):
        detect_layout(str(tmp_path))


@pytest.mark.parametrize("name", ["v1-k8s-cgroupfs", "hybrid-k8s-cgroupfs"])
def test_v1_limits_and_counters(name: str) -> None:
    cgroups = snapshot(name).cgroups
    docker = cgroups[DOCKER_V1]
    assert docker.cpu_quota_us == 20000 and docker.cpu_period_us == 100000
    assert docker.memory_limit_bytes == 134217728
    assert docker.pids_max == 100
    assert docker.processes == 3 and docker.threads == 3
    guaranteed = cgroups[CTR_G_V1]
    assert guaranteed.cpu_quota_us == 50000
    assert guaranteed.memory_limit_bytes == 256 << 20
    assert cgroups[CTR_B_V1].cpu_shares == 512
    assert cgroups[CTR_B_V1].cpu_quota_us == UNLIMITED
    assert cgroups[CTR_B_V1].memory_limit_bytes == UNLIMITED
    # A busy loop ran in every container for about 2.5 s before the recording.
    for path in (DOCKER_V1, CTR_G_V1, CTR_B_V1):
        s = cgroups[path]
        assert s.cpu_usage_ns is not None and s.cpu_usage_ns > 2e8
        assert s.cpu_user_ns is not None and s.cpu_system_ns is not None
        assert s.memory_usage_bytes and s.working_set_bytes is not None
        assert s.working_set_bytes <= s.memory_usage_bytes
        assert s.io_total is not None and s.memory_oom_kills == 0
    # The docker container was capped at 0.2 CPU: throttled in most periods.
    assert docker.cpu_periods and docker.cpu_throttled_periods
    assert docker.cpu_throttled_periods / docker.cpu_periods > 0.5
    assert docker.cpu_throttled_ns and docker.cpu_throttled_ns > 0
    # The parent of the docker container exists only as a directory in the recording: no data, no crash.
    assert cgroups["/docker"].cpu_usage_ns is None


def test_psi_only_on_hybrid() -> None:
    assert snapshot("v1-k8s-cgroupfs").cgroups[CTR_G_V1].pressure_cpu is None
    hybrid = snapshot("hybrid-k8s-cgroupfs").cgroups[CTR_G_V1].pressure_cpu
    assert hybrid is not None and hybrid.some_total_ns is not None


def test_v2_systemd_driver_tree() -> None:
    snap = snapshot("v2-k8s-systemd")
    ctr = snap.cgroups[CTR_G_V2]
    assert ctr.cpu_usage_ns == 990_000_000 * 1000  # usage_usec converted to ns
    assert ctr.cpu_user_ns == 990_000_000 * 3 // 4 * 1000
    assert (ctr.cpu_quota_us, ctr.cpu_period_us) == (50000, 100000)
    assert ctr.memory_usage_bytes == 200 << 20
    assert ctr.working_set_bytes == (200 << 20) - (10 << 20)
    assert ctr.memory_limit_bytes == 256 << 20
    assert ctr.memory_max_usage_bytes == 204 << 20
    assert ctr.memory_oom_kills == 1 and ctr.memory_failcnt == 3
    assert ctr.io_total is not None
    assert ctr.io_total.read_bytes == 4096000 + 1024 and ctr.io_total.write_ops == 2000
    assert ctr.io_by_device is not None and set(ctr.io_by_device) == {"8:0", "253:0"}
    assert ctr.pids_current == 5 and ctr.pids_max == 1024
    assert ctr.processes == 2 and ctr.threads == 5
    assert ctr.cpu_periods == 500 and ctr.cpu_throttled_periods == 125 and ctr.cpu_throttled_ns == 2_500_000_000
    assert ctr.pressure_cpu is not None and ctr.pressure_cpu.some_avg10 == 1.5
    assert ctr.pressure_io is not None and ctr.pressure_io.full_total_ns == 1_000_000
    assert ctr.memory_swap_limit_bytes == UNLIMITED
    besteffort = next(s for p, s in snap.cgroups.items() if p.endswith(".scope") and "besteffort" in p)
    assert besteffort.cpu_weight == 1 and besteffort.cpu_shares == 2
    assert besteffort.cpu_quota_us == UNLIMITED and besteffort.memory_limit_bytes == UNLIMITED


def test_v2_root_memory_comes_from_meminfo() -> None:
    root = snapshot("v2-k8s-systemd").cgroups["/"]
    assert root.memory_usage_bytes == (16384000 - 8192000) * 1024
    assert root.working_set_bytes == (16384000 - 8192000 - 1024000) * 1024
    assert root.memory_limit_bytes is None  # the root has no memory.max: no data, not "unlimited"


def test_malformed_and_missing_files_are_no_data() -> None:
    cgroups = snapshot("v2-k8s-systemd").cgroups
    broken = cgroups["/system.slice/broken.service"]
    assert broken.cpu_usage_ns is None and broken.cpu_quota_us is None
    assert broken.memory_usage_bytes is None and broken.memory_rss_bytes is None
    assert broken.pressure_cpu is not None and broken.pressure_cpu.some_avg10 is None
    assert broken.io_total is not None and broken.io_total.write_bytes == 5 and broken.io_total.read_bytes == 0
    empty = cgroups["/system.slice/empty.service"]
    assert empty.cpu_usage_ns is None and empty.memory_usage_bytes is None and empty.io_total is None


def test_depth_limits_what_is_read() -> None:
    cgroup_root, proc_root = tree("v2-k8s-systemd")
    snap = Collector(CollectorConfig(cgroup_root=cgroup_root, proc_root=proc_root, max_depth=1)).snapshot()
    assert set(snap.cgroups) == {"/", "/kubepods.slice", "/system.slice"}
