"""Trees recorded in pure cgroup v2 and pure v1 Debian 12 guests (guest/explore.sh, guest/record.py): names, runtime,
pod, QoS class and limits of real Docker, podman and kubelet-shaped cgroups, read as ctop reads a live node.

The Docker API's answers were recorded too (docker/list.json, docker/<id>.json); they stand in for the daemon.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

import pytest

from ctop.collector import Collector, CollectorConfig
from ctop.model.frame import CgroupRow
from ctop.model.sample import UNLIMITED
from ctop.runtimes.docker_meta import apply_inspect, meta_from_list_entry
from ctop.runtimes.meta import ContainerMeta
from ctop.runtimes.metadata import MetadataService
from ctop.sources.cgroupfs_layout import detect_layout

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "runtimes")
MIB = 1 << 20

# What guest/explore.sh started (the same in both guests).
UID_G = "0a1b2c3d-1111-4aaa-8bbb-0c1d2e3f4a01"
UID_B = "0a1b2c3d-2222-4aaa-8bbb-0c1d2e3f4a02"
UID_BE = "0a1b2c3d-3333-4aaa-8bbb-0c1d2e3f4a03"
UID_D = "0a1b2c3d-4444-4aaa-8bbb-0c1d2e3f4a04"
ID_G = "1111111111111111" + "a" * 48
ID_B = "2222222222222222" + "b" * 48
ID_BE = "3333333333333333" + "c" * 48


class RecordedDocker(MetadataService):
    """MetadataService whose Docker daemon is the recorded answers of the guest's dockerd."""

    def __init__(self, host_root: str) -> None:
        super().__init__(host_root=host_root, use_docker=False)
        metas: dict[str, ContainerMeta] = {}
        with open(os.path.join(host_root, "docker", "list.json")) as f:
            listing = json.load(f)
        for entry in listing:
            meta = meta_from_list_entry(entry)
            assert meta is not None
            with open(os.path.join(host_root, "docker", f"{meta.container_id}.json")) as f:
                metas[meta.container_id] = apply_inspect(meta, json.load(f))
        self._recorded = metas

    def docker_containers(self) -> Mapping[str, ContainerMeta]:
        return self._recorded


def rows(name: str) -> dict[str, CgroupRow]:
    """Rows of one refresh of a recorded guest tree, named as on the live node."""
    base = os.path.join(DATA, name)
    config = CollectorConfig(cgroup_root=os.path.join(base, "sys/fs/cgroup"), proc_root=os.path.join(base, "proc"),
                             containers=False, ebpf=False, history_dir=None)
    collector = Collector(config)
    collector.metadata = RecordedDocker(base)
    return dict(collector.collect().rows)


def by_name(table: dict[str, CgroupRow], name: str) -> list[tuple[str, CgroupRow]]:
    return sorted((p, r) for p, r in table.items() if r.identity.name == name)


# --- pure v2 (Debian 12, systemd 252, Docker 20.10 with the systemd cgroup driver, podman 4.3 with crun) ---------
V2 = "guest-v2"
WEB_V2 = "8510474674b707495357c7a5da9ac97e86df0afbf9c21dc51d4e32ac1b61443a"
SHOP_V2 = "94a914a96b9a523511111a16280060102eabe2294eede44c4f642220b60a9d18"
PWEB_V2 = "e953c28fe68c7fc70bdce0085bc7b053a5542d48a3274d1e7595c681da3ff33b"
PINFRA_V2 = "dab5f97ab3ac37c5a486c339db7f25d252abda5008ffeb24d81c9662815af6dd"
PPOD_V2 = "8953284253aa9b1fa340bee113947346513a667b9b4f68b144dc04132d1caa21"
# This recording has podman's containers.json but not its containers' userdata/config.json (guest/record.py reads
# them since the v1 recording): the pod member's CRI-O-style annotations, and so its live misnaming, show in v1 only.
KUBE_V2 = "/kubepods.slice"
POD_G_V2 = f"{KUBE_V2}/kubepods-pod{UID_G.replace('-', '_')}.slice"
POD_B_V2 = f"{KUBE_V2}/kubepods-burstable.slice/kubepods-burstable-pod{UID_B.replace('-', '_')}.slice"
POD_BE_V2 = f"{KUBE_V2}/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_BE.replace('-', '_')}.slice"
POD_D_V2 = f"{KUBE_V2}/kubepods-burstable.slice/kubepods-burstable-pod{UID_D.replace('-', '_')}.slice"
PWEB_SCOPE_V2 = f"/machine.slice/libpod-{PWEB_V2}.scope"


