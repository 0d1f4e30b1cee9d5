"""Shape of ctop's eBPF health (cost per event by program, map fill by map) and Collector.ebpf_health()."""

from __future__ import annotations

from support.trees import tree

from ctop.collector import Collector, CollectorConfig
from ctop.ebpf.health import fill_ratios, ns_per_event, program_label
from ctop.ebpf.progstats import ProgStats
from ctop.ebpf.source import EbpfSource
from ctop.model.ebpf import EbpfCgroupCounters, EbpfReading, MapFill
from ctop.sources.cgroupfs_layout import detect_layout


def reading(**fill: MapFill) -> EbpfReading:
    return EbpfReading(monotonic_time=1.0, by_cgroup={}, unattributed=EbpfCgroupCounters(), map_fill=fill)


def test_program_labels_name_the_event() -> None:
    assert program_label("tracepoint__sched__sched_switch") == "sched:sched_switch"
    assert program_label("tracepoint__oom__mark_victim") == "oom:mark_victim"
    assert program_label("tracepoint__cgroup__cgroup_attach_task") == "cgroup:cgroup_attach_task"
    assert program_label("my_prog") == "my_prog"
    assert program_label("tracepoint__odd") == "tracepoint__odd"


def test_ns_per_event_is_run_time_over_run_count_and_skips_programs_that_never_ran() -> None:
    stats = {
        "tracepoint__sched__sched_switch": ProgStats(7, "tracepoint__sch", run_time_ns=3_000_000, run_cnt=10_000),
        "tracepoint__sched__sched_wakeup": ProgStats(8, "tracepoint__sch", run_time_ns=450, run_cnt=3),
        "tracepoint__oom__mark_victim": ProgStats(9, "tracepoint__oom", run_time_ns=0, run_cnt=0),
        "tracepoint__sched__sched_process_exit": None,  # the kernel refused BPF_OBJ_GET_INFO_BY_FD
    }
    assert ns_per_event(stats) == {"sched:sched_switch": 300.0, "sched:sched_wakeup": 150.0}
    assert ns_per_event({}) == {}


def test_fill_ratios_are_used_over_capacity_within_0_and_1() -> None:
    ratios = fill_ratios(reading(cgroups=MapFill(512, 2048), threads=MapFill(0, 32768), full=MapFill(70, 64),
                                 broken=MapFill(5, 0)))
    assert ratios == {"cgroups": 0.25, "threads": 0.0, "full": 1.0}
    assert fill_ratios(None) == {}


def test_collector_without_ebpf_reports_empty_health() -> None:
    cgroup_root, proc_root = tree("v1-k8s-cgroupfs")
    collector = Collector(CollectorConfig(cgroup_root=cgroup_root, proc_root=proc_root, containers=False,
                                          ebpf=False, bpf_run_stats=True))
    collector.start()
    try:
        collector.collect()
        costs, fill = collector.ebpf_health()
        assert (costs, fill) == ({}, {})
        assert isinstance(costs, dict) and isinstance(fill, dict)
    finally:
        collector.close()


def test_collector_whose_ebpf_failed_reports_empty_health() -> None:
    """A real EbpfSource that cannot load (no such bcc module): health is empty, never an exception."""
    cgroup_root, proc_root = tree("hybrid-k8s-cgroupfs")
    collector = Collector(CollectorConfig(cgroup_root=cgroup_root, proc_root=proc_root, containers=False,
                                          ebpf=False))
    collector.ebpf = EbpfSource(detect_layout(cgroup_root), bcc_module="ctop_no_such_bcc_module", run_stats=True)
    collector.ebpf.start()
    try:
        assert collector.ebpf.wait_ready(30).state == "failed"
        collector.collect()
        assert collector.ebpf_health() == ({}, {})
    finally:
        collector.close()
