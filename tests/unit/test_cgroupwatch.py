"""TreeWatch finds exactly what a full walk finds, after any sequence of creations, removals and re-creations,
following the tree with inotify or, where that is unavailable or runs out of watches, with one stat per cgroup."""

from __future__ import annotations

import gc
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctop.sources import inotify
from ctop.sources.cgroupfs import walk_cgroups
from ctop.sources.cgroupwatch import TreeWatch

NAMES = st.sampled_from(["a", "b", "c"])
PATHS = st.lists(NAMES, min_size=1, max_size=3).map(lambda parts: "/" + "/".join(parts))
OPS = st.lists(st.tuples(st.sampled_from(["mkdir", "rmtree", "recreate", "swap", "rename"]), PATHS, NAMES),
               max_size=12)


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
    elif op == "rename" and target.is_dir():  # within its parent, as cgroupfs allows
        renamed = target.with_name(target.name + other)
        if not renamed.exists():
            target.rename(renamed)
    elif op == "swap" and target.is_dir():  # one child out, another in: the link count does not move
        children = [c for c in target.iterdir() if c.is_dir()]
        if children:
            shutil.rmtree(children[0])
            (target / (children[0].name + other)).mkdir(exist_ok=True)


@settings(max_examples=150, deadline=None)
@given(batches=st.lists(OPS, min_size=1, max_size=4), depth=st.sampled_from([None, 0, 1, 2]),
       notify=st.booleans())
def test_matches_a_full_walk_after_every_batch_of_changes(tmp_path_factory, batches, depth, notify) -> None:
    root = tmp_path_factory.mktemp("tree")
    (root / "a" / "b").mkdir(parents=True)
    watch = TreeWatch(str(root), depth, notify=notify)
    assert watch.paths() == full_walk(str(root), depth)
    assert watch.notifying == notify
    for batch in batches:
        for op, path, other in batch:
            apply(root, op, path, other)
        assert watch.paths() == full_walk(str(root), depth)
    assert watch.full_walks == 1
    watch.close()


@settings(max_examples=60, deadline=None)
@given(batches=st.lists(OPS, min_size=1, max_size=4), limit=st.integers(min_value=0, max_value=6))
def test_running_out_of_watches_falls_back_to_stats_and_stays_right(tmp_path_factory, batches, limit) -> None:
    """The user's watch limit reached at any point (the first directory, a later one): the same answers."""
    root = tmp_path_factory.mktemp("tree")
    (root / "a" / "b").mkdir(parents=True)
    (root / "c").mkdir()
    added, refused = [], []
    real_add = inotify.Inotify.add_watch

    def limited(self, path, mask=inotify.DIRECTORY_CHANGES):
        if len(added) >= limit:
            refused.append(path)
            raise inotify.WatchLimit(28, "No space left on device")
        added.append(path)
        return real_add(self, path, mask)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(inotify.Inotify, "add_watch", limited)
        watch = TreeWatch(str(root))
        assert watch.paths() == full_walk(str(root))
        for batch in batches:
            for op, path, other in batch:
                apply(root, op, path, other)
            assert watch.paths() == full_walk(str(root))
    assert watch.notifying == (not refused)


@pytest.mark.parametrize("notify", [True, False])
def test_an_unchanged_tree_costs_no_listing(tmp_path: Path, notify: bool, monkeypatch) -> None:
    for i in range(50):
        (tmp_path / f"pod{i}" / "ctr").mkdir(parents=True)
    watch = TreeWatch(str(tmp_path), notify=notify)
    first = watch.paths()
    listings = watch.listings
    assert len(first) == 101
    stats = []
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda path, *a, **k: stats.append(path) or real_stat(path, *a, **k))
    assert watch.paths() == first and watch.listings == listings and watch.full_walks == 1
    assert len(stats) == (0 if notify else 101)  # inotify: one read(2) and nothing else
    (tmp_path / "pod7" / "new").mkdir()
    assert "/pod7/new" in watch.paths()
    assert watch.listings - listings == (1 if notify else 2)  # (pod7 and) the new directory, nothing else
    assert watch.full_walks == 1


