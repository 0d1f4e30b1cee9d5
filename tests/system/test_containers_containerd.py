"""containerd through ctr in namespace k8s.io with CRI annotations, in a kubelet-shaped cgroup (root)."""

from __future__ import annotations

import time
import uuid

import pytest
from support.dockerd import IMAGE, PrivateDockerd, cgroup_of, dockerd, unique  # noqa: F401
from support.env import need_root

from ctop.runtimes.identify import identify
from ctop.runtimes.metadata import MetadataService

pytestmark = pytest.mark.system
NS = "k8s.io"


def _task_pid(d: PrivateDockerd, cid: str) -> int:
    for _ in range(50):
        for line in d.ctr("-n", NS, "task", "ls").stdout.decode().splitlines()[1:]:
            f = line.split()
            if f and f[0] == cid and f[1].isdigit() and int(f[1]) > 0:
                return int(f[1])
        time.sleep(0.1)
    raise AssertionError(f"task {cid} has no pid")


def test_ctr_containers_with_cri_annotations(dockerd: PrivateDockerd) -> None:  # noqa: F811
    need_root()
    ref = "docker.io/library/" + IMAGE
    saved = dockerd.run("save", IMAGE, timeout=120).stdout
    dockerd.ctr("-n", NS, "image", "import", "--base-name", "docker.io/library/ctop-busybox", "-", input=saved,
                timeout=120)
    uid = str(uuid.uuid4())
    pod, pod_ns = unique("ctrpod"), "ns-" + uuid.uuid4().hex[:4]
    parent = f"/kubepods/besteffort/pod{uid}"
    dockerd.cgroup_parents.append(parent)
    sandbox_id = uuid.uuid4().hex + uuid.uuid4().hex
    app_id = uuid.uuid4().hex + uuid.uuid4().hex
    common = {
        "io.kubernetes.cri.sandbox-name": pod,
        "io.kubernetes.cri.sandbox-namespace": pod_ns,
        "io.kubernetes.cri.sandbox-uid": uid,
        "io.kubernetes.cri.sandbox-id": sandbox_id,
    }
    specs = {
        sandbox_id: {**common, "io.kubernetes.cri.container-type": "sandbox"},
        # An app container carrying only its sandbox id: pod names come from the sandbox's bundle.
        app_id: {"io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.container-name": "web",
                 "io.kubernetes.cri.sandbox-id": sandbox_id, "io.kubernetes.cri.image-name": ref},
    }
    try:
        pids = {}
        for cid, annotations in specs.items():
            args = ["-n", NS, "run", "-d", "--cgroup", f"{parent}/{cid}"]
            for k, v in annotations.items():
                args += ["--annotation", f"{k}={v}"]
            dockerd.ctr(*args, ref, cid, "sleep", "300", timeout=120)
            pids[cid] = _task_pid(dockerd, cid)

        service = MetadataService(docker_socket=dockerd.socket, containerd_task_dirs=[dockerd.containerd_task_dir])
        service.start()
        try:
            assert service.refresh(10)
            rows = []
            for cid, pid in pids.items():
                path = cgroup_of(pid, "memory")
                assert path == f"{parent}/{cid}"
                ident = identify(path)
                assert (ident.runtime, ident.kind, ident.container_id, ident.pod_uid, ident.qos_class) == (
                    "kubernetes", "container", cid, uid, "besteffort")
                meta = service.lookup(path, ident)
                assert meta is not None
                assert (meta.runtime, meta.pod, meta.namespace, meta.pod_uid) == ("containerd", pod, pod_ns, uid)
                assert meta.source == "containerd-config"
                rows.append((path, ident))
            sandbox = service.lookup(f"{parent}/{sandbox_id}", identify(f"{parent}/{sandbox_id}"))
            app = service.lookup(f"{parent}/{app_id}", identify(f"{parent}/{app_id}"))
            assert sandbox is not None and app is not None
            assert (sandbox.sandbox, sandbox.container) == (True, "POD")
            assert sandbox.image == ref  # no image annotation: from containerd's own meta.db
            assert (app.sandbox, app.container, app.name, app.image) == (False, "web", "web", ref)
            pod_meta = service.lookup(parent, identify(parent))
            assert pod_meta is not None and (pod_meta.pod, pod_meta.namespace) == (pod, pod_ns)
            assert {i.pod_uid for _, i in rows} == {uid}
            # Docker's own list does not know these containers: the names came from the bundles.
            assert not set(pids) & set(service.docker_containers())
        finally:
            service.close()
    finally:
        for cid in specs:
            dockerd.ctr("-n", NS, "task", "kill", "-s", "SIGKILL", cid, check=False)
        for cid in specs:
            for _ in range(50):
                if dockerd.ctr("-n", NS, "task", "rm", "-f", cid, check=False).returncode == 0:
                    break
                time.sleep(0.1)
            dockerd.ctr("-n", NS, "container", "rm", cid, check=False)
        dockerd.ctr("-n", NS, "image", "rm", ref, check=False)


def test_ctr_default_namespace_image_from_meta_db(dockerd: PrivateDockerd) -> None:  # noqa: F811
    """``ctr run`` in the default namespace (no annotations at all): named by id, image from containerd's meta.db."""
    need_root()
    ref = "docker.io/library/" + IMAGE
    ns = "default"
    saved = dockerd.run("save", IMAGE, timeout=120).stdout
    dockerd.ctr("-n", ns, "image", "import", "--base-name", "docker.io/library/ctop-busybox", "-", input=saved,
                timeout=120)
    cid = unique("ctrdefault")
    try:
        dockerd.ctr("-n", ns, "run", "-d", ref, cid, "sleep", "300", timeout=120)
        pid = 0
        for _ in range(50):
            for line in dockerd.ctr("-n", ns, "task", "ls").stdout.decode().splitlines()[1:]:
                f = line.split()
                if f and f[0] == cid and f[1].isdigit():
                    pid = int(f[1])
            if pid:
                break
            time.sleep(0.1)
        path = cgroup_of(pid, "memory")
        assert path == f"/{ns}/{cid}"
        service = MetadataService(docker_socket=dockerd.socket, containerd_task_dirs=[dockerd.containerd_task_dir])
        try:
            meta = service.lookup(path, identify(path))
            assert meta is not None and (meta.runtime, meta.name, meta.image) == ("containerd", cid, ref)
        finally:
            service.close()
    finally:
        dockerd.ctr("-n", ns, "task", "kill", "-s", "SIGKILL", cid, check=False)
        for _ in range(50):
            if dockerd.ctr("-n", ns, "task", "rm", "-f", cid, check=False).returncode == 0:
                break
            time.sleep(0.1)
        dockerd.ctr("-n", ns, "container", "rm", cid, check=False)
        dockerd.ctr("-n", ns, "image", "rm", ref, check=False)
