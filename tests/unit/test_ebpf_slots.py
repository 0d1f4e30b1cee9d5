"""Indices of the `slotted` counters: lowest first, and a returned index rests before another cgroup gets it."""

from __future__ import annotations

from ctop.ebpf.slots import REUSE_AFTER_READS, IndexPool


def test_indices_are_given_lowest_first_until_none_is_left() -> None:
    pool = IndexPool(3)
    assert [pool.take(), pool.take(), pool.take(), pool.take()] == [0, 1, 2, None]


def test_a_returned_index_rests_for_some_reads_then_is_the_first_given() -> None:
    pool = IndexPool(4)
    taken = [pool.take() for _ in range(3)]
    assert taken == [0, 1, 2]
    pool.give_back(1)
    for _ in range(REUSE_AFTER_READS - 1):
        pool.next_read()
        assert pool.take() == 3 or pool.free == []
    pool.next_read()
    assert pool.take() == 1  # rested long enough (a thread that was ending may have counted into it meanwhile)
    assert pool.take() is None