def test_where_inotify_is_unavailable_one_stat_per_cgroup_finds_the_changes(tmp_path: Path, monkeypatch) -> None:
    def unavailable() -> None:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(inotify.Inotify, "__init__", lambda self: unavailable())
    watch = TreeWatch(str(tmp_path))
    assert set(watch.paths()) == {"/"} and not watch.notifying
    (tmp_path / "x" / "y").mkdir(parents=True)
    assert set(watch.paths()) == {"/", "/x", "/x/y"} and watch.full_walks == 1


def test_lost_events_mean_one_full_walk(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "a").mkdir()
    watch = TreeWatch(str(tmp_path))
    watch.paths()
    (tmp_path / "b").mkdir()
    monkeypatch.setattr(inotify.Inotify, "read_events", lambda self: [(-1, inotify.IN_Q_OVERFLOW, "")])
    assert set(watch.paths()) == {"/", "/a", "/b"} and watch.full_walks == 2


def test_a_directory_renamed_in_place_is_followed(tmp_path: Path) -> None:
    (tmp_path / "old" / "child").mkdir(parents=True)
    watch = TreeWatch(str(tmp_path))
    watch.paths()
    (tmp_path / "old").rename(tmp_path / "new")
    (tmp_path / "new" / "later").mkdir()
    assert watch.paths() == full_walk(str(tmp_path)) and watch.full_walks == 1
    (tmp_path / "new" / "later" / "deeper").mkdir()  # the watches moved with the directories
    assert "/new/later/deeper" in watch.paths() and watch.full_walks == 1


def test_a_tree_whose_link_count_lies_is_walked_in_full_without_inotify(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "a").mkdir()
    real_stat = os.stat

    def btrfs_like(path, *args, **kwargs):
        st_ = real_stat(path, *args, **kwargs)
        return os.stat_result((st_.st_mode, st_.st_ino, st_.st_dev, 1, *tuple(st_)[4:]))

    monkeypatch.setattr(os, "stat", btrfs_like)
    watch = TreeWatch(str(tmp_path), notify=False)
    watch.paths()
    (tmp_path / "b").mkdir()
    assert "/b" in watch.paths() and watch.full_walks == 2
    notified = TreeWatch(str(tmp_path))  # inotify does not go by link counts
    notified.paths()
    (tmp_path / "c").mkdir()
    assert {"/b", "/c"} <= set(notified.paths()) and notified.full_walks == 1


@pytest.mark.parametrize("notify", [True, False])
@pytest.mark.parametrize("depth", [None, 0])
def test_a_vanished_root_gives_an_empty_tree_and_comes_back(tmp_path: Path, notify: bool, depth: int | None) -> None:
    root = tmp_path / "root"
    (root / "x").mkdir(parents=True)
    watch = TreeWatch(str(root), depth, notify=notify)
    if depth == 0:
        assert set(watch.paths()) == {"/"}
        shutil.rmtree(root)
        assert watch.paths() == {}
        return
    assert set(watch.paths()) == {"/", "/x"}
    shutil.rmtree(root)
    assert watch.paths() == {}
    (root / "y").mkdir(parents=True)
    assert set(watch.paths()) == {"/", "/y"}


@pytest.fixture
def budget(monkeypatch):
    """A fresh process budget of the kernel's size (the module keeps one per process)."""
    fresh = inotify.WatchBudget()
    monkeypatch.setattr(inotify, "_budget", fresh)
    return fresh


def test_the_process_takes_an_eighth_of_the_users_watch_limit_at_most(budget) -> None:
    with open(inotify.MAX_USER_WATCHES) as f:
        assert budget.total == int(f.read()) // 8 > 0


def test_watches_are_counted_given_back_when_directories_go_and_on_close(tmp_path: Path, budget) -> None:
    for i in range(5):
        (tmp_path / f"pod{i}" / "ctr").mkdir(parents=True)
    watch = TreeWatch(str(tmp_path))
    watch.paths()
    assert budget.held == 11  # the root, 5 pods, 5 containers
    shutil.rmtree(tmp_path / "pod3")
    (tmp_path / "pod0" / "new").mkdir()
    watch.paths()
    assert budget.held == 10
    (tmp_path / "pod0").rename(tmp_path / "pod0b")  # the same watches under other names: nothing more held
    assert "/pod0b/new" in watch.paths() and budget.held == 10
    watch.close()
    assert budget.held == 0


