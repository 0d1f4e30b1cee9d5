"""On the real cgroupfs, TreeWatch keeps up with cgroups made, removed and recreated, with one full walk only:
following kernfs's inotify events, and by link counts where inotify is not used."""

from __future__ import annotations

import os

import pytest
from support.cgroups import TestCgroup, remove_tree

from ctop.sources.cgroupfs import walk_cgroups
from ctop.sources.cgroupwatch import TreeWatch


def under(paths: dict[str, int], prefix: str) -> dict[str, int]:
    return {p: i for p, i in paths.items() if p == prefix or p.startswith(prefix + "/")}


@pytest.mark.parametrize("notify", [True, False], ids=["inotify", "stat"])
@pytest.mark.parametrize("controller", ["cpuacct", "unified"])
def test_real_hierarchy_changes_are_found_without_walking_it_again(test_cgroup: TestCgroup, controller: str,
                                                                    notify: bool) -> None:
    layout = test_cgroup.layout
    root = layout.unified if controller == "unified" else layout.controllers.get(controller)
    if root is None:
        root = layout.unified or next(iter(layout.controllers.values()))  # pure v1 or v2: its one kind
    watch = TreeWatch(root, notify=notify)

    def agree() -> dict[str, int]:
        seen = under(watch.paths(), test_cgroup.path)
        walked = {p: i[root] for p, i in walk_cgroups([root]).items()}
        assert seen == under(walked, test_cgroup.path)
        return seen

    assert agree() == {test_cgroup.path: os.stat(root + test_cgroup.path).st_ino}
    pods = [test_cgroup.child(f"pod{i}") for i in range(3)]
    for pod in pods:
        pod.child("app")
    assert len(agree()) == 7
    # One pod out and another in between two refreshes: the parent's link count does not move.
    remove_tree(test_cgroup.layout, pods[0].path)
    test_cgroup.child("pod-new").child("app")
    seen = agree()
    assert test_cgroup.path + "/pod-new/app" in seen and pods[0].path not in seen
    # Recreated under the same name: a new inode, the old children gone.
    old_inode = seen[pods[1].path]
    remove_tree(test_cgroup.layout, pods[1].path)
    test_cgroup.child("pod1")
    seen = agree()
    assert seen[pods[1].path] != old_inode and pods[1].path + "/app" not in seen
    assert watch.notifying == notify
    assert watch.full_walks == 1, "kernfs events or link counts should make every later refresh incremental"
    watch.close()
