"""The collector identifies a cgroup path once while it exists: a repeated scan is served from its per-refresh map."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from support.k8s_paths import kubernetes_paths
from support.trees import tree

import ctop.collector
from ctop.collector import Collector, CollectorConfig
from ctop.model.sample import CgroupSample, HostSample, Snapshot
from ctop.runtimes.identify import Identity, identify


def snapshot(paths: list[str]) -> Snapshot:
    host = HostSample(monotonic_s=1.0, wall_time_s=1.7e9, cpu_time_ns=0, online_cpus=2, memory_total_bytes=2**30)
    return Snapshot(host=host, cgroups={p: CgroupSample(path=p, inode=i) for i, p in enumerate(paths)}, mode="v1")


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths the collector asks identify() about, in order."""
    seen: list[str] = []
    real: Callable[[str], Identity] = identify

    def counted(path: str) -> Identity:
        seen.append(path)
        return real(path)

    monkeypatch.setattr(ctop.collector, "identify", counted)
    return seen


@pytest.fixture
def collector() -> Collector:
    cgroup_root, proc_root = tree("v1-k8s-cgroupfs")
    return Collector(CollectorConfig(cgroup_root=cgroup_root, proc_root=proc_root, containers=False, ebpf=False))


def test_the_paths_are_kubernetes_containers_and_pods() -> None:
    paths = kubernetes_paths(2000)
    assert len(set(paths)) == 2000
    kinds = [identify(p).kind for p in paths]
    assert kinds.count("pod") == 667 and kinds.count("container") == 1333


def test_a_repeated_scan_of_2000_paths_is_served_from_the_map(collector: Collector, calls: list[str]) -> None:
    paths = kubernetes_paths(2000)
    first = collector.enrich(snapshot(paths))
    assert sorted(calls) == sorted(paths)  # each path identified once, not twice (map, then the row's identity)
    calls.clear()
    again = collector.enrich(snapshot(paths))
    assert calls == []
    assert again.identities == first.identities
    assert {first.identities[p].kind for p in paths} == {"pod", "container"}


def test_churned_paths_are_forgotten(collector: Collector, calls: list[str]) -> None:
    old, new = kubernetes_paths(2000), kubernetes_paths(1000, offset=10_000)
    collector.enrich(snapshot(old))
    calls.clear()
    collector.enrich(snapshot(old[:1000] + new))  # half the pods churned
    assert sorted(calls) == sorted(new)
    calls.clear()
    collector.enrich(snapshot(old))  # the churned paths were not kept: the map is as large as the latest refresh
    assert sorted(calls) == sorted(old[1000:])
