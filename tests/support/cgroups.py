"""Real, uniquely named test cgroups in every hierarchy of this host, removed again after the test."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field

from ctop.sources.cgroupfs_layout import CgroupLayout, detect_layout


@dataclass
class TestCgroup:
    """One test cgroup: ``path`` relative to every hierarchy root (e.g. ``/ctop-test-1a2b/busy``)."""

    layout: CgroupLayout
    path: str
    processes: list[subprocess.Popen] = field(default_factory=list)
    __test__ = False  # not a pytest test class

    def dirs(self) -> list[str]:
        """This cgroup's directory in every hierarchy it exists in."""
        roots = list(self.layout.controllers.values())
        if self.layout.unified:
            roots.append(self.layout.unified)
        return [r + self.path for r in roots if os.path.isdir(r + self.path)]

    def dir(self, controller: str) -> str:
        """The directory of this cgroup for a v1 controller, or the unified one for ``unified``."""
        root = self.layout.unified if controller == "unified" else self.layout.controllers[controller]
        assert root is not None
        return root + self.path

    def write(self, controller: str, name: str, value: str) -> None:
        with open(os.path.join(self.dir(controller), name), "w") as f:
            f.write(value)

    def read(self, controller: str, name: str) -> str:
        with open(os.path.join(self.dir(controller), name)) as f:
            return f.read()

    def spawn(self, args: list[str], **kwargs: object) -> subprocess.Popen:
        """Start a process that joins this cgroup (in every hierarchy) before it execs."""
        procs_files = [os.path.join(d, "cgroup.procs") for d in self.dirs()]

        def join() -> None:
            for f in procs_files:
                with open(f, "w") as fh:
                    fh.write("0")

        proc = subprocess.Popen(args, preexec_fn=join, **kwargs)
        self.processes.append(proc)
        return proc

    def child(self, name: str) -> TestCgroup:
        return make_cgroup(self.layout, f"{self.path}/{name}")

    def stop_processes(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)
        self.processes.clear()


def make_cgroup(layout: CgroupLayout, path: str) -> TestCgroup:
    cg = TestCgroup(layout, path)
    roots = list(layout.controllers.values()) + ([layout.unified] if layout.unified else [])
    for root in roots:
        os.makedirs(root + path, exist_ok=True)
    cpuset = layout.controllers.get("cpuset")
    if cpuset:  # a new v1 cpuset cgroup takes no task until it has CPUs and memory nodes: copy them down
        parts = path.strip("/").split("/")
        for depth in range(1, len(parts) + 1):
            level = cpuset + "/" + "/".join(parts[:depth])
            for name in ("cpuset.cpus", "cpuset.mems"):
                with open(os.path.join(level, name)) as current:
                    if current.read().strip():
                        continue
                with open(os.path.join(os.path.dirname(level), name)) as src, open(
                        os.path.join(level, name), "w") as dst:
                    dst.write(src.read().strip())
    return cg


def unique_name(prefix: str = "ctop-test") -> str:
    return f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def remove_tree(layout: CgroupLayout, path: str) -> None:
    """Remove a test cgroup and everything below it in every hierarchy, deepest first; kill leftover members."""
    roots = list(layout.controllers.values()) + ([layout.unified] if layout.unified else [])
    for root in roots:
        top = root + path
        if not os.path.isdir(top):
            continue
        dirs = [d for d, _, _ in os.walk(top)]
        for d in sorted(dirs, key=len, reverse=True):
            for _ in range(50):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    _kill_members(d)
                    time.sleep(0.1)


def _kill_members(cgroup_dir: str) -> None:
    try:
        with open(os.path.join(cgroup_dir, "cgroup.procs")) as f:
            pids = [int(p) for p in f.read().split()]
    except OSError:
        return
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def host_layout() -> CgroupLayout:
    return detect_layout("/sys/fs/cgroup")
