"""Pod and container names from the kubelet's log directories (/var/log/pods, /var/log/containers)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

# /var/log/containers/<pod>_<namespace>_<container>-<64 hex id>.log
_CONTAINER_LOG = re.compile(r"^([^_]+)_([^_]+)_(.+)-([0-9a-f]{64})\.log$")


@dataclass(frozen=True)
class KubeletLogIndex:
    """pod uid -> (namespace, pod, container names) and container id -> (namespace, pod, container)."""

    pods: dict[str, tuple[str, str, tuple[str, ...]]] = field(default_factory=dict)
    containers: dict[str, tuple[str, str, str]] = field(default_factory=dict)


def scan(host_root: str = "/") -> KubeletLogIndex:
    """Read both directories once; missing or odd entries are skipped."""
    pods: dict[str, tuple[str, str, tuple[str, ...]]] = {}
    pods_dir = os.path.join(host_root, "var/log/pods")
    for entry in _listdir(pods_dir):
        parts = entry.split("_")
        if len(parts) != 3 or not all(parts):
            continue
        namespace, pod, uid = parts
        names = tuple(sorted(n for n in _listdir(os.path.join(pods_dir, entry))
                             if os.path.isdir(os.path.join(pods_dir, entry, n))))
        pods[uid] = (namespace, pod, names)
    containers: dict[str, tuple[str, str, str]] = {}
    for entry in _listdir(os.path.join(host_root, "var/log/containers")):
        m = _CONTAINER_LOG.match(entry)
        if m:
            pod, namespace, container, cid = m.groups()
            containers[cid] = (namespace, pod, container)
    return KubeletLogIndex(pods=pods, containers=containers)


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []
