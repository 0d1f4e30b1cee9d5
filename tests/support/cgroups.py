"""Real, uniquely named test cgroups in every hierarchy of this host (hybrid, pure v2, pure v1), removed afterwards."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
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
        """This cgroup's directory in every hierarchy it exists in (co-mounted controllers, e.g. v1's
        ``cpu,cpuacct``, counted once)."""
        return [r + self.path for r in hierarchy_roots(self.layout) if os.path.isdir(r + self.path)]

    def dir(self, controller: str) -> str:
        """The directory of this cgroup in the hierarchy holding ``controller`` (its v1 mount where there is one,
        else the unified one); ``unified`` asks for the cgroup2 directory, which a pure v1 host has not."""
        return controller_root(self.layout, controller) + self.path

    def write(self, controller: str, name: str, value: str) -> None:
        with open(os.path.join(self.dir(controller), name), "w") as f:
            f.write(value)

    def read(self, controller: str, name: str) -> str:
        with open(os.path.join(self.dir(controller), name)) as f:
            return f.read()

    def is_v1(self, controller: str) -> bool:
        """Whether ``controller`` is a v1 hierarchy here (its files are then v1-named)."""
        return controller in self.layout.controllers

    def limit_cpu(self, quota_us: int, period_us: int = 100000) -> None:
        """A CFS quota: ``cpu.cfs_period_us``/``cpu.cfs_quota_us`` on v1, ``cpu.max`` on v2."""
        if self.is_v1("cpu"):
            self.write("cpu", "cpu.cfs_period_us", str(period_us))
            self.write("cpu", "cpu.cfs_quota_us", str(quota_us))
        else:
            self.write("cpu", "cpu.max", f"{quota_us} {period_us}")

    def limit_memory(self, limit_bytes: int) -> None:
        """A hard memory limit: ``memory.limit_in_bytes`` on v1, ``memory.max`` on v2."""
        self.write("memory", "memory.limit_in_bytes" if self.is_v1("memory") else "memory.max", str(limit_bytes))

    def limit_pids(self, pids_max: int) -> None:
        self.write("pids", "pids.max", str(pids_max))

    def kernel_working_set(self) -> int:
        """The kernel's usage less inactive file pages (hierarchical), as kubelet and cAdvisor compute it."""
        stat = dict(line.split() for line in self.read("memory", "memory.stat").splitlines())
        if self.is_v1("memory"):
            return int(self.read("memory", "memory.usage_in_bytes")) - int(stat["total_inactive_file"])
        return int(self.read("memory", "memory.current")) - int(stat["inactive_file"])

    def oom_kills(self) -> int:
        """The kernel's OOM kill count of this cgroup (``memory.oom_control`` on v1, ``memory.events`` on v2)."""
        return oom_kills_in(self.dir("memory"), self.is_v1("memory"))

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


def hierarchy_roots(layout: CgroupLayout) -> list[str]:
    """The mount of every hierarchy tests make cgroups in: the v1 controllers' and the unified one, each
    directory once (pure v1 mounts ``cpu`` and ``cpuacct`` as links to one ``cpu,cpuacct`` hierarchy)."""
    roots = list(layout.controllers.values()) + ([layout.unified] if layout.unified else [])
    seen: set[str] = set()
    unique_roots = []
    for root in roots:
        real = os.path.realpath(root)
        if real not in seen:
            seen.add(real)
            unique_roots.append(root)
    return unique_roots


def controller_root(layout: CgroupLayout, controller: str) -> str:
    """The mount of the hierarchy holding ``controller``: its v1 one, else the unified one (pure v2, or a
    controller hybrid hosts give to cgroup2); ``unified`` (or "") names the cgroup2 mount itself."""
    if controller not in ("unified", "") and controller in layout.controllers:
        return layout.controllers[controller]
    if layout.unified is None:
        raise LookupError(f"this pure v1 host has no {controller or 'unified'!r} hierarchy")
    if controller not in ("unified", "") and layout.mode != "v2":
        raise LookupError(f"no {controller!r} v1 hierarchy on this {layout.mode} host")
    return layout.unified


def oom_kills_in(cgroup_dir: str, v1: bool) -> int:
    """``oom_kill`` of a memory cgroup directory: from ``memory.oom_control`` (v1) or ``memory.events`` (v2)."""
    with open(os.path.join(cgroup_dir, "memory.oom_control" if v1 else "memory.events")) as f:
        return int(dict(line.split() for line in f.read().splitlines())["oom_kill"])


def _enable_v2_controllers(layout: CgroupLayout, path: str) -> None:
    """On pure v2, delegate cpu, memory and pids down to ``path``'s ancestors (v1 has them in every cgroup); an
    ancestor holding processes cannot delegate (no internal processes): that is left to the kernel's answer."""
    if layout.mode != "v2" or layout.unified is None:
        return
    parts = path.strip("/").split("/")
    for depth in range(len(parts)):
        level = layout.unified + ("/" + "/".join(parts[:depth]) if depth else "")
        with open(os.path.join(level, "cgroup.controllers")) as f:
            available = set(f.read().split())
        for controller in ("cpu", "memory", "pids"):
            if controller not in available:
                continue
            try:
                with open(os.path.join(level, "cgroup.subtree_control"), "w") as f:
                    f.write("+" + controller)
            except OSError:
                pass


def make_cgroup(layout: CgroupLayout, path: str) -> TestCgroup:
    cg = TestCgroup(layout, path)
    for root in hierarchy_roots(layout):
        os.makedirs(root + path, exist_ok=True)
    _enable_v2_controllers(layout, path)
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


@contextlib.contextmanager
def fresh_cgroup(prefix: str = "ctop-test") -> Iterator[TestCgroup]:
    """A fresh cgroup named ``<prefix>-...`` in every hierarchy of this host; its processes and tree removed after."""
    layout = host_layout()
    cg = make_cgroup(layout, "/" + unique_name(prefix))
    try:
        yield cg
    finally:
        cg.stop_processes()
        remove_tree(layout, cg.path)


def unique_name(prefix: str = "ctop-test") -> str:
    return f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def remove_tree(layout: CgroupLayout, path: str) -> None:
    """Remove a test cgroup and everything below it in every hierarchy, deepest first; kill leftover members."""
    for root in hierarchy_roots(layout):
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


def cpu_usage_ns(layout: CgroupLayout, path: str) -> int:
    """The kernel's hierarchical CPU time of a cgroup: ``cpuacct.usage`` on v1, ``usage_usec`` of ``cpu.stat``."""
    if "cpuacct" in layout.controllers:
        with open(layout.controllers["cpuacct"] + path + "/cpuacct.usage") as f:
            return int(f.read())
    with open(controller_root(layout, "unified") + path + "/cpu.stat") as f:
        return int(dict(line.split() for line in f.read().splitlines())["usage_usec"]) * 1000


def memory_limit(layout: CgroupLayout, path: str) -> int | None:
    """A cgroup's memory limit in bytes (``memory.limit_in_bytes`` on v1, ``memory.max`` on v2; None: "max")."""
    v1 = "memory" in layout.controllers
    with open(controller_root(layout, "memory") + path + ("/memory.limit_in_bytes" if v1 else "/memory.max")) as f:
        text = f.read().strip()
    return None if text == "max" else int(text)
