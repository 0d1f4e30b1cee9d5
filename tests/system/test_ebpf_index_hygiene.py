"""A cgroup removed after the programs were attached but before ctop first read their maps still gives its
counters' index back: on a busy node the compile-to-first-read window is seconds long, and before this was fixed
each cgroup removed in it kept an entry in ``cgroup_index`` for as long as ctop ran."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from support.cgroups import TestCgroup, fresh_cgroup, host_layout, remove_tree
from support.ebpf import loaded_reader, use_kernel_headers
from support.env import need_root

from ctop.ebpf import loader, maps

pytestmark = pytest.mark.system


@pytest.fixture
def cgroup() -> Iterator[TestCgroup]:
    """A fresh cgroup named ctoph-index-... in every hierarchy; removed afterwards."""
    need_root()
    with fresh_cgroup("ctoph-index") as cg:
        yield cg


def _indexed_ids(loaded: loader.Loaded) -> set[int]:
    return {int(k.value) for k in loaded.bpf[b"cgroup_index"]}


def test_a_cgroup_removed_before_the_first_read_gives_its_index_back(cgroup: TestCgroup) -> None:
    use_kernel_headers()
    layout = host_layout()
    loaded = loader.load(layout)
    try:
        gone = cgroup.child("gone")
        kept = cgroup.child("kept")
        gone_id = os.stat(loaded.tracking.root + gone.path).st_ino
        kept_id = os.stat(loaded.tracking.root + kept.path).st_ino
        for cg in (gone, kept):
            cg.spawn(["sh", "-c", "for i in 1 2 3 4 5; do sleep 0.01; done"]).wait(60)
        assert {gone_id, kept_id} <= _indexed_ids(loaded), "the workloads were not counted"
        remove_tree(layout, gone.path)
        assert not os.path.exists(loaded.tracking.root + gone.path)
        time.sleep(0.1)

        reader = maps.MapReader(loaded)  # created only now, as ctop's first read comes after the compile
        first = reader.read()
        reader.read()
        indexed = _indexed_ids(loaded)
        assert gone_id not in indexed, "the removed cgroup kept its counters' index"
        assert kept_id in indexed, "a live cgroup lost its index"
        assert gone.path in first.removed_cgroups
        assert kept.path in first.by_cgroup
    finally:
        loaded.bpf.cleanup()


def test_cgroups_whose_log_records_were_overwritten_give_their_index_back(cgroup: TestCgroup) -> None:
    """More cgroups made and removed between two reads than the cgroup log holds: their removals are lost with
    the overwritten records, and before this was fixed each of them kept its entry for good."""
    layout = host_layout()
    with loaded_reader() as (loaded, reader):
        ids = []
        for i in range(150):  # 300+ mkdir/rmdir records: the log keeps 256
            child = cgroup.child(f"c{i}")
            ids.append(os.stat(loaded.tracking.root + child.path).st_ino)
            child.spawn(["true"]).wait(60)
        counted = set(ids) & _indexed_ids(loaded)
        assert len(counted) > 100, "the short processes were not counted"
        for i in range(150):
            remove_tree(layout, f"{cgroup.path}/c{i}")
        reading = reader.read()
        assert reading.dropped["cgroup_log_overwritten"] > 0, "the log was not overrun: the test proves nothing"
        time.sleep(1.2)  # the fresh walk that confirms unnamed ids are gone runs at most once a second
        reader.read()
        left = counted & _indexed_ids(loaded)
        assert not left, f"{len(left)} removed cgroups kept their counters' index"
