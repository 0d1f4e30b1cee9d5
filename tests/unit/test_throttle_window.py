"""Throttling over a window of at least 10 s: window maths, recreated cgroups, counter resets, what is kept."""

from __future__ import annotations

import json

import pytest

from ctop.batch import BatchOptions, render_json
from ctop.collector import build_frame
from ctop.model import fields
from ctop.model.sample import UNLIMITED, CgroupSample, HostSample, Snapshot
from ctop.model.window import CounterWindow, ThrottleWindow
from ctop.ui.columns import COLUMNS_BY_KEY

PATH = "/ctop/busy"


def snapshot(at_s: float, periods: int, throttled: int, throttled_ns: int | None, *, inode: int = 7,
             quota: int = 20_000, extra: dict[str, CgroupSample] | None = None) -> Snapshot:
    """One refresh at monotonic ``at_s`` with the test cgroup's CFS counters."""
    sample = CgroupSample(path=PATH, inode=inode, cpu_quota_us=quota, cpu_period_us=100_000, cpu_periods=periods,
                          cpu_throttled_periods=throttled, cpu_throttled_ns=throttled_ns)
    host = HostSample(monotonic_s=at_s, wall_time_s=1.7e9 + at_s, cpu_time_ns=None, online_cpus=2,
                      memory_total_bytes=None)
    return Snapshot(host=host, cgroups={PATH: sample, **(extra or {})}, mode="v1")


def feed(window: ThrottleWindow, *snapshots: Snapshot):
    return [window.update(s).get(PATH) for s in snapshots]


def test_first_reading_has_no_value_and_a_short_start_covers_what_exists() -> None:
    window = ThrottleWindow()
    first, second, third = feed(window, snapshot(0.0, 0, 0, 0), snapshot(1.0, 10, 9, 800_000_000),
                                snapshot(2.0, 20, 9, 800_000_000))
    assert first is None
    # After 1 s: 9 of 10 periods throttled, 0.8 s throttled in 1 s.
    assert second is not None and second.window_s == 1.0
    assert second.percent == pytest.approx(90.0) and second.seconds_per_s == pytest.approx(0.8)
    # After 2 s the share is over both seconds, not over the last refresh (which alone would say 0 %).
    assert third is not None and third.window_s == 2.0
    assert third.percent == pytest.approx(45.0) and third.seconds_per_s == pytest.approx(0.4)


def test_the_window_slides_and_is_never_shorter_than_ten_seconds() -> None:
    window = ThrottleWindow()
    # One refresh a second for 30 s: throttled in every period for the first 15 s, then never.
    results = []
    for t in range(31):
        throttled = min(t, 15) * 10
        results.append(window.update(snapshot(float(t), t * 10, throttled, throttled * 80_000_000)).get(PATH))
    last = results[-1]
    assert last is not None and last.window_s == 10.0 and last.percent == 0.0 and last.seconds_per_s == 0.0
    mid = results[20]  # 10..20 s: throttled during 10..15 only
    assert mid is not None and mid.window_s == 10.0
    assert mid.percent == pytest.approx(50.0) and mid.seconds_per_s == pytest.approx(0.4)
    assert all(r is not None and r.window_s == 10.0 for r in results[10:])


def test_the_window_is_one_refresh_when_refreshes_are_longer_than_ten_seconds() -> None:
    window = ThrottleWindow()
    _, second, third = feed(window, snapshot(0.0, 0, 0, 0), snapshot(15.0, 150, 150, 12 * 10**9),
                            snapshot(30.0, 300, 225, 18 * 10**9))
    assert second is not None and second.window_s == 15.0 and second.percent == 100.0
    assert third is not None and third.window_s == 15.0 and third.percent == pytest.approx(50.0)
    assert third.seconds_per_s == pytest.approx(0.4)


