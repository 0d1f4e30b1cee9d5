"""Run-queue histogram math: bucket bounds, quantiles of cumulative and delta histograms."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctop.model.ebpf import (
    RUNQ_BUCKET_LOWER_SECONDS,
    RUNQ_BUCKET_UPPER_SECONDS,
    RUNQ_GEOMETRY,
    RUNQ_POWER_OF_TWO_ENDS,
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


def test_buckets_are_contiguous_and_four_per_power_of_two() -> None:
    assert RUNQ_BUCKET_LOWER_SECONDS[0] == 0.0
    assert RUNQ_BUCKET_UPPER_SECONDS[0] == pytest.approx(256e-9)
    for i in range(1, RUNQ_SLOTS):
        assert RUNQ_BUCKET_LOWER_SECONDS[i] == RUNQ_BUCKET_UPPER_SECONDS[i - 1]
    for i in range(4, RUNQ_SLOTS):
        # log-linear: no bucket is wider than a quarter of its lower bound, so interpolation errs by a few %
        width = RUNQ_BUCKET_UPPER_SECONDS[i] - RUNQ_BUCKET_LOWER_SECONDS[i]
        assert width == pytest.approx(RUNQ_BUCKET_LOWER_SECONDS[i - i % 4] / 4)
    # slots 40..43 split [2**19, 2**20) ns in four
    assert RUNQ_BUCKET_LOWER_SECONDS[40] == pytest.approx(2**19 / 1e9)
    assert RUNQ_BUCKET_LOWER_SECONDS[41] == pytest.approx(1.25 * 2**19 / 1e9)
    assert RUNQ_BUCKET_UPPER_SECONDS[43] == pytest.approx(2**20 / 1e9)
    assert RUNQ_BUCKET_UPPER_SECONDS[-1] == pytest.approx(2**37 / 1e9)
    assert [RUNQ_BUCKET_UPPER_SECONDS[i] for i in RUNQ_POWER_OF_TWO_ENDS] == [2**k / 1e9 for k in range(10, 37)]


@given(st.integers(min_value=0, max_value=2**37 - 1))
def test_the_slot_of_a_wait_is_the_bucket_whose_bounds_hold_it(wait_ns: int) -> None:
    slot = RUNQ_GEOMETRY.slot(wait_ns)
    low, high = RUNQ_GEOMETRY.bounds_ns()[slot]
    assert low <= wait_ns < high


def test_longer_waits_go_to_the_last_slot() -> None:
    assert RUNQ_GEOMETRY.slot(2**37) == RUNQ_GEOMETRY.slot(2**60) == RUNQ_SLOTS - 1


def test_empty_histogram_has_no_quantile() -> None:
    assert histogram_quantile((0,) * RUNQ_SLOTS, 0.5) is None


def test_quantile_interpolates_inside_the_bucket() -> None:
    h = buckets(s40=100)  # all samples in [2**19, 1.25 * 2**19) ns
    lo, hi = RUNQ_BUCKET_LOWER_SECONDS[40], RUNQ_BUCKET_UPPER_SECONDS[40]
    assert histogram_quantile(h, 0.5) == pytest.approx(lo + (hi - lo) * 0.5)
    assert histogram_quantile(h, 1.0) == pytest.approx(hi)


def test_p99_lands_in_the_tail_bucket() -> None:
    h = buckets(s1=980, s60=20)
    p50 = histogram_quantile(h, 0.5)
    p99 = histogram_quantile(h, 0.99)
    assert p50 is not None and p50 < RUNQ_BUCKET_UPPER_SECONDS[1]
    assert p99 is not None and RUNQ_BUCKET_LOWER_SECONDS[60] <= p99 <= RUNQ_BUCKET_UPPER_SECONDS[60]


def test_max_caps_the_quantile() -> None:
    h = buckets(s43=10)  # [1.75, 2) * 2**19 ns: 0.92 - 1.05 ms
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
