"""The thread map: its size, the slot each thread takes (the same rotation as bpf/maps.bpf.c) and where a seeded
thread goes in a tagged array (the programs' rules)."""

from __future__ import annotations

import ctypes
import re

import pytest

from ctop.ebpf import loader
from ctop.ebpf.threads import ARRAY_LIMIT, MORE_DEFAULT, SPREAD_BITS, ThreadMap, ThreadTables, thread_map, thread_slot

CACHE_LINE = 64


@pytest.mark.parametrize("bits", [4, 15, 18])
def test_every_tid_below_the_size_has_its_own_slot(bits: int) -> None:
    size = 1 << bits
    assert {thread_slot(tid, bits) for tid in range(size)} == set(range(size))


def test_a_tid_beyond_the_array_shares_the_slot_of_its_low_bits() -> None:
    assert thread_slot(5 + (1 << 18) * 3, 18) == thread_slot(5, 18)


def test_consecutive_tids_never_share_a_cache_line_pair() -> None:
    """A parent and the child it forked get consecutive tids and often run on two CPUs: their 40-byte states must be
    far enough apart that no 128-byte pair of cache lines (what the CPU fetches together) holds both."""
    bits, state_bytes = 15, 40
    for tid in range(1, (1 << bits) - 1):
        a, b = thread_slot(tid, bits) * state_bytes, thread_slot(tid + 1, bits) * state_bytes
        low, high = sorted((a, b))
        assert high - (low + state_bytes) >= 2 * CACHE_LINE - state_bytes, tid


@pytest.mark.parametrize(("pid_max", "entries"), [(32768, 32768), (30000, 32768), (4_000, 4096), (1, 16),
                                                   (ARRAY_LIMIT, ARRAY_LIMIT)])
def test_an_array_is_a_power_of_two_that_holds_every_pid(pid_max: int, entries: int) -> None:
    threads = thread_map(None, pid_max)
    assert not threads.tagged
    assert threads.max_entries == entries and threads.bits == entries.bit_length() - 1


def test_a_large_pid_max_gets_a_tagged_array_with_a_hash_beside_it() -> None:
    threads = thread_map(None, 4_194_304)
    assert threads == ThreadMap(ARRAY_LIMIT, MORE_DEFAULT) and threads.tagged
    assert threads.capacity == ARRAY_LIMIT + MORE_DEFAULT
    assert thread_map(1000, 32768) == ThreadMap(1024, MORE_DEFAULT)
    assert thread_map(40000, 32768) == ThreadMap(65536)


def test_the_programs_are_built_with_the_map_the_reader_uses() -> None:
    tracking = loader.Tracking(hierarchy_id=0, root="/sys/fs/cgroup", root_id=1, v2=True)
    flags = loader.build_cflags(tracking, loader.LoadOptions(), {}, ThreadMap(32768))
    assert {"-DTHREADS_MAX=32768", "-DTHREADS_BITS=15", f"-DSPREAD_BITS={SPREAD_BITS}"} <= set(flags)
    assert not any(f.startswith(("-DTHREADS_TAGGED", "-DTHREADS_MORE")) for f in flags)
    tagged = loader.build_cflags(tracking, loader.LoadOptions(), {}, ThreadMap(1 << 18, 1 << 15))
    assert {"-DTHREADS_TAGGED", "-DTHREADS_MORE=32768", "-DTHREADS_BITS=18"} <= set(tagged)
    text = loader.program_text()
    assert "u32 low = tid & (THREADS_MAX - 1);" in text
    assert re.search(r"\(low << SPREAD_BITS\) \| \(low >> \(THREADS_BITS - SPREAD_BITS\)\)", text)


class State(ctypes.Structure):
    _fields_ = [("cgroup_id", ctypes.c_uint64), ("last", ctypes.c_uint64), ("slot", ctypes.c_uint64),
                ("v1_id", ctypes.c_uint64), ("tid", ctypes.c_uint32), ("pad", ctypes.c_uint32)]


class Table(dict):
    """A map as FdTable presents it: Key/Leaf types, lookups that raise KeyError, insert with BPF_NOEXIST."""

    Key = ctypes.c_uint32
    Leaf = State

    def __init__(self, array_size: int = 0) -> None:
        super().__init__()
        self.array_size = array_size

    def __getitem__(self, key: ctypes.c_uint32) -> State:
        if key.value in self:
            return dict.__getitem__(self, key.value)
        if key.value < self.array_size:
            return State()
        raise KeyError(key.value)

    def __setitem__(self, key: ctypes.c_uint32, leaf: State) -> None:
        dict.__setitem__(self, key.value, leaf)

    def __delitem__(self, key: ctypes.c_uint32) -> None:
        dict.__delitem__(self, key.value)

    def insert(self, key: ctypes.c_uint32, leaf: State) -> bool:
        if key.value in self:
            return False
        dict.__setitem__(self, key.value, leaf)
        return True


def test_seeding_a_tagged_array_puts_a_thread_whose_slot_is_taken_in_the_hash() -> None:
    shape = ThreadMap(16, 64)
    array, more = Table(16), Table()
    tables = ThreadTables(shape, array, more)
    learnt: list[int] = []
    assert tables.seed(5, 100, 0, lambda table, key: learnt.append(key.value))
    assert tables.seed(5 + 16, 200, 0, lambda table, key: learnt.append(key.value))  # same slot: the hash
    assert array[ctypes.c_uint32(thread_slot(5, 4))].tid == 5 and more[ctypes.c_uint32(21)].cgroup_id == 200
    assert not tables.seed(21, 300, 0, lambda table, key: learnt.append(key.value))  # known already: left alone
    assert learnt == [21] and more[ctypes.c_uint32(21)].cgroup_id == 200
    tables.forget(5, 100)  # the slot is free again; 21 stays where it is
    assert array[ctypes.c_uint32(thread_slot(5, 4))].cgroup_id == 0
    found = tables.where(21)
    assert found is not None and found[0] is more and found[1].value == 21 and tables.where(5) is None
    tables.forget(21, 200)
    assert tables.where(21) is None


def test_seeding_an_untagged_array_skips_tids_beyond_it() -> None:
    tables = ThreadTables(ThreadMap(16), Table(16))
    assert not tables.seed(16, 100, 0, lambda table, key: None)
    assert tables.seed(15, 100, 0, lambda table, key: None)
    assert tables.where(15) is not None


def test_the_churn_tests_read_a_states_tid_where_the_header_puts_it() -> None:
    from support.churn import THREAD_TID_BYTES

    from ctop.ebpf.layout import parse_header

    with open(loader.program_dir() + "/ctop.h") as f:
        members = parse_header(f.read()).structs["thread_state"]
    offset = 0
    for m in members:
        if m.name == "tid":
            break
        offset += m.size * m.count
    assert (THREAD_TID_BYTES.start, THREAD_TID_BYTES.stop) == (offset, offset + 4)
