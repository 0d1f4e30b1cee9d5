"""What ctop uses of a loaded program set, as Protocols: programs, tables, log records. ctop holds them as
fdtables.FdProgram/FdTable (the fds a compiler process handed over), which keep bcc's interface (bcc ships no type
hints); bcc's own objects satisfy them too.

Record members are named as in bpf/ctop.h; their order and sizes come from the compiled tables (see layout.py).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Protocol, TypeVar

LeafT = TypeVar("LeafT", covariant=True)


class Function(Protocol):
    """One loaded program (bcc.BPF.funcs values)."""

    @property
    def fd(self) -> int: ...


class Program(Protocol):
    """A compiled and attached program set (fdtables.FdProgram, or bcc.BPF)."""

    @property
    def funcs(self) -> Mapping[bytes, Function]: ...

    def __getitem__(self, name: bytes) -> object: ...

    def cleanup(self) -> None: ...


class ArrayTable(Protocol[LeafT]):
    """A BPF array read by index (bcc's Array and PerCpuArray; a per-CPU leaf is one value per CPU)."""

    @property
    def max_entries(self) -> int: ...

    def __getitem__(self, key: ctypes.c_int) -> LeafT: ...


class PerCpuArrayTable(Protocol):
    """The per-CPU ``cgroups`` array: ``sLeaf`` is one CPU's record type, ``Leaf`` all CPUs' copies."""

    @property
    def sLeaf(self) -> type[ctypes.Structure]: ...

    @property
    def Leaf(self) -> type[ctypes.Array[ctypes.Structure]]: ...

    @property
    def map_fd(self) -> int: ...

    @property
    def max_entries(self) -> int: ...


class CulpritKey(Protocol):
    """struct culprit_key."""

    victim: int
    culprit: int


class CulpritTable(Protocol):
    """The per-CPU ``culprits`` LRU hash: a batch yields (struct culprit_key, one u64 count per CPU)."""

    Key: Callable[..., CulpritKey]

    def items_lookup_batch(self) -> Iterator[tuple[CulpritKey, Iterable[int]]]: ...

    def __delitem__(self, key: CulpritKey) -> None: ...


class Counter(Protocol):
    """A u64 leaf (bcc returns ctypes.c_ulonglong)."""

    @property
    def value(self) -> int: ...


class Logged(Protocol):
    """A record of a ring log: ``seq`` is its 1-based number (0: an empty slot)."""

    seq: int


class ExecRecord(Logged, Protocol):
    """struct exec_record."""

    time_ns: int
    cgroup_id: int
    pid: int
    ppid: int
    comm: bytes
    filename: bytes
    args_len: int
    args: bytes


class OomRecord(Logged, Protocol):
    """struct oom_record."""

    time_ns: int
    cgroup_id: int
    pid: int
    comm: bytes


class CgroupRecord(Logged, Protocol):
    """struct cgroup_record."""

    time_ns: int
    cgroup_id: int
    kind: int
    level: int
    path: bytes


PerCpuCounters = ArrayTable[Iterable[int]]