@pytest.fixture(scope="module")
def v2() -> dict[str, CgroupRow]:
    return rows(V2)


def test_v2_tree_is_pure_v2() -> None:
    layout = detect_layout(os.path.join(DATA, V2, "sys/fs/cgroup"))
    assert layout.mode == "v2" and layout.controllers == {}


def test_v2_docker_systemd_driver(v2: dict[str, CgroupRow]) -> None:
    row = v2[f"/system.slice/docker-{WEB_V2}.scope"]
    assert (row.identity.runtime, row.identity.kind, row.identity.name) == ("docker", "container", "ctoph-guest-web")
    assert row.identity.container_id == WEB_V2
    assert row.sample.memory_limit_bytes == 128 * MIB
    assert (row.sample.cpu_quota_us, row.sample.cpu_period_us) == (20000, 100000)
    assert row.cpu_limit_cores == pytest.approx(0.2)
    assert row.sample.pids_max == 100
    assert row.sample.processes == 1
    assert [p for p, _ in by_name(v2, "ctoph-guest-web")] == [f"/system.slice/docker-{WEB_V2}.scope"]


def test_v2_docker_in_a_kubelet_pod(v2: dict[str, CgroupRow]) -> None:
    """--cgroup-parent=kubepods-burstable-pod<uid>.slice with dockershim's labels: a burstable pod's container."""
    row = v2[f"{POD_D_V2}/docker-{SHOP_V2}.scope"]
    ident = row.identity
    assert (ident.runtime, ident.kind, ident.pod, ident.namespace, ident.container, ident.qos_class) == (
        "docker", "container", "ctoph-guest-shop", "default", "api", "burstable")
    assert ident.pod_uid == UID_D
    assert row.sample.memory_limit_bytes == 96 * MIB
    assert row.sample.cpu_quota_us == UNLIMITED and row.cpu_limit_cores is None
    assert row.sample.cpu_weight == 10  # --cpu-shares=256 as Docker converts it for v2
    pod = v2[POD_D_V2].identity
    assert (pod.kind, pod.pod, pod.qos_class) == ("pod", "ctoph-guest-shop", "burstable")


# systemd enables the cpu controller below a slice only for units that set a CPU property: the burstable and
# best-effort pods here set none, so their scopes have no cpu.max at all, which ctop reads as "could not tell".
@pytest.mark.parametrize(("pod", "cid", "name", "qos", "memory", "quota"), [
    (POD_G_V2, ID_G, "ctoph-guest-g", "guaranteed", 64 * MIB, 20000),
    (POD_B_V2, ID_B, "ctoph-guest-b", "burstable", 96 * MIB, None),
    (POD_BE_V2, ID_BE, "ctoph-guest-be", "besteffort", UNLIMITED, None),
])
def test_v2_kubelet_shaped_pods(v2: dict[str, CgroupRow], pod: str, cid: str, name: str, qos: str, memory: int,
                                quota: int | None) -> None:
    """Pods that systemd made as kubelet's systemd driver asks it (systemd-run --scope --slice=kubepods-...)."""
    row = v2[f"{pod}/cri-containerd-{cid}.scope"]
    ident = row.identity
    assert (ident.runtime, ident.kind, ident.container_id, ident.qos_class) == ("containerd", "container", cid, qos)
    assert (ident.pod, ident.namespace, ident.container) == (name, "default", "app")  # kubelet's log directories
    assert row.sample.memory_limit_bytes == memory
    assert row.sample.cpu_quota_us == quota
    assert row.sample.processes == 1
    assert (v2[pod].identity.kind, v2[pod].identity.pod, v2[pod].identity.qos_class) == ("pod", name, qos)


def test_v2_qos_slices(v2: dict[str, CgroupRow]) -> None:
    for qos in ("burstable", "besteffort"):
        ident = v2[f"{KUBE_V2}/kubepods-{qos}.slice"].identity
        assert (ident.kind, ident.qos_class) == ("qos", qos)


