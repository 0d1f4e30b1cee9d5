"""ctop on this machine's real cgroups: CPU against a quota and systemd-cgtop, memory against the kernel, churn."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest
from support.cgroups import TestCgroup, remove_tree
from support.env import ctop_command, need_binary, need_root

from ctop.collector import Collector, CollectorConfig

pytestmark = pytest.mark.system

BUSY = [sys.executable, "-c", "while True: pass"]


def frame_after(collector: Collector, seconds: float):
    collector.collect()
    time.sleep(seconds)
    return collector.collect()


def cgtop_cpu(path: str, seconds: float) -> float:
    """CPU % of one cgroup from ``systemd-cgtop -b`` over ``seconds`` (its second iteration)."""
    cgtop = need_binary("systemd-cgtop")
    out = subprocess.run([cgtop, "-b", "--raw", "-n", "2", "-d", str(seconds), "--depth=1", path],
                         capture_output=True, text=True, timeout=seconds * 4 + 10).stdout
    # systemd-cgtop prints the path it was given with an extra leading slash ("//name").
    rows = [line.split() for line in out.splitlines() if line.split()]
    values = [r[2] for r in rows if r[0].lstrip("/") == path.lstrip("/")]
    assert len(values) == 2, out
    return float(values[-1])


def test_cpu_quota_and_busy_loop_agree_with_systemd_cgtop(test_cgroup: TestCgroup) -> None:
    test_cgroup.limit_cpu(20000, 100000)
    test_cgroup.spawn(BUSY)
    time.sleep(0.5)
    results: dict[str, float] = {}
    cgtop = threading.Thread(target=lambda: results.update(cgtop=cgtop_cpu(test_cgroup.path, 3.0)))
    cgtop.start()
    ctop = subprocess.run([ctop_command(), "-b", "--json", "-n", "1", "-d", "3"], capture_output=True, text=True,
                          timeout=60)
    cgtop.join()
    assert ctop.returncode == 0, ctop.stderr
    row = {r["id"]: r for r in json.loads(ctop.stdout)}[test_cgroup.path]
    assert row["cpu_limit_cores"] == 0.2
    assert abs(row["cpu_percent"] - 20) <= 3, row
    assert row["throttled_percent"] > 50
    assert abs(row["cpu_percent"] - results["cgtop"]) <= 3, (row["cpu_percent"], results["cgtop"])


def test_working_set_of_64_mib_matches_the_kernel(test_cgroup: TestCgroup) -> None:
    script = ("import sys, time\nsys.stdin.readline()\nb = bytearray(64 << 20)\n"
              "for i in range(0, len(b), 4096): b[i] = 1\nprint('done', flush=True)\ntime.sleep(60)\n")
    proc = test_cgroup.spawn([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    collector = Collector(CollectorConfig())
    time.sleep(0.5)
    baseline = collector.snapshot().cgroups[test_cgroup.path].working_set_bytes
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == "done"
    sample = collector.snapshot().cgroups[test_cgroup.path]
    kernel_ws = test_cgroup.kernel_working_set()
    assert baseline is not None and sample.working_set_bytes is not None
    assert abs(sample.working_set_bytes - kernel_ws) <= 0.10 * kernel_ws
    expected = baseline + (64 << 20)
    assert abs(sample.working_set_bytes - expected) <= 0.10 * expected, (sample.working_set_bytes, expected)


def test_memory_and_pids_limits_are_exact(test_cgroup: TestCgroup) -> None:
    test_cgroup.limit_memory(100 << 20)
    test_cgroup.limit_pids(77)
    sample = Collector(CollectorConfig()).snapshot().cgroups[test_cgroup.path]
    assert sample.memory_limit_bytes == 100 << 20
    assert sample.pids_max == 77


def test_cgroups_deleted_during_refresh_cause_no_error(test_cgroup: TestCgroup) -> None:
    children = [test_cgroup.child(f"c{i}") for i in range(150)]
    collector = Collector(CollectorConfig())
    stop = threading.Event()

    def delete_all() -> None:
        for child in children:
            remove_tree(test_cgroup.layout, child.path)
        stop.set()

    deleter = threading.Thread(target=delete_all)
    deleter.start()
    frames = 0
    while not stop.is_set() or frames < 3:
        collector.collect()
        frames += 1
    deleter.join()
    final = collector.collect()
    assert frames >= 3
    assert not [p for p in final.rows if p.startswith(test_cgroup.path + "/")]
    assert test_cgroup.path in final.rows


def test_recreated_cgroup_has_no_delta(test_cgroup: TestCgroup) -> None:
    child = test_cgroup.child("again")
    proc = child.spawn(BUSY)
    collector = Collector(CollectorConfig())
    time.sleep(0.5)
    collector.collect()
    proc.kill()
    proc.wait()
    child.processes.clear()
    remove_tree(test_cgroup.layout, child.path)
    test_cgroup.child("again")
    row = collector.collect().rows[child.path]
    assert row.cpu_percent is None


def test_ctop_runs_from_any_directory_and_as_a_user() -> None:
    need_root()
    ctop = ctop_command()
    out = subprocess.run([ctop, "-b", "--json", "-n", "1", "-d", "0.2"], cwd="/", capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)[0]["id"]
    as_nobody = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ctop, "-b", "--json",
                                "-n", "1", "-d", "0.2"], cwd="/", capture_output=True, text=True, timeout=60,
                               env={**os.environ, "HOME": "/"})
    assert as_nobody.returncode == 0, as_nobody.stderr
    assert "/" in {r["id"] for r in json.loads(as_nobody.stdout)}
