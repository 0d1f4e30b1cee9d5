"""The exporter agrees with `ctop -b --json` and with the cgroup files for one real cgroup under a steady load."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest
from support.cgroups import TestCgroup
from support.env import ctop_command, need_root
from support.prometheus import running_exporter

pytestmark = pytest.mark.system

MEMORY_LIMIT = 256 << 20
QUOTA_US, PERIOD_US = 50_000, 100_000  # half a CPU: bounds how far CPU time can move between two reads
HOLD_BYTES = 48 << 20
HOLD = ("import sys, time\nb = bytearray({size})\nfor i in range(0, len(b), 4096): b[i] = 1\n"
        "open(sys.argv[1], 'w').close()\ntime.sleep(120)\n")


def series(text: str, name: str, path: str, **labels: str) -> float:
    """The one sample of ``name`` for cgroup ``path`` carrying ``labels``."""
    found = []
    for line in text.splitlines():
        if not line.startswith(name + "{") or f'id="{path}"' not in line:
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            found.append(float(line.rsplit(" ", 1)[1]))
    assert len(found) == 1, (name, path, labels, found)
    return found[0]


def throttled_seconds(cg: TestCgroup) -> float:
    """Time the cgroup was throttled, from the kernel's cpu.stat (v1 throttled_time in ns, v2 throttled_usec)."""
    stat = dict(line.split() for line in cg.read("cpu", "cpu.stat").splitlines() if line.strip())
    return int(stat["throttled_time"]) / 1e9 if "throttled_time" in stat else int(stat["throttled_usec"]) / 1e6


def memory_stat(cg: TestCgroup) -> dict[str, int]:
    return {k: int(v) for k, v in (line.split() for line in cg.read("memory", "memory.stat").splitlines())}


@pytest.fixture
def loaded_cgroup(test_cgroup: TestCgroup, tmp_path) -> TestCgroup:
    """The test cgroup with a memory and a CPU limit, one CPU-bound loop and one process holding 48 MiB."""
    need_root()
    test_cgroup.limit_memory(MEMORY_LIMIT)
    test_cgroup.limit_cpu(QUOTA_US, PERIOD_US)
    test_cgroup.spawn(["sh", "-c", "while :; do :; done"])
    ready = tmp_path / "held"
    test_cgroup.spawn([sys.executable, "-c", HOLD.format(size=HOLD_BYTES), str(ready)])
    deadline = time.monotonic() + 30
    while not ready.exists():
        assert time.monotonic() < deadline, "the memory holder did not start"
        time.sleep(0.1)
    time.sleep(1.0)  # CPU usage settles at the quota
    return test_cgroup


def test_exporter_agrees_with_batch_json_and_cgroup_files(loaded_cgroup: TestCgroup) -> None:
    cg = loaded_cgroup
    path = cg.path
    with running_exporter(f"--cgroup.include=^{re.escape(path)}$", "--collector.max-age=0", "--no-ebpf") as exp:
        exp.scrape()
        faults_before = memory_stat(cg)
        batch = subprocess.run([ctop_command(), "-b", "--json", "-n", "2", "-d", "0.5", "--no-ebpf",
                                "--no-containers", "--filter", f"id={path}"],
                               capture_output=True, text=True, timeout=120)
        throttled_before = throttled_seconds(cg)
        text = exp.scrape()
        throttled_after = throttled_seconds(cg)
        faults_after = memory_stat(cg)
    assert batch.returncode == 0, batch.stderr
    refreshes = [json.loads(line) for line in batch.stdout.splitlines() if line.strip()]
    assert len(refreshes) == 2, batch.stdout
    rows = [r for r in refreshes[-1] if r["id"] == path]
    assert len(rows) == 1, refreshes[-1]
    row = rows[0]

    # The same instant is not possible: the exporter's snapshot is stamped (container_last_seen) and so is the row.
    gap_s = abs(series(text, "container_last_seen", path) - row["time"])
    cpu_exported = series(text, "container_cpu_usage_seconds_total", path, cpu="total")
    cpu_delta = cpu_exported - row["cpu_usage_seconds"]
    # Under a quota of 0.5 CPU the counter moves at most 0.5 s per second, plus one period's quota of burst.
    tolerance = QUOTA_US / PERIOD_US * gap_s + QUOTA_US / 1e6 + 0.01
    ws_exported = series(text, "container_memory_working_set_bytes", path)
    ws_json = row["memory_working_set_bytes"]
    print(f"\nread {gap_s:.3f} s apart: CPU seconds json {row['cpu_usage_seconds']:.4f} exporter "
          f"{cpu_exported:.4f} (delta {cpu_delta:+.4f}, tolerance {tolerance:.4f}); working set json {ws_json} "
          f"exporter {ws_exported:.0f} ({(ws_exported - ws_json) / ws_json:+.2%})")
    assert row["cpu_usage_seconds"] > 0.4  # the loop really ran
    assert cpu_delta >= -0.01  # the exporter read last: a counter never goes back
    assert cpu_delta <= tolerance
    assert ws_json >= HOLD_BYTES * 0.9
    assert abs(ws_exported - ws_json) <= 0.10 * ws_json

    # Limits: exactly the same numbers, and those of the cgroup files.
    assert row["memory_limit_bytes"] == MEMORY_LIMIT
    assert series(text, "container_spec_memory_limit_bytes", path) == MEMORY_LIMIT
    quota = series(text, "container_spec_cpu_quota", path)
    period = series(text, "container_spec_cpu_period", path)
    assert (quota, period) == (QUOTA_US, PERIOD_US)
    assert row["cpu_limit_cores"] == quota / period

    # Throttled time: cumulative seconds (cAdvisor's unit), between two reads of cpu.stat taken around the scrape.
    throttled = series(text, "container_cpu_cfs_throttled_seconds_total", path)
    print(f"throttled seconds: cpu.stat {throttled_before:.6f} .. {throttled_after:.6f}, exporter {throttled:.6f}, "
          f"json {row['cpu_throttled_seconds']:.6f}")
    # (On a busy machine the loop may get less than its half CPU and never be throttled: then all are 0.)
    assert throttled_before <= throttled <= throttled_after
    assert row["cpu_throttled_seconds"] <= throttled  # the batch run read first

    # Page faults: the exported counters lie between two reads of memory.stat taken around the scrape.
    for failure_type in ("pgfault", "pgmajfault"):
        # v1 memory.stat counts the cgroup alone and its subtree (total_*); v2's counts are the subtree's already.
        hierarchy = f"total_{failure_type}" if f"total_{failure_type}" in faults_before else failure_type
        for scope, key in (("container", failure_type), ("hierarchy", hierarchy)):
            value = series(text, "container_memory_failures_total", path, failure_type=failure_type, scope=scope)
            assert faults_before[key] <= value <= faults_after[key], (failure_type, scope, value)
    assert series(text, "container_memory_failures_total", path, failure_type="pgfault", scope="container") \
        >= HOLD_BYTES // (2 << 20)  # the holder touched every page of its buffer (huge pages: one fault per 2 MiB)
