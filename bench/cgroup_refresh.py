"""Benchmark: ctop's CPU time per refresh against systemd-cgtop's per iteration on a Kubernetes-shaped tree.

Builds ~1000 real cgroups (QoS classes, pods with a pause and two app containers, some busy) under a unique
prefix, then runs both tools as subprocesses with a short and a long iteration count: the difference of their
CPU times divided by the difference of iterations is the cost of one refresh, with start-up cancelled out.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from support.cgroups import host_layout, make_cgroup, remove_tree  # noqa: E402
from support.env import ctop_command  # noqa: E402


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


def child_cpu_seconds(args: list[str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=600)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def per_refresh(make_args, short: int = 2, long: int = 12, repeats: int = 2) -> float:
    """CPU seconds of one refresh: (cpu(long) - cpu(short)) / (long - short), best of ``repeats``."""
    results = []
    for _ in range(repeats):
        results.append((child_cpu_seconds(make_args(long)) - child_cpu_seconds(make_args(short))) / (long - short))
    return min(results)


def measure(ctop: str, cgtop: str, pods: int) -> dict[str, object]:
    """Both tools' CPU per refresh over one freshly built tree of ``pods`` pods (4 cgroups each)."""
    prefix = f"/ctop-bench-{os.getpid()}-{pods}"
    layout = host_layout()
    procs: list[subprocess.Popen] = []
    try:
        count, procs = build_tree(prefix, pods)
        time.sleep(1)
        # A 1 s refresh (both tools' default) over 10 s, so that ctop's periodic full re-reads are counted.
        ctop_s = per_refresh(lambda n: [ctop, "-b", "-n", str(n), "-d", "1", "--json"])
        cgtop_s = per_refresh(lambda n: [cgtop, "-b", "--raw", "-n", str(n), "-d", "1", "--depth=10"])
        rows = json.loads(subprocess.run([ctop, "-b", "-n", "1", "-d", "0.05", "--json"], capture_output=True,
                                         text=True, check=True).stdout)
    finally:
        for p in procs:
            p.kill()
            p.wait()
        remove_tree(layout, prefix)
    return {
        "cgroups_built": count,
        "cgroups_on_host": len(rows),
        "ctop_cpu_ms_per_refresh": round(ctop_s * 1000, 2),
        "systemd_cgtop_cpu_ms_per_refresh": round(cgtop_s * 1000, 2),
        "ratio_ctop_to_cgtop": round(ctop_s / cgtop_s, 3) if cgtop_s > 0 else None,
        "ctop_fields_per_cgroup": max((len(r) for r in rows), default=0),
    }


def run(ctop: str | None = None, sizes: tuple[int, ...] = (25, 250, 1250)) -> dict[str, object]:
    """ctop against systemd-cgtop (which reads 5 figures per cgroup) at ~100, ~1000 and ~5000 cgroups."""
    ctop = ctop or ctop_command()
    cgtop = shutil.which("systemd-cgtop") or "/usr/bin/systemd-cgtop"
    return {f"{pods * 4 + 4}_cgroups": measure(ctop, cgtop, pods) for pods in sizes}


if __name__ == "__main__":
    wanted = tuple(int(a) for a in sys.argv[1:]) or (25, 250, 1250)
    print(json.dumps(run(sizes=wanted), indent=2))
