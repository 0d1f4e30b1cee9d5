"""The real ``ctop -b --json`` pointed at a Docker socket that answers garbage, hangs or closes: only names change.

Each run reads the live cgroups as root beside a baseline run with --no-containers started at the same moment;
both must list the same cgroups with the same CPU and memory fields present, exit 0 and print no traceback.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from support.bad_docker import MODES, bad_docker
from support.cgroups import TestCgroup
from support.env import ctop_command, need_root

from ctop.model.safe_text import inert

pytestmark = pytest.mark.system

NUMBERS = ("cpu_percent", "cpu_usage_seconds", "memory_usage_bytes", "memory_working_set_bytes",
           "memory_limit_bytes", "pids", "processes")
RUN_LIMIT_S = 20.0  # two refreshes of 0.5 s, start-up, and closing threads stuck on the 2 s API timeout


def stable(path: str, mine: str) -> bool:
    """Not a cgroup that other tests on this node create and remove while both runs read (their own unique
    ``/ctop-*`` trees and containers): those may differ between two runs for reasons that are not ctop's."""
    if path == mine or path.startswith(mine + "/"):
        return True
    top = path.split("/")[1] if path != "/" else ""
    return not (top.startswith("ctop-") or top in ("docker", "kubepods", "kubepods.slice"))


def start_ctop(*args: str) -> subprocess.Popen:
    return subprocess.Popen([ctop_command(), "-b", "--json", "-n", "2", "-d", "0.5", "--no-ebpf", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, started: float) -> tuple[list[dict], str, float]:
    try:
        out, err = proc.communicate(timeout=RUN_LIMIT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"ctop did not finish within {RUN_LIMIT_S} s") from None
    took = time.monotonic() - started
    assert proc.returncode == 0, err
    frames = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len(frames) == 2
    return frames[-1], err, took


@pytest.mark.parametrize("mode", [m for m in MODES if m != "scripted"])
def test_bad_docker_api_changes_only_names(mode: str, test_cgroup: TestCgroup) -> None:
    need_root()
    test_cgroup.limit_cpu(10000)  # 10 % of a CPU: visible CPU use, cheap for the node
    test_cgroup.spawn(["yes"], stdout=subprocess.DEVNULL)
    test_cgroup.child("a")
    test_cgroup.child("b")
    with bad_docker(mode) as server:
        started = time.monotonic()
        bad = start_ctop("--docker-socket", server.socket_path)
        base = start_ctop("--no-containers")
        bad_rows, bad_err, took = finish(bad, started)
        base_rows, base_err, _ = finish(base, started)
    print(f"{mode}: {took:.2f} s, {len(bad_rows)} rows, {len(server.requests)} API requests; stderr: {bad_err!r}")
    assert "Traceback" not in bad_err and base_err == ""
    lines = bad_err.strip().splitlines()
    assert len(lines) <= 1 and (not lines or (lines[0].endswith(".") and inert(lines[0]) == lines[0]))
    if mode != "close":
        assert server.requests, "ctop never asked the socket"

    bad_by_id = {r["id"]: r for r in bad_rows if stable(r["id"], test_cgroup.path)}
    base_by_id = {r["id"]: r for r in base_rows if stable(r["id"], test_cgroup.path)}
    for rows in (bad_by_id, base_by_id):
        mine = rows[test_cgroup.path]
        assert mine["cpu_percent"] > 1 and mine["memory_usage_bytes"] is not None and mine["processes"] == 1
        assert {test_cgroup.path + "/a", test_cgroup.path + "/b"} <= set(rows)
    assert set(bad_by_id) == set(base_by_id), sorted(set(bad_by_id) ^ set(base_by_id))
    for path in bad_by_id:
        for key in NUMBERS:
            assert (bad_by_id[path][key] is None) == (base_by_id[path][key] is None), (path, key)
    # A socket that never answered usefully names no Docker container.
    if mode not in ("wrong-types", "huge"):
        assert all(r["name"] == "" for r in bad_rows if r["runtime"] == "docker" and r["kind"] == "container")