def test_uneven_refreshes_use_the_newest_reading_at_least_ten_seconds_old() -> None:
    window = ThrottleWindow()
    for t in (0.0, 4.0, 8.0, 12.0):
        result = window.update(snapshot(t, int(t * 10), int(t * 5), 0)).get(PATH)
    assert result is not None and result.window_s == 12.0  # 4.0 is only 8 s old: the window starts at 0.0
    result = window.update(snapshot(14.5, 145, 72, 0)).get(PATH)
    assert result is not None and result.window_s == 10.5  # 4.0 is now 10.5 s old


def test_no_delta_across_a_recreated_cgroup() -> None:
    window = ThrottleWindow()
    results = feed(window, snapshot(0.0, 100, 50, 10**9), snapshot(1.0, 110, 60, 2 * 10**9),
                   snapshot(2.0, 5, 5, 10**8, inode=8), snapshot(3.0, 15, 6, 2 * 10**8, inode=8))
    assert results[1] is not None
    assert results[2] is None  # a new incarnation: its first reading
    assert results[3] is not None and results[3].window_s == 1.0  # nothing of the old incarnation is counted
    assert results[3].percent == pytest.approx(10.0) and results[3].seconds_per_s == pytest.approx(0.1)


def test_a_counter_that_goes_back_starts_over() -> None:
    window = ThrottleWindow()
    results = feed(window, snapshot(0.0, 100, 50, 10**9), snapshot(1.0, 110, 60, 2 * 10**9),
                   snapshot(2.0, 120, 3, 2 * 10**9), snapshot(3.0, 130, 13, 3 * 10**9))
    assert results[2] is None
    assert results[3] is not None and results[3].window_s == 1.0 and results[3].percent == pytest.approx(100.0)


def test_no_cpu_limit_no_value_and_missing_throttled_time_is_only_that_value() -> None:
    window = ThrottleWindow()
    assert feed(window, snapshot(0.0, 0, 0, 0, quota=UNLIMITED), snapshot(1.0, 10, 5, 0, quota=UNLIMITED)) == [
        None, None]
    _, result = feed(window, snapshot(2.0, 10, 5, None), snapshot(3.0, 20, 10, None))
    assert result is not None and result.percent == pytest.approx(50.0) and result.seconds_per_s is None


def test_only_the_cgroups_of_the_latest_refresh_are_kept() -> None:
    window = ThrottleWindow()
    other = CgroupSample(path="/ctop/other", inode=9, cpu_quota_us=50_000, cpu_period_us=100_000, cpu_periods=1,
                         cpu_throttled_periods=0, cpu_throttled_ns=0)
    window.update(snapshot(0.0, 0, 0, 0, extra={"/ctop/other": other}))
    assert len(window) == 2
    window.update(snapshot(1.0, 10, 0, 0))
    assert len(window) == 1
    # At one refresh a second, a cgroup keeps about ten readings, however long ctop runs.
    counters = CounterWindow(10.0)
    for t in range(1000):
        counters.update(float(t), {"a": (1, (t,))})
    assert len(counters._by_key["a"].readings) == 11


def test_the_fields_reach_the_row_and_json() -> None:
    window = ThrottleWindow()
    first, second = snapshot(0.0, 0, 0, 0), snapshot(2.0, 20, 15, 1_200_000_001)
    window.update(first)
    frame = build_frame(second, first, throttling=window.update(second))
    row = frame.rows[PATH]
    assert row.throttled_percent_avg == pytest.approx(75.0)
    assert fields.THROTTLED_SECONDS_PER_S.get(row) == pytest.approx(0.6000000005)
    keys = [f.key for f in fields.JSON_FIELDS]
    assert keys.index("throttled_percent_avg") > keys.index("psi_io_full_avg10")  # appended: CSV columns keep places
    (printed,) = json.loads(render_json(frame, BatchOptions()))
    assert printed["throttled_percent_avg"] == 75.0
    assert printed["throttled_seconds_per_s"] == row.throttled_seconds_per_s != 0.6  # full precision
    for key in ("throttled_percent_avg", "throttled_seconds_per_s"):  # list columns in the chooser, sort keys
        assert fields.sort_field(key).sortable and key in COLUMNS_BY_KEY


def test_a_window_must_have_a_length() -> None:
    with pytest.raises(ValueError):
        CounterWindow(0)
