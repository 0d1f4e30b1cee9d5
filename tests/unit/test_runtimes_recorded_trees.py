"""Recorded cgroup v2 nodes (CRI-O, podman, containerd; systemd driver): identify + on-disk metadata."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ctop.runtimes.identify import identify
from ctop.runtimes.metadata import MetadataService
from ctop.runtimes.oci_config import containerd_meta, crio_meta, storage_entries
from ctop.sources.cgroupfs_layout import detect_layout

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "runtimes")
SAND = "1111111111111111" + "a1b2c3d4" * 6
APP = "2222222222222222" + "e5f6a7b8" * 6
WEB = "3333333333333333" + "c0ffee00" * 6
DB = "4444444444444444" + "deadbeef" * 6
PSAND = "5555555555555555" + "0a0b0c0d" * 6
PAPP = "6666666666666666" + "1a1b1c1d" * 6
ORPHAN = "7777777777777777" + "2a2b2c2d" * 6
UID = "5d1f0b8a-7c3e-4f2a-9b6d-1e2f3a4b5c6d"
UID2 = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"


def walk(tree: str) -> list[str]:
    """Every cgroup path of a recorded tree, relative to its root."""
    root = os.path.join(DATA, tree, "sys/fs/cgroup")
    assert detect_layout(root).mode == "v2"
    return sorted("/" + os.path.relpath(d, root) if d != root else "/" for d, _, _ in os.walk(root))


def named(tree: str) -> dict[str, tuple[str, object]]:
    svc = MetadataService(host_root=os.path.join(DATA, tree), use_docker=False)
    out = {}
    for path in walk(tree):
        ident = identify(path)
        meta = svc.lookup(path, ident)
        out[path] = (ident, meta)
    return out


def test_crio_systemd_v2() -> None:
    rows = named("crio-v2")
    containers = {i.container_id: (i, m) for i, m in rows.values() if i.kind == "container"}
    assert set(containers) == {SAND, APP}
    ident, api = containers[APP]
    assert (ident.runtime, ident.qos_class, ident.pod_uid) == ("cri-o", "burstable", UID)
    assert api is not None
    assert (api.runtime, api.pod, api.namespace, api.container, api.image, api.sandbox) == (
        "cri-o", "checkout-7d9f", "shop", "api", "quay.io/shop/api:2.1", False)
    assert api.name == f"k8s_api_checkout-7d9f_shop_{UID}_0"
    assert api.started_at == pytest.approx(1714979291.25)
    _, pause = containers[SAND]
    assert pause is not None and pause.sandbox and pause.container == "POD"
    conmon = [i for i, _ in rows.values() if i.kind == "scope" and i.runtime == "cri-o"]
    assert len(conmon) == 1 and conmon[0].pod_uid == UID
    pods = [(p, i, m) for p, (i, m) in rows.items() if i.kind == "pod"]
    assert len(pods) == 1 and pods[0][2] is not None and pods[0][2].pod == "checkout-7d9f"
    assert {i.pod_uid for i, _ in rows.values() if i.kind == "container"} == {UID}
    assert [i.qos_class for i, _ in rows.values() if i.kind == "pod"] == ["burstable"]
    assert rows["/system.slice/crio.service"][0].kind == "service"


def test_podman_systemd_v2() -> None:
    rows = named("podman-v2")
    web = rows[f"/machine.slice/libpod-{WEB}.scope"]
    assert web[0].runtime == "podman" and web[0].kind == "container"
    assert web[1] is not None
    assert (web[1].runtime, web[1].name, web[1].image, web[1].source) == (
        "podman", "web", "docker.io/library/nginx:1.25", "podman-state")
    assert web[1].started_at == pytest.approx(1714979289.5)
    db = rows[f"/machine.slice/libpod-{DB}.scope"][1]
    assert db is not None and (db.name, db.image) == ("db", "")  # its metadata string is malformed
    inner = rows[f"/machine.slice/libpod-{WEB}.scope/container"][0]
    assert (inner.kind, inner.container_id) == ("other", WEB)
    assert rows[f"/machine.slice/libpod-conmon-{WEB}.scope"][0].kind == "scope"
    assert rows["/user.slice/user-1000.slice/session-2.scope"][0].runtime == "systemd"


def test_containerd_systemd_v2_with_log_fallback() -> None:
    rows = named("containerd-systemd-v2")
    pdir = f"/kubepods.slice/kubepods-pod{UID2.replace('-', '_')}.slice"
    ident, app = rows[f"{pdir}/cri-containerd-{PAPP}.scope"]
    assert (ident.runtime, ident.qos_class) == ("containerd", "guaranteed")
    assert app is not None
    assert (app.pod, app.namespace, app.container, app.image, app.source) == (
        "coredns-5d78c9869d-abcde", "kube-system", "coredns", "registry.k8s.io/coredns/coredns:v1.10.1",
        "containerd-config")
    sandbox = rows[f"{pdir}/cri-containerd-{PSAND}.scope"][1]
    assert sandbox is not None and sandbox.sandbox and sandbox.container == "POD"
    orphan = rows[f"{pdir}/cri-containerd-{ORPHAN}.scope"][1]
    assert orphan is not None
    assert (orphan.source, orphan.container, orphan.pod, orphan.namespace) == (
        "kubelet-logs", "log-shipper", "coredns-5d78c9869d-abcde", "kube-system")
    pod = rows[pdir][1]
    assert pod is not None and (pod.kind, pod.pod, pod.namespace) == ("pod", "coredns-5d78c9869d-abcde", "kube-system")


def test_missing_files_mean_no_names(tmp_path) -> None:
    svc = MetadataService(host_root=str(tmp_path), use_docker=False)
    for path in walk("crio-v2") + walk("containerd-systemd-v2"):
        assert svc.lookup(path, identify(path)) is None
    assert svc.notices() == []


def test_storage_entries_skip_garbage() -> None:
    entries = storage_entries(os.path.join(DATA, "podman-v2/var/lib/containers/storage/overlay-containers/"
                                                 "containers.json"))
    assert set(entries) == {WEB, DB}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=16),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=40), inner, max_size=6),
    max_leaves=25,
)
annotation_keys = st.sampled_from([
    "io.kubernetes.cri.container-type", "io.kubernetes.cri.sandbox-name", "io.kubernetes.cri-o.ContainerType",
    "io.kubernetes.pod.name", "io.kubernetes.container.name", "io.kubernetes.cri-o.Created",
    "io.kubernetes.cri.sandbox-id",
])
configs = json_values | st.fixed_dictionaries(
    {"annotations": st.dictionaries(annotation_keys, json_values | st.sampled_from(["sandbox", "container"]))})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=configs)
@example(config={"annotations": {"io.kubernetes.cri.container-type": "sandbox",  # a NUL in the path it names
                                 "io.kubernetes.cri.sandbox-id": "\x00"}})
def test_malformed_config_json_never_raises(tmp_path, config: object) -> None:
    meta = containerd_meta("x" * 64, "k8s.io", config)
    assert meta is None or (meta.runtime == "containerd" and isinstance(meta.pod, str))
    meta = crio_meta("x" * 64, config, None)
    assert meta is None or isinstance(meta.name, str)
    # The same through the files a real node has: written, read back, looked up.
    task = tmp_path / "run/containerd/io.containerd.runtime.v2.task/k8s.io" / ("x" * 64)
    task.mkdir(parents=True, exist_ok=True)
    (task / "config.json").write_text(json.dumps(config))
    path = f"/kubepods/besteffort/pod{UID}/{'x' * 64}"
    svc = MetadataService(host_root=str(tmp_path), use_docker=False)
    got = svc.lookup(path, identify(path))
    assert got is None or got.runtime == "containerd"


def test_truncated_and_huge_config_json(tmp_path) -> None:
    cid = "y" * 64
    task = tmp_path / "run/containerd/io.containerd.runtime.v2.task/k8s.io" / cid
    task.mkdir(parents=True)
    (task / "config.json").write_text('{"annotations": {"io.kubernetes.cri.sandbox-name": "p"')
    path = f"/k8s.io/{cid}"
    assert MetadataService(host_root=str(tmp_path), use_docker=False).lookup(path, identify(path)) is None
    with open(task / "config.json", "w") as f:
        f.write('{"annotations": {"a": "' + "z" * (5 * 1024 * 1024) + '"}}')
    assert MetadataService(host_root=str(tmp_path), use_docker=False).lookup(path, identify(path)) is None
    shutil.rmtree(task)
