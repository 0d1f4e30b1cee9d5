"""Throttling over >= 10 s in the real ``ctop -b --json`` agrees with cpu.stat read by the test over the same window.

Two cgroups capped at 0.2 CPU: one spins all the time (throttled in nearly every CFS period), one spins 2 s and
sleeps 2 s, so that a figure taken over one 1 s refresh jumps between 0 and its busy value while the 10 s figure
stays near the cpu.stat average.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from bisect import bisect_left

import pytest
from support.cgroups import TestCgroup
from support.env import ctop_command, need_root

pytestmark = pytest.mark.system

QUOTA_US, PERIOD_US = 20_000, 100_000  # 0.2 CPU
STEADY = ["sh", "-c", "while :; do :; done"]
BURSTY = [sys.executable, "-c", "import time\nwhile True:\n    end = time.monotonic() + 2\n"
          "    while time.monotonic() < end: pass\n    time.sleep(2)\n"]
REFRESHES, DELAY_S, WINDOW_S = 14, 1.0, 10.0


def limit(cg: TestCgroup) -> None:
    """Cap ``cg`` at 0.2 CPU (cgroup v1 cpu controller, else v2 cpu.max)."""
    if "cpu" in cg.layout.controllers:
        cg.write("cpu", "cpu.cfs_period_us", str(PERIOD_US))
        cg.write("cpu", "cpu.cfs_quota_us", str(QUOTA_US))
    else:
        cg.write("unified", "cpu.max", f"{QUOTA_US} {PERIOD_US}")


def cpu_stat(cg: TestCgroup) -> tuple[int, int, float]:
    """(nr_periods, nr_throttled, throttled seconds) from the kernel's cpu.stat."""
    v1 = "cpu" in cg.layout.controllers
    stat = {k: int(v) for k, v in (line.split() for line in cg.read("cpu" if v1 else "unified", "cpu.stat")
                                   .splitlines() if line.strip())}
    throttled_s = stat["throttled_time"] / 1e9 if v1 else stat["throttled_usec"] / 1e6
    return stat["nr_periods"], stat["nr_throttled"], throttled_s


class Sampler:
    """Reads cpu.stat of some cgroups every 20 ms in a thread, stamped with the wall clock (as ctop's ``time``)."""

    def __init__(self, cgroups: list[TestCgroup]) -> None:
        self.cgroups = cgroups
        self.times: list[float] = []
        self.stats: list[list[tuple[int, int, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.stats.append([cpu_stat(cg) for cg in self.cgroups])
            self.times.append(time.time())
            self._stop.wait(0.02)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def at(self, wall_s: float, index: int) -> tuple[int, int, float]:
        """The reading of cgroup ``index`` taken nearest to ``wall_s``."""
        i = bisect_left(self.times, wall_s)
        near = min((j for j in (i - 1, i) if 0 <= j < len(self.times)), key=lambda j: abs(self.times[j] - wall_s))
        assert abs(self.times[near] - wall_s) < 0.1, "the sampler missed the refresh"
        return self.stats[near][index]


def test_throttling_over_ten_seconds_agrees_with_cpu_stat(test_cgroup: TestCgroup) -> None:
    need_root()
    steady, bursty = test_cgroup.child("steady"), test_cgroup.child("bursty")
    for cg, args in ((steady, STEADY), (bursty, BURSTY)):
        limit(cg)
        proc = cg.spawn(args)
        test_cgroup.processes.append(proc)  # the fixture stops them before it removes the tree
    time.sleep(1.0)
    with Sampler([steady, bursty]) as sampler:
        out = subprocess.run([ctop_command(), "-b", "--json", "-n", str(REFRESHES), "-d", str(DELAY_S),
                              "--no-ebpf", "--no-containers", "--filter", f"id={test_cgroup.path}/"],
                             capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    frames = [{r["id"]: r for r in json.loads(line)} for line in out.stdout.splitlines()]
    assert len(frames) == REFRESHES
    print()
    for index, cg in enumerate((steady, bursty)):
        rows = [f[cg.path] for f in frames]
        end = rows[-1]["time"]
        # ctop's window starts at the newest refresh at least 10 s old (the first printed refresh is 1 s in).
        start = max(r["time"] for r in rows if r["time"] <= end - WINDOW_S + 0.005)
        (p0, t0, s0), (p1, t1, s1) = sampler.at(start, index), sampler.at(end, index)
        kernel_percent = (t1 - t0) / (p1 - p0) * 100
        kernel_per_s = (s1 - s0) / (end - start)
        got = rows[-1]
        per_refresh = [r["throttled_percent"] for r in rows]
        print(f"{cg.path.rsplit('/', 1)[1]}: over {end - start:.2f} s throttled_percent_avg "
              f"{got['throttled_percent_avg']:.1f} (cpu.stat {kernel_percent:.1f}), throttled_seconds_per_s "
              f"{got['throttled_seconds_per_s']:.4f} "
              f"(cpu.stat {kernel_per_s:.4f}); per refresh THR% {[round(v or 0) for v in per_refresh]}")
        assert got["throttled_percent_avg"] is not None and got["throttled_seconds_per_s"] is not None
        assert abs(got["throttled_percent_avg"] - kernel_percent) <= 10
        assert kernel_per_s > 0  # it was throttled (less when the machine is busy): a relative error is defined
        assert abs(got["throttled_seconds_per_s"] - kernel_per_s) <= 0.10 * kernel_per_s
