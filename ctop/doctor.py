"""``ctop doctor``: checks what ctop needs on this node, one line per check with what to do about a problem."""

from __future__ import annotations

import os
import platform
import socket
from dataclasses import dataclass

from .errors import CtopError
from .model.notices import NOT_ROOT
from .runtimes.local_state import LXC_DEFAULT_PATH, MACHINES_DIR, RUNC_ROOTS
from .runtimes.oci_config import CONTAINERD_TASK_DIRS
from .runtimes.podman_state import system_roots
from .sources import inotify
from .sources.cgroupfs_layout import detect_layout
from .sources.readfile import read_bytes

DOCKER_SOCKET = "/var/run/docker.sock"
DOCKER_DATA = "/var/lib/docker"


@dataclass(frozen=True)
class Check:
    """One check: ``status`` is ok, warn (ctop runs with less) or fail (ctop cannot run)."""

    status: str
    name: str
    message: str


def check_root() -> Check:
    if os.geteuid() == 0:
        return Check("ok", "root", "running as root")
    return Check("warn", "root", NOT_ROOT.sentence)


def check_cgroups(cgroup_root: str) -> Check:
    try:
        layout = detect_layout(cgroup_root)
    except CtopError as e:
        return Check("fail", "cgroups", str(e))
    return Check("ok", "cgroups", layout.describe())


def check_inotify() -> Check:
    """How new and removed cgroups, and writes to cgroup files, are found: inotify events, within ctop's share of the
    watch limit, or stats and periodic reads."""
    budget = inotify.WatchBudget()
    try:
        inotify.Inotify(budget).close()
    except OSError as e:
        return Check("warn", "inotify", f"unavailable ({e.strerror}): new cgroups are found with one stat per cgroup "
                                        "each refresh, and limits set show within 10 s instead of at the next "
                                        "refresh; raise fs.inotify.max_user_instances")
    if budget.total < 1024:
        return Check("warn", "inotify", f"ctop takes at most {budget.total} watches (an eighth of "
                                        "fs.inotify.max_user_watches): beyond that many cgroups it finds new ones "
                                        "with one stat per cgroup and sees limits set within 10 s instead of at "
                                        "the next refresh; raise fs.inotify.max_user_watches")
    return Check("ok", "inotify", f"new cgroups and files written (limits set, processes moved in) found from inotify "
                                  f"events, with up to {budget.total} watches (an eighth of "
                                  "fs.inotify.max_user_watches)")


def check_proc(proc_root: str) -> Check:
    if read_bytes(proc_root + "/stat") is None:
        return Check("fail", "procfs", f"cannot read {proc_root}/stat: mount procfs there or pass --proc-root")
    return Check("ok", "procfs", f"{proc_root} readable")


def check_psi(cgroup_root: str) -> Check:
    for candidate in (cgroup_root + "/cpu.pressure", cgroup_root + "/unified/cpu.pressure", "/proc/pressure/cpu"):
        if os.path.exists(candidate):
            if read_bytes(candidate) is not None:
                return Check("ok", "psi", f"pressure stall information enabled ({candidate})")
            return Check("warn", "psi", "PSI is compiled in but disabled: boot with psi=1 for pressure columns")
    return Check("warn", "psi", "no PSI files: the kernel lacks CONFIG_PSI; pressure columns stay empty")


def check_tracefs() -> Check:
    for path in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"):
        if os.path.isdir(path + "/events"):
            return Check("ok", "tracefs", f"mounted ({path})")
        if os.path.ismount(path) and not os.access(path, os.R_OK | os.X_OK):
            return Check("warn", "tracefs", f"{path} is readable by root only: run ctop with sudo for eBPF fields")
    return Check("warn", "tracefs", "tracefs not mounted: run 'mount -t tracefs nodev /sys/kernel/tracing' "
                                    "(ctop mounts it itself when run as root)")


def check_bcc() -> Check:
    try:
        import bcc  # noqa: F401
    except Exception:
        return Check("warn", "bcc", "bcc is not importable: install python3-bpfcc (apt) to enable eBPF fields")
    return Check("ok", "bcc", "bcc importable")


