"""eBPF fields in the real ``ctop -b --json``: filled for a contended cgroup once loaded, null with --no-ebpf."""

from __future__ import annotations

import json
import subprocess

import pytest
from support.cgroups import TestCgroup
from support.env import ctop_command

pytestmark = pytest.mark.system

EBPF_KEYS = ("runq_latency_p50_seconds", "runq_latency_p99_seconds", "runq_wait_seconds_per_s",
             "ctx_switches_voluntary_per_s", "ctx_switches_involuntary_per_s", "preempted_by_others_per_s",
             "forks_per_s", "execs_per_s", "exits_per_s", "oom_kills")


def last_row(path: str, *args: str) -> dict:
    out = subprocess.run([ctop_command(), "-b", "--json", *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    frames = [json.loads(line) for line in out.stdout.splitlines()]
    return {r["id"]: r for r in frames[-1]}[path]


def test_ebpf_fields_fill_in_and_are_null_when_off(test_cgroup: TestCgroup) -> None:
    for _ in range(2):
        test_cgroup.spawn(["taskset", "-c", "0", "sh", "-c", "while :; do :; done"])
    row = last_row(test_cgroup.path, "-n", "3", "-d", "1", "--ebpf-wait", "120")  # compiling is slow on a busy host
    assert all(key in row for key in EBPF_KEYS)
    assert row["runq_latency_p99_seconds"] is not None and row["runq_latency_p99_seconds"] > 1e-3
    assert row["ctx_switches_involuntary_per_s"] > 10
    assert row["runq_wait_seconds_per_s"] > 0.1
    assert row["oom_kills"] == 0
    off = last_row(test_cgroup.path, "-n", "1", "-d", "0.3", "--no-ebpf")
    assert all(off[key] is None for key in EBPF_KEYS)
