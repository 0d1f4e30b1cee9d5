"""Maps and programs held by file descriptor alone (handed over by the compiler process): bcc's table interface
(``prog[b"name"]`` with Key/Leaf ctypes types, lookups, updates, batch reads, per-CPU leaves) over raw bpf() calls.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .rawbpf import NOEXIST, lib, map_info
from .typedesc import ctype_of

# Map types (include/uapi/linux/bpf.h) whose leaves are one copy per possible CPU, and queues/stacks (no key).
PERCPU_TYPES = frozenset({5, 6, 10, 21})  # percpu_hash, percpu_array, lru_percpu_hash, percpu_cgroup_storage
ARRAY_TYPES = frozenset({2, 6})
QUEUE_TYPES = frozenset({22, 23})
POSSIBLE_CPUS = "/sys/devices/system/cpu/possible"
BATCH_ENTRIES = 1024  # entries one batch read copies at most (more rounds for larger maps)


def possible_cpus(path: str = POSSIBLE_CPUS) -> int:
    """How many CPUs the kernel may ever bring up ("0-3,8" -> 5): the number of copies in a per-CPU leaf."""
    with open(path) as f:
        text = f.read().strip()
    count = 0
    for part in text.split(","):
        first, _, last = part.partition("-")
        count += (int(last) - int(first) + 1) if last else 1
    return count


@dataclass(frozen=True)
class MapSpec:
    """What the compiler process says about one map: its name, kernel type, size and key/leaf descriptions."""

    name: str
    map_type: int
    max_entries: int
    key_desc: Any
    leaf_desc: Any


class FdTable:
    """One map by its fd: ``table[key]`` (KeyError when absent), ``table[key] = leaf``, ``del table[key]``."""

    def __init__(self, spec: MapSpec, fd: int, ncpus: int) -> None:
        self.name = spec.name
        self.map_fd = fd
        self.map_type = spec.map_type
        self.max_entries = spec.max_entries
        if spec.leaf_desc is None:
            raise ValueError(f"map {spec.name} has no leaf type (a ring or perf buffer is not read through its fd)")
        self.Key: Any = ctype_of(spec.key_desc) if spec.key_desc is not None else None
        self.sLeaf: Any = ctype_of(spec.leaf_desc)
        self.Leaf: Any = self.sLeaf
        self._check_sizes(fd)
        if spec.map_type in PERCPU_TYPES:  # the kernel copies round_up(size, 8) bytes per CPU
            if ctypes.sizeof(self.sLeaf) % 8 == 0:
                self.Leaf = self.sLeaf * ncpus
            elif self.sLeaf in (ctypes.c_uint, ctypes.c_uint32, ctypes.c_ushort, ctypes.c_ubyte):
                self.Leaf = ctypes.c_uint64 * ncpus
            elif self.sLeaf in (ctypes.c_int, ctypes.c_int32, ctypes.c_short, ctypes.c_byte):
                self.Leaf = ctypes.c_int64 * ncpus
            else:
                raise ValueError(f"per-CPU map {spec.name} has a leaf of {ctypes.sizeof(self.sLeaf)} bytes, not a "
                                 "multiple of 8")
        self._batch: tuple[Any, Any] | None = None

    def _check_sizes(self, fd: int) -> None:
        """The kernel's key and value sizes must be those of the types (it writes that many bytes into them)."""
        info = map_info(fd) if fd >= 0 else None
        if info is None:
            return
        key_size, value_size = info[2], info[3]
        want_key = ctypes.sizeof(self.Key) if self.Key is not None else 0
        if key_size != want_key or value_size != ctypes.sizeof(self.sLeaf):
            raise ValueError(f"map {self.name} holds {key_size}-byte keys and {value_size}-byte values where its "
                             f"description gives {want_key} and {ctypes.sizeof(self.sLeaf)}")

    def _key(self, key: Any) -> Any:
        if isinstance(key, int) and self.Key is not None:
            return self.Key(key)
        return key

    def __getitem__(self, key: Any) -> Any:
        leaf = self.Leaf()
        if lib.bpf_lookup_elem(self.map_fd, ctypes.byref(self._key(key)), ctypes.byref(leaf)) < 0:
            raise KeyError(key)
        return leaf

    def __setitem__(self, key: Any, leaf: Any) -> None:
        if lib.bpf_update_elem(self.map_fd, ctypes.byref(self._key(key)), ctypes.byref(leaf), 0) < 0:
            raise OSError(ctypes.get_errno(), f"could not update map {self.name}: {os.strerror(ctypes.get_errno())}")

    def insert(self, key: Any, leaf: Any) -> bool:
        """Add ``key`` only if it is absent (BPF_NOEXIST); False when it was there or the map is full."""
        return lib.bpf_update_elem(self.map_fd, ctypes.byref(self._key(key)), ctypes.byref(leaf), NOEXIST) == 0

    def __delitem__(self, key: Any) -> None:
        if self.map_type in ARRAY_TYPES:  # array entries cannot go: zero them, as bcc does
            self[key] = self.Leaf()
            return
        if lib.bpf_delete_elem(self.map_fd, ctypes.byref(self._key(key))) < 0:
            raise KeyError(key)

    def push(self, leaf: Any, flags: int = 0) -> None:
        """Queue/stack maps: add ``leaf`` (key NULL)."""
        if lib.bpf_update_elem(self.map_fd, None, ctypes.byref(leaf), flags) < 0:
            raise OSError(ctypes.get_errno(), f"could not push to map {self.name}: {os.strerror(ctypes.get_errno())}")

    def keys(self) -> Iterator[Any]:
        """Every key, one BPF_MAP_GET_NEXT_KEY at a time."""
        key, next_key = None, self.Key()
        while lib.bpf_get_next_key(self.map_fd, ctypes.byref(key) if key is not None else None,
                                   ctypes.byref(next_key)) == 0:
            yield next_key
            key, next_key = next_key, self.Key()

    def __iter__(self) -> Iterator[Any]:
        return self.keys()

    def __len__(self) -> int:
        """Entries: every slot of an array, the keys present in a hash."""
        if self.map_type in ARRAY_TYPES:
            return self.max_entries
        return sum(1 for _ in self.keys())

    def values(self) -> list[Any]:
        return [leaf for _key, leaf in self.items()]

    def items(self) -> list[tuple[Any, Any]]:
        """(key, leaf) pairs one lookup at a time (entries deleted meanwhile are left out)."""
        out = []
        for key in list(self.keys()):
            try:
                out.append((key, self[key]))
            except KeyError:
                continue
        return out

    def clear(self) -> None:
        """Delete every entry (zero every slot of an array)."""
        for key in list(self.keys()):
            try:
                del self[key]
            except KeyError:
                continue

    def items_lookup_batch(self) -> Iterator[tuple[Any, Any]]:
        """Every (key, leaf) pair, read with BPF_MAP_LOOKUP_BATCH (as many calls as it takes). The pairs are views
        into buffers the next round and the next call reuse: copy what you keep before asking for the next pair
        (a new buffer each call was hundreds of KiB a refresh for the allocator to keep)."""
        token = ctypes.create_string_buffer(max(ctypes.sizeof(self.Key), 8))
        in_batch: Any = None
        room = min(BATCH_ENTRIES, self.max_entries)
        while True:
            keys, values = self.batch_buffers(room)
            n = ctypes.c_uint32(len(keys))
            ret = lib.bpf_lookup_batch(self.map_fd, in_batch, token, keys, values, ctypes.byref(n))
            if ret == -errno.ENOSPC and n.value == 0 and len(keys) < self.max_entries:
                room = min(2 * len(keys), self.max_entries)  # one hash bucket holds more entries than the buffers
                continue
            for i in range(n.value):
                yield keys[i], values[i]
            if ret < 0 or n.value == 0:  # ENOENT: that was the last batch
                if ret < 0 and ret != -errno.ENOENT:
                    raise OSError(-ret, f"could not read map {self.name}: {os.strerror(-ret)}")
                return
            in_batch = ctypes.create_string_buffer(token.raw, len(token))

    def batch_buffers(self, count: int) -> tuple[Any, Any]:
        """Key and leaf arrays of at least ``count`` entries for batch reads, kept between reads and grown when more
        are asked for (a new pair each read was up to megabytes a refresh for the allocator to keep)."""
        if self._batch is None or len(self._batch[0]) < count:
            self._batch = ((self.Key * count)(), (self.Leaf * count)())
        return self._batch


