"""Indices of the per-cgroup counters: one taken back rests for some reads before a new cgroup may get it."""

from __future__ import annotations

from ctop.ebpf.slots import REUSE_AFTER_READS, GoneIds, Resting


def test_a_taken_back_index_rests_for_some_reads() -> None:
    resting = Resting()
    resting.add(7)
    for _ in range(REUSE_AFTER_READS - 1):
        assert resting.next_read() == []  # a thread that was ending may still count into it
    resting.add(9)
    assert resting.next_read() == [7]
    assert resting.entries == [(resting.reads + REUSE_AFTER_READS - 1, 9)]
    assert resting.next_read() == [9] and resting.entries == []


def test_a_gone_id_is_remembered_for_its_reads_then_forgotten() -> None:
    gone = GoneIds(reads=3, limit=100)
    gone.add(7)
    for _ in range(2):
        gone.next_read()
        assert 7 in gone
    gone.add(8)
    gone.next_read()
    assert 7 not in gone and 8 in gone  # 7 had its three reads; 8 came a read later
    gone.next_read()
    gone.next_read()
    assert 8 not in gone and len(gone) == 0


def test_gone_ids_are_bounded_oldest_first_and_a_second_removal_renews_one() -> None:
    gone = GoneIds(reads=1000, limit=3)
    for cgroup_id in (1, 2, 3):
        gone.add(cgroup_id)
    gone.add(1)  # renewed: now the newest
    gone.add(4)
    assert len(gone) == 3 and 2 not in gone and {1, 3, 4} == {i for i in (1, 2, 3, 4) if i in gone}


def test_an_unnamed_id_is_taken_back_once_and_left_alone_when_it_counts_again() -> None:
    from ctop.ebpf.maps import unnamed_to_take_back

    named = {10, 11}
    taken: GoneIds = GoneIds(reads=1 << 30, limit=100)
    first = unnamed_to_take_back([10, 20, 21], named, taken)
    assert first == [20, 21]  # 10 has a name: alive
    for cgroup_id in first:
        taken.add(cgroup_id)
    # 21 counts again: a live cgroup no walk can name (its threads remember the index): not taken back again
    assert unnamed_to_take_back([21, 30], named, taken) == [30]
