"""Container metadata from files on disk: OCI bundle config.json (containerd, CRI-O, podman), containers.json."""

from __future__ import annotations

import json
import os

from ..sources.readfile import read_bytes
from .docker_meta import parse_docker_time
from .meta import PAUSE_CONTAINER_NAME, ContainerMeta, clean_labels, clean_str, kubernetes_fields

MAX_JSON_BYTES = 4 * 1024 * 1024

# containerd's CRI plugin annotations.
CRI_TYPE = "io.kubernetes.cri.container-type"
CRI_SANDBOX_ID = "io.kubernetes.cri.sandbox-id"
CRI_SANDBOX_NAME = "io.kubernetes.cri.sandbox-name"
CRI_SANDBOX_NAMESPACE = "io.kubernetes.cri.sandbox-namespace"
CRI_SANDBOX_UID = "io.kubernetes.cri.sandbox-uid"
CRI_CONTAINER_NAME = "io.kubernetes.cri.container-name"
CRI_IMAGE_NAME = "io.kubernetes.cri.image-name"
# CRI-O's annotations (besides the io.kubernetes.pod.* / container.name ones shared with dockershim).
CRIO_TYPE = "io.kubernetes.cri-o.ContainerType"
CRIO_IMAGE_NAME = "io.kubernetes.cri-o.ImageName"
CRIO_NAME = "io.kubernetes.cri-o.Name"
CRIO_CREATED = "io.kubernetes.cri-o.Created"
CRIO_SANDBOX_ID = "io.kubernetes.cri-o.SandboxID"
PODMAN_MANAGER = "io.container.manager"

# Where runtimes keep bundles, relative to the host root.
CONTAINERD_TASK_DIRS = (
    "/run/containerd/io.containerd.runtime.v2.task",
    "/run/docker/containerd/daemon/io.containerd.runtime.v2.task",
)
STORAGE_RUN_ROOTS = ("/run/containers/storage", "/var/run/containers/storage")
STORAGE_GRAPH_ROOTS = ("/var/lib/containers/storage",)
STORAGE_DRIVER_DIRS = ("overlay-containers", "vfs-containers", "btrfs-containers")


def read_json(path: str, max_bytes: int = MAX_JSON_BYTES) -> object:
    """A small JSON file, or None if missing, too large or malformed (or its path is: a NUL from a malformed id)."""
    try:
        if os.path.getsize(path) > max_bytes:
            return None
    except (OSError, ValueError):
        return None
    data = read_bytes(path)
    if data is None:
        return None
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def annotations_of(config: object) -> dict[str, str]:
    """The string annotations of an OCI runtime config, {} when absent or malformed."""
    if not isinstance(config, dict):
        return {}
    return clean_labels(config.get("annotations"))


def containerd_meta(container_id: str, namespace: str, config: object) -> ContainerMeta | None:
    """ContainerMeta from a containerd bundle config.json (CRI annotations when present); None if malformed."""
    if not isinstance(config, dict):
        return None
    ann = annotations_of(config)
    sandbox = ann.get(CRI_TYPE, "") == "sandbox"
    container = PAUSE_CONTAINER_NAME if sandbox else ann.get(CRI_CONTAINER_NAME, "")
    return ContainerMeta(
        runtime="containerd", container_id=container_id, name=container or container_id,
        image=ann.get(CRI_IMAGE_NAME, ""), labels=ann, pod=ann.get(CRI_SANDBOX_NAME, ""),
        namespace=ann.get(CRI_SANDBOX_NAMESPACE, ""), pod_uid=ann.get(CRI_SANDBOX_UID, ""),
        container=container, sandbox=sandbox, state="running",
        source="containerd-config",
    )


def sandbox_id_of(meta: ContainerMeta) -> str:
    return meta.labels.get(CRI_SANDBOX_ID, "") or meta.labels.get(CRIO_SANDBOX_ID, "")


def crio_meta(container_id: str, config: object, storage: dict[str, object] | None) -> ContainerMeta | None:
    """ContainerMeta from a CRI-O (or podman) config.json plus its containers.json entry; None if malformed."""
    if not isinstance(config, dict) and storage is None:
        return None
    ann = annotations_of(config)
    stored_name, stored_image, stored_created = _storage_fields(storage)
    # podman writes CRI-O's annotations too, besides its own manager annotation.
    is_crio = (CRIO_TYPE in ann or CRIO_NAME in ann) and ann.get(PODMAN_MANAGER, "") != "libpod"
    if is_crio:
        k8s = kubernetes_fields(ann)
        if ann.get(CRIO_TYPE, "") == "sandbox":
            k8s["sandbox"] = True
            k8s["container"] = PAUSE_CONTAINER_NAME
        return ContainerMeta(
            runtime="cri-o", container_id=container_id, name=ann.get(CRIO_NAME, "") or k8s["container"],
            image=ann.get(CRIO_IMAGE_NAME, "") or stored_image, labels=ann, state="running",
            started_at=parse_docker_time(ann.get(CRIO_CREATED)) or stored_created,
            source="crio-config", **k8s,
        )
    return ContainerMeta(
        runtime="podman", container_id=container_id, name=stored_name, image=stored_image, labels=ann,
        state="running", started_at=parse_docker_time(ann.get(CRIO_CREATED)) or stored_created,
        source="podman-state",
    )


def storage_entries(path: str) -> dict[str, dict[str, object]]:
    """containers/storage's containers.json as id -> entry (malformed entries skipped)."""
    data = read_json(path, max_bytes=64 * 1024 * 1024)
    if not isinstance(data, list):
        return {}
    out: dict[str, dict[str, object]] = {}
    for entry in data:
        if isinstance(entry, dict) and isinstance(entry.get("id"), str) and entry["id"]:
            out[entry["id"]] = entry
    return out


def _storage_fields(entry: dict[str, object] | None) -> tuple[str, str, float | None]:
    """(name, image name, created) from a containers.json entry, whose "metadata" is itself a JSON string."""
    if not entry:
        return "", "", None
    names = entry.get("names")
    name = next((n for n in names if isinstance(n, str)), "") if isinstance(names, list) else ""
    image = ""
    meta_text = entry.get("metadata")
    if isinstance(meta_text, str):
        try:
            inner = json.loads(meta_text)
        except (ValueError, RecursionError):
            inner = None
        if isinstance(inner, dict):
            image = clean_str(inner.get("image-name"))
            name = name or clean_str(inner.get("name"))
    return name, image, parse_docker_time(entry.get("created"))

