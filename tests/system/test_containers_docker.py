"""Real Docker containers on a private dockerd: identity, metadata and kernel facts (root)."""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from support.cgroups import cpu_usage_ns, host_layout, memory_limit
from support.dockerd import (  # noqa: F401
    IMAGE,
    PrivateDockerd,
    cgroup_dir,
    cgroup_of,
    dockerd,
    kubelet_pod_parent,
    pod_cgroup_path,
    unique,
)
from support.env import need_root

from ctop.runtimes.identify import identify
from ctop.runtimes.metadata import MetadataService
from ctop.sources import procfs_caps, procfs_mounts, procfs_net, procfs_ns, procfs_procs

pytestmark = pytest.mark.system


@pytest.fixture
def service(dockerd: PrivateDockerd) -> Iterator[MetadataService]:  # noqa: F811
    svc = MetadataService(docker_socket=dockerd.socket, containerd_task_dirs=[dockerd.containerd_task_dir],
                          docker_refresh_s=1.0)
    svc.start()
    try:
        yield svc
    finally:
        svc.close()


def run_container(d: PrivateDockerd, *args: str) -> tuple[str, int]:
    """docker run -d ARGS; returns (id, main pid)."""
    cid = d.out("run", "-d", *args)
    pid = d.inspect(cid)["State"]["Pid"]
    assert pid > 0
    return cid, pid


def test_web_container_is_named_and_its_traffic_counted(dockerd: PrivateDockerd,  # noqa: F811
                                                        service: MetadataService) -> None:
    need_root()
    name = unique("web")
    cid, pid = run_container(dockerd, "--name", name, "--network", dockerd.network, "--memory=128m", "--cpus=0.2",
                             IMAGE, "httpd", "-f", "-p", "80", "-h", "/www")
    path = cgroup_of(pid, "memory")
    ident = identify(path)
    assert (ident.runtime, ident.kind, ident.container_id) == ("docker", "container", cid)

    assert service.refresh(10)
    meta = service.lookup(path, ident)
    assert meta is not None
    assert (meta.name, meta.image, meta.runtime, meta.pid, meta.state) == (name, IMAGE, "docker", pid, "running")
    assert meta.started_at is not None and abs(meta.started_at - time.time()) < 120
    assert service.notices() == []
    assert memory_limit(host_layout(), path) == 128 * 1024 * 1024

    ip = dockerd.inspect(cid)["NetworkSettings"]["Networks"][dockerd.network]["IPAddress"]
    devices = {d.name: d for d in procfs_net.net_devices(pid)}
    assert set(devices) >= {"eth0", "lo"}
    assert any(a.startswith(ip + "/") for a in devices["eth0"].addresses)
    before = procfs_net.netns_totals({"web": pid})["web"]
    body = b""
    for _ in range(50):  # httpd may need a moment to listen
        try:
            with urllib.request.urlopen(f"http://{ip}/index.html", timeout=5) as resp:
                body = resp.read()
            break
        except OSError:
            time.sleep(0.1)
    assert b"ctop test page" in body
    after_dev = {d.name: d for d in procfs_net.net_devices(pid)}["eth0"]
    after = procfs_net.netns_totals({"web": pid})["web"]
    assert after.netns == before.netns == procfs_ns.namespace_inode(pid, "net")
    # The container sent the page (tx) and received the request (rx).
    assert after.tx_bytes - before.tx_bytes >= len(body)
    assert after.rx_bytes - before.rx_bytes >= 60
    assert after_dev.tx_packets > devices["eth0"].tx_packets

    # busybox httpd forks a handler per request; wait for the one that served us to exit.
    deadline = time.monotonic() + 10
    while True:
        procs = procfs_procs.read_processes(procfs_procs.read_pids(cgroup_dir(pid) + "/cgroup.procs"))
        if len(procs) == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert [(p.pid, p.ns_pid) for p in procs] == [(pid, 1)]
    assert procs[0].command.startswith("httpd")
    upper = procfs_mounts.overlay_upper_dir(procfs_mounts.mounts_of(pid))
    assert upper is not None and upper.startswith(dockerd.base)


def test_cap_drop_net_raw(dockerd: PrivateDockerd) -> None:  # noqa: F811
    need_root()
    _, plain = run_container(dockerd, "--name", unique("caps"), IMAGE, "sleep", "300")
    _, dropped = run_container(dockerd, "--name", unique("nocap"), "--cap-drop=NET_RAW", IMAGE, "sleep", "300")
    plain_caps = procfs_caps.effective_capabilities(plain)
    dropped_caps = procfs_caps.effective_capabilities(dropped)
    assert plain_caps is not None and dropped_caps is not None
    assert "NET_RAW" in plain_caps
    assert "NET_RAW" not in dropped_caps
    assert set(plain_caps) - set(dropped_caps) == {"NET_RAW"}


