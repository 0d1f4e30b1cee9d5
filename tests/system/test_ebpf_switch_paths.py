"""Every sched_switch path counts a real workload through the fds the compiler child handed over: the BTF-typed raw
tracepoint (tp_btf), the raw tracepoint that a kernel refusing it gets (Linux >= 5.18 with BTF), and the classic
tracepoint that older kernels, or a kernel refusing the raw one, get."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time
from collections.abc import Iterator
from typing import cast

import pytest
from support.cgroups import TestCgroup, fresh_cgroup, host_layout
from support.ebpf import tagged_thread_array, use_kernel_headers
from support.env import need, need_root

from ctop.ebpf import btf, loader, maps
from ctop.ebpf.fdtables import FdTable
from ctop.ebpf.threads import ThreadTables

pytestmark = pytest.mark.system

# Sleeps (voluntary switches, each followed by a wait for a CPU) and two busy loops sharing CPU 0 (involuntary)
# for as long as the sleeps take: the same half second on a fast host and in an emulated guest.
WORKLOAD = ("taskset -c 0 sh -c 'while :; do :; done' & a=$!; taskset -c 0 sh -c 'while :; do :; done' & b=$!; "
            "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 0.05; done; kill $a $b; wait")

# A second thread that naps in a loop until stdin closes; it prints its tid, which is not its process's pid.
NAPPING_THREAD = ("import sys, threading, time\n"
                  "def nap():\n"
                  "    while True: time.sleep(0.005)\n"
                  "t = threading.Thread(target=nap, daemon=True)\n"
                  "t.start(); print(t.native_id, flush=True); sys.stdin.read()\n")
VALID_BASELINE = 1 << 63  # thread_state.last (bpf/ctop.h): a run_delay baseline is known


@pytest.fixture
def cgroup() -> Iterator[TestCgroup]:
    """A fresh cgroup named ctoph-cost-... in every hierarchy; removed afterwards."""
    need_root()
    with fresh_cgroup("ctoph-cost") as cg:
        yield cg


PATHS = {  # probe: (LoadOptions fields, attachment)
    "tp_btf": ({}, "tp_btf_fds:sched_switch"),
    "raw_tracepoint": ({"btf_tracepoint": False}, "raw_tracepoint_fds:sched_switch"),
    "tracepoint": ({"raw_tracepoint": False}, "tracepoint_fds:sched:sched_switch"),
}


def load_path(probe: str, tagged: bool) -> loader.Loaded:
    """ctop's programs with sched_switch on ``probe`` (skips, or fails in CI, where the kernel cannot have it)."""
    use_kernel_headers()
    if probe != "tracepoint":
        need(loader.kernel_version() >= loader.RAW_SWITCH_KERNEL, "Linux >= 5.18 (raw sched_switch with prev_state)")
        need("RUN_DELAY_OFFSET" in btf.task_offsets(), "kernel BTF")
    options = dataclasses.replace(tagged_thread_array() if tagged else loader.LoadOptions(), **PATHS[probe][0])
    return loader.load(host_layout(), options)


@pytest.mark.parametrize(("probe", "tagged"), [("tp_btf", False), ("raw_tracepoint", False), ("tracepoint", False),
                                               ("tp_btf", True), ("raw_tracepoint", True)])
def test_each_switch_path_counts_switches_and_waits(cgroup: TestCgroup, probe: str, tagged: bool) -> None:
    attachment = PATHS[probe][1]
    loaded = load_path(probe, tagged)
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


@pytest.mark.parametrize(("probe", "tagged"), [("tp_btf", False), ("raw_tracepoint", False), ("tracepoint", False),
                                               ("tp_btf", True)])
def test_each_switch_path_finds_a_thread_by_its_own_tid(cgroup: TestCgroup, probe: str, tagged: bool) -> None:
    """Each path keys prev's state by its thread id (the raw one reads it from the task's pid field through BTF):
    a napping second thread's own state, in its cgroup, gets the run_delay its switch-outs write. A path that took
    another field (the process's tgid, say) would leave the baseline of 0 the thread was born with."""
    loaded = load_path(probe, tagged)
    assert loaded.switch_probe == probe
    napper = None
    try:
        napper = cgroup.spawn(["python3", "-c", NAPPING_THREAD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
        assert napper.stdout is not None
        tid = int(napper.stdout.readline())
        assert tid != napper.pid
        more = cast(FdTable, loaded.bpf[b"threads_more"]) if loaded.threads.tagged else None
        tables = ThreadTables(loaded.threads, cast(FdTable, loaded.bpf[b"threads"]), more)
        cgroup_id = os.stat(loaded.tracking.root + cgroup.path).st_ino
        deadline = time.monotonic() + 30
        state = None
        while time.monotonic() < deadline:
            found = tables.where(tid)
            state = found[0][found[1]] if found else None
            if state is not None and state.last & ~VALID_BASELINE:
                break
            time.sleep(0.05)
        assert state is not None, f"no state for thread {tid}"
        assert (state.tid, state.cgroup_id) == (tid, cgroup_id)
        # sched_process_fork gave it the baseline 0 (a new task has waited for nothing); its switch-outs since
        # wrote its run_delay, which its naps' wake-ups made grow
        assert state.last & VALID_BASELINE
        first = state.last & ~VALID_BASELINE
        assert first > 0, "the thread's switch-outs never found its state"
        time.sleep(0.3)
        found = tables.where(tid)
        assert found is not None and found[0][found[1]].last & ~VALID_BASELINE >= first
    finally:
        if napper is not None:
            napper.communicate("", timeout=30)
        loaded.bpf.cleanup()
