"""ctop's eBPF health on the real kernel: cost per event of ctop's loaded programs and map fill (root + bcc)."""

from __future__ import annotations

import re
import subprocess
import time

import pytest
from support.cgroups import TestCgroup
from support.env import PATIENCE, need, need_binary, need_root
from support.prometheus import running_exporter

from ctop.collector import Collector, CollectorConfig
from ctop.ebpf import progstats

pytestmark = pytest.mark.system


def test_loaded_programs_report_ns_per_event_and_map_fill(test_cgroup: TestCgroup) -> None:
    need_root()
    sysctl_before = progstats.stats_enabled()
    collector = Collector(CollectorConfig(containers=False, bpf_run_stats=True))
    collector.start()
    try:
        status = collector.ebpf.wait_ready(120)
        need(status.state == "ready", f"eBPF ({status.reason})")
        collector.collect()
        test_cgroup.spawn(["sleep", "30"])
        progstats.pipe_pingpong(5_000)  # about 20 000 context switches and wake-ups
        collector.collect()
        costs, fill = collector.ebpf_health()
        print(f"\nns per event: {dict(sorted((k, round(v)) for k, v in costs.items()))}")
        print(f"map fill: {fill}")
        for program in ("sched:sched_switch", "sched:sched_process_fork"):  # wake-ups only without BTF
            assert costs.get(program, 0) > 0, (program, costs)
        # Anything above 100 µs per event would mean the statistics or the division are wrong (an emulated guest
        # runs the JIT-ed programs a hundred times slower: 4.7 ms per exec there).
        limit_ns = 100_000 if PATIENCE == 1 else 10_000_000
        assert all(0 < ns < limit_ns for ns in costs.values()), costs
        assert set(fill) == {"cgroups", "threads", "culprits"}, fill
        assert all(0.0 <= ratio <= 1.0 for ratio in fill.values()), fill
        # This machine has hundreds of threads and dozens of cgroups with tasks: neither map is empty.
        assert fill["threads"] > 0 and fill["cgroups"] > 0, fill
        # The statistics were kept on by ctop's own hold, not by leaving the sysctl switched on.
        assert collector.ebpf.run_stats in ("fd", "sysctl", "already on"), collector.ebpf.run_stats
    finally:
        collector.close()
    assert progstats.stats_enabled() == sysctl_before


def _gauge(text: str, family: str, label: str) -> dict[str, float]:
    pattern = re.compile(rf'^{family}\{{{label}="([^"]+)"\}} (\S+)$', re.M)
    return {m.group(1): float(m.group(2)) for m in pattern.finditer(text)}


def test_exporter_serves_bpf_cost_and_map_fill(test_cgroup: TestCgroup) -> None:
    need_root()
    sysctl_before = progstats.stats_enabled()
    test_cgroup.spawn(["sleep", "60"])
    with running_exporter(f"--cgroup.include=^{re.escape(test_cgroup.path)}$", "--collector.max-age=0") as exp:
        deadline = time.monotonic() + 120
        text = exp.scrape()
        while "\nctop_ebpf_enabled 1\n" not in text and time.monotonic() < deadline:  # not its HELP line
            time.sleep(1)
            text = exp.scrape()
        need("\nctop_ebpf_enabled 1\n" in text, "eBPF in the exporter: " + exp.log()[-300:])
        progstats.pipe_pingpong(2_000)
        exp.scrape()  # the first collection after loading reads the maps; the next one reports their fill
        text = exp.scrape()
        cost = _gauge(text, "ctop_bpf_program_run_seconds_per_event", "program")
        fill = _gauge(text, "ctop_bpf_map_fill_ratio", "map")
        print(f"\nexporter seconds per event: {cost}\nexporter map fill: {fill}")
        assert 0 < cost.get("sched:sched_switch", 0) < 1e-4, cost
        assert set(fill) == {"cgroups", "threads", "culprits"} and all(0 <= v <= 1 for v in fill.values()), fill
        lint = subprocess.run([need_binary("promtool"), "check", "metrics"], input=text.encode(),
                              capture_output=True, timeout=60)
        report = (lint.stdout + lint.stderr).decode()
        assert [line for line in report.splitlines() if "ctop_" in line] == [], report
    assert progstats.stats_enabled() == sysctl_before
