"""Benchmark: ctop's CPU time per refresh against systemd-cgtop's per iteration on a Kubernetes-shaped tree.

Builds ~1000 real cgroups (QoS classes, pods with a pause and two app containers, some busy) under a unique
prefix, then runs both tools side by side as subprocesses (same tree, same load) and notes each process's CPU
time whenever it has printed a refresh: the CPU between two refreshes well after start-up, divided by the
refreshes in between, is the cost of one refresh (see per_refresh_pair).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from support.cgroups import host_layout, make_cgroup, remove_tree  # noqa: E402
from support.env import ctop_command  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
WARMUP_REFRESHES = 4  # left out: start-up, eBPF loading, the first full reads
WINDOW_REFRESHES = 25  # measured


def build_tree(prefix: str, pods: int) -> tuple[int, list[subprocess.Popen]]:
    """QoS classes / pods / (pause + 2 containers): 4 cgroups per pod plus the class levels."""
    layout = host_layout()
    count = 0
    procs: list[subprocess.Popen] = []
    qos = ["", "/burstable", "/besteffort"]
    for q in qos:
        make_cgroup(layout, f"{prefix}/kubepods{q}")
        count += 1
    for i in range(pods):
        pod = f"{prefix}/kubepods{qos[i % 3]}/pod{uuid.uuid4()}"
        make_cgroup(layout, pod)
        count += 1
        for c in range(3):
            ctr = make_cgroup(layout, f"{pod}/{uuid.uuid4().hex}{uuid.uuid4().hex}")
            count += 1
            if c == 0 and i < 8:  # a few busy containers, capped so the machine stays usable
                ctr.write("cpu", "cpu.cfs_quota_us", "5000")
                procs.append(ctr.spawn(["sh", "-c", "while :; do :; done"]))
            elif c == 1 and i % 5 == 0:
                procs.append(ctr.spawn(["sleep", "3600"]))
    return count + 1, procs


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and all its threads so far (from /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class Refreshes:
    """Runs one tool and notes its CPU time each time it has printed a refresh (a line matching ``is_end``)."""

    def __init__(self, args: list[str], is_end: Callable[[bytes], bool]) -> None:
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.cpu_at_end: list[float] = []  # CPU seconds when refresh i had been printed
        self._is_end = is_end
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if self._is_end(line):
                try:
                    self.cpu_at_end.append(cpu_seconds(self.proc.pid))
                except OSError:
                    break

    def wait(self) -> None:
        self.proc.wait(timeout=600)
        self._thread.join(timeout=30)

    def per_refresh(self, skip: int) -> float:
        """CPU seconds per refresh between the end of refresh ``skip`` and the last one (start-up left out)."""
        ends = self.cpu_at_end
        if len(ends) <= skip + 1:
            raise RuntimeError(f"{self.proc.args[0]} printed only {len(ends)} refreshes")
        return (ends[-1] - ends[skip]) / (len(ends) - 1 - skip)


def ctop_refreshes(command: list[str], count: int) -> Refreshes:
    """``count`` refreshes of ctop (``command``: how to start it) at -d 1, one JSON line each."""
    return Refreshes([*command, "-b", "-n", str(count), "-d", "1", "--json"], lambda line: True)


def cgtop_refreshes(cgtop: str, count: int) -> Refreshes:
    """``count`` iterations of systemd-cgtop at -d 1 over the whole depth; it separates them with an empty line, and
    stdbuf makes it write line by line into the pipe."""
    return Refreshes(["stdbuf", "-oL", cgtop, "-b", "--raw", "-n", str(count), "-d", "1", "--depth=10"],
                     lambda line: not line.strip())


def per_refresh_pair(ctop: str, cgtop: str, skip: int = WARMUP_REFRESHES,
                     window: int = WINDOW_REFRESHES) -> tuple[float, float]:
    """Both tools side by side over the same tree at the same time: CPU seconds per refresh of each.

    Each tool's CPU time (all threads, from /proc/<pid>/stat) is noted whenever it has printed a refresh; the
    cost per refresh is the CPU spent between the end of refresh ``skip`` and the end of the last one, divided by
    the refreshes in between. Start-up (and eBPF loading) is left out, and no difference of two runs can go
    negative under load. A 1 s refresh (both tools' default), so ctop's periodic full re-reads are counted.
    """
    n = skip + window + 1
    tools = [ctop_refreshes([ctop], n), cgtop_refreshes(cgtop, n)]
    for tool in tools:
        tool.wait()
    return tools[0].per_refresh(skip), tools[1].per_refresh(skip)


def measure(ctop: str, cgtop: str, pods: int, repeats: int = 3) -> dict[str, object]:
    """Both tools' CPU per refresh over one freshly built tree of ``pods`` pods (4 cgroups each).

    The figures are the medians of ``repeats`` side-by-side runs; the ratio is the median of the runs' ratios.
    """
    prefix = f"/ctoph-sp-bench-{os.getpid()}-{pods}"
    layout = host_layout()
    procs: list[subprocess.Popen] = []
    try:
        count, procs = build_tree(prefix, pods)
        time.sleep(1)
        runs = [per_refresh_pair(ctop, cgtop) for _ in range(repeats)]
        rows = json.loads(subprocess.run([ctop, "-b", "-n", "1", "-d", "0.05", "--json"], capture_output=True,
                                         text=True, check=True).stdout)
    finally:
        for p in procs:
            p.kill()
            p.wait()
        remove_tree(layout, prefix)
    ctop_s = statistics.median(r[0] for r in runs)
    cgtop_s = statistics.median(r[1] for r in runs)
    return {
        "cgroups_built": count,
        "cgroups_on_host": len(rows),
        "ctop_cpu_ms_per_refresh": round(ctop_s * 1000, 2),
        "systemd_cgtop_cpu_ms_per_refresh": round(cgtop_s * 1000, 2),
        "ratio_ctop_to_cgtop": round(statistics.median(c / g for c, g in runs if g > 0), 3),
        "ratios_of_runs": [round(c / g, 3) for c, g in runs if g > 0],
        "ctop_fields_per_cgroup": max((len(r) for r in rows), default=0),
        "method": f"side by side, CPU of each process from /proc/<pid>/stat over {WINDOW_REFRESHES} refreshes "
                  f"after {WARMUP_REFRESHES}, median of {repeats} runs",
        "load_average": os.getloadavg(),
    }


def run(ctop: str | None = None, sizes: tuple[int, ...] = (25, 250, 1250)) -> dict[str, object]:
    """ctop against systemd-cgtop (which reads 5 figures per cgroup) at ~100, ~1000 and ~5000 cgroups."""
    ctop = ctop or ctop_command()
    cgtop = shutil.which("systemd-cgtop") or "/usr/bin/systemd-cgtop"
    return {f"{pods * 4 + 4}_cgroups": measure(ctop, cgtop, pods) for pods in sizes}


if __name__ == "__main__":
    wanted = tuple(int(a) for a in sys.argv[1:]) or (25, 250, 1250)
    print(json.dumps(run(sizes=wanted), indent=2))
