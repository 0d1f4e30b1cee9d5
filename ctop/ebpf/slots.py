"""Small indices for cgroups in the ``slotted`` per-CPU array, so sched_switch finds counters without a hash lookup.

User space gives an index to each cgroup the programs have counted (``cgroup_slots``: cgroup id -> index; threads
remember it), reads the indexed counters in one batch per refresh, and takes an index back when its cgroup goes:
the index is zeroed at once and given out again only a few reads later (a thread that was ending may still count).
"""

from __future__ import annotations

import ctypes
import heapq
import importlib
from typing import Any

REUSE_AFTER_READS = 2  # reads an index rests, zeroed, before another cgroup gets it


class IndexPool:
    """The indices 0..size-1, lowest first; one given back is handed out again after ``REUSE_AFTER_READS`` reads."""

    def __init__(self, size: int) -> None:
        self.free = list(range(size))  # a heap: the lowest free index first keeps the batch read short
        self.resting: list[tuple[int, int]] = []  # (read number it may be reused from, index)
        self.reads = 0

    def take(self) -> int | None:
        """A free index, or None when all are in use."""
        return heapq.heappop(self.free) if self.free else None

    def give_back(self, index: int) -> None:
        self.resting.append((self.reads + REUSE_AFTER_READS, index))

    def next_read(self) -> None:
        """One more read happened: indices that rested long enough are free again."""
        self.reads += 1
        ready = [i for when, i in self.resting if when <= self.reads]
        self.resting = [(when, i) for when, i in self.resting if when > self.reads]
        for index in ready:
            heapq.heappush(self.free, index)


class CgroupSlots:
    """The ``cgroup_slots`` hash and ``slotted`` per-CPU array of one loaded program set."""

    def __init__(self, index_map: Any, counters: Any, size: int) -> None:
        self._index_map = index_map  # bcc HashTable: u64 cgroup id -> u32 index
        self._counters = counters  # bcc PerCpuArray of struct cgroup_counters
        self._pool = IndexPool(size)
        self.index_of: dict[int, int] = {}
        self._lib = importlib.import_module("bcc.libbcc").lib

    def raw_by_id(self) -> dict[int, bytes]:
        """Every indexed cgroup's per-CPU counter copies (back to back), by cgroup id, in one batch read."""
        if not self.index_of:
            return {}
        count = max(self.index_of.values()) + 1
        keys = (ctypes.c_uint32 * count)()
        values = (self._counters.Leaf * count)()
        n = ctypes.c_uint32(count)
        out_batch = ctypes.c_uint32(0)
        self._lib.bpf_lookup_batch(self._counters.map_fd, None, ctypes.byref(out_batch), keys, values,
                                   ctypes.byref(n))  # ENOENT at the array's end still fills n entries
        got = {int(keys[i]): i for i in range(n.value)}
        return {cgroup_id: bytes(values[got[index]]) for cgroup_id, index in self.index_of.items() if index in got}

    def give(self, cgroup_id: int) -> None:
        """Index a cgroup the programs have counted (nothing when it has an index or none is free)."""
        if cgroup_id in self.index_of:
            return
        index = self._pool.take()
        if index is None:
            return
        self.index_of[cgroup_id] = index
        self._index_map[self._index_map.Key(cgroup_id)] = self._index_map.Leaf(index)

    def take_back(self, cgroup_id: int) -> None:
        """The cgroup is gone: drop its index from the map, zero its counters, let the index rest."""
        index = self.index_of.pop(cgroup_id, None)
        if index is None:
            return
        try:
            del self._index_map[self._index_map.Key(cgroup_id)]
        except KeyError:
            pass
        self._counters[ctypes.c_int(index)] = self._counters.Leaf()
        self._pool.give_back(index)

    def next_read(self) -> None:
        self._pool.next_read()
