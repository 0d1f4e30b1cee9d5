"""The per-cgroup counters: a per-CPU array whose indices the programs give out (``cgroup_index``: cgroup id ->
index) and user space takes back when a cgroup goes.

A taken-back index is zeroed at once, rests for a few reads (a thread that was ending may still count into it),
is zeroed again and only then queued in ``free_indices`` for the programs to give to a new cgroup.
"""

from __future__ import annotations

import ctypes
from typing import Any

from . import rawbpf

REUSE_AFTER_READS = 2  # reads an index rests before it is queued for another cgroup
GONE_READS = 30  # reads a removed cgroup's id is remembered (an ending task counts into it within a read or two)
GONE_KEPT = 4096  # and at most this many ids (a node removing thousands of cgroups between two reads)


class Resting:
    """Indices taken back, each with the read number from which it may be given out again."""

    def __init__(self) -> None:
        self.entries: list[tuple[int, int]] = []
        self.reads = 0

    def add(self, index: int) -> None:
        self.entries.append((self.reads + REUSE_AFTER_READS, index))

    def next_read(self) -> list[int]:
        """One more read happened: the indices that rested long enough (they leave the list)."""
        self.reads += 1
        ready = [i for when, i in self.entries if when <= self.reads]
        self.entries = [(when, i) for when, i in self.entries if when > self.reads]
        return ready


class GoneIds:
    """Ids of removed cgroups, each kept for ``reads`` reads (at most ``limit`` of them): a task that was ending
    may count into its old cgroup once more after the removal was read, making it take an index again."""

    def __init__(self, reads: int = GONE_READS, limit: int = GONE_KEPT) -> None:
        self.reads, self.limit = reads, limit
        self._until: dict[int, int] = {}  # id -> the read after which it is forgotten, oldest first
        self._read = 0

    def __contains__(self, cgroup_id: object) -> bool:
        return cgroup_id in self._until

    def __len__(self) -> int:
        return len(self._until)

    def add(self, cgroup_id: int) -> None:
        self._until.pop(cgroup_id, None)
        self._until[cgroup_id] = self._read + self.reads
        while len(self._until) > self.limit:
            del self._until[next(iter(self._until))]

    def next_read(self) -> None:
        """One more read happened: forget the ids kept long enough."""
        self._read += 1
        while self._until:
            oldest = next(iter(self._until))
            if self._until[oldest] > self._read:
                break
            del self._until[oldest]


class CgroupIndex:
    """The ``cgroup_index`` hash, the ``cgroups`` per-CPU array and the ``free_indices`` queue of one program set."""

    def __init__(self, index_map: Any, counters: Any, free: Any) -> None:
        self._index_map = index_map  # bcc HashTable: u64 cgroup id -> u32 index
        self._counters = counters  # bcc PerCpuArray of struct cgroup_counters
        self._free = free  # bcc QueueStack of u32
        self._resting = Resting()
        self._lib = rawbpf.lib

    def raw_by_id(self) -> dict[int, bytes]:
        """Every indexed cgroup's per-CPU counter copies (back to back), by cgroup id: one batch read of the index
        and one of the array up to the highest index in use."""
        index_of = {int(k): int(v) for k, v in self._index_map.items_lookup_batch()}
        if not index_of:
            return {}
        count = min(max(index_of.values()) + 1, self._counters.max_entries)
        keys, values = self._counters.batch_buffers(count)
        n = ctypes.c_uint32(count)
        out_batch = ctypes.c_uint32(0)
        self._lib.bpf_lookup_batch(self._counters.map_fd, None, ctypes.byref(out_batch), keys, values,
                                   ctypes.byref(n))  # ENOENT at the array's end still fills n entries
        position = {int(keys[i]): i for i in range(n.value)}
        return {cgroup_id: bytes(values[position[index]]) for cgroup_id, index in index_of.items()
                if index in position}

    def take_back(self, cgroup_id: int) -> None:
        """The cgroup is gone (its last counters were read): drop its index, zero its counters, let the index rest."""
        key = self._index_map.Key(cgroup_id)
        try:
            index = int(self._index_map[key].value)
            del self._index_map[key]
        except KeyError:
            return
        self._zero(index)
        self._resting.add(index)

    def next_read(self) -> None:
        """After a read: indices that rested long enough are zeroed again and queued for new cgroups."""
        for index in self._resting.next_read():
            self._zero(index)
            self._free.push(ctypes.c_uint32(index))

    def _zero(self, index: int) -> None:
        self._counters[ctypes.c_int(index)] = self._counters.Leaf()
