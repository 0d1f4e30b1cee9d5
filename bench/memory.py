"""Benchmark: resident memory of ctop with and without eBPF: the batch loop, the interactive view and the exporter.

Each variant runs beside its --no-ebpf twin (the same host, the same cgroups: the tree of a shared host changes from
one minute to the next, and ctop's memory grows with it): both are started, given ``warmup`` seconds (eBPF compiled
in its child process, which has exited by then, and the first refreshes), then their RSS is sampled for ``seconds``
and the largest sample is kept, with the kernel's high-water mark (VmHWM) of the same process. The exporters are
scraped once a second meanwhile and count as started once /metrics says eBPF is enabled. Target (issue 15): at most
60 MB with eBPF.

Usage: bench/memory.py [--ctop COMMAND] [--seconds S] [--warmup S]   (root; ports 19250-19251)
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from support.env import ctop_command  # noqa: E402
from support.tmux import Tmux  # noqa: E402

TARGET_BYTES = 60 * 2**20
PORTS = {"ctop_exporter": 19250, "ctop_exporter_no_ebpf": 19251}


def status_bytes(pid: int, field: str) -> int:
    """VmRSS or VmHWM of one process in bytes (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return next((int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":")), 0)
    except OSError:
        return 0


def python_process(root: int) -> int:
    """The largest process in ``root``'s tree (ctop's Python process, not the shell tmux runs it from)."""
    best, best_rss, stack = root, -1, [root]
    while stack:
        pid = stack.pop()
        rss = status_bytes(pid, "VmRSS")
        if rss > best_rss:
            best, best_rss = pid, rss
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                stack.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return best


def sample(roots: dict[str, int], seconds: float, tick: object = None) -> dict[str, dict[str, int]]:
    """Largest RSS of each ctop process over the same ``seconds``, its VmHWM at the end, children left (compilers)."""
    end = time.monotonic() + seconds
    pids = {name: python_process(root) for name, root in roots.items()}
    rss = dict.fromkeys(pids, 0)
    while time.monotonic() < end:
        if callable(tick):
            tick()
        for name, pid in pids.items():
            rss[name] = max(rss[name], status_bytes(pid, "VmRSS"))
        time.sleep(0.5)
    out = {}
    for name, pid in pids.items():
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                children = len(f.read().split())
        except OSError:
            children = 0
        out[name] = {"rss_bytes": rss[name], "hwm_bytes": status_bytes(pid, "VmHWM"), "children_left": children}
    return out


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            return str(r.read().decode())
    except OSError:
        return ""


def _flag(ebpf: bool) -> list[str]:
    return [] if ebpf else ["--no-ebpf"]


def batch(ctop: list[str], warmup: float, seconds: float) -> dict[str, dict[str, int]]:
    """``ctop -b --json`` every second, with and without eBPF side by side (the same host, the same cgroups)."""
    procs = {ebpf: subprocess.Popen([*ctop, "-b", "--json", "-d", "1", *_flag(ebpf)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL) for ebpf in (True, False)}
    try:
        time.sleep(warmup)
        figures = sample({"ebpf": procs[True].pid, "no_ebpf": procs[False].pid}, seconds)
    finally:
        for proc in procs.values():
            _stop(proc)
    return figures


def interactive(ctop: list[str], warmup: float, seconds: float) -> dict[str, dict[str, int]]:
    """The interactive view in two tmux sessions, with and without eBPF."""
    sessions = {ebpf: Tmux([*ctop, *_flag(ebpf)]) for ebpf in (True, False)}
    try:
        for tmux in sessions.values():
            tmux.start()
        time.sleep(warmup)
        return sample({"ebpf": sessions[True].pid(), "no_ebpf": sessions[False].pid()}, seconds)
    finally:
        for tmux in sessions.values():
            tmux.stop()


def exporter(ctop: list[str], warmup: float, seconds: float) -> dict[str, dict[str, int]]:
    """Two exporters, with and without eBPF, each scraped once a second; counted from eBPF's first metrics."""
    ports = {True: PORTS["ctop_exporter"], False: PORTS["ctop_exporter_no_ebpf"]}
    procs = {ebpf: subprocess.Popen([*ctop, "exporter", f"--web.listen-address=127.0.0.1:{ports[ebpf]}",
                                     *_flag(ebpf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for ebpf in (True, False)}
    try:
        deadline = time.monotonic() + max(warmup, 120)
        while time.monotonic() < deadline and "ctop_ebpf_enabled 1" not in _scrape(ports[True]):
            time.sleep(1)
        time.sleep(warmup / 4)

        def scrape_both() -> None:
            for port in ports.values():
                _scrape(port)

        return sample({"ebpf": procs[True].pid, "no_ebpf": procs[False].pid}, seconds, tick=scrape_both)
    finally:
        for proc in procs.values():
            _stop(proc)


def run(ctop: str | None = None, seconds: float = 10.0, warmup: float = 20.0) -> dict[str, object]:
    if os.geteuid() != 0:
        raise SystemExit("bench/memory.py needs root (eBPF).")
    command = shlex.split(ctop) if ctop else [ctop_command()]
    results: dict[str, object] = {"command": shlex.join(command), "warmup_seconds": warmup, "seconds": seconds,
                                  "target_rss_bytes": TARGET_BYTES, "load": os.getloadavg()}
    for name, measure in (("ctop_batch", batch), ("ctop_interactive", interactive), ("ctop_exporter", exporter)):
        pair = measure(command, warmup, seconds)
        results[name], results[name + "_no_ebpf"] = pair["ebpf"], pair["no_ebpf"]
    for name in ("ctop_batch", "ctop_interactive", "ctop_exporter"):
        with_ebpf, without = results[name], results[name + "_no_ebpf"]
        assert isinstance(with_ebpf, dict) and isinstance(without, dict)
        with_ebpf["ratio_to_no_ebpf"] = round(with_ebpf["rss_bytes"] / max(without["rss_bytes"], 1), 2)
        with_ebpf["within_target"] = with_ebpf["rss_bytes"] <= TARGET_BYTES
    results["verdict"] = "; ".join(
        f"{name}: {results[name]['rss_bytes'] / 2**20:.0f} MB with eBPF, "  # type: ignore[index]
        f"{results[name + '_no_ebpf']['rss_bytes'] / 2**20:.0f} MB without"  # type: ignore[index]
        for name in ("ctop_batch", "ctop_interactive", "ctop_exporter")) + \
        f" (cgroups on the host: {_cgroup_count()}; load {results['load']})."
    return results


def _cgroup_count(root: str = "/sys/fs/cgroup") -> int:
    """How many cgroup directories the host has (memory grows with them, with or without eBPF)."""
    unified = os.path.join(root, "unified")
    top = unified if os.path.isdir(unified) else root
    return sum(1 for _ in os.walk(top))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ctop", default=None, help="the ctop command to measure (default: the installed one)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=20.0)
    args = parser.parse_args()
    print(json.dumps(run(args.ctop, args.seconds, args.warmup), indent=2))


if __name__ == "__main__":
    main()
