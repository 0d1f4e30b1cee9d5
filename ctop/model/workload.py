"""Workload keys: who a cgroup belongs to across restarts, so history and events follow the workload, not the cgroup.

A Docker or podman container keeps its name across restarts, a Kubernetes container its pod and container name,
a systemd unit its unit name; anything else is known by its cgroup path. One workload has many incarnations: a
cgroup (path and inode) each time it is (re)created.
"""

from __future__ import annotations

from .frame import Identity


def workload_key(identity: Identity, path: str) -> str:
    """A stable key for the workload owning ``path``: ``pod:ns/pod/container``, ``docker:name``, ``unit:name``,
    or ``cgroup:path``."""
    if identity.pod and identity.container:
        return f"pod:{identity.namespace}/{identity.pod}/{identity.container}"
    if identity.pod:
        return f"pod:{identity.namespace}/{identity.pod}"
    if identity.kind == "container" and identity.name:
        return f"{identity.runtime or 'container'}:{identity.name}"
    if identity.runtime == "systemd" and identity.name:
        return f"unit:{identity.name}"
    return f"cgroup:{path}"


def workload_name(identity: Identity, path: str) -> str:
    """What a person calls the workload: its container name, pod/container, unit, or the cgroup path."""
    if identity.pod and identity.container:
        return f"{identity.namespace}/{identity.pod}/{identity.container}"
    if identity.pod:
        return f"{identity.namespace}/{identity.pod}"
    return identity.name or path
