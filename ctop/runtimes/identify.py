"""Recognises runtime, container id, pod uid, QoS class and kind from a cgroup path alone (pure, no I/O)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Runtimes a path can reveal. "kubernetes" means a kubelet-shaped path whose runtime the path does not say
# (cgroupfs driver: /kubepods/.../pod<uid>/<id>); the metadata service tells the real one.
RUNTIMES = ("docker", "containerd", "cri-o", "podman", "systemd", "kubernetes", "none")
KINDS = ("container", "pod", "qos", "slice", "service", "scope", "other")
QOS_CLASSES = ("guaranteed", "burstable", "besteffort")

# containerd namespaces whose `/<namespace>/<id>` cgroups ctr and nerdctl create by default.
CONTAINERD_NAMESPACES = frozenset({"default", "k8s.io", "moby", "buildkit", "nerdctl"})

_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEXID = re.compile(r"[0-9a-f]{12,64}")
# A scope or bare cgroup named after a container: prefix-<id>[.scope]. Longest prefixes first.
_SCOPE_PREFIXES = (
    ("cri-containerd-", "containerd"),
    ("crio-conmon-", "cri-o"),
    ("crio-", "cri-o"),
    ("libpod-conmon-", "podman"),
    ("libpod-", "podman"),
    ("docker-", "docker"),
)
_POD_UID = re.compile(r"pod([0-9a-fA-F_-]{8,})")
_QOS_NAMES = {"burstable": "burstable", "besteffort": "besteffort", "guaranteed": "guaranteed"}


@dataclass(frozen=True)
class Identity:
    """What a cgroup path says about its owner. Empty strings mean "not known from the path"."""

    runtime: str = "none"
    kind: str = "other"
    container_id: str = ""
    pod_uid: str = ""
    qos_class: str = ""
    # ctr's containerd namespace (`/<namespace>/<id>`), or the systemd unit name for slices/services/scopes.
    detail: str = ""


ROOT_IDENTITY = Identity(runtime="none", kind="other")


def identify(path: str) -> Identity:
    """The identity of the cgroup at ``path`` (relative to the hierarchy root, "/" for the root).

    Not cached here: the collector keeps the identities of the cgroups of its latest refresh (Collector.enrich),
    which is as large as the node and forgets churned paths; a fixed-size cache never hits on a larger node.
    """
    parts = [p for p in path.split("/") if p]
    if not parts:
        return ROOT_IDENTITY
    kube = _kubernetes(parts)
    if kube is not None:
        return kube
    leaf = parts[-1]
    scoped = _container_scope(leaf)
    if scoped is not None:
        runtime, cid, conmon = scoped
        if conmon:
            return Identity(runtime=runtime, kind="scope", detail=leaf)
        return Identity(runtime=runtime, kind="container", container_id=cid)
    # A cgroup below a container scope (podman/crun's `libpod-<id>.scope/container`, nested docker).
    for i in range(len(parts) - 2, -1, -1):
        outer = _container_scope(parts[i])
        if outer is not None and not outer[2]:
            return Identity(runtime=outer[0], kind="other", container_id=outer[1], detail=leaf)
    if len(parts) >= 2:
        parent = parts[-2]
        if parent == "docker" and _HEXID.fullmatch(leaf):
            return Identity(runtime="docker", kind="container", container_id=leaf)
        if parent == "libpod_parent" or parent.startswith("libpod_parent"):
            return Identity(runtime="podman", kind="container", container_id=leaf)
        if len(parts) == 2 and (parent in CONTAINERD_NAMESPACES or _HEX64.fullmatch(leaf)):
            return Identity(runtime="containerd", kind="container", container_id=leaf, detail=parent)
    if leaf == "docker" and len(parts) == 1:
        return Identity(runtime="docker", kind="other", detail=leaf)
    return _systemd_unit(leaf)


def _container_scope(name: str) -> tuple[str, str, bool] | None:
    """(runtime, id, is_conmon) for names like ``docker-<id>.scope`` or ``crio-<id>``; None otherwise."""
    base = name[:-6] if name.endswith(".scope") else name
    for prefix, runtime in _SCOPE_PREFIXES:
        if base.startswith(prefix):
            cid = base[len(prefix):]
            if _HEXID.fullmatch(cid):
                return runtime, cid, prefix.endswith("conmon-")
            return None
    return None


def _systemd_unit(leaf: str) -> Identity:
    for suffix, kind in ((".slice", "slice"), (".service", "service"), (".scope", "scope")):
        if leaf.endswith(suffix) and len(leaf) > len(suffix):
            return Identity(runtime="systemd", kind=kind, detail=leaf)
    return Identity(runtime="none", kind="other")


def _kubepods_index(parts: list[str]) -> int:
    """Index of the ``kubepods``, ``kubepods.slice`` or ``<prefix>-kubepods.slice`` component, or -1."""
    for i, p in enumerate(parts):
        if p in ("kubepods", "kubepods.slice") or p.endswith("-kubepods.slice"):
            return i
    return -1


def _qos_of(name: str) -> str:
    """QoS class named by a path component: ``burstable`` or ``kubepods-burstable.slice``; "" if none."""
    base = name[:-6] if name.endswith(".slice") else name
    tail = base.rsplit("-", 1)[-1]
    return _QOS_NAMES.get(tail, "")


def _pod_uid(name: str) -> str:
    """The pod uid in ``pod<uid>`` or ``kubepods-burstable-pod<uid_with_underscores>.slice``; "" if none."""
    base = name[:-6] if name.endswith(".slice") else name
    tail = base.rsplit("-pod", 1)[-1] if "-pod" in base else (base[3:] if base.startswith("pod") else "")
    if not tail or not _POD_UID.fullmatch("pod" + tail):
        return ""
    return tail.replace("_", "-")


def _kubernetes(parts: list[str]) -> Identity | None:
    k = _kubepods_index(parts)
    if k < 0:
        return None
    rest = parts[k + 1:]
    if not rest:
        kind = "slice" if parts[k].endswith(".slice") else "other"
        return Identity(runtime="kubernetes", kind=kind, detail=parts[k])
    qos = _qos_of(rest[0])
    if qos:
        rest = rest[1:]
        if not rest:
            return Identity(runtime="kubernetes", kind="qos", qos_class=qos)
    uid = _pod_uid(rest[0])
    if not uid:
        return Identity(runtime="kubernetes", kind="other", qos_class=qos or "", detail=rest[0])
    qos = qos or "guaranteed"
    rest = rest[1:]
    if not rest:
        return Identity(runtime="kubernetes", kind="pod", pod_uid=uid, qos_class=qos)
    leaf = rest[0]
    scoped = _container_scope(leaf)
    if scoped is not None:
        runtime, cid, conmon = scoped
        if conmon:
            return Identity(runtime=runtime, kind="scope", pod_uid=uid, qos_class=qos, detail=leaf)
        kind = "container" if len(rest) == 1 else "other"
        return Identity(runtime=runtime, kind=kind, container_id=cid, pod_uid=uid, qos_class=qos)
    # cgroupfs driver: the container cgroup is the bare id (docker, containerd) or crio-<id>.
    kind = "container" if len(rest) == 1 else "other"
    return Identity(runtime="kubernetes", kind=kind, container_id=leaf, pod_uid=uid, qos_class=qos)
