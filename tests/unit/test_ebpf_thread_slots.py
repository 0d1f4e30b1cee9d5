"""The pid-indexed thread map: its size and the slot each thread takes (the same rotation as bpf/maps.bpf.c)."""

from __future__ import annotations

import re

import pytest

from ctop.ebpf import loader

CACHE_LINE = 64


@pytest.mark.parametrize("bits", [4, 15, 18])
def test_every_tid_has_its_own_slot(bits: int) -> None:
    size = 1 << bits
    slots = {loader.thread_slot(tid, bits) for tid in range(size)}
    assert slots == set(range(size))


def test_consecutive_tids_never_share_a_cache_line_pair() -> None:
    """A parent and the child it forked get consecutive tids and often run on two CPUs: their 40-byte states must be
    far enough apart that no 128-byte pair of cache lines (what the CPU fetches together) holds both."""
    bits, state_bytes = 15, 40
    for tid in range(1, (1 << bits) - 1):
        a = loader.thread_slot(tid, bits) * state_bytes
        b = loader.thread_slot(tid + 1, bits) * state_bytes
        low, high = sorted((a, b))
        assert high - (low + state_bytes) >= 2 * CACHE_LINE - state_bytes, tid


@pytest.mark.parametrize(("pid_max", "entries"), [(32768, 32768), (30000, 32768), (4_000, 4096), (1, 16),
                                                   (1 << 18, 1 << 18)])
def test_an_array_is_a_power_of_two_that_holds_every_pid(pid_max: int, entries: int) -> None:
    threads = loader.thread_map(loader.LoadOptions(), pid_max)
    assert not threads.hashed
    assert threads.max_entries == entries and threads.bits == entries.bit_length() - 1


def test_a_large_pid_max_gets_a_bounded_hash_whose_keys_are_tids() -> None:
    threads = loader.thread_map(loader.LoadOptions(), 4_194_304)
    assert threads.hashed and threads.max_entries == loader.DEFAULT_HASH_THREADS
    assert threads.max_entries < 4_194_304
    assert loader.thread_map(loader.LoadOptions(threads_max=1000), 32768) == loader.ThreadMap(True, 1000)


def test_the_programs_are_built_with_the_rotation_the_reader_uses() -> None:
    tracking = loader.Tracking(hierarchy_id=0, root="/sys/fs/cgroup", root_id=1, v2=True)
    flags = loader.build_cflags(tracking, loader.LoadOptions(), {}, loader.ThreadMap(False, 32768))
    assert "-DTHREADS_BITS=15" in flags and f"-DSPREAD_BITS={loader.SPREAD_BITS}" in flags
    hashed = loader.build_cflags(tracking, loader.LoadOptions(), {}, loader.ThreadMap(True, 1 << 17))
    assert not any(f.startswith(("-DTHREADS_BITS", "-DSPREAD_BITS")) for f in hashed)
    text = loader.program_text()
    assert re.search(r"\(tid << SPREAD_BITS\) \| \(tid >> \(THREADS_BITS - SPREAD_BITS\)\)", text)
