"""Page faults from memory.stat (v1 own and total_*, v2 hierarchical) and container_memory_failures_total."""

from __future__ import annotations

import pytest
from ctop.exporters.collector import SharedFrames, build_families
from ctop.exporters.families import render
from ctop.exporters.labels import CgroupFilter
from prometheus_client.parser import text_string_to_metric_families
from support.trees import tree

from ctop.collector import Collector, CollectorConfig

POD_G_V1 = "/kubepods/pod0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
CTR_G_V1 = POD_G_V1 + "/5f0c9a2d7e3b41c6a8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"
DOCKER_V1 = "/docker/8c3f2d5a016e74f9d1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70"
POD_G_V2 = "/kubepods.slice/kubepods-pod0f1e2d3c_4b5a_6978_8a9b_0c1d2e3f4a5b.slice"
CTR_G_V2 = POD_G_V2 + "/cri-containerd-5f0c9a2d7e3b41c6a8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d.scope"


def collector(name: str) -> Collector:
    cgroup_root, proc_root = tree(name)
    return Collector(CollectorConfig(cgroup_root=cgroup_root, proc_root=proc_root, containers=False, ebpf=False))


def faults(sample) -> tuple[int | None, int | None, int | None, int | None]:
    return (sample.memory_pgfault, sample.memory_pgmajfault, sample.memory_pgfault_hierarchy,
            sample.memory_pgmajfault_hierarchy)


@pytest.mark.parametrize("name", ["v1-k8s-cgroupfs", "hybrid-k8s-cgroupfs"])
def test_v1_own_and_total_page_faults(name: str) -> None:
    cgroups = collector(name).snapshot().cgroups
    assert faults(cgroups["/"]) == (51075, 0, 2733572, 1979)
    assert faults(cgroups[DOCKER_V1]) == (244, 1, 244, 1)
    assert faults(cgroups[CTR_G_V1]) == (244, 0, 244, 0)
    # The pod's own tasks faulted nothing; its container's faults count in the hierarchy scope only.
    assert faults(cgroups[POD_G_V1]) == (0, 0, 244, 0)
    assert faults(cgroups["/kubepods"]) == (0, 0, 727, 0)


def test_v2_page_faults_are_hierarchical_for_both_scopes() -> None:
    cgroups = collector("v2-k8s-systemd").snapshot().cgroups
    assert faults(cgroups[CTR_G_V2]) == (990_000, 99, 990_000, 99)
    assert faults(cgroups[POD_G_V2]) == (1_000_000, 100, 1_000_000, 100)
    assert faults(cgroups["/"]) == (9_000_000, 900, 9_000_000, 900)


def test_malformed_or_missing_memory_stat_is_no_data() -> None:
    cgroups = collector("v2-k8s-systemd").snapshot().cgroups
    assert faults(cgroups["/system.slice/broken.service"]) == (None, None, None, None)
    assert faults(cgroups["/system.slice/empty.service"]) == (None, None, None, None)


def exported(name: str) -> dict[tuple[str, str, str], float]:
    frame = collector(name).collect()
    text = render(build_families(SharedFrames(lambda: frame).get(), CgroupFilter())).decode()
    out: dict[tuple[str, str, str], float] = {}
    for fam in text_string_to_metric_families(text):
        if fam.name == "container_memory_failures":
            assert fam.type == "counter"
            for s in fam.samples:
                key = (s.labels["id"], s.labels["failure_type"], s.labels["scope"])
                assert key not in out
                out[key] = s.value
    return out


@pytest.mark.parametrize(("name", "pod", "ctr"), [("v1-k8s-cgroupfs", POD_G_V1, CTR_G_V1),
                                                  ("v2-k8s-systemd", POD_G_V2, CTR_G_V2)])
def test_exported_like_cadvisor(name: str, pod: str, ctr: str) -> None:
    series = exported(name)
    cgroups = collector(name).snapshot().cgroups
    for path in (pod, ctr, "/"):
        pgfault, pgmajfault, total_pgfault, total_pgmajfault = faults(cgroups[path])
        assert series[(path, "pgfault", "container")] == pgfault
        assert series[(path, "pgmajfault", "container")] == pgmajfault
        assert series[(path, "pgfault", "hierarchy")] == total_pgfault
        assert series[(path, "pgmajfault", "hierarchy")] == total_pgmajfault
    if name.startswith("v1"):
        assert series[(pod, "pgfault", "hierarchy")] == 244 and series[(pod, "pgfault", "container")] == 0
    # A cgroup whose memory.stat cannot be parsed has no series rather than zeros.
    assert not any(key[0] == "/system.slice/broken.service" for key in series)