class FdFunction:
    """One loaded program by its fd (bcc.BPF.Function's ``fd``)."""

    def __init__(self, name: bytes, fd: int) -> None:
        self.name = name
        self.fd = fd


class FdProgram:
    """A program set held by fds: ``funcs`` by name, maps by ``prog[b"name"]``; ``cleanup()`` closes every fd,
    which detaches the programs (the attachment fds were their only holders)."""

    def __init__(self, tables: Mapping[bytes, FdTable], funcs: Mapping[bytes, FdFunction],
                 attachments: Mapping[str, int], unreadable: Mapping[bytes, tuple[int, str]] | None = None) -> None:
        self.tables = dict(tables)
        self.funcs = dict(funcs)
        self.attachments = dict(attachments)
        self.unreadable = dict(unreadable or {})  # maps whose types ctop cannot build: (fd, why), held until cleanup
        self._closed = False

    def __getitem__(self, name: bytes) -> FdTable:
        if name in self.unreadable:
            raise ValueError(f"map {name.decode()} cannot be read: {self.unreadable[name][1]}")
        return self.tables[name]

    def cleanup(self) -> None:
        """Close every fd (attachments first); safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        fds = [*self.attachments.values(), *(f.fd for f in self.funcs.values()),
               *(t.map_fd for t in self.tables.values()), *(fd for fd, _why in self.unreadable.values())]
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass
