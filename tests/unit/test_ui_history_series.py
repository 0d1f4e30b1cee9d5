"""The sparklines' ring of values: the newest ``capacity`` values, oldest first, None kept, read like a list."""

from __future__ import annotations

import pytest

from ctop.ui.history import Series, sparkline


def test_a_full_ring_keeps_the_newest_values_oldest_first() -> None:
    series = Series(4)
    for value in [1.0, None, 3.0, 4.0, 5.0, 6.5]:
        series.append(value)
    assert list(series) == [3.0, 4.0, 5.0, 6.5]
    assert len(series) == 4 and series[0] == 3.0 and series[-1] == 6.5 and series[-4] == 3.0
    assert series[1:3] == [4.0, 5.0] and series[::-1] == [6.5, 5.0, 4.0, 3.0]
    with pytest.raises(IndexError):
        series[4]
    with pytest.raises(IndexError):
        series[-5]


def test_no_data_stays_no_data_and_exact_values_stay_exact() -> None:
    working_set = 7_340_032_123
    series = Series(300, [None, 12.5, None, float(working_set)])
    assert list(series) == [None, 12.5, None, working_set] and series[-1] == working_set
    assert series.index(12.5) == 1 and None in series  # Sequence's methods work too
    assert sparkline(series, 4) == " ▁ █"


def test_a_series_made_from_more_values_than_it_holds_keeps_the_last() -> None:
    series = Series(3, range(10))
    assert list(series) == [7.0, 8.0, 9.0]
    series.append(None)
    assert list(series) == [8.0, 9.0, None]
    assert Series(0, [1.0]).capacity == 1
