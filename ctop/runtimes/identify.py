"""Recognises runtime, container id, pod uid, QoS class and kind from a cgroup path alone (pure, no I/O)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Runtimes a path can reveal. "kubernetes" means a kubelet-shaped path whose runtime the path does not say
# (cgroupfs driver: /kubepods/.../pod<uid>/<id>); the metadata service tells the real one.
# "lxc", "nspawn" and "libvirt" are told by their path; "runc" (plain runc by id) by its state files, and
# "unshare" (a cgroup whose processes run in their own pid or network namespace, with no runtime) by /proc.
RUNTIMES = ("docker", "containerd", "cri-o", "podman", "systemd", "kubernetes", "lxc", "nspawn", "libvirt", "runc",
            "unshare", "none")
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
# podman pods: `/libpod_parent/<pod id>` (cgroupfs manager) or `machine-libpod_pod_<pod id>.slice` (systemd;
# `user-libpod_pod_<id>.slice` rootless).
_PODMAN_POD_SLICE = re.compile(r"(?:[a-z]+-)?libpod_pod_([0-9a-f]{12,64})\.slice")
PODMAN_CGROUPFS_PARENT = "libpod_parent"
# LXC 4+: `lxc.payload.<name>` holds the container, `lxc.monitor.<name>` its monitor process.
_LXC_PAYLOAD = "lxc.payload."
_LXC_MONITOR = "lxc.monitor."
# systemd-machined scopes: `machine-<name>.scope` (systemd-nspawn), `machine-qemu\x2d<n>\x2d<name>.scope` (libvirt).
_MACHINE_SCOPE = re.compile(r"machine-(.+)\.scope")
_LIBVIRT_MACHINE = re.compile(r"(qemu|lxc)-\d+-(.+)")
_UNIT_ESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})")
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
    # A name the path itself gives (an LXC container or machine name, "conmon"); "" when it gives none.
    name: str = ""


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
    pod_id = _podman_pod_id(parts[:-1])
    scoped = _container_scope(leaf)
    if scoped is not None:
        runtime, cid, conmon = scoped
        if conmon:
            return Identity(runtime=runtime, kind="scope", detail=leaf, pod_uid=pod_id, name="conmon")
        return Identity(runtime=runtime, kind="container", container_id=cid, pod_uid=pod_id)
    # A cgroup below a container scope (podman/crun's `libpod-<id>.scope/container`, nested docker).
    for i in range(len(parts) - 2, -1, -1):
        outer = _container_scope(parts[i])
        if outer is not None and not outer[2]:
            return Identity(runtime=outer[0], kind="other", container_id=outer[1], detail=leaf,
                            pod_uid=_podman_pod_id(parts[:i]))
    if len(parts) >= 2 and parts[-2] == "docker" and _HEXID.fullmatch(leaf):
        return Identity(runtime="docker", kind="container", container_id=leaf)
    other = _podman(parts, pod_id) or _lxc(parts) or _machine(parts)
    if other is not None:
        return other
    if len(parts) >= 2:
        parent = parts[-2]
        if parent.startswith(PODMAN_CGROUPFS_PARENT):
            return Identity(runtime="podman", kind="container", container_id=leaf)
        if len(parts) == 2 and (parent in CONTAINERD_NAMESPACES or _HEX64.fullmatch(leaf)):
            return Identity(runtime="containerd", kind="container", container_id=leaf, detail=parent)
    if leaf == "docker" and len(parts) == 1:
        return Identity(runtime="docker", kind="other", detail=leaf)
    return _systemd_unit(leaf)


def _podman_pod_id(parents: list[str]) -> str:
    """The podman pod id the nearest pod cgroup among ``parents`` names; "" outside a pod."""
    for i in range(len(parents) - 1, -1, -1):
        m = _PODMAN_POD_SLICE.fullmatch(parents[i])
        if m:
            return m.group(1)
        if i >= 1 and parents[i - 1] == PODMAN_CGROUPFS_PARENT and _HEX64.fullmatch(parents[i]):
            return parents[i]
    return ""


def _podman(parts: list[str], pod_id: str) -> Identity | None:
    """A podman pod cgroup or a conmon cgroup (`/libpod_parent/conmon`, `/libpod_parent/<pod id>/conmon`)."""
    leaf = parts[-1]
    m = _PODMAN_POD_SLICE.fullmatch(leaf)
    if m:
        return Identity(runtime="podman", kind="pod", pod_uid=m.group(1), detail=leaf)
    if len(parts) >= 2 and parts[-2] == PODMAN_CGROUPFS_PARENT and _HEX64.fullmatch(leaf):
        return Identity(runtime="podman", kind="pod", pod_uid=leaf, detail=leaf)
    if leaf == "conmon" and (pod_id or (len(parts) >= 2 and parts[-2] == PODMAN_CGROUPFS_PARENT)):
        return Identity(runtime="podman", kind="other", pod_uid=pod_id, detail=leaf, name="conmon")
    if pod_id:
        return Identity(runtime="podman", kind="other", pod_uid=pod_id, detail=leaf)
    return None


def _lxc(parts: list[str]) -> Identity | None:
    """An LXC container (`lxc.payload.<name>`, or a cgroup below it) or its monitor (`lxc.monitor.<name>`)."""
    for i, part in enumerate(parts):
        if part.startswith(_LXC_PAYLOAD) and len(part) > len(_LXC_PAYLOAD):
            name = part[len(_LXC_PAYLOAD):]
            kind = "container" if i == len(parts) - 1 else "other"
            return Identity(runtime="lxc", kind=kind, container_id=name, name=name, detail=parts[-1])
        if part.startswith(_LXC_MONITOR) and len(part) > len(_LXC_MONITOR):
            return Identity(runtime="lxc", kind="other", name=part, detail=parts[-1])
    return None


def unescape_unit(name: str) -> str:
    """A systemd unit name part with its \\xNN escapes decoded (`qemu\\x2d1\\x2dvm` -> `qemu-1-vm`)."""
    return _UNIT_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), name)


def _machine(parts: list[str]) -> Identity | None:
    """A systemd-machined machine (`machine-<name>.scope`: systemd-nspawn, or libvirt's `machine-qemu\\x2d...`)."""
    for i, part in enumerate(parts):
        m = _MACHINE_SCOPE.fullmatch(part)
        if not m:
            continue
        name = unescape_unit(m.group(1))
        runtime = "nspawn"
        lv = _LIBVIRT_MACHINE.fullmatch(name)
        if lv:
            runtime, name = "libvirt", lv.group(2)
        kind = "container" if i == len(parts) - 1 else "other"
        return Identity(runtime=runtime, kind=kind, container_id=name, name=name, detail=parts[-1])
    return None


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