def test_v2_podman_files_put_the_limits_on_the_inner_cgroup() -> None:
    """What crun with systemd does on v2: the scope holds no process and no limit; `container` below it has both."""
    scope = os.path.join(DATA, V2, "sys/fs/cgroup", PWEB_SCOPE_V2.lstrip("/"))

    def read(*parts: str) -> str:
        with open(os.path.join(scope, *parts)) as f:
            return f.read().strip()

    assert (read("memory.max"), read("cpu.max"), read("cgroup.procs")) == ("max", "max 100000", "")
    assert (read("container", "memory.max"), read("container", "cpu.max")) == ("67108864", "30000 100000")
    assert read("container", "cgroup.procs").isdigit()


def test_v2_podman_names(v2: dict[str, CgroupRow]) -> None:
    row = v2[PWEB_SCOPE_V2]
    assert (row.identity.runtime, row.identity.name, row.identity.image) == (
        "podman", "ctoph-guest-pweb", "localhost/ctoph-guest-busybox:1")
    infra = v2[f"/machine.slice/machine-libpod_pod_{PPOD_V2}.slice/libpod-{PINFRA_V2}.scope"].identity
    assert (infra.runtime, infra.name) == ("podman", f"{PPOD_V2[:12]}-infra")


def test_v2_podman_container_is_one_row_with_its_limits(v2: dict[str, CgroupRow]) -> None:
    named = by_name(v2, "ctoph-guest-pweb")
    assert [r.identity.kind for _, r in named] == ["container"]  # one row: crun's inner cgroup is folded into it
    path, row = named[0]
    assert path + "/container" not in v2
    assert row.sample.processes == 1 and row.sample.first_pid is not None  # the inner cgroup's task
    assert row.sample.memory_limit_bytes == 64 * MIB
    assert row.cpu_limit_cores == pytest.approx(0.3)


# --- pure v1 (the same guest booted with systemd.unified_cgroup_hierarchy=0; Docker uses the cgroupfs driver) -----
V1 = "guest-v1"
WEB_V1 = "6a6aa2f0458c989d5b33dc5dd8c17be51ba470778545ed7bbd73ed058135e54e"
SHOP_V1 = "d89d249eed10d69a8f884da3b668760ad28e38c2b6f6482fc51758b79b67667f"
PWEB_V1 = "1b72b16b047bf440a66b4956d249c35e455742ed88084ced62faf26b06d62b58"
PINFRA_V1 = "0092170b1e6a9caf63945952b2703bc0d2238c86db8669dd0a1e798b180a3379"
PDB_V1 = "67c16b204220c92fd06b44f20d5459939d012169e2a56dbcc099f85faedbc2ad"
PPOD_V1 = "1420e2e04cc94737c128d066d65e4b7823838065c21135c745e5d743427326a2"
PWEB_SCOPE_V1 = f"/machine.slice/libpod-{PWEB_V1}.scope"
PDB_SCOPE_V1 = f"/machine.slice/machine-libpod_pod_{PPOD_V1}.slice/libpod-{PDB_V1}.scope"
POD_G_V1 = POD_G_V2  # systemd names the slices alike on v1; they exist in each hierarchy systemd realises


@pytest.fixture(scope="module")
def v1() -> dict[str, CgroupRow]:
    return rows(V1)


def test_v1_tree_is_pure_v1() -> None:
    layout = detect_layout(os.path.join(DATA, V1, "sys/fs/cgroup"))
    assert layout.mode == "v1" and layout.unified is None
    assert set(layout.controllers) == {"cpu", "cpuacct", "cpuset", "memory", "blkio", "pids"}


def test_v1_docker_cgroupfs_driver(v1: dict[str, CgroupRow]) -> None:
    row = v1[f"/docker/{WEB_V1}"]
    assert (row.identity.runtime, row.identity.kind, row.identity.name) == ("docker", "container", "ctoph-guest-web")
    assert row.sample.memory_limit_bytes == 128 * MIB
    assert (row.sample.cpu_quota_us, row.sample.cpu_period_us) == (20000, 100000)
    assert row.cpu_limit_cores == pytest.approx(0.2)
    assert row.sample.pids_max == 100


def test_v1_docker_in_a_dockershim_pod(v1: dict[str, CgroupRow]) -> None:
    """--cgroup-parent=/kubepods/burstable/pod<uid> with dockershim's labels, as a cgroupfs-driver kubelet did."""
    pod = f"/kubepods/burstable/pod{UID_D}"
    row = v1[f"{pod}/{SHOP_V1}"]
    ident = row.identity
    assert (ident.runtime, ident.kind, ident.pod, ident.namespace, ident.container, ident.qos_class) == (
        "docker", "container", "ctoph-guest-shop", "default", "api", "burstable")
    assert row.sample.memory_limit_bytes == 96 * MIB
    assert row.sample.cpu_shares == 256 and row.sample.cpu_quota_us == UNLIMITED
    assert (v1[pod].identity.kind, v1[pod].identity.pod, v1[pod].identity.qos_class) == (
        "pod", "ctoph-guest-shop", "burstable")


