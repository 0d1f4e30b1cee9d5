"""Record a live node's cgroup files, runtime metadata files and Docker inspect answers as a unit-test fixture.

Usage (root, in a guest): guest/record.py OUT_DIR [CGROUP_PREFIX ...]
Writes OUT_DIR/sys/fs/cgroup/... (the whole v2 tree, or each v1 hierarchy, limited to the root and the cgroups
under the prefixes), OUT_DIR/proc/{stat,meminfo,partitions}, the podman/CRI-O storage files and OCI bundles ctop
reads (OUT_DIR/run/..., OUT_DIR/var/lib/containers/...), the kubelet log directories' names, and
OUT_DIR/docker/<id>.json for every running Docker container (GET /containers/<id>/json).
``MetadataService(host_root=OUT_DIR)`` and ``--cgroup-root OUT_DIR/sys/fs/cgroup --proc-root OUT_DIR/proc`` read it.
"""

from __future__ import annotations

import glob
import http.client
import json
import os
import shutil
import socket
import sys

# The cgroup files ctop reads (ctop/sources/cgroupfs.py), and the files that say what a cgroup is.
V2_FILES = ("cgroup.controllers", "cgroup.subtree_control", "cgroup.type", "cgroup.procs", "cgroup.threads",
            "cgroup.events", "cpu.max", "cpu.weight", "cpu.stat", "cpu.pressure", "cpuset.cpus.effective",
            "io.stat", "io.pressure", "memory.current", "memory.events", "memory.max", "memory.peak", "memory.high",
            "memory.min", "memory.low", "memory.stat", "memory.pressure", "memory.swap.current", "memory.swap.max",
            "pids.current", "pids.max")
V1_FILES = {
    "cpu": ("cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.shares", "cpu.stat"),
    "cpuacct": ("cpuacct.usage", "cpuacct.stat"),
    "cpuset": ("cpuset.cpus", "cpuset.effective_cpus"),
    "memory": ("memory.usage_in_bytes", "memory.max_usage_in_bytes", "memory.limit_in_bytes", "memory.stat",
               "memory.failcnt", "memory.oom_control"),
    "blkio": ("blkio.throttle.io_service_bytes", "blkio.throttle.io_serviced",
              "blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_serviced_recursive"),
    "pids": ("pids.current", "pids.max"),
    "systemd": (),
}
V1_COMMON = ("cgroup.procs", "tasks")
# Runtime metadata that ctop reads from disk (ctop/runtimes/oci_config.py): only these file names are kept.
META_GLOBS = ("/run/containers/storage/overlay-containers/*/userdata/config.json",
              "/var/lib/containers/storage/overlay-containers/*/userdata/config.json",
              "/var/lib/containers/storage/overlay-containers/containers.json",
              "/run/containerd/io.containerd.runtime.v2.task/*/*/config.json",
              "/run/docker/containerd/daemon/io.containerd.runtime.v2.task/*/*/config.json")
DOCKER_SOCKET = "/var/run/docker.sock"


def copy_file(src: str, dst: str) -> None:
    """Copy one file's bytes; a file that cannot be read is left out."""
    try:
        with open(src, "rb") as f:
            data = f.read()
    except OSError:
        return
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    with open(dst, "wb") as f:
        f.write(data)


def wanted(rel: str, prefixes: list[str]) -> bool:
    """The root, the ancestors of a prefix (for their own files) and everything under a prefix."""
    if rel == "/" or not prefixes:
        return True
    return any(rel == p or rel.startswith(p + "/") or p.startswith(rel + "/") for p in prefixes)


def record_hierarchy(top: str, names: tuple[str, ...], out: str, prefixes: list[str]) -> None:
    """The named files of every wanted cgroup of one hierarchy mounted at ``top``."""
    for dirpath, dirs, _files in os.walk(top):
        rel = dirpath[len(top):] or "/"
        if not wanted(rel, prefixes):
            dirs[:] = []
            continue
        os.makedirs(os.path.join(out, rel.lstrip("/")), exist_ok=True)
        for name in names:
            copy_file(os.path.join(dirpath, name), os.path.join(out, rel.lstrip("/"), name))


def record_cgroups(out: str, prefixes: list[str], root: str = "/sys/fs/cgroup") -> None:
    """The v2 tree, or each v1 hierarchy ctop reads, under OUT/sys/fs/cgroup."""
    dest = os.path.join(out, "sys/fs/cgroup")
    if os.path.isfile(os.path.join(root, "cgroup.controllers")):
        record_hierarchy(root, V2_FILES, dest, prefixes)
        return
    # systemd co-mounts some controllers and links their names to the mount ("cpu" -> "cpu,cpuacct"): the recorded
    # tree has the mount once, with every file ctop reads of its controllers, and the same links.
    by_mount: dict[str, tuple[str, ...]] = {}
    for hierarchy, names in V1_FILES.items():
        top = os.path.realpath(os.path.join(root, hierarchy))
        if os.path.isdir(top):
            by_mount[top] = by_mount.get(top, ()) + names
            if os.path.islink(os.path.join(root, hierarchy)):
                os.makedirs(dest, exist_ok=True)
                os.symlink(os.path.basename(top), os.path.join(dest, hierarchy))
    for top, names in by_mount.items():
        record_hierarchy(top, names + V1_COMMON, os.path.join(dest, os.path.basename(top)), prefixes)


def record_metadata(out: str) -> None:
    """Podman/CRI-O storage files, containerd bundles' config.json, and the kubelet log directories' names."""
    for pattern in META_GLOBS:
        for src in glob.glob(pattern):
            copy_file(src, os.path.join(out, src.lstrip("/")))
    for top in ("/var/log/pods", "/var/log/containers"):
        for dirpath, _dirs, files in os.walk(top):
            os.makedirs(os.path.join(out, dirpath.lstrip("/")), exist_ok=True)
            for name in files:  # only the names matter (ctop/runtimes/kubelet_logs.py)
                open(os.path.join(out, dirpath.lstrip("/"), name), "w").close()


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=30)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(30)
        sock.connect(self.unix_path)
        self.sock = sock


def _docker_get(path: str) -> object:
    conn = _UnixConnection(DOCKER_SOCKET)
    try:
        conn.request("GET", path)
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def record_docker(out: str) -> None:
    """OUT/docker/list.json (GET /containers/json) and OUT/docker/<id>.json (inspect) of running containers."""
    if not os.path.exists(DOCKER_SOCKET):
        return
    try:
        listing = _docker_get("/containers/json")
    except OSError:
        return
    os.makedirs(os.path.join(out, "docker"), exist_ok=True)
    with open(os.path.join(out, "docker", "list.json"), "w") as f:
        json.dump(listing, f, indent=1, sort_keys=True)
    for entry in listing if isinstance(listing, list) else []:
        cid = entry.get("Id", "")
        with open(os.path.join(out, "docker", f"{cid}.json"), "w") as f:
            json.dump(_docker_get(f"/containers/{cid}/json"), f, indent=1, sort_keys=True)


def record(out: str, prefixes: list[str]) -> None:
    """Everything above into ``out`` (replaced)."""
    shutil.rmtree(out, ignore_errors=True)
    record_cgroups(out, prefixes)
    for name in ("stat", "meminfo", "partitions"):
        copy_file(f"/proc/{name}", os.path.join(out, "proc", name))
    record_metadata(out)
    record_docker(out)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    record(sys.argv[1], [p.rstrip("/") for p in sys.argv[2:]])
