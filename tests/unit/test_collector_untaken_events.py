"""Events are kept for take_events() only where a recorder takes them: the interactive view never does, and
kept them all (up to 10,000), which the soak test saw as steady growth under container churn."""

from __future__ import annotations

import pytest
from support.k8s_paths import kubernetes_paths
from support.trees import tree

from ctop.collector import Collector, CollectorConfig
from ctop.model.events import NAMING_GRACE_S, Event
from ctop.model.sample import CgroupSample, HostSample, Snapshot


def snapshot(paths: list[str], t: float) -> Snapshot:
    host = HostSample(monotonic_s=t, wall_time_s=1.7e9 + t, cpu_time_ns=0, online_cpus=2, memory_total_bytes=2**30)
    return Snapshot(host=host, cgroups={p: CgroupSample(path=p, inode=i + 1) for i, p in enumerate(paths)}, mode="v1")


def churned_collector(keep_events: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[Collector, list[Event]]:
    """A collector that saw 100 Kubernetes cgroups, then 100 more (new containers, nameless here: start events once
    NAMING_GRACE_S passed)."""
    cgroup_root, proc_root = tree("v1-k8s-cgroupfs")
    config = CollectorConfig(cgroup_root=cgroup_root, proc_root=proc_root, containers=False, ebpf=False,
                             history_dir=None, keep_events=keep_events)
    collector = Collector(config)
    paths = kubernetes_paths(200)
    snapshots = iter([snapshot(paths[:100], 1.0), snapshot(paths, 2.0), snapshot(paths, 2.0 + NAMING_GRACE_S)])
    monkeypatch.setattr(collector, "snapshot", lambda: next(snapshots))
    events = [e for _ in range(3) for e in collector.collect().events]
    assert sum(e.type == "start" for e in events) > 0  # the frames have events either way
    return collector, events


def test_a_recorder_takes_every_event(monkeypatch: pytest.MonkeyPatch) -> None:
    collector, events = churned_collector(True, monkeypatch)
    assert collector.take_events() == events
    assert collector.take_events() == []


def test_without_a_recorder_no_event_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    collector, _ = churned_collector(False, monkeypatch)
    assert collector.take_events() == []
