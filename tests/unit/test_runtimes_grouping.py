"""Grouping keys: pods, QoS classes and systemd units over identified cgroup paths."""

from __future__ import annotations

from ctop.runtimes.grouping import pod_groups, pod_of, qos_groups, systemd_groups, top_level_paths
from ctop.runtimes.identify import identify

UID = "3f2a9c4e-1b2d-4e5f-8a9b-0c1d2e3f4a5b"
UID2 = "11111111-2222-3333-4444-555555555555"
A, B, C = "a" * 64, "b" * 64, "c" * 64

PATHS = [
    "/",
    "/kubepods",
    "/kubepods/burstable",
    f"/kubepods/burstable/pod{UID}",
    f"/kubepods/burstable/pod{UID}/{A}",
    f"/kubepods/burstable/pod{UID}/{B}",
    "/kubepods/besteffort",
    f"/kubepods/besteffort/pod{UID2}",
    f"/kubepods/besteffort/pod{UID2}/{C}",
    f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID2.replace('-', '_')}.slice",
    "/system.slice",
    "/system.slice/sshd.service",
    "/system.slice/containerd.service/sub",
    "/user.slice/user-1000.slice/session-1.scope",
    f"/docker/{A}",
]
ROWS = [(p, identify(p)) for p in PATHS]


def test_pod_groups_map_only_containers() -> None:
    groups = pod_groups(ROWS)
    assert groups == {
        f"/kubepods/burstable/pod{UID}/{A}": f"pod:{UID}",
        f"/kubepods/burstable/pod{UID}/{B}": f"pod:{UID}",
        f"/kubepods/besteffort/pod{UID2}/{C}": f"pod:{UID2}",
    }


def test_qos_groups_map_pods() -> None:
    assert qos_groups(ROWS) == {
        f"/kubepods/burstable/pod{UID}": "qos:burstable",
        f"/kubepods/besteffort/pod{UID2}": "qos:besteffort",
        f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID2.replace('-', '_')}.slice":
            "qos:burstable",
    }


def test_systemd_groups_nearest_unit() -> None:
    groups = systemd_groups(ROWS)
    assert groups["/system.slice/sshd.service"] == "slice:system.slice"
    assert groups["/system.slice/containerd.service/sub"] == "service:containerd.service"
    assert groups["/user.slice/user-1000.slice/session-1.scope"] == "slice:user-1000.slice"
    assert "/system.slice" not in groups and f"/docker/{A}" not in groups


def test_pod_of_and_top_level() -> None:
    assert pod_of(PATHS[4], ROWS[4][1]) == f"pod:{UID}"
    assert pod_of("/system.slice", identify("/system.slice")) == ""
    assert top_level_paths(["/a/b", "/a", "/ab", "/a/b/c", "/x/"]) == ["/a", "/ab", "/x"]
    assert top_level_paths(["/", "/a"]) == ["/"]
