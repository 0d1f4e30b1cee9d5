"""Per-CPU copies of one cgroup's BPF counters add up, except the maximum wait, which is the largest copy."""

from __future__ import annotations

import ctypes

from unit.test_ebpf_layout import header_text, struct_like_bcc

from ctop.ebpf.layout import parse_header
from ctop.ebpf.maps import CounterColumns, HistogramWrap, sum_counters


def record() -> type[ctypes.Structure]:
    """One CPU's struct cgroup_counters as bcc would lay it out from bpf/ctop.h."""
    return struct_like_bcc("cgroup_counters", parse_header(header_text()).structs["cgroup_counters"])


def test_per_cpu_copies_add_up_and_the_max_is_a_max() -> None:
    columns = CounterColumns.of(record())
    cpus = (record() * 2)()
    cpus[0].runq_hist[3], cpus[1].runq_hist[3] = 5, 7
    cpus[0].runq_sum_ns, cpus[1].runq_sum_ns = 2_000_000_000, 1_000_000_000
    cpus[0].runq_max_ns, cpus[1].runq_max_ns = 3_000_000, 9_000_000
    cpus[0].oom_kills, cpus[1].oom_kills = 1, 1
    counters = sum_counters(bytes(cpus), columns, columns.unpacker(), 42)
    assert counters.cgroup_id == 42
    assert counters.runq_buckets[3] == 12 and sum(counters.runq_buckets) == 12
    assert counters.runq_sum_seconds == 3.0
    assert counters.runq_max_seconds == 0.009
    assert counters.oom_kills == 2
    assert ctypes.sizeof(cpus[0]) == columns.unpacker().size


def test_no_copies_is_all_zero() -> None:
    columns = CounterColumns.of(record())
    counters = sum_counters(b"", columns, columns.unpacker(), 1)
    assert sum(counters.runq_buckets) == 0 and counters.runq_max_seconds == 0 and counters.forks == 0


def test_u32_slots_that_wrap_between_reads_keep_counting() -> None:
    columns = CounterColumns.of(record())
    wrap = HistogramWrap()
    cpus = (record() * 2)()
    cpus[0].runq_hist[5], cpus[1].runq_hist[5] = 2**32 - 10, 4  # the sum of the copies is past 2^32 already
    first = sum_counters(bytes(cpus), columns, columns.unpacker(), 42, wrap)
    assert first.runq_buckets[5] == (2**32 - 6) % 2**32 == 2**32 - 6 and first.runq_count == 2**32 - 6
    cpus[0].runq_hist[5] = 5  # CPU 0's slot wrapped: 15 more waits there, 1 more on CPU 1
    cpus[1].runq_hist[5] = 5
    second = sum_counters(bytes(cpus), columns, columns.unpacker(), 42, wrap)
    assert second.runq_buckets[5] == 2**32 - 6 + 16 and second.runq_count == 2**32 + 10
    assert sum_counters(bytes(cpus), columns, columns.unpacker(), 42, wrap).runq_buckets == second.runq_buckets
    wrap.keep_only([])  # its index was taken back: a new cgroup with this id starts from its own counts
    assert sum_counters(bytes(cpus), columns, columns.unpacker(), 42, wrap).runq_buckets[5] == 10
