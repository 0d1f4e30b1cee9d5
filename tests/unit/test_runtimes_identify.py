"""identify(): runtime, container id, pod uid, QoS class and kind from real-looking cgroup paths."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctop.runtimes.identify import KINDS, QOS_CLASSES, RUNTIMES, Identity, identify

U1000 = "/user.slice/user-1000.slice/user@1000.service/user.slice"
ID = "27d5449bfc9a87c6755784b36016e923af8818c0c536d5695251ef385853731f"
ID2 = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
UID = "3f2a9c4e-1b2d-4e5f-8a9b-0c1d2e3f4a5b"
UIDU = UID.replace("-", "_")

CASES = [
    # path, runtime, kind, container_id, pod_uid, qos
    ("/", "none", "other", "", "", ""),
    ("", "none", "other", "", "", ""),
    (f"/docker/{ID}", "docker", "container", ID, "", ""),
    (f"/docker/{ID}/", "docker", "container", ID, "", ""),
    ("/docker", "docker", "other", "", "", ""),
    (f"/system.slice/docker-{ID}.scope", "docker", "container", ID, "", ""),
    (f"/system.slice/containerd.service/cri-containerd-{ID}.scope", "containerd", "container", ID, "", ""),
    (f"/k8s.io/{ID}", "containerd", "container", ID, "", ""),
    ("/default/myctr", "containerd", "container", "myctr", "", ""),
    (f"/somens/{ID}", "containerd", "container", ID, "", ""),
    (f"/machine.slice/libpod-{ID}.scope", "podman", "container", ID, "", ""),
    (f"/machine.slice/libpod-conmon-{ID}.scope", "podman", "scope", "", "", ""),
    (f"/machine.slice/libpod-{ID}.scope/container", "podman", "other", ID, "", ""),
    (f"{U1000}/libpod-{ID}.scope", "podman", "container", ID, "", ""),
    (f"/libpod_parent/libpod-{ID}", "podman", "container", ID, "", ""),
    (f"/libpod_parent/{ID}", "podman", "pod", "", ID, ""),  # a podman pod (cgroupfs manager)
    (f"/libpod_parent/{ID}/libpod-{ID2}", "podman", "container", ID2, ID, ""),
    (f"/libpod_parent/{ID}/conmon", "podman", "other", "", ID, ""),
    ("/libpod_parent/conmon", "podman", "other", "", "", ""),
    (f"/machine.slice/machine-libpod_pod_{ID}.slice", "podman", "pod", "", ID, ""),
    (f"/machine.slice/machine-libpod_pod_{ID}.slice/libpod-{ID2}.scope", "podman", "container", ID2, ID, ""),
    (f"/machine.slice/machine-libpod_pod_{ID}.slice/libpod-conmon-{ID2}.scope", "podman", "scope", "", ID, ""),
    (f"{U1000}/user-libpod_pod_{ID}.slice/libpod-{ID2}.scope", "podman", "container", ID2, ID, ""),
    ("/lxc.payload.web", "lxc", "container", "web", "", ""),
    ("/lxc.payload.web/init.scope", "lxc", "other", "web", "", ""),
    ("/lxc.monitor.web", "lxc", "other", "", "", ""),
    (f"/lxc.payload.web/docker/{ID}", "docker", "container", ID, "", ""),  # Docker inside an LXC container
    ("/machine.slice/machine-box.scope", "nspawn", "container", "box", "", ""),
    ("/machine.slice/machine-box.scope/payload", "nspawn", "other", "box", "", ""),
    ("/machine.slice/machine-qemu\\x2d3\\x2ddeb12.scope", "libvirt", "container", "deb12", "", ""),
    ("/machine.slice/machine-qemu\\x2d3\\x2ddeb12.scope/libvirt/vcpu0", "libvirt", "other", "deb12", "", ""),
    (f"/system.slice/crio-{ID}.scope", "cri-o", "container", ID, "", ""),
    (f"/system.slice/crio-conmon-{ID}.scope", "cri-o", "scope", "", "", ""),
    ("/system.slice", "systemd", "slice", "", "", ""),
    ("/system.slice/sshd.service", "systemd", "service", "", "", ""),
    ("/user.slice/user-1000.slice/session-3.scope", "systemd", "scope", "", "", ""),
    ("/init.scope", "systemd", "scope", "", "", ""),
    ("/user.slice/user-1000.slice/user@1000.service", "systemd", "service", "", "", ""),
    ("/process_api/f058e0fe88ea97b42e0fd66926e4df75", "none", "other", "", "", ""),
    ("/ctop-test-1234-abcd/busy", "none", "other", "", "", ""),
    ("/.slice", "none", "other", "", "", ""),
    # Kubernetes, cgroupfs driver.
    ("/kubepods", "kubernetes", "other", "", "", ""),
    ("/kubepods/burstable", "kubernetes", "qos", "", "", "burstable"),
    ("/kubepods/besteffort", "kubernetes", "qos", "", "", "besteffort"),
    (f"/kubepods/burstable/pod{UID}", "kubernetes", "pod", "", UID, "burstable"),
    (f"/kubepods/burstable/pod{UID}/{ID}", "kubernetes", "container", ID, UID, "burstable"),
    (f"/kubepods/besteffort/pod{UID}/{ID2}", "kubernetes", "container", ID2, UID, "besteffort"),
    (f"/kubepods/pod{UID}", "kubernetes", "pod", "", UID, "guaranteed"),
    (f"/kubepods/pod{UID}/{ID}", "kubernetes", "container", ID, UID, "guaranteed"),
    (f"/kubepods/burstable/pod{UID}/crio-{ID}", "cri-o", "container", ID, UID, "burstable"),
    (f"/kubepods/pod{UID}/{ID}/sub", "kubernetes", "other", ID, UID, "guaranteed"),
    # Kubernetes, systemd driver.
    ("/kubepods.slice", "kubernetes", "slice", "", "", ""),
    ("/kubepods.slice/kubepods-burstable.slice", "kubernetes", "qos", "", "", "burstable"),
    ("/kubepods.slice/kubepods-besteffort.slice", "kubernetes", "qos", "", "", "besteffort"),
    (f"/kubepods.slice/kubepods-pod{UIDU}.slice", "kubernetes", "pod", "", UID, "guaranteed"),
    (f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UIDU}.slice", "kubernetes", "pod", "",
     UID, "burstable"),
    (f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UIDU}.slice/cri-containerd-{ID}.scope",
     "containerd", "container", ID, UID, "burstable"),
    (f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UIDU}.slice/crio-{ID}.scope",
     "cri-o", "container", ID, UID, "besteffort"),
    (f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UIDU}.slice/crio-conmon-{ID}.scope",
     "cri-o", "scope", "", UID, "besteffort"),
    (f"/kubepods.slice/kubepods-pod{UIDU}.slice/docker-{ID}.scope", "docker", "container", ID, UID,
     "guaranteed"),
    # kubelet under a prefix (kind, nested docker) and with --cgroup-root.
    (f"/docker/{ID2}/kubelet/kubepods/burstable/pod{UID}/{ID}", "kubernetes", "container", ID, UID,
     "burstable"),
    (f"/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/"
     f"kubelet-kubepods-besteffort-pod{UIDU}.slice/cri-containerd-{ID}.scope",
     "containerd", "container", ID, UID, "besteffort"),
    ("/kubepods/weird", "kubernetes", "other", "", "", ""),
]


@pytest.mark.parametrize(("path", "runtime", "kind", "cid", "uid", "qos"), CASES)
def test_identify(path: str, runtime: str, kind: str, cid: str, uid: str, qos: str) -> None:
    ident = identify(path)
    assert (ident.runtime, ident.kind, ident.container_id, ident.pod_uid, ident.qos_class) == (
        runtime, kind, cid, uid, qos
    )


def test_docker_scope_with_non_hex_suffix_is_a_plain_scope() -> None:
    assert identify("/system.slice/docker-compose-thing.scope") == Identity(
        runtime="systemd", kind="scope", detail="docker-compose-thing.scope"
    )


def test_ctr_namespace_is_kept() -> None:
    assert identify(f"/k8s.io/{ID}").detail == "k8s.io"


segment = st.text(alphabet="abcdef0123456789-_.@kubepodsliceservicdr", min_size=0, max_size=70)


@settings(max_examples=400, deadline=None)
@given(st.lists(segment, min_size=0, max_size=7))
def test_any_path_gives_a_valid_identity(segments: list[str]) -> None:
    ident = identify("/" + "/".join(segments))
    assert ident.runtime in RUNTIMES
    assert ident.kind in KINDS
    assert ident.qos_class in ("", *QOS_CLASSES)
    if ident.kind == "pod":
        assert ident.pod_uid and "_" not in ident.pod_uid
    if ident.kind == "container":
        assert ident.container_id
