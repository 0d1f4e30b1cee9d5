"""TreeWatch finds exactly what a full walk finds, after any sequence of creations, removals and re-creations."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ctop.sources.cgroupfs import walk_cgroups
from ctop.sources.cgroupwatch import TreeWatch

NAMES = st.sampled_from(["a", "b", "c"])
PATHS = st.lists(NAMES, min_size=1, max_size=3).map(lambda parts: "/" + "/".join(parts))
OPS = st.lists(st.tuples(st.sampled_from(["mkdir", "rmtree", "recreate", "swap"]), PATHS, NAMES), max_size=12)


def full_walk(root: str, max_depth: int | None = None) -> dict[str, int]:
    return {path: inodes[root] for path, inodes in walk_cgroups([root], max_depth).items()}


def apply(root: Path, op: str, path: str, other: str) -> None:
    target = root / path.lstrip("/")
    if op == "mkdir":
        target.mkdir(parents=True, exist_ok=True)
    elif op == "rmtree":
        shutil.rmtree(target, ignore_errors=True)
    elif op == "recreate":  # same name, new inode, maybe different children
        shutil.rmtree(target, ignore_errors=True)
        (target / other).mkdir(parents=True)
    elif op == "swap" and target.is_dir():  # one child out, another in: the link count does not move
        children = [c for c in target.iterdir() if c.is_dir()]
        if children:
            shutil.rmtree(children[0])
            (target / (children[0].name + other)).mkdir(exist_ok=True)


@settings(max_examples=150, deadline=None)
@given(batches=st.lists(OPS, min_size=1, max_size=4), depth=st.sampled_from([None, 1, 2]))
def test_matches_a_full_walk_after_every_batch_of_changes(tmp_path_factory, batches, depth) -> None:
    root = tmp_path_factory.mktemp("tree")
    (root / "a" / "b").mkdir(parents=True)
    watch = TreeWatch(str(root), depth)
    assert watch.paths() == full_walk(str(root), depth)
    for batch in batches:
        for op, path, other in batch:
            apply(root, op, path, other)
        assert watch.paths() == full_walk(str(root), depth)


def test_an_unchanged_tree_costs_no_listing(tmp_path: Path) -> None:
    for i in range(50):
        (tmp_path / f"pod{i}" / "ctr").mkdir(parents=True)
    watch = TreeWatch(str(tmp_path))
    first = watch.paths()
    listings = watch.listings
    assert len(first) == 101
    assert watch.paths() == first and watch.listings == listings and watch.full_walks == 1
    (tmp_path / "pod7" / "new").mkdir()
    assert "/pod7/new" in watch.paths()
    assert watch.listings - listings == 2  # pod7 and the new directory, nothing else
    assert watch.full_walks == 1


def test_a_tree_whose_link_count_lies_is_walked_in_full(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "a").mkdir()
    real_stat = os.stat

    def btrfs_like(path, *args, **kwargs):
        st_ = real_stat(path, *args, **kwargs)
        return os.stat_result((st_.st_mode, st_.st_ino, st_.st_dev, 1, *tuple(st_)[4:]))

    monkeypatch.setattr(os, "stat", btrfs_like)
    watch = TreeWatch(str(tmp_path))
    watch.paths()
    (tmp_path / "b").mkdir()
    assert "/b" in watch.paths() and watch.full_walks == 2


def test_a_vanished_root_gives_an_empty_tree_and_comes_back(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "x").mkdir(parents=True)
    watch = TreeWatch(str(root))
    assert set(watch.paths()) == {"/", "/x"}
    shutil.rmtree(root)
    assert watch.paths() == {}
    (root / "y").mkdir(parents=True)
    assert set(watch.paths()) == {"/", "/y"}
