"""Maps held by fd alone, read and written through raw bpf() calls as maps.py and the seeding do: real kernel maps
(created here with BPF_MAP_CREATE), every kind ctop's programs use: hash, array, per-CPU array, LRU per-CPU hash,
queue."""

from __future__ import annotations

import ctypes
import os
import struct
from collections.abc import Iterator

import pytest
from support.env import need_root

from ctop.ebpf import fdtables, rawbpf
from ctop.ebpf.fdtables import FdTable, MapSpec, possible_cpus

pytestmark = pytest.mark.system

HASH, ARRAY, PERCPU_ARRAY, LRU_PERCPU_HASH, QUEUE = 1, 2, 6, 10, 22
STATE = ["thread_state", [["cgroup_id", "unsigned long long"], ["last", "unsigned long long"]], "struct"]


def _create(map_type: int, key_size: int, value_size: int, max_entries: int) -> int:
    attr = struct.pack("=IIIII", map_type, key_size, value_size, max_entries, 0).ljust(72, b"\0")
    fd = rawbpf.bpf(0, attr)  # BPF_MAP_CREATE
    assert fd >= 0, os.strerror(-fd)
    return fd


@pytest.fixture
def tables() -> Iterator[list[FdTable]]:
    need_root()
    made: list[FdTable] = []
    yield made
    for table in made:
        os.close(table.map_fd)


def _table(made: list[FdTable], name: str, map_type: int, key: object, leaf: object, max_entries: int) -> FdTable:
    spec = MapSpec(name, map_type, max_entries, key, leaf)
    probe = FdTable(spec, -1, possible_cpus())
    key_size = ctypes.sizeof(probe.Key) if probe.Key is not None else 0
    table = FdTable(spec, _create(map_type, key_size, ctypes.sizeof(probe.sLeaf), max_entries), possible_cpus())
    made.append(table)
    return table


def test_a_hash_of_structs_inserts_only_new_keys_and_reads_back_in_one_batch(tables: list[FdTable]) -> None:
    threads = _table(tables, "threads", HASH, "unsigned int", STATE, 64)
    assert threads.insert(threads.Key(7), threads.Leaf(cgroup_id=70, last=0))
    assert not threads.insert(threads.Key(7), threads.Leaf(cgroup_id=99, last=0))  # BPF_NOEXIST keeps the first
    threads[threads.Key(8)] = threads.Leaf(cgroup_id=80, last=1)
    assert threads[threads.Key(7)].cgroup_id == 70 and len(threads) == 2
    assert sorted((int(k), v.cgroup_id) for k, v in threads.items_lookup_batch()) == [(7, 70), (8, 80)]  # as bcc
    del threads[threads.Key(7)]
    with pytest.raises(KeyError):
        threads[threads.Key(7)]
    with pytest.raises(KeyError):
        del threads[threads.Key(7)]
    assert [int(k.value) for k in threads] == [8]
    threads.clear()
    assert list(threads.items_lookup_batch()) == []


def test_arrays_read_by_index_and_zero_on_delete(tables: list[FdTable]) -> None:
    seqs = _table(tables, "seqs", ARRAY, "int", "unsigned long long", 4)
    seqs[ctypes.c_int(2)] = seqs.Leaf(41)
    assert seqs[ctypes.c_int(2)].value == 41 and seqs[2].value == 41 and len(seqs) == 4
    del seqs[ctypes.c_int(2)]
    assert seqs[ctypes.c_int(2)].value == 0
    with pytest.raises(KeyError):
        seqs[ctypes.c_int(4)]
    assert [int(k) for k, _ in seqs.items_lookup_batch()] == [0, 1, 2, 3]


def test_per_cpu_leaves_hold_one_copy_per_possible_cpu(tables: list[FdTable]) -> None:
    ncpus = possible_cpus()
    counters = _table(tables, "counters", PERCPU_ARRAY, "int", "unsigned long long", 3)
    assert counters.Leaf is counters.sLeaf * ncpus
    counters[ctypes.c_int(1)] = counters.Leaf(*range(1, ncpus + 1))
    assert sum(int(c) for c in counters[ctypes.c_int(1)]) == ncpus * (ncpus + 1) // 2
    culprits = _table(tables, "culprits", LRU_PERCPU_HASH,
                      ["culprit_key", [["victim", "unsigned long long"], ["culprit", "unsigned long long"]], "struct"],
                      "unsigned long long", 16)
    culprits[culprits.Key(victim=1, culprit=2)] = culprits.Leaf(*([5] * ncpus))
    pairs = [(int(k.victim), int(k.culprit), sum(int(c) for c in v)) for k, v in culprits.items_lookup_batch()]
    assert pairs == [(1, 2, 5 * ncpus)]
    small = _table(tables, "small", PERCPU_ARRAY, "int", "unsigned int", 1)  # 4-byte leaves travel as 8 bytes
    assert ctypes.sizeof(small.Leaf) == 8 * ncpus


def test_a_queue_takes_pushes(tables: list[FdTable]) -> None:
    free = _table(tables, "free_indices", QUEUE, None, "unsigned int", 4)
    for i in range(4):
        free.push(ctypes.c_uint32(i))
    with pytest.raises(OSError):
        free.push(ctypes.c_uint32(9))  # full


def test_a_description_that_does_not_match_the_kernel_map_is_refused(tables: list[FdTable]) -> None:
    fd = _create(ARRAY, 4, 16, 2)  # 16-byte values: a lookup into an 8-byte leaf would write past it
    try:
        with pytest.raises(ValueError, match="16-byte values where its description gives 4 and 8"):
            FdTable(MapSpec("seqs", ARRAY, 2, "int", "unsigned long long"), fd, possible_cpus())
    finally:
        os.close(fd)


def test_a_batch_read_of_more_entries_than_its_buffers_takes_rounds_and_misses_none(tables: list[FdTable]) -> None:
    """The batch buffers hold BATCH_ENTRIES and are reused: a larger map is read in several rounds, every entry
    once, and a second read gives the same (no entry of the first read is overwritten before it was converted)."""
    entries = 3 * fdtables.BATCH_ENTRIES + 17
    threads = _table(tables, "threads", HASH, "unsigned int", STATE, 4 * fdtables.BATCH_ENTRIES)
    for tid in range(entries):
        threads[threads.Key(tid)] = threads.Leaf(cgroup_id=tid * 10, last=0)
    first = sorted((int(k), int(v.cgroup_id)) for k, v in threads.items_lookup_batch())
    assert first == [(tid, tid * 10) for tid in range(entries)]
    assert sorted((int(k), int(v.cgroup_id)) for k, v in threads.items_lookup_batch()) == first
    assert len(threads.batch_buffers(0)[0]) == fdtables.BATCH_ENTRIES  # not one array of the whole map per read
