"""Indices of the per-cgroup counters: one taken back rests for some reads before a new cgroup may get it."""

from __future__ import annotations

from ctop.ebpf.slots import REUSE_AFTER_READS, Resting


def test_a_taken_back_index_rests_for_some_reads() -> None:
    resting = Resting()
    resting.add(7)
    for _ in range(REUSE_AFTER_READS - 1):
        assert resting.next_read() == []  # a thread that was ending may still count into it
    resting.add(9)
    assert resting.next_read() == [7]
    assert resting.entries == [(resting.reads + REUSE_AFTER_READS - 1, 9)]
    assert resting.next_read() == [9] and resting.entries == []
