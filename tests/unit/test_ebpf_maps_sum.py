"""Per-CPU copies of one cgroup's BPF counters add up, except the maximum wait, which is the largest copy."""

from __future__ import annotations

import ctypes

from unit.test_ebpf_layout import header_text, struct_like_bcc

from ctop.ebpf.layout import parse_header
from ctop.ebpf.maps import CounterColumns, sum_counters

RECORD = struct_like_bcc("cgroup_counters", parse_header(header_text()).structs["cgroup_counters"])
COLUMNS = CounterColumns.of(RECORD)


def test_per_cpu_copies_add_up_and_the_max_is_a_max() -> None:
    cpus = (RECORD * 2)()
    cpus[0].runq_hist[3], cpus[1].runq_hist[3] = 5, 7
    cpus[0].runq_sum_ns, cpus[1].runq_sum_ns = 2_000_000_000, 1_000_000_000
    cpus[0].runq_max_ns, cpus[1].runq_max_ns = 3_000_000, 9_000_000
    cpus[0].oom_kills, cpus[1].oom_kills = 1, 1
    counters = sum_counters(bytes(cpus), COLUMNS, COLUMNS.unpacker(), 42)
    assert counters.cgroup_id == 42
    assert counters.runq_buckets[3] == 12 and sum(counters.runq_buckets) == 12
    assert counters.runq_sum_seconds == 3.0
    assert counters.runq_max_seconds == 0.009
    assert counters.oom_kills == 2
    assert ctypes.sizeof(RECORD) == COLUMNS.width * 8


def test_no_copies_is_all_zero() -> None:
    counters = sum_counters(b"", COLUMNS, COLUMNS.unpacker(), 1)
    assert sum(counters.runq_buckets) == 0 and counters.runq_max_seconds == 0 and counters.forks == 0
