"""ctop's run-queue quantiles against an exact per-wait record of the same workload, taken by a bcc program of this
test's own (root, two CPUs): p50 and p99 within 10 %."""

from __future__ import annotations

import ctypes
import math
import os
import shutil
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from support.cgroups import TestCgroup
from support.ebpf import read
from support.env import need

from ctop.ebpf import headers
from ctop.ebpf.source import EbpfSource
from ctop.model.ebpf import EbpfCgroupCounters, delta_quantile

pytestmark = pytest.mark.system

MAX_WAITS = 1 << 17
# Every wait of the tracked threads, from wake-up (or preemption) to running again, in a BPF array: no perf buffer
# to lose records. Recording is switched on and off from user space (state[0]); state[1] counts the waits.
EXACT_TRACER = r"""
BPF_HASH(tracked, u32, u8, 64);
BPF_HASH(since, u32, u64, 64);
BPF_ARRAY(waits, u64, MAX_WAITS);
BPF_ARRAY(state, u64, 2);

static __always_inline void runnable(u32 pid, u64 now, int preempted)
{
    if (!tracked.lookup(&pid))
        return;
    if (preempted)
        since.update(&pid, &now);
    else
        since.insert(&pid, &now);  /* a wake-up of a task already waiting keeps the first time */
}

TRACEPOINT_PROBE(sched, sched_wakeup) { runnable(args->pid, bpf_ktime_get_ns(), 0); return 0; }
TRACEPOINT_PROBE(sched, sched_wakeup_new) { runnable(args->pid, bpf_ktime_get_ns(), 0); return 0; }

TRACEPOINT_PROBE(sched, sched_switch)
{
    u64 now = bpf_ktime_get_ns();
    u32 prev = args->prev_pid, next = args->next_pid;
    if ((args->prev_state & 0xff) == 0)
        runnable(prev, now, 1);
    u64 *start = since.lookup(&next);
    if (!start)
        return 0;
    u64 wait = now - *start;
    since.delete(&next);
    u32 on = 0, counter = 1;
    u64 *recording = state.lookup(&on);
    u64 *n = state.lookup(&counter);
    if (!recording || !*recording || !n)
        return 0;
    u32 i = __sync_fetch_and_add(n, 1);
    u64 *slot = waits.lookup(&i);
    if (slot)
        *slot = wait;
    return 0;
}
"""
# A web-like task: a little CPU per request (0.3-2.5 ms, varied), then a short sleep.
LIGHT = ("import random, time\n"
         "while True:\n"
         "    end = time.perf_counter() + random.uniform(0.0003, 0.0025)\n"
         "    while time.perf_counter() < end: pass\n"
         "    time.sleep(random.uniform(0.0005, 0.003))\n")


@pytest.fixture
def exact() -> Iterator[Any]:
    """The exact tracer, loaded (the `ebpf` fixture has already checked root and found kernel headers)."""
    tree = headers.find_headers()
    need(tree is not None, "kernel headers")
    assert tree is not None
    headers.apply_to_environment(tree)
    import bcc

    prog = bcc.BPF(text=EXACT_TRACER.encode(), cflags=[f"-DMAX_WAITS={MAX_WAITS}"])
    yield prog
    prog.cleanup()


def nearest_rank(sorted_values: list[int], q: float) -> float:
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)] / 1e9


def test_runq_quantiles_within_ten_percent_of_exact(ebpf: EbpfSource, exact: Any, test_cgroup: TestCgroup) -> None:
    need(shutil.which("taskset"), "taskset")
    need((os.cpu_count() or 1) >= 2, "two CPUs")
    procs = [test_cgroup.spawn(["taskset", "-c", "0", "sh", "-c", "while :; do :; done"]) for _ in range(2)]
    procs += [test_cgroup.spawn(["taskset", "-c", "0", sys.executable, "-c", LIGHT]) for _ in range(3)]
    time.sleep(0.5)
    for proc in procs:  # single-threaded processes: the pid is the only thread
        assert os.listdir(f"/proc/{proc.pid}/task") == [str(proc.pid)]
        exact[b"tracked"][ctypes.c_uint32(proc.pid)] = ctypes.c_uint8(1)
    state = exact[b"state"]
    r0 = read(ebpf)
    state[ctypes.c_int(0)] = ctypes.c_uint64(1)
    time.sleep(4.0)
    state[ctypes.c_int(0)] = ctypes.c_uint64(0)
    r1 = read(ebpf)
    test_cgroup.stop_processes()

    recorded = int(state[ctypes.c_int(1)].value)
    assert 1000 < recorded <= MAX_WAITS, recorded
    table = exact[b"waits"]
    waits = sorted(int(table[ctypes.c_int(i)].value) for i in range(recorded))
    c0 = r0.by_cgroup.get(test_cgroup.path, EbpfCgroupCounters())
    c1 = r1.by_cgroup.get(test_cgroup.path, EbpfCgroupCounters())
    counted = c1.runq_count - c0.runq_count
    assert abs(counted - recorded) <= 0.05 * recorded, (counted, recorded)  # the same waits
    for q in (0.50, 0.99):
        want = nearest_rank(waits, q)
        got = delta_quantile(c1, c0, q)
        assert got is not None and want > 0
        assert abs(got - want) <= 0.10 * want, (q, got, want)