def check_headers() -> Check:
    release = platform.release()
    build = f"/lib/modules/{release}/build"
    if os.path.isdir(build):
        return Check("ok", "kernel headers", f"{build} present")
    trees = sorted(d for d in os.listdir("/usr/src") if d.startswith("linux-headers-")) if os.path.isdir(
        "/usr/src") else []
    if trees:
        return Check("ok", "kernel headers", f"no headers for {release}; ctop builds a tree from "
                                             f"{', '.join(trees)} (tracepoint arguments only)")
    return Check("warn", "kernel headers", "no kernel headers: install linux-headers-amd64 (or your kernel's) "
                                           "to enable eBPF fields")


def check_btf() -> Check:
    if os.path.exists("/sys/kernel/btf/vmlinux"):
        return Check("ok", "btf", "/sys/kernel/btf/vmlinux present")
    return Check("warn", "btf", "no kernel BTF: eBPF still works on tracepoint arguments only")


def check_docker(path: str = DOCKER_SOCKET, data: str = DOCKER_DATA) -> Check:
    """Docker containers are named through the Engine API: does its socket answer?"""
    if not os.path.exists(path):
        if os.path.isdir(data):
            return Check("warn", "docker", f"{data} exists but no socket at {path}: Docker containers will show "
                                           "without names (is dockerd running? --docker-socket for another path)")
        return Check("ok", "docker", "no Docker on this node")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(1.0)
            s.connect(path)
    except OSError as e:
        return Check("warn", "docker", f"socket {path} does not accept connections ({e.strerror}): Docker "
                                       "containers will show without names; is dockerd running?")
    return Check("ok", "docker", f"named through the Engine API at {path}")


def check_state_files(runtime: str, dirs: tuple[str, ...]) -> Check:
    """containerd, CRI-O, podman, LXC, runc and machined's machines are named from their own state files, with no
    daemon asked."""
    found = [d for d in dirs if os.path.isdir(d)]
    if not found:
        return Check("ok", runtime, f"no {runtime} state on this node ({', '.join(dirs)})")
    if not all(os.access(d, os.R_OK | os.X_OK) for d in found):
        return Check("warn", runtime, f"cannot read {', '.join(found)}: {runtime} containers will show without "
                                      "names; run ctop as root")
    return Check("ok", runtime, f"named from state files in {', '.join(found)}")


def run_checks(cgroup_root: str = "/sys/fs/cgroup", proc_root: str = "/proc") -> list[Check]:
    """Every check, in the order they are printed."""
    ebpf = _ebpf_checks()
    covered = {c.name.lower() for c in ebpf}  # the eBPF checks say more about these, when they ran
    basic = [c for c in (check_tracefs(), check_bcc(), check_headers(), check_btf()) if c.name.lower() not in covered]
    checks = [check_root(), check_cgroups(cgroup_root), check_inotify(), check_proc(proc_root), check_psi(cgroup_root),
              *basic]
    checks.extend(c for c in ebpf if c.name.lower() != "root")
    checks.append(check_docker())
    checks.append(check_state_files("containerd", CONTAINERD_TASK_DIRS))
    storage = tuple(dict.fromkeys(d for r in system_roots() for d in (r.run, r.graph)))
    checks.append(check_state_files("cri-o/podman", storage))
    checks.append(check_state_files("lxc", (LXC_DEFAULT_PATH,)))
    checks.append(check_state_files("runc", RUNC_ROOTS))
    checks.append(check_state_files("nspawn/libvirt", (MACHINES_DIR,)))
    checks.append(Check("ok", "namespaces", "cgroups whose processes run in their own pid or network namespace "
                                            "show as containers of runtime unshare, named by their cgroup"))
    return checks


def _ebpf_checks() -> list[Check]:
    """eBPF readiness and cost, from the eBPF package when it is present."""
    try:
        from .ebpf.doctor import doctor_checks
    except ImportError:
        return []
    if os.geteuid() != 0:
        return []  # check_root has said it: eBPF needs root, and ctop runs without it
    try:
        # eBPF only adds fields: a failed eBPF check is a warning, never "ctop cannot run".
        return [Check("warn" if status == "fail" else status, name, message)
                for status, name, message in doctor_checks()]
    except Exception as e:  # a broken eBPF check must not hide the others
        return [Check("warn", "ebpf", f"eBPF check failed: {e}")]


def can_run(checks: list[Check]) -> bool:
    return not any(c.status == "fail" for c in checks)
