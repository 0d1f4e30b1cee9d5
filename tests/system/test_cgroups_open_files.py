"""Files kept open on the real cgroupfs: a cgroup that vanishes mid-read is no data without an error, and one
recreated under the same path is read afresh, never through a descriptor of the old one."""

from __future__ import annotations

import os
import uuid

import pytest
from support.cgroups import host_layout, make_cgroup, remove_tree
from support.env import need_root

from ctop.sources.cgroupfs import CgroupReader

pytestmark = pytest.mark.system

LIMIT_A = 64 * 2**20
LIMIT_B = 32 * 2**20


@pytest.fixture
def parent():
    need_root()
    layout = host_layout()
    path = f"/ctoph-sp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    make_cgroup(layout, path)
    try:
        yield layout, path
    finally:
        remove_tree(layout, path)


def _make(layout, path: str, limit: int) -> None:
    cg = make_cgroup(layout, path)
    cg.limit_memory(limit)


def _remove(layout, path: str) -> None:
    remove_tree(layout, path)


def test_kept_files_on_cgroupfs_vanish_and_recreate(parent) -> None:
    layout, top = parent
    path = top + "/child"
    _make(layout, path, LIMIT_A)
    reader = CgroupReader(layout, keep_open=None)  # kept open on a real cgroup mount
    assert reader._files is not None  # a live cgroupfs: files are kept open
    first = reader.read_all(rescan_s=0)[path]
    assert first.memory_limit_bytes == LIMIT_A and reader._files.open_count > 0

    _remove(layout, path)  # vanishes between the walk and the read: no data, no error
    assert reader.read(path, first.inode) is None
    assert reader.errors.counts() == {}
    assert path not in reader.read_all(rescan_s=0)

    _make(layout, path, LIMIT_A)
    again = reader.read_all(rescan_s=0)[path]
    _remove(layout, path)
    _make(layout, path, LIMIT_B)  # recreated under the same path after the walk saw the old one
    recreated = reader.read(path, again.inode)
    assert recreated is not None and recreated.memory_limit_bytes == LIMIT_B
    fresh = reader.read_all(rescan_s=0)[path]
    assert fresh.inode != again.inode and fresh.memory_limit_bytes == LIMIT_B
    assert reader.errors.counts() == {}
    reader.close()
    assert reader._files.open_count == 0