def test_namespaces_differ_from_host_and_host_network_shares(dockerd: PrivateDockerd) -> None:  # noqa: F811
    need_root()
    _, isolated = run_container(dockerd, "--name", unique("ns"), IMAGE, "sleep", "300")
    _, hostnet = run_container(dockerd, "--name", unique("hostnet"), "--network=host", IMAGE, "sleep", "300")
    host = procfs_ns.host_namespaces()
    iso = procfs_ns.shared_with_host(procfs_ns.namespaces(isolated), host)
    assert iso["net"] is False and iso["pid"] is False and iso["mnt"] is False
    assert iso["uts"] is False and iso["ipc"] is False
    assert iso["user"] is True
    hn = procfs_ns.shared_with_host(procfs_ns.namespaces(hostnet), host)
    assert hn["net"] is True and hn["pid"] is False
    # A host-network container's traffic is the host's: no per-container totals for it.
    assert procfs_net.netns_totals({"h": hostnet, "i": isolated}).keys() == {"i"}
    names = {d.name for d in procfs_net.net_devices(hostnet)}
    assert names == {d.name for d in procfs_net.net_devices(2)}
    inside = procfs_mounts.mounts_of(isolated)
    assert inside and inside[0].mount_point == "/" and inside[0].fstype == "overlay"
    host_points = {m.mount_point for m in procfs_mounts.mounts_of(2)}
    assert {m.mount_point for m in inside} != host_points


def _k8s_labels(pod: str, ns: str, uid: str, container: str, sandbox: bool) -> list[str]:
    labels = {
        "io.kubernetes.pod.name": pod,
        "io.kubernetes.pod.namespace": ns,
        "io.kubernetes.pod.uid": uid,
        "io.kubernetes.container.name": container,
    }
    if sandbox:
        labels["io.kubernetes.docker.type"] = "podsandbox"
    else:
        labels["io.kubernetes.docker.type"] = "container"
    out: list[str] = []
    for k, v in labels.items():
        out += ["--label", f"{k}={v}"]
    return out


@pytest.mark.parametrize("qos", ["burstable", "besteffort", "guaranteed"])
def test_dockershim_shaped_pods(dockerd: PrivateDockerd, service: MetadataService,  # noqa: F811
                                qos: str) -> None:
    """Pods as kubelet makes them with the daemon's cgroup driver: /kubepods/<qos>/pod<uid>/<id> (cgroupfs) or
    /kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid>.slice/docker-<id>.scope (systemd)."""
    need_root()
    uid = str(uuid.uuid4())
    pod, ns = unique("pod"), "team-" + uuid.uuid4().hex[:4]
    parent_arg = kubelet_pod_parent(dockerd, qos, uid)
    systemd = parent_arg.endswith(".slice")
    cgroup_parent = pod_cgroup_path(parent_arg)
    dockerd.cgroup_parents.append(cgroup_parent)
    limits = ["--memory=64m", "--cpus=0.1"] if qos == "guaranteed" else []
    started = {}
    for container, sandbox, cmd in (("POD", True, ["sleep", "300"]), ("app", False, ["sleep", "300"]),
                                    ("sidecar", False, ["sleep", "300"])):
        cid, pid = run_container(dockerd, "--name", f"k8s_{container}_{pod}_{ns}_{uid}_0",
                                 f"--cgroup-parent={parent_arg}", *limits,
                                 *_k8s_labels(pod, ns, uid, container, sandbox), IMAGE, *cmd)
        started[container] = (cid, pid)
    assert service.refresh(10)
    rows = []
    for container, (cid, pid) in started.items():
        path = cgroup_of(pid, "memory")
        assert path == (f"{cgroup_parent}/docker-{cid}.scope" if systemd else f"{cgroup_parent}/{cid}")
        ident = identify(path)
        assert (ident.kind, ident.container_id, ident.pod_uid, ident.qos_class) == ("container", cid, uid, qos)
        meta = service.lookup(path, ident)
        assert meta is not None, container
        assert (meta.runtime, meta.pod, meta.namespace, meta.container) == ("docker", pod, ns, container)
        assert meta.sandbox is (container == "POD")
        rows.append((path, ident))
    pod_ident = identify(cgroup_parent)
    assert (pod_ident.kind, pod_ident.pod_uid, pod_ident.qos_class) == ("pod", uid, qos)
    pod_meta = service.lookup(cgroup_parent, pod_ident)
    assert pod_meta is not None and (pod_meta.kind, pod_meta.pod, pod_meta.namespace) == ("pod", pod, ns)
    rows.append((cgroup_parent, pod_ident))
    containers = [p for p, i in rows if i.kind == "container"]
    assert len(containers) == len(started) and {i.pod_uid for _, i in rows} == {uid}
    # The pod's own counter (kernel, hierarchical) covers what its containers used.
    layout = host_layout()
    pod_cpu = cpu_usage_ns(layout, cgroup_parent)
    total = sum(cpu_usage_ns(layout, p) for p in containers)
    assert 0 < total <= pod_cpu
    for cid, _ in started.values():
        dockerd.run("rm", "-f", cid)
