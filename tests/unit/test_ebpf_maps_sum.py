"""Per-CPU copies of one cgroup's BPF counters add up, except the maximum wait, which is the largest copy."""

from __future__ import annotations

from ctop.ebpf.maps import _N_FIELDS, _sum_counters
from ctop.ebpf.reading import RUNQ_SLOTS


def test_per_cpu_copies_add_up_and_the_max_is_a_max() -> None:
    cpu0 = [0] * _N_FIELDS
    cpu1 = [0] * _N_FIELDS
    cpu0[3], cpu1[3] = 5, 7                                       # one run-queue bucket
    cpu0[RUNQ_SLOTS], cpu1[RUNQ_SLOTS] = 2_000_000_000, 1_000_000_000  # wait sum, ns
    cpu0[RUNQ_SLOTS + 2], cpu1[RUNQ_SLOTS + 2] = 3_000_000, 9_000_000  # longest wait, ns
    cpu0[RUNQ_SLOTS + 10], cpu1[RUNQ_SLOTS + 10] = 1, 1                # OOM kills
    counters = _sum_counters([tuple(cpu0), tuple(cpu1)], 42)
    assert counters.cgroup_id == 42
    assert counters.runq_buckets[3] == 12 and sum(counters.runq_buckets) == 12
    assert counters.runq_sum_seconds == 3.0
    assert counters.runq_max_seconds == 0.009
    assert counters.oom_kills == 2


def test_no_copies_is_all_zero() -> None:
    counters = _sum_counters([], 1)
    assert sum(counters.runq_buckets) == 0 and counters.runq_max_seconds == 0 and counters.forks == 0
