"""The system tests' cgroup helpers on each layout: hierarchies once, controllers' directories, kubelet pod parents."""

from __future__ import annotations

import os

import pytest
from support.cgroups import controller_root, hierarchy_roots
from support.dockerd import kubelet_pod_parent, pod_cgroup_path

from ctop.sources.cgroupfs_layout import CgroupLayout


def _pure_v1(tmp_path) -> CgroupLayout:
    """A pure v1 tree as Debian mounts it: cpu and cpuacct are links to one co-mounted cpu,cpuacct hierarchy."""
    root = str(tmp_path)
    os.mkdir(os.path.join(root, "cpu,cpuacct"))
    os.mkdir(os.path.join(root, "memory"))
    os.symlink("cpu,cpuacct", os.path.join(root, "cpu"))
    os.symlink("cpu,cpuacct", os.path.join(root, "cpuacct"))
    return CgroupLayout(mode="v1", root=root, controllers={c: os.path.join(root, c) for c in
                                                          ("cpu", "cpuacct", "memory")})


def test_co_mounted_v1_controllers_are_one_hierarchy(tmp_path) -> None:
    layout = _pure_v1(tmp_path)
    assert hierarchy_roots(layout) == [f"{tmp_path}/cpu", f"{tmp_path}/memory"]
    assert controller_root(layout, "cpuacct") == f"{tmp_path}/cpuacct"
    with pytest.raises(LookupError, match="pure v1 host has no 'unified'"):
        controller_root(layout, "unified")


def test_pure_v2_controllers_live_in_the_unified_hierarchy() -> None:
    layout = CgroupLayout(mode="v2", root="/cg", unified="/cg")
    assert [controller_root(layout, c) for c in ("cpu", "memory", "pids", "unified", "")] == ["/cg"] * 5
    assert hierarchy_roots(layout) == ["/cg"]


def test_hybrid_keeps_v1_controllers_and_the_unified_mount() -> None:
    layout = CgroupLayout(mode="hybrid", root="/cg", unified="/cg/unified",
                          controllers={"cpu": "/cg/cpu", "cpuacct": "/cg/cpuacct", "memory": "/cg/memory"})
    assert controller_root(layout, "memory") == "/cg/memory"
    assert controller_root(layout, "unified") == "/cg/unified"
    assert hierarchy_roots(layout) == ["/cg/cpu", "/cg/cpuacct", "/cg/memory", "/cg/unified"]
    with pytest.raises(LookupError, match="no 'io' v1 hierarchy on this hybrid host"):
        controller_root(layout, "io")


class _Daemon:
    def __init__(self, driver: str) -> None:
        self.driver = driver

    def cgroup_driver(self) -> str:
        return self.driver


@pytest.mark.parametrize(("driver", "qos", "parent", "path"), [
    ("cgroupfs", "burstable", "/kubepods/burstable/podab-cd", "/kubepods/burstable/podab-cd"),
    ("cgroupfs", "guaranteed", "/kubepods/podab-cd", "/kubepods/podab-cd"),
    ("systemd", "besteffort", "kubepods-besteffort-podab_cd.slice",
     "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podab_cd.slice"),
    ("systemd", "guaranteed", "kubepods-podab_cd.slice", "/kubepods.slice/kubepods-podab_cd.slice"),
])
def test_kubelet_pod_parent_follows_the_cgroup_driver(driver: str, qos: str, parent: str, path: str) -> None:
    arg = kubelet_pod_parent(_Daemon(driver), qos, "ab-cd")  # type: ignore[arg-type]
    assert arg == parent
    assert pod_cgroup_path(arg) == path
