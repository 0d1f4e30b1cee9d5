"""Run-queue histogram math: bucket bounds, quantiles of cumulative and delta histograms."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctop.model.ebpf import (
    RUNQ_BUCKET_LOWER_SECONDS,
    RUNQ_BUCKET_UPPER_SECONDS,
    RUNQ_SLOTS,
    EbpfCgroupCounters,
    delta_quantile,
    histogram_delta,
    histogram_quantile,
)


def buckets(**at: int) -> tuple[int, ...]:
    values = [0] * RUNQ_SLOTS
    for key, n in at.items():
        values[int(key[1:])] = n
    return tuple(values)


def bpf_slot(wait_ns: int) -> int:
    """The slot bpf/sched.bpf.c counts a wait in: bcc's bpf_log2l(wait_ns >> 10) (floor(log2 v) + 1; 1 for 0)."""
    v = wait_ns >> 10
    return min((v.bit_length() - 1 if v else 0) + 1, RUNQ_SLOTS - 1)


def test_bucket_bounds_hold_the_waits_the_bpf_program_counts_in_them() -> None:
    waits = [0, 1, 500, 1023, 1024, 1500, 2047, 2048, 4095, 4096, 10**6, 2**20, 2**21 - 1, 2**36, 2**40]
    for wait_ns in waits + [2**k + d for k in range(11, 37) for d in (-1, 0, 1)]:
        slot = bpf_slot(wait_ns)
        assert RUNQ_BUCKET_LOWER_SECONDS[slot] <= wait_ns / 1e9, wait_ns
        assert slot == RUNQ_SLOTS - 1 or wait_ns / 1e9 < RUNQ_BUCKET_UPPER_SECONDS[slot], wait_ns
    assert bpf_slot(0) == bpf_slot(2047) == 1  # the first slot in use holds 0-2 us, not 1-2 us
    assert RUNQ_BUCKET_LOWER_SECONDS[1] == 0.0 and RUNQ_BUCKET_UPPER_SECONDS[1] == pytest.approx(2048e-9)
    for i in range(2, RUNQ_SLOTS):  # contiguous powers of two from slot 2 on
        assert RUNQ_BUCKET_LOWER_SECONDS[i] == RUNQ_BUCKET_UPPER_SECONDS[i - 1]
        assert RUNQ_BUCKET_UPPER_SECONDS[i] == 2 * RUNQ_BUCKET_LOWER_SECONDS[i]
    # slot 11 holds [1.048576 ms, 2.097152 ms): 2**20 ns to 2**21 ns
    assert RUNQ_BUCKET_LOWER_SECONDS[11] == pytest.approx(2**20 / 1e9)
    # Upper bounds increase (the exporter's cumulative "le" buckets), slot 0 (never filled) included.
    assert all(a < b for a, b in itertools.pairwise(RUNQ_BUCKET_UPPER_SECONDS))


def test_empty_histogram_has_no_quantile() -> None:
    assert histogram_quantile((0,) * RUNQ_SLOTS, 0.5) is None


def test_quantile_interpolates_inside_the_bucket() -> None:
    h = buckets(s10=100)  # all samples in [2**19, 2**20) ns
    lo, hi = RUNQ_BUCKET_LOWER_SECONDS[10], RUNQ_BUCKET_UPPER_SECONDS[10]
    assert histogram_quantile(h, 0.5) == pytest.approx(lo + (hi - lo) * 0.5)
    assert histogram_quantile(h, 1.0) == pytest.approx(hi)


def test_p99_lands_in_the_tail_bucket() -> None:
    h = buckets(s1=980, s15=20)
    p50 = histogram_quantile(h, 0.5)
    p99 = histogram_quantile(h, 0.99)
    assert p50 is not None and p50 < RUNQ_BUCKET_UPPER_SECONDS[1]
    assert p99 is not None and RUNQ_BUCKET_LOWER_SECONDS[15] <= p99 <= RUNQ_BUCKET_UPPER_SECONDS[15]


def test_max_caps_the_quantile() -> None:
    h = buckets(s10=10)
    assert histogram_quantile(h, 0.99, max_seconds=0.0006) == pytest.approx(0.0006)


def test_bad_quantile_is_rejected() -> None:
    with pytest.raises(ValueError):
        histogram_quantile(buckets(s1=1), 1.5)


def test_delta_quantile_sees_only_new_samples() -> None:
    old = EbpfCgroupCounters(cgroup_id=7, runq_buckets=buckets(s1=1000))
    new = EbpfCgroupCounters(cgroup_id=7, runq_buckets=buckets(s1=1000, s14=50))
    p50 = delta_quantile(new, old, 0.5)
    assert p50 is not None and p50 >= RUNQ_BUCKET_LOWER_SECONDS[14]
    assert delta_quantile(old, old, 0.5) is None


def test_recreated_cgroup_or_reset_counters_use_the_new_histogram() -> None:
    old = EbpfCgroupCounters(cgroup_id=7, runq_buckets=buckets(s1=1000))
    new = EbpfCgroupCounters(cgroup_id=8, runq_buckets=buckets(s3=10))
    assert delta_quantile(new, old, 0.5) == histogram_quantile(buckets(s3=10), 0.5)
    assert histogram_delta(buckets(s3=10), buckets(s3=20)) == buckets(s3=10)
    assert histogram_delta(buckets(s3=10), None) == buckets(s3=10)


@given(st.lists(st.integers(min_value=0, max_value=10**6), min_size=RUNQ_SLOTS, max_size=RUNQ_SLOTS),
       st.floats(min_value=0.0, max_value=1.0), st.floats(min_value=0.0, max_value=1.0))
def test_quantiles_are_monotonic_and_inside_the_range(h: list[int], q1: float, q2: float) -> None:
    a, b = histogram_quantile(h, min(q1, q2)), histogram_quantile(h, max(q1, q2))
    if sum(h) == 0:
        assert a is None and b is None
        return
    assert a is not None and b is not None
    assert 0.0 <= a <= b <= RUNQ_BUCKET_UPPER_SECONDS[-1]
