"""The thread map of ctop's programs: its shape, the slot of a tid, and where user space puts a thread it seeds.

Thread states live in a pid-indexed array (bpf/maps.bpf.c). Where pid_max is larger than the array (systemd sets
4194304), the array is tagged: a slot belongs to the first live thread whose tid maps to it and a thread whose slot
is another's goes to a small hash, ``threads_more``. The rules here are the programs' own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ARRAY_LIMIT = 1 << 18  # at most this many array slots (40 bytes each); a larger pid_max makes the array tagged
MORE_DEFAULT = 1 << 15  # threads_more entries: threads whose slot another live thread holds
# A thread's slot is the low bits of its tid rotated left by this much, so threads with consecutive tids (a process
# and the one it forked, usually running on two CPUs) sit 2^SPREAD_BITS slots apart, never in one cache line: a
# write on one CPU to a line the other CPU reads makes the line travel between them at every context switch
# (measured: 0.8x an empty program's cost per switch, the biggest single cost, bench/bpf_cost.py).
SPREAD_BITS = 3


@dataclass(frozen=True)
class ThreadMap:
    """An array of ``max_entries`` slots (a power of two) and, when tagged, a hash of ``more`` entries."""

    max_entries: int
    more: int = 0

    @property
    def tagged(self) -> bool:
        """True when tids beyond the array share slots (pid_max is larger than the array)."""
        return self.more > 0

    @property
    def bits(self) -> int:
        """log2 of the array's size (the width of the tid bits a slot is made of)."""
        return max(self.max_entries - 1, 1).bit_length()

    def cflags(self) -> list[str]:
        """The programs' compiler flags for this map."""
        flags = [f"-DTHREADS_MAX={self.max_entries}", f"-DTHREADS_BITS={self.bits}", f"-DSPREAD_BITS={SPREAD_BITS}"]
        if self.tagged:
            flags += ["-DTHREADS_TAGGED", f"-DTHREADS_MORE={self.more}"]
        return flags

    @property
    def capacity(self) -> int:
        """How many threads it can hold at most."""
        return self.max_entries + self.more


def power_of_two_at_least(n: int) -> int:
    """The smallest power of two >= n, and at least 2**(SPREAD_BITS + 1)."""
    return max(1 << max(n - 1, 1).bit_length(), 1 << (SPREAD_BITS + 1))


def thread_map(threads_max: int | None, pid_max: int) -> ThreadMap:
    """An array holding every pid up to pid_max (rounded up to a power of two) while that is at most ARRAY_LIMIT
    slots (or ``threads_max`` if given), tagged with a hash beside it when pid_max is larger."""
    size = power_of_two_at_least(threads_max if threads_max is not None else min(pid_max, ARRAY_LIMIT))
    return ThreadMap(size, MORE_DEFAULT if size < pid_max else 0)


def thread_slot(tid: int, bits: int) -> int:
    """The array slot of thread ``tid`` in an array of 2**bits slots: its low ``bits`` bits rotated left by
    SPREAD_BITS (thread_slot() in bpf/maps.bpf.c)."""
    mask = (1 << bits) - 1
    low = tid & mask
    return ((low << SPREAD_BITS) | (low >> (bits - SPREAD_BITS))) & mask


class ThreadTables:
    """The loaded thread map (bcc tables: ``array`` and, when tagged, ``more``), for seeding from user space."""

    def __init__(self, shape: ThreadMap, array: Any, more: Any = None) -> None:
        self.shape, self.array, self.more = shape, array, more

    def _slot_key(self, tid: int) -> Any:
        return self.array.Key(thread_slot(tid, self.shape.bits))

    def where(self, tid: int) -> tuple[Any, Any] | None:
        """(table, key) holding thread ``tid``'s state, or None when it has none."""
        if not self.shape.tagged and tid >= self.shape.max_entries:
            return None
        key = self._slot_key(tid)
        state = self.array[key]
        if state.cgroup_id and (state.tid == tid or not self.shape.tagged):
            return self.array, key
        if self.more is not None:
            more_key = self.more.Key(tid)
            try:
                self.more[more_key]
            except KeyError:
                return None
            return self.more, more_key
        return None

    def seed(self, tid: int, cgroup_id: int, v1_id: int, learnt: Callable[[Any, Any], object]) -> bool:
        """Put thread ``tid`` in ``cgroup_id`` where the programs would, unless they know it already: then
        ``learnt(table, key)`` is called on its state instead. True when it was put."""
        if not self.shape.tagged and tid >= self.shape.max_entries:
            return False
        found = self.where(tid)
        if found is not None:
            learnt(*found)
            return False
        key = self._slot_key(tid)
        if not self.array[key].cgroup_id:
            self.array[key] = self.array.Leaf(cgroup_id=cgroup_id, last=0, v1_id=v1_id, tid=tid)
            return True
        if self.more is None:
            return False
        # BPF_NOEXIST: never overwrite what a program learnt meanwhile
        return bool(self.more.insert(self.more.Key(tid), self.more.Leaf(cgroup_id=cgroup_id, last=0, v1_id=v1_id,
                                                                        tid=tid)))

    def forget(self, tid: int, cgroup_id: int) -> None:
        """Take thread ``tid`` out again if it is still in ``cgroup_id`` (a thread that ended while being seeded)."""
        found = self.where(tid)
        if found is None:
            return
        table, key = found
        if table is self.array:
            if self.array[key].cgroup_id == cgroup_id:
                self.array[key] = self.array.Leaf(cgroup_id=0, last=0)
            return
        try:
            del table[key]
        except KeyError:
            pass
