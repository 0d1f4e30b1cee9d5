"""Who preempts a light cgroup pinned to the CPU of two busy ones: named in `ctop -b --json` and in the detail view."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
from support.cgroups import TestCgroup
from support.ebpf import BUSY_LOOP, WEB_LIKE
from support.env import ctop_command, need, need_root
from support.tmux import tmux_session

pytestmark = pytest.mark.system

REFRESHES_ALLOWED = 5  # at -d 1: the culprit is named within 5 s of the first frame carrying eBPF values


@pytest.fixture
def neighbours(test_cgroup: TestCgroup) -> Iterator[tuple[TestCgroup, TestCgroup, TestCgroup]]:
    """web, batch1 and batch2, every task pinned to CPU 0: batch1 and batch2 each run a busy loop."""
    need_root()
    need(shutil.which("taskset"), "taskset")
    need((os.cpu_count() or 1) >= 2, "two CPUs")
    # A heavy weight for the test's parent cgroup: on a shared machine, the host's own busy tasks on CPU 0 would
    # otherwise take turns with the three as often as they take turns with each other.
    if test_cgroup.layout.v1("cpu"):
        test_cgroup.write("cpu", "cpu.shares", "10240")
    else:
        need(os.path.exists(os.path.join(test_cgroup.dir("unified"), "cpu.weight")), "the cpu controller")
        test_cgroup.write("unified", "cpu.weight", "1000")
    web, batch1, batch2 = test_cgroup.child("web"), test_cgroup.child("batch1"), test_cgroup.child("batch2")
    web.spawn(["taskset", "-c", "0", sys.executable, "-c", WEB_LIKE])
    for batch in (batch1, batch2):
        batch.spawn(["taskset", "-c", "0", "sh", "-c", BUSY_LOOP])
    yield web, batch1, batch2
    for cg in (web, batch1, batch2):
        cg.stop_processes()


def test_top_preemptor_names_a_busy_neighbour_in_json(neighbours: tuple[TestCgroup, TestCgroup, TestCgroup]) -> None:
    web, batch1, batch2 = neighbours
    culprits = {batch1.path, batch2.path}
    proc = subprocess.Popen([ctop_command(), "-b", "--json", "-d", "1", "-n", "30", "--filter",
                             "id=" + os.path.dirname(web.path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    seen: list[dict] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            row = {r["id"]: r for r in json.loads(line)}[web.path]
            if row["preempted_by"] is None and not seen:
                continue  # eBPF still loading
            seen.append(row)
            if row["top_preemptor"] in culprits or len(seen) > REFRESHES_ALLOWED:
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert seen, "no frame carried eBPF values"
    last = seen[-1]
    assert last["top_preemptor"] in culprits, [r["preempted_by"] for r in seen]
    by = last["preempted_by"]
    assert isinstance(by, dict) and by[last["top_preemptor"]] == max(by.values()) > 0
    assert list(by.values()) == sorted(by.values(), reverse=True)  # largest first


def test_detail_view_ranks_the_culprits(neighbours: tuple[TestCgroup, TestCgroup, TestCgroup]) -> None:
    web, batch1, batch2 = neighbours
    with tmux_session([ctop_command(), "-d", "1"], 200, 50) as t:
        t.wait_text("Containers", 10)
        t.send("5")  # all cgroups
        t.send("/")
        t.type(web.path.lstrip("/"))
        t.send("Enter")
        t.wait_for(lambda s: "1 rows" in s, 10, "the web cgroup alone")
        t.send("Enter")
        screen = t.wait_for(lambda s: f"preempted by: {batch1.path} " in s or f"preempted by: {batch2.path} " in s,
                            20, "a busy neighbour ranked first among the culprits")
        line = next(x for x in screen.splitlines() if "preempted by:" in x)
        assert "%" in line
        t.send("q")
        t.send("q")
        t.wait_for(lambda s: t.dead(), 10, "ctop to exit")
