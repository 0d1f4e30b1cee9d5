"""Finds which cgroup hierarchies a host has (v1, v2 or hybrid) and where each controller is mounted."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

from ..errors import NoCgroupsError

Mode = Literal["v1", "v2", "hybrid"]

# v1 controllers ctop reads, in the order they are looked for.
V1_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "blkio", "pids")


@dataclass(frozen=True)
class CgroupLayout:
    """Where the hierarchies of one host live.

    ``unified`` is the cgroup2 mount (the whole tree on v2, ``/sys/fs/cgroup/unified`` on hybrid hosts);
    ``controllers`` maps each v1 controller to its mount (empty on pure v2); ``systemd`` is the v1
    ``name=systemd`` hierarchy, when there is one.
    """

    mode: Mode
    root: str
    unified: str | None = None
    controllers: dict[str, str] = field(default_factory=dict)
    systemd: str | None = None

    def v1(self, controller: str) -> str | None:
        """Mount point of a v1 controller, or None."""
        return self.controllers.get(controller)

    def describe(self) -> str:
        """One line for humans: the mode and the mount points."""
        parts = [f"cgroup {self.mode} at {self.root}"]
        if self.unified:
            parts.append(f"unified={self.unified}")
        if self.controllers:
            parts.append("v1=" + ",".join(sorted(self.controllers)))
        return "; ".join(parts)


def _is_v2_root(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "cgroup.controllers"))


def _is_v1_root(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "cgroup.procs")) and not _is_v2_root(path)


def detect_layout(root: str = "/sys/fs/cgroup") -> CgroupLayout:
    """Detect the layout under ``root`` from the directory structure (works on live hosts and recorded trees)."""
    if not os.path.isdir(root):
        raise NoCgroupsError(f"No cgroup filesystem at {root}: mount cgroupfs there or pass --cgroup-root.")
    if _is_v2_root(root):
        return CgroupLayout(mode="v2", root=root, unified=root)
    controllers: dict[str, str] = {}
    for name in V1_CONTROLLERS:
        path = os.path.join(root, name)
        if _is_v1_root(path):
            controllers[name] = path
    unified = None
    for candidate in ("unified", "cgroup2"):
        path = os.path.join(root, candidate)
        if _is_v2_root(path):
            unified = path
            break
    systemd = os.path.join(root, "systemd")
    systemd_path = systemd if _is_v1_root(systemd) else None
    if not controllers:
        if unified:
            return CgroupLayout(mode="v2", root=root, unified=unified, systemd=systemd_path)
        raise NoCgroupsError(f"No cgroup hierarchy found under {root}: is cgroupfs mounted there?")
    mode: Mode = "hybrid" if unified else "v1"
    return CgroupLayout(mode=mode, root=root, unified=unified, controllers=controllers, systemd=systemd_path)
