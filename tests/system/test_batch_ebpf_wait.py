"""Batch mode as root waits for eBPF, so that its first printed row already carries eBPF fields."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from support.cgroups import host_layout
from support.env import PATIENCE, ctop_command, need_root, patience

pytestmark = pytest.mark.system

# Rates every cgroup has once eBPF is ready (0 when nothing happened); the quantiles need waits, so only the root.
RATES = ("runq_wait_seconds_per_s", "ctx_switches_voluntary_per_s", "ctx_switches_involuntary_per_s",
         "preempted_by_others_per_s", "preempted_by_host_per_s", "forks_per_s", "execs_per_s", "exits_per_s",
         "oom_kills")
QUANTILES = ("runq_latency_p50_seconds", "runq_latency_p99_seconds")


def first_refresh(*args: str) -> tuple[list[dict], str]:
    out = subprocess.run([ctop_command(), "-b", "--json", "-n", "1", "-d", "0.2", "--no-containers", *args],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    (line,) = out.stdout.splitlines()
    return json.loads(line), out.stderr


def test_the_first_printed_row_carries_ebpf_fields() -> None:
    need_root()
    # The default wait (5 s) on this host; an emulated guest compiles for minutes: there it waits with patience.
    rows, stderr = first_refresh(*(() if PATIENCE == 1 else ("--ebpf-wait", f"{patience(60):g}")))
    assert "still loading" not in stderr
    root = next(r for r in rows if r["id"] == "/")
    assert all(root[key] is not None for key in RATES + QUANTILES), root
    assert root["ctx_switches_voluntary_per_s"] > 0
    # The programs follow the cgroup2 hierarchy and the v1 cpu one (hybrid, pure v1): a cgroup in neither (say one
    # only in the v1 memory hierarchy) has no eBPF data, never zeros.
    layout = host_layout()
    roots = [r for r in (layout.unified, layout.v1("cpu")) if r]
    covered = [r for r in rows if not roots or any(os.path.isdir(root + r["id"]) for root in roots)]
    nulls = [(r["id"], key) for r in covered for key in RATES if r[key] is None]
    assert not nulls
    zeros = [(r["id"], key) for r in rows if r not in covered for key in RATES if r[key] is not None]
    assert not zeros


def test_it_says_once_when_it_gives_up_and_does_not_wait_without_ebpf() -> None:
    need_root()
    rows, stderr = first_refresh("--ebpf-wait", "0.001")  # loading takes far longer than 1 ms
    assert stderr.count("eBPF was still loading after 0.001 s") == 1
    assert all(r["ctx_switches_voluntary_per_s"] is None for r in rows)
    rows, stderr = first_refresh("--no-ebpf")
    assert "still loading" not in stderr
    assert all(r[key] is None for r in rows for key in RATES + QUANTILES)
