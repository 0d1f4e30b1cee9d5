"""`ctop doctor` as root on this host: every check once, a real eBPF compile, and the measured cost per switch."""

from __future__ import annotations

import json
import subprocess

from support.env import ctop_command, need, need_root

STATS_SYSCTL = "/proc/sys/kernel/bpf_stats_enabled"


def sysctl() -> str:
    with open(STATS_SYSCTL) as f:
        return f.read()


def run(*args: str) -> str:
    out = subprocess.run([ctop_command(), *args], capture_output=True, text=True, timeout=180, cwd="/")
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    return out.stdout


def test_doctor_as_root_checks_each_thing_once_and_measures_the_ebpf_cost() -> None:
    need_root()
    before = sysctl()
    checks = json.loads(run("doctor", "--json"))
    names = [c["name"].lower() for c in checks]
    assert len(names) == len(set(names)), names  # no check printed twice
    by_name = {c["name"].lower(): c for c in checks}
    assert by_name["inotify"]["status"] == "ok", by_name["inotify"]  # new cgroups found from events
    need(by_name.get("compile and attach", {}).get("status") == "ok", "eBPF on this host")
    assert by_name["map reading"]["status"] == "ok", by_name["map reading"]  # through the handed-over fds
    cost = by_name["ebpf cost"]
    assert cost["status"] == "ok", cost
    ns = float(cost["message"].split(" ns per context switch")[0].rsplit(" ", 1)[1])
    assert 1 < ns < 100_000, cost  # measured 150-160 ns here
    assert sysctl() == before  # statistics were held on through a BPF_ENABLE_STATS fd, the sysctl untouched


def test_doctor_text_starts_every_message_in_one_column() -> None:
    need_root()
    checks = json.loads(run("doctor", "--json"))
    lines = run("doctor").splitlines()
    assert len(lines) == len(checks)
    columns = {line.index(check["message"][:12]) for line, check in zip(lines, checks)}  # figures vary per run
    assert len(columns) == 1, lines
