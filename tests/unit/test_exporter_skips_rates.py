"""The exporter's collector derives no rate (it exports counters only), and its output is the same as with them."""

from __future__ import annotations

import dataclasses

import pytest
from support.trees import copy_tree
from unit.test_exporter_families import exposition

from ctop import collector as collector_module
from ctop.collector import Collector, CollectorConfig, Enrichment, build_frame
from ctop.exporter_cmd import make_collector
from ctop.model.ebpf import RUNQ_SLOTS, EbpfCgroupCounters, EbpfReading
from ctop.model.ebpf_rates import EbpfRates
from ctop.model.sample import Snapshot

KUBELET = "/system.slice/kubelet.service"


def _counters(scale: int) -> EbpfCgroupCounters:
    return EbpfCgroupCounters(cgroup_id=7, runq_buckets=(3 * scale, 0, 5 * scale) + (0,) * (RUNQ_SLOTS - 3),
                              runq_sum_seconds=0.25 * scale, runq_count=8 * scale, nvcsw=11 * scale, nivcsw=4 * scale,
                              forks=5 * scale, execs=2 * scale, exits=4 * scale, oom_kills=scale)


def _reading(at: float, scale: int) -> EbpfReading:
    return EbpfReading(monotonic_time=at, by_cgroup={KUBELET: _counters(scale), "/": _counters(scale + 1)},
                       unattributed=EbpfCgroupCounters())


def two_refreshes(tmp_path) -> tuple[Snapshot, Snapshot, Enrichment, Enrichment]:
    """Two refreshes of a recorded tree whose CPU time and eBPF counters moved in between (latest first)."""
    cgroup_root, proc_root = copy_tree("v2-k8s-systemd", str(tmp_path / "t"))
    c = Collector(CollectorConfig(cgroup_root=cgroup_root, proc_root=proc_root, containers=False, ebpf=False,
                                  idle_reread_s=0))
    first = c.snapshot()
    stat = cgroup_root + KUBELET + "/cpu.stat"
    with open(stat) as f:
        text = f.read()
    with open(stat, "w") as f:
        f.write(text.replace("usage_usec ", "usage_usec 1", 1))
    second = c.snapshot()
    second = dataclasses.replace(second, host=dataclasses.replace(
        second.host, monotonic_s=first.host.monotonic_s + 1.0, cpu_time_ns=(first.host.cpu_time_ns or 0) + 10**9,
        wall_time_s=first.host.wall_time_s))
    before = dataclasses.replace(c.enrich(first), ebpf=_reading(10.0, 1))
    after = dataclasses.replace(c.enrich(second), ebpf=_reading(11.0, 3))
    return second, first, after, before


def untimed(text: str) -> str:
    """The exposition without the one sample that measures the collection itself."""
    return "\n".join(line for line in text.split("\n") if not line.startswith("ctop_collection_duration_seconds "))


def test_exporter_output_is_the_same_without_derived_rates(tmp_path) -> None:
    refreshes = two_refreshes(tmp_path)
    full, lean = build_frame(*refreshes), build_frame(*refreshes, derive=False)
    row = full.rows[KUBELET]
    assert row.cpu_percent is not None and row.ebpf_rates is not None and row.tasks_recursive is not None
    lean_row = lean.rows[KUBELET]
    assert lean_row.cpu_percent is None and lean_row.tasks_recursive is None
    # of the eBPF rates only the run-queue quantiles, which the exporter serves as gauges of the interval
    rates = row.ebpf_rates
    assert rates.runq_latency_p50_seconds is not None and rates.runq_latency_p99_seconds is not None
    assert lean_row.ebpf_rates == EbpfRates(runq_latency_p50_seconds=rates.runq_latency_p50_seconds,
                                            runq_latency_p99_seconds=rates.runq_latency_p99_seconds,
                                            oom_kills=rates.oom_kills)
    assert lean_row.ebpf == row.ebpf and lean_row.sample == row.sample and lean_row.net == row.net
    text = untimed(exposition(full))
    assert "ctop_runqueue_latency_seconds_bucket{" in text and "container_cpu_usage_seconds_total{" in text
    assert "ctop_runqueue_latency_p99_seconds{" in text
    assert untimed(exposition(lean)) == text


def test_the_skipped_rates_are_not_computed(tmp_path, monkeypatch) -> None:
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("computed a derived value the exporter does not export")

    for name in ("derive_row", "ebpf_rates", "subtree_threads"):
        monkeypatch.setattr(collector_module, name, never)
    refreshes = two_refreshes(tmp_path)
    assert build_frame(*refreshes, derive=False).rows[KUBELET].ebpf is not None
    with pytest.raises(AssertionError, match="computed a derived value"):
        build_frame(*refreshes)  # the views' frames still derive them


def test_the_exporter_collector_is_built_without_derived_rates(tmp_path) -> None:
    cgroup_root, proc_root = copy_tree("v2-k8s-systemd", str(tmp_path / "t"))
    c = make_collector(cgroup_root, proc_root, ebpf=False, docker_socket=str(tmp_path / "no.sock"))
    try:
        assert c.config.derive is False
        c.collect()
        assert all(r.cpu_percent is None for r in c.collect().rows.values())
    finally:
        c.close()