def test_a_spent_share_means_stats_for_the_rest_and_everything_back(tmp_path: Path, monkeypatch) -> None:
    small = inotify.WatchBudget(total=4)
    monkeypatch.setattr(inotify, "_budget", small)
    for i in range(5):
        (tmp_path / f"pod{i}").mkdir()
    first = TreeWatch(str(tmp_path / "pod0"))
    first.paths()
    assert first.notifying and small.held == 1
    second = TreeWatch(str(tmp_path))  # 6 directories, 3 watches left
    assert second.paths() == full_walk(str(tmp_path)) and not second.notifying
    assert small.held == 1  # what the second took on the way is back
    (tmp_path / "pod9").mkdir()
    assert "/pod9" in second.paths()
    del first  # collected without close(): its watch comes back too
    gc.collect()
    assert small.held == 0


def test_doctor_says_how_new_cgroups_are_found(monkeypatch) -> None:
    from ctop.doctor import check_inotify

    ok = check_inotify()
    with open(inotify.MAX_USER_WATCHES) as f:
        share = int(f.read()) // 8
    assert ok.status == "ok" and f"up to {share} watches" in ok.message
    monkeypatch.setattr(inotify, "_share_of_user_limit", lambda: 100)  # a node at 800 watches
    small = check_inotify()
    assert small.status == "warn" and "at most 100 watches" in small.message and "max_user_watches" in small.message

    def unavailable(self, budget=None) -> None:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(inotify.Inotify, "__init__", unavailable)
    none = check_inotify()
    assert none.status == "warn" and none.message.startswith("unavailable (Too many open files)")


def test_writes_are_reported_by_cgroup_and_a_cpuset_write_by_subtree(tmp_path: Path) -> None:
    (tmp_path / "pod" / "ctr").mkdir(parents=True)
    (tmp_path / "other").mkdir()
    watch = TreeWatch(str(tmp_path), writes=True)
    watch.paths()
    assert watch.take_writes().lost  # the first walk: nothing was watched before it
    assert watch.take_writes() == type(watch.take_writes())()  # nothing since
    (tmp_path / "pod" / "ctr" / "memory.max").write_text("1048576\n")
    (tmp_path / "pod" / "cpuset.cpus").write_text("1\n")
    (tmp_path / "other" / "not-read").mkdir()  # a directory event is no write
    watch.poll()
    writes = watch.take_writes()
    assert (writes.cgroups, writes.subtrees, writes.lost) == ({"/pod/ctr", "/pod"}, {"/pod"}, False)
    assert watch.covers("/pod/ctr") and watch.covers("/other/not-read") and watch.covers("/nothing-there")
    plain = TreeWatch(str(tmp_path))  # without writes=True, none are reported
    plain.paths()
    plain.take_writes()
    (tmp_path / "pod" / "ctr" / "memory.max").write_text("2097152\n")
    plain.poll()
    assert plain.take_writes().cgroups == set()


def test_lost_events_and_lost_watches_are_reported_as_lost_writes(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.setattr(inotify, "_budget", inotify.WatchBudget(total=3))  # the root, a and b
    watch = TreeWatch(str(tmp_path), writes=True)
    watch.paths()
    watch.take_writes()
    # More writes than the kernel queues (fs.inotify.max_queued_events), alternating so that none merge.
    queued = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    for i in range(queued // 2 + 8):
        (tmp_path / "a" / "f").write_text(str(i))
        (tmp_path / "b" / "f").write_text(str(i))
    watch.paths()
    assert watch.take_writes().lost and watch.full_walks == 2 and watch.covers("/a")
    (tmp_path / "c").mkdir()  # no watch left for it: the tree goes to stats, and writes to unseen
    watch.paths()
    assert not watch.notifying and watch.take_writes().lost and not watch.covers("/a")