def test_v1_systemd_made_pods(v1: dict[str, CgroupRow]) -> None:
    """On v1 systemd realises cpu only for units with CPU settings: the burstable and best-effort containers exist
    in the memory hierarchy only (their tasks sit in the QoS slice in cpu,cpuacct), so their CPU is no data."""
    g = v1[f"{POD_G_V1}/cri-containerd-{ID_G}.scope"]
    assert (g.identity.runtime, g.identity.pod, g.identity.qos_class) == ("containerd", "ctoph-guest-g", "guaranteed")
    assert g.sample.memory_limit_bytes == 64 * MIB and g.sample.cpu_quota_us == 20000
    b = v1[f"{POD_B_V2}/cri-containerd-{ID_B}.scope"]
    assert (b.identity.pod, b.identity.qos_class, b.sample.memory_limit_bytes) == (
        "ctoph-guest-b", "burstable", 96 * MIB)
    assert b.sample.cpu_usage_ns is None and b.cpu_percent is None
    be = v1[f"{POD_BE_V2}/cri-containerd-{ID_BE}.scope"]
    assert (be.identity.pod, be.identity.qos_class, be.sample.memory_limit_bytes) == (
        "ctoph-guest-be", "besteffort", UNLIMITED)


def test_v1_podman_files_put_the_limits_on_the_inner_cgroup() -> None:
    """crun on v1 too: memory and cpu hold the task and the limits in libpod-<id>.scope/container; name=systemd
    keeps the task in the scope itself."""
    cgroup = os.path.join(DATA, V1, "sys/fs/cgroup")

    def read(hierarchy: str, *parts: str) -> str:
        with open(os.path.join(cgroup, hierarchy, PWEB_SCOPE_V1.lstrip("/"), *parts)) as f:
            return f.read().strip()

    assert read("memory", "memory.limit_in_bytes") == "9223372036854771712" and read("memory", "cgroup.procs") == ""
    assert read("memory", "container", "memory.limit_in_bytes") == str(64 * MIB)
    assert read("cpu", "cpu.cfs_quota_us") == "-1" and read("cpu", "container", "cpu.cfs_quota_us") == "30000"
    assert read("systemd", "cgroup.procs") == read("memory", "container", "cgroup.procs")


def test_v1_podman_names(v1: dict[str, CgroupRow]) -> None:
    row = v1[PWEB_SCOPE_V1]
    assert (row.identity.runtime, row.identity.name) == ("podman", "ctoph-guest-pweb")
    infra = v1[f"/machine.slice/machine-libpod_pod_{PPOD_V1}.slice/libpod-{PINFRA_V1}.scope"].identity
    assert (infra.runtime, infra.name) == ("podman", f"{PPOD_V1[:12]}-infra")


def test_v1_podman_container_is_one_row_with_its_limits(v1: dict[str, CgroupRow]) -> None:
    named = by_name(v1, "ctoph-guest-pweb")
    assert [r.identity.kind for _, r in named] == ["container"]  # one row: crun's inner cgroup is folded into it
    path, row = named[0]
    assert path + "/container" not in v1
    assert row.sample.processes == 1 and row.sample.first_pid is not None  # the inner cgroup's task
    assert row.sample.memory_limit_bytes == 64 * MIB
    assert row.cpu_limit_cores == pytest.approx(0.3)


def test_v1_podman_pod_member_is_podman_and_named(v1: dict[str, CgroupRow]) -> None:
    ident = v1[PDB_SCOPE_V1].identity
    assert (ident.runtime, ident.name) == ("podman", "ctoph-guest-pdb")


@pytest.mark.parametrize("mode", ["v2", "v1"])
def test_a_podman_pod_slice_is_a_pod_row(mode: str, v2: dict[str, CgroupRow], v1: dict[str, CgroupRow]) -> None:
    table = v2 if mode == "v2" else v1
    pods = [r for p, r in table.items() if "machine-libpod_pod_" in p and p.endswith(".slice")]
    assert pods and all((r.identity.kind, r.identity.runtime) == ("pod", "podman") for r in pods)
