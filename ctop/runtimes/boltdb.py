"""Reads a bbolt database file (containerd's meta.db, podman's bolt_state.db) without its daemon: buckets and keys.

bbolt is a copy-on-write B+tree: two meta pages name the root bucket of the latest committed transaction; every
bucket is a tree of branch and leaf pages (or, when small, a page inlined in its parent's value). A writer never
changes a page a committed meta page reaches, so reading while the daemon writes sees the last commit or, when a
commit lands mid-read, malformed pages, which end the read with None instead of an exception.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Iterator

MAGIC = 0xED0CDAED
BRANCH_PAGE = 0x01
LEAF_PAGE = 0x02
BUCKET_VALUE = 0x01  # leaf element flag: the value is a nested bucket header
PAGE_HEADER = struct.Struct("<QHHI")  # id, flags, count, overflow
META = struct.Struct("<IIII QQ QQQ Q")  # magic, version, page size, flags, root, sequence, freelist, pgid, txid, sum
ELEMENT = struct.Struct("<IIII")  # leaf: flags, pos, ksize, vsize; branch: pos, ksize, pgid (8 bytes)
BRANCH_ELEMENT = struct.Struct("<IIQ")
MAX_DEPTH = 64
MAX_BYTES = 256 * 1024 * 1024


class BoltError(ValueError):
    """The file is not a bbolt database, or a page is malformed (a commit landed while it was read)."""


class Bucket:
    """One bucket of an open database: ``get`` a value, ``bucket`` a nested bucket, ``items`` in key order."""

    def __init__(self, data: bytes | mmap.mmap, page_size: int, root: int, inline: bytes | None = None) -> None:
        self._data = data
        self._page_size = page_size
        self._root = root
        self._inline = inline

    def items(self) -> Iterator[tuple[bytes, bytes, bool]]:
        """(key, value, is_bucket) for every key of this bucket, in order."""
        if self._inline is not None:
            yield from self._page_items(self._inline, 0, 0)
        else:
            yield from self._walk(self._root, 0, set())

    def get(self, key: bytes) -> bytes | None:
        """The value stored under ``key`` (not a bucket), or None."""
        for k, v, is_bucket in self.items():
            if k == key and not is_bucket:
                return v
        return None

    def bucket(self, key: bytes) -> Bucket | None:
        """The nested bucket under ``key``, or None."""
        for k, v, is_bucket in self.items():
            if k == key and is_bucket:
                return self._nested(v)
        return None

    def buckets(self) -> Iterator[tuple[bytes, Bucket]]:
        """(key, bucket) for every nested bucket."""
        for k, v, is_bucket in self.items():
            if is_bucket:
                yield k, self._nested(v)

    def _nested(self, value: bytes) -> Bucket:
        if len(value) < 16:
            raise BoltError("short bucket header")
        root = struct.unpack_from("<Q", value, 0)[0]
        return Bucket(self._data, self._page_size, root, bytes(value[16:]) if root == 0 else None)

    def _walk(self, pgid: int, depth: int, seen: set[int]) -> Iterator[tuple[bytes, bytes, bool]]:
        """The elements of the tree under page ``pgid``; a page reached twice (a torn read) ends the read."""
        if depth > MAX_DEPTH or pgid in seen:
            raise BoltError("a page is reached twice or the tree is too deep")
        seen.add(pgid)
        offset = pgid * self._page_size
        if offset + PAGE_HEADER.size > len(self._data):
            raise BoltError(f"page {pgid} beyond the end of the file")
        _, flags, count, overflow = PAGE_HEADER.unpack_from(self._data, offset)
        if PAGE_HEADER.size + count * ELEMENT.size > (overflow + 1) * self._page_size:
            raise BoltError(f"page {pgid} claims more elements than it holds")
        if flags & BRANCH_PAGE:
            for i in range(count):
                at = offset + PAGE_HEADER.size + i * BRANCH_ELEMENT.size
                child = BRANCH_ELEMENT.unpack_from(self._data, at)[2]
                yield from self._walk(child, depth + 1, seen)
        elif flags & LEAF_PAGE:
            yield from self._page_items(self._data, offset, count)
        else:
            raise BoltError(f"page {pgid} is neither a branch nor a leaf")

    @staticmethod
    def _page_items(data: bytes | mmap.mmap, offset: int, count: int = 0) -> Iterator[tuple[bytes, bytes, bool]]:
        """Elements of the leaf page at ``offset`` (an inline page gives its own count when ``count`` is 0)."""
        _, flags, page_count, _ = PAGE_HEADER.unpack_from(data, offset)
        if not flags & LEAF_PAGE:
            if page_count == 0:
                return
            raise BoltError("inline bucket page is not a leaf")
        for i in range(count or page_count):
            at = offset + PAGE_HEADER.size + i * ELEMENT.size
            eflags, pos, ksize, vsize = ELEMENT.unpack_from(data, at)
            start = at + pos
            if start + ksize + vsize > len(data):
                raise BoltError("element beyond the end of the file")
            yield (bytes(data[start:start + ksize]), bytes(data[start + ksize:start + ksize + vsize]),
                   bool(eflags & BUCKET_VALUE))


def read_root(data: bytes | mmap.mmap) -> Bucket:
    """The root bucket of the meta page (of the two) with the latest transaction of ``data`` (a bbolt file)."""
    metas = []
    page_size = 0
    for index in (0, 1):
        offset = index * page_size + PAGE_HEADER.size
        if offset + META.size > len(data):
            break
        magic, _, size, _, root, _, _, _, txid, _ = META.unpack_from(data, offset)
        if magic != MAGIC or size < 512 or (page_size and size != page_size):
            if index == 0:
                break
            continue
        page_size = size
        metas.append((txid, root))
    if not metas:
        raise BoltError("not a bbolt database")
    return Bucket(data, page_size, max(metas)[1])


def open_bolt(path: str) -> tuple[Bucket, mmap.mmap] | None:
    """The root bucket of the database at ``path`` and the map to close when done; None when unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        size = os.fstat(fd).st_size
        if size < 8192 or size > MAX_BYTES:
            return None
        data = mmap.mmap(fd, size, prot=mmap.PROT_READ)
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    try:
        return read_root(data), data
    except (BoltError, struct.error):
        data.close()
        return None


def read_values(path: str, bucket_path: tuple[bytes, ...],
                value_keys: tuple[bytes, ...]) -> dict[bytes, dict[bytes, bytes]]:
    """For each nested bucket under ``bucket_path``: its key -> {value key -> value} for ``value_keys``.

    {} when the file, a bucket on the way or a page is missing or malformed.
    """
    opened = open_bolt(path)
    if opened is None:
        return {}
    root, data = opened
    try:
        bucket: Bucket | None = root
        for key in bucket_path:
            bucket = bucket.bucket(key) if bucket is not None else None
        if bucket is None:
            return {}
        out: dict[bytes, dict[bytes, bytes]] = {}
        for name, child in bucket.buckets():
            out[name] = {k: v for k, v, is_bucket in child.items() if k in value_keys and not is_bucket}
        return out
    except (BoltError, struct.error, IndexError):
        return {}
    finally:
        data.close()
