"""MetadataService: the one facade that names cgroups (Docker API, containerd/CRI-O/podman files, kubelet logs)."""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Iterable, Mapping

from ..model.notices import Notice, NoticeKind
from . import containerd_db, kubelet_logs, local_state, podman_state
from .docker_api import DEFAULT_SOCKET, DockerClient
from .docker_meta import DockerWatcher
from .identify import Identity
from .meta import COMPOSE_PROJECT, COMPOSE_SERVICE, ContainerMeta
from .oci_config import (
    CONTAINERD_TASK_DIRS,
    STORAGE_DRIVER_DIRS,
    containerd_meta,
    crio_meta,
    read_json,
    sandbox_id_of,
    storage_entries,
)

POSITIVE_TTL_S = 60.0
PODS_KEPT = 4096  # a node runs at most a few hundred pods at once
NEGATIVE_TTL_S = 5.0
SCAN_TTL_S = 10.0


class MetadataService:
    """Names for cgroups. ``lookup`` only reads caches and small local files; the Docker API runs in threads.

    ``host_root`` prefixes every file path (tests point it at a recorded tree); ``containerd_task_dirs`` adds
    bundle directories (absolute, not prefixed), e.g. a private dockerd's
    ``<exec-root>/containerd/daemon/io.containerd.runtime.v2.task``.
    """

    def __init__(
        self,
        docker_socket: str | None = None,
        host_root: str = "/",
        containerd_task_dirs: Iterable[str] = (),
        docker_refresh_s: float = 5.0,
        docker_timeout_s: float = 2.0,
        use_docker: bool = True,
    ) -> None:
        self.host_root = host_root
        explicit = docker_socket is not None
        socket_path = docker_socket or self._host(DEFAULT_SOCKET)
        self._docker: DockerWatcher | None = None
        if use_docker:
            self._docker = DockerWatcher(DockerClient(socket_path, docker_timeout_s), docker_refresh_s, explicit)
        self._task_dirs = [self._host(d) for d in CONTAINERD_TASK_DIRS] + list(containerd_task_dirs)
        self._cache: dict[str, tuple[float, ContainerMeta | None]] = {}
        self._cache_pruned_at = -1e9
        self._storage: dict[str, tuple[float, dict[str, dict[str, object]]]] = {}  # by graph root
        self._podman: dict[str, tuple[float, podman_state.PodmanState]] = {}  # by graph root
        self._storage_roots = podman_state.system_roots(host_root)
        self._local = local_state.LocalState(host_root)
        self._logs: tuple[float, kubelet_logs.KubeletLogIndex] = (-1e9, kubelet_logs.KubeletLogIndex())
        self._pods: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()

    # lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the background Docker watcher (returns at once)."""
        if self._docker is not None:
            self._docker.start()

    def close(self) -> None:
        if self._docker is not None:
            self._docker.close()

    def refresh(self, timeout_s: float = 5.0) -> bool:
        """Re-list Docker now and wait for it (for one-shot commands and tests); True if it finished in time."""
        with self._lock:
            self._cache.clear()
            self._storage.clear()
            self._podman.clear()
            self._local.clear()
            self._logs = (-1e9, kubelet_logs.KubeletLogIndex())
        return self._docker.refresh(timeout_s) if self._docker is not None else True

    def notices(self) -> list[Notice]:
        """One notice per metadata source that is not working, for the status line."""
        if self._docker is not None and self._docker.notice:
            return [Notice(NoticeKind.NO_CONTAINER_NAMES, self._docker.notice)]
        return []

    # lookups ---------------------------------------------------------------------------------------------
    def docker_containers(self) -> Mapping[str, ContainerMeta]:
        """Every container the Docker daemon listed last time (id -> meta)."""
        return self._docker.containers if self._docker is not None else {}

    def lookup(self, path: str, identity: Identity) -> ContainerMeta | None:
        """Metadata for the cgroup ``path`` whose identity is ``identity``; None when nothing is known."""
        if identity.kind == "pod" and identity.pod_uid:
            if identity.runtime == "podman":
                return self._podman_pod(identity.pod_uid, path)
            return self._pod_meta(identity)
        if identity.runtime in local_state.PATH_RUNTIMES or (identity.runtime == "none" and identity.kind == "other"):
            return self._local.lookup(path, identity)
        cid = identity.container_id
        if not cid and identity.runtime == "podman" and identity.pod_uid and identity.kind != "container":
            pod = self._podman_pod(identity.pod_uid, path)  # a pod's conmon: attributed to its pod
            return pod.with_changes(kind="", name=identity.name, pod_uid=identity.pod_uid) if pod else None
        if not cid or identity.kind not in ("container", "other"):
            return None
        meta = self.docker_containers().get(cid)
        if meta is None and identity.runtime in ("docker", "kubernetes") and len(cid) < 64:
            meta = next((m for k, m in self.docker_containers().items() if k.startswith(cid)), None)
        if meta is None and identity.runtime != "docker":
            meta = self._file_meta(identity, path)
        if meta is None:
            return None
        if meta.pod_uid and meta.pod:
            self._remember_pod(meta.pod_uid, (meta.namespace, meta.pod))
        if identity.pod_uid and not meta.pod_uid:
            meta = meta.with_changes(pod_uid=identity.pod_uid)
        if meta.pod_uid and not meta.pod:
            known = self._pods.get(meta.pod_uid) or self._pod_from_logs(meta.pod_uid)
            if known:
                meta = meta.with_changes(namespace=known[0], pod=known[1])
        return meta

    # internals -------------------------------------------------------------------------------------------
    def _host(self, path: str) -> str:
        return os.path.join(self.host_root, path.lstrip("/"))

    def _remember_pod(self, uid: str, names: tuple[str, str]) -> None:
        """Keep a pod's (namespace, name); the oldest half is forgotten past PODS_KEPT (pods churn for weeks)."""
        self._pods.pop(uid, None)
        self._pods[uid] = names
        if len(self._pods) > PODS_KEPT:
            for old in list(self._pods)[:PODS_KEPT // 2]:
                del self._pods[old]

    def _pod_meta(self, identity: Identity) -> ContainerMeta | None:
        known = self._pods.get(identity.pod_uid)
        if known is None:
            for meta in self.docker_containers().values():
                if meta.pod_uid == identity.pod_uid and meta.pod:
                    known = (meta.namespace, meta.pod)
                    break
        known = known or self._pod_from_logs(identity.pod_uid)
        if known is None:
            return None
        self._remember_pod(identity.pod_uid, known)
        return ContainerMeta(runtime="kubernetes", kind="pod", name=known[1], namespace=known[0], pod=known[1],
                             pod_uid=identity.pod_uid, source="pod")

    def _file_meta(self, identity: Identity, path: str = "") -> ContainerMeta | None:
        cid = identity.container_id
        now = time.monotonic()
        cached = self._cache.get(cid)
        if cached is not None and cached[0] > now:
            return cached[1]
        meta: ContainerMeta | None = None
        if identity.runtime in ("containerd", "kubernetes", "none"):
            meta = self._containerd(cid, identity.detail if identity.runtime == "containerd" else "")
        if meta is None and identity.runtime in ("cri-o", "podman", "kubernetes", "none"):
            meta = self._storage_meta(cid, identity, path)
        if meta is None and identity.runtime in ("kubernetes", "containerd", "cri-o"):
            meta = self._log_meta(cid, identity)
        if now - self._cache_pruned_at >= NEGATIVE_TTL_S:  # ids of containers long gone must not pile up
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            self._cache_pruned_at = now
        self._cache[cid] = (now + (POSITIVE_TTL_S if meta else NEGATIVE_TTL_S), meta)
        return meta

    def _containerd(self, cid: str, namespace: str) -> ContainerMeta | None:
        for task_dir in self._task_dirs:
            namespaces = [namespace] if namespace else _listdir(task_dir)
            for ns in namespaces:
                config = read_json(os.path.join(task_dir, ns, cid, "config.json"))
                if config is None:
                    continue
                meta = containerd_meta(cid, ns, config)
                if meta is None:
                    continue
                if not meta.image:  # ctr and nerdctl write no CRI annotation: containerd's own metadata has it
                    db = containerd_db.meta_db_of(os.path.join(task_dir, ns, cid))
                    if db is not None:
                        meta = meta.with_changes(image=containerd_db.container_image(db, ns, cid))
                if not meta.pod and sandbox_id_of(meta):
                    sandbox = containerd_meta(sandbox_id_of(meta), ns, read_json(
                        os.path.join(task_dir, ns, sandbox_id_of(meta), "config.json")))
                    if sandbox is not None:
                        meta = meta.with_changes(pod=sandbox.pod, namespace=sandbox.namespace,
                                                 pod_uid=meta.pod_uid or sandbox.pod_uid)
                return meta
        return None

    def _roots_for(self, path: str) -> list[podman_state.StorageRoot]:
        """The storage roots that may hold the container at ``path``: a rootless user's first, then the system's."""
        uid = podman_state.rootless_uid(path)
        users = podman_state.user_roots(uid, self.host_root) if uid is not None else []
        return users + self._storage_roots

    def _storage_meta(self, cid: str, identity: Identity, path: str) -> ContainerMeta | None:
        for root in self._roots_for(path):
            entries = self._storage_entries(root.graph)
            config = None
            for prefix in _driver_dirs(root.run, root.graph):
                # os.path.join(base, driver, cid, ...), joined faster: a container id never holds a slash.
                config = read_json(prefix + cid + "/userdata/config.json" if cid and "/" not in cid
                                   else os.path.join(prefix, cid, "userdata/config.json"))
                if config is not None:
                    break
            if config is None and cid not in entries:
                continue
            meta = crio_meta(cid, config, entries.get(cid))
            if meta is not None and meta.runtime == "podman":
                meta = self._with_podman_state(meta, root, identity)
            return meta
        return None

    def _with_podman_state(self, meta: ContainerMeta, root: podman_state.StorageRoot,
                           identity: Identity) -> ContainerMeta:
        """A podman container's name, image and pod (name, id; infra container or not) from podman's state."""
        state = self._podman_state(root.graph)
        known = state.containers.get(meta.container_id)
        pod_id = (known.pod_id if known else "") or identity.pod_uid
        changes: dict[str, object] = {}
        if known is not None:
            changes.update(name=meta.name or known.name, image=meta.image or known.image,
                           started_at=meta.started_at or known.created)
            if known.labels:  # podman's labels (podman-compose writes Docker Compose's)
                changes.update(labels={**known.labels, **meta.labels},
                               compose_project=known.labels.get(COMPOSE_PROJECT, ""),
                               compose_service=known.labels.get(COMPOSE_SERVICE, ""))
        if pod_id:
            changes.update(pod_uid=pod_id, pod=state.pods.get(pod_id, ""),
                           sandbox=state.infra.get(pod_id) == meta.container_id)
        return meta.with_changes(**changes) if changes else meta

    def _podman_state(self, graph_root: str) -> podman_state.PodmanState:
        now = time.monotonic()
        cached = self._podman.get(graph_root)
        if cached is not None and cached[0] > now:
            return cached[1]
        state = podman_state.read_state(graph_root)
        self._podman[graph_root] = (now + SCAN_TTL_S, state)
        return state

    def _podman_pod(self, pod_id: str, path: str) -> ContainerMeta | None:
        """A podman pod by its id, named from podman's state."""
        for root in self._roots_for(path):
            name = self._podman_state(root.graph).pods.get(pod_id)
            if name is not None:
                return ContainerMeta(runtime="podman", kind="pod", name=name, pod=name, pod_uid=pod_id,
                                     source="podman-state")
        return None

    def _storage_entries(self, graph_root: str) -> dict[str, dict[str, object]]:
        now = time.monotonic()
        cached = self._storage.get(graph_root)
        if cached is not None and cached[0] > now:
            return cached[1]
        merged: dict[str, dict[str, object]] = {}
        for driver in STORAGE_DRIVER_DIRS:
            merged.update(storage_entries(os.path.join(graph_root, driver, "containers.json")))
        self._storage[graph_root] = (now + SCAN_TTL_S, merged)
        return merged

    def _log_index(self) -> kubelet_logs.KubeletLogIndex:
        now = time.monotonic()
        if self._logs[0] > now:
            return self._logs[1]
        index = kubelet_logs.scan(self.host_root)
        self._logs = (now + SCAN_TTL_S, index)
        return index

    def _pod_from_logs(self, uid: str) -> tuple[str, str] | None:
        entry = self._log_index().pods.get(uid)
        return (entry[0], entry[1]) if entry else None

    def _log_meta(self, cid: str, identity: Identity) -> ContainerMeta | None:
        entry = self._log_index().containers.get(cid)
        if entry is None:
            return None
        namespace, pod, container = entry
        return ContainerMeta(runtime=identity.runtime, container_id=cid, name=container, pod=pod, namespace=namespace,
                             container=container, pod_uid=identity.pod_uid, source="kubelet-logs")


@functools.lru_cache(maxsize=64)
def _driver_dirs(run: str, graph: str) -> tuple[str, ...]:
    """The storage driver directories of a run and a graph root, in the order they are searched, each ending in /."""
    return tuple(os.path.join(base, driver, "") for base in (run, graph) for driver in STORAGE_DRIVER_DIRS)


def _listdir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []
