"""Hybrid hosts: tasks in the cgroup2 root are attributed by their cgroup in the v1 cpu hierarchy (a tagged id).

On a hybrid host the programs key tasks by their cgroup2 cgroup. A cgroup made only in the v1 hierarchies
(``mkdir /sys/fs/cgroup/cpu/x``) leaves its tasks in the cgroup2 root, so those tasks are keyed instead by
``V1_TAG | inode`` of their cgroup in the v1 cpu hierarchy (bpf/ctop.h: V1_TAG), which user space names with a
walk of that hierarchy. A task of the cgroup2 root that is also in the v1 root stays "host".
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..sources.cgroupfs_layout import CgroupLayout
from ..sources.readfile import read_bytes
from .layout import read_header

V1_CONTROLLER = "cpu"  # the v1 hierarchy whose cgroups the scheduler rows of a hybrid host come from


@dataclass(frozen=True)
class V1Tracking:
    """The v1 hierarchy tracked besides cgroup2: its hierarchy id (/proc/cgroups), mount and root inode."""

    hierarchy_id: int
    root: str
    root_id: int


def v1_tag() -> int:
    """The bit that marks a v1 cgroup's id in the programs' keys (bpf/ctop.h V1_TAG)."""
    return read_header().defines["V1_TAG"]


def v1_tracking(layout: CgroupLayout, hierarchy_ids: dict[str, int]) -> V1Tracking | None:
    """The v1 cpu hierarchy on a hybrid host (cgroup2 mounted beside v1 controllers); None elsewhere."""
    mount = layout.controllers.get(V1_CONTROLLER)
    hid = hierarchy_ids.get(V1_CONTROLLER)
    if not layout.unified or not mount or not hid:
        return None
    try:
        return V1Tracking(hierarchy_id=hid, root=mount, root_id=os.stat(mount).st_ino)
    except OSError:
        return None


def cflags(v1: V1Tracking | None) -> list[str]:
    """Compiler flags that turn on the v1 attribution."""
    return [] if v1 is None else [f"-DV1_HIERARCHY={v1.hierarchy_id}", f"-DV1_ROOT_ID={v1.root_id}"]


def cgroup_paths(text: str) -> dict[int, str]:
    """Hierarchy id -> path of one /proc/<pid>/task/<tid>/cgroup file."""
    out: dict[int, str] = {}
    for line in text.splitlines():
        hid, _, rest = line.partition(":")
        _, _, path = rest.partition(":")
        if hid.isdigit():
            out[int(hid)] = path
    return out


def thread_key(paths: dict[int, str], hierarchy_id: int, root: str, root_id: int, v1: V1Tracking | None,
               inode_of: dict[str, int | None]) -> tuple[int, int] | None:
    """(key the programs count a thread under, its v1 cpu cgroup id or 0) from its cgroup paths; None when its
    cgroup is gone. ``inode_of`` caches directory inodes by full path."""

    def inode(full: str) -> int | None:
        if full not in inode_of:
            try:
                inode_of[full] = os.stat(full).st_ino
            except OSError:
                inode_of[full] = None
        return inode_of[full]

    path = paths.get(hierarchy_id)
    if path is None:
        return None
    cgroup_id = root_id if path == "/" else inode(root + path)
    if not cgroup_id:
        return None
    if v1 is None:
        return cgroup_id, 0
    v1_path = paths.get(v1.hierarchy_id)
    v1_id = (v1.root_id if v1_path == "/" else inode(v1.root + v1_path)) if v1_path is not None else None
    if cgroup_id == root_id and v1_id and v1_id != v1.root_id:
        return v1_tag() | v1_id, v1_id
    return cgroup_id, v1_id or 0


def seed_key(tid_dir: str, hierarchy_id: int, root: str, root_id: int, v1: V1Tracking | None,
             inode_of: dict[str, int | None]) -> tuple[int, int] | None:
    """thread_key of the thread whose /proc directory is ``tid_dir`` (None when it or its cgroup is gone)."""
    data = read_bytes(os.path.join(tid_dir, "cgroup"))
    if not data:
        return None
    return thread_key(cgroup_paths(data.decode("utf-8", "replace")), hierarchy_id, root, root_id, v1, inode_of)


def complete_learnt(table: Any, key: Any, cgroup_id: int, v1_id: int, root_id: int) -> bool:
    """A thread the programs learnt before seeding from bpf_get_current_cgroup_id() (the cgroup2 root, no v1
    cgroup) gets its v1 key; True when it changed. Its run-queue baseline stays."""
    if not v1_id or cgroup_id == root_id:
        return False
    try:
        current = table[key]
    except KeyError:
        return False
    if current.cgroup_id != root_id or current.v1_id:
        return False
    current.cgroup_id, current.v1_id, current.slot = cgroup_id, v1_id, 0
    table[key] = current
    return True
