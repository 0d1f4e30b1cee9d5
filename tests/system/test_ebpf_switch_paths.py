"""Both sched_switch paths count a real workload through the fds the compiler child handed over: the raw
tracepoint (Linux >= 5.18 with BTF) and the classic tracepoint that older kernels, or a kernel refusing the raw
one, get."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from support.cgroups import TestCgroup, fresh_cgroup, host_layout
from support.ebpf import tagged_thread_array, use_kernel_headers
from support.env import need, need_root

from ctop.ebpf import btf, loader, maps

pytestmark = pytest.mark.system

# Sleeps (voluntary switches, each followed by a wait for a CPU) and two busy loops sharing CPU 0 (involuntary)
# for as long as the sleeps take: the same half second on a fast host and in an emulated guest.
WORKLOAD = ("taskset -c 0 sh -c 'while :; do :; done' & a=$!; taskset -c 0 sh -c 'while :; do :; done' & b=$!; "
            "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 0.05; done; kill $a $b; wait")


@pytest.fixture
def cgroup() -> Iterator[TestCgroup]:
    """A fresh cgroup named ctoph-cost-... in every hierarchy; removed afterwards."""
    need_root()
    with fresh_cgroup("ctoph-cost") as cg:
        yield cg


@pytest.mark.parametrize(("raw", "probe", "attachment", "tagged"), [
    (True, "raw_tracepoint", "raw_tracepoint_fds:sched_switch", False),
    (False, "tracepoint", "tracepoint_fds:sched:sched_switch", False),
    (True, "raw_tracepoint", "raw_tracepoint_fds:sched_switch", True),
])
def test_each_switch_path_counts_switches_and_waits(cgroup: TestCgroup, raw: bool, probe: str,
                                                    attachment: str, tagged: bool) -> None:
    use_kernel_headers()
    if raw:
        need(loader.kernel_version() >= loader.RAW_SWITCH_KERNEL, "Linux >= 5.18 (raw sched_switch with prev_state)")
        need("RUN_DELAY_OFFSET" in btf.task_offsets(), "kernel BTF")
    options = dataclasses.replace(tagged_thread_array() if tagged else loader.LoadOptions(), raw_tracepoint=raw)
    loaded = loader.load(host_layout(), options)
    try:
        assert loaded.threads.tagged or not tagged
        assert loaded.switch_probe == probe and loaded.runq_method == "sched_info"
        assert attachment in loaded.bpf.attachments
        reader = maps.MapReader(loaded)
        r0 = reader.read()
        cgroup.spawn(["sh", "-c", WORKLOAD]).wait(120)
        r1 = reader.read()
        before, after = r0.by_cgroup.get(cgroup.path), r1.by_cgroup[cgroup.path]
        assert after.nvcsw - (before.nvcsw if before else 0) >= 10  # at least the ten sleeps
        assert after.nivcsw - (before.nivcsw if before else 0) > 0  # the loops took CPU 0 from each other
        assert after.runq_count - (before.runq_count if before else 0) >= 10
        assert after.runq_sum_seconds > (before.runq_sum_seconds if before else 0.0)
        assert after.execs - (before.execs if before else 0) >= 10
    finally:
        loaded.bpf.cleanup()
