"""Benchmark: resident memory of ctop with and without eBPF: the batch loop, the interactive view and the exporter.

Each variant runs alone: started, given ``warmup`` seconds (eBPF compiled in its child process, which has exited by
then, and the first refreshes), then its RSS is sampled for ``seconds`` and the largest sample is kept, with the
kernel's high-water mark (VmHWM) of the same process. The exporter is scraped once a second meanwhile and counts as
started once its /metrics says eBPF is enabled. Target (issue 15): at most 60 MB with eBPF.

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


def sample(root: int, seconds: float, tick: object = None) -> dict[str, int]:
    """Largest RSS of ctop's process over ``seconds`` and its VmHWM at the end; also its child count (compilers)."""
    end, rss = time.monotonic() + seconds, 0
    pid = python_process(root)
    while time.monotonic() < end:
        if callable(tick):
            tick()
        rss = max(rss, status_bytes(pid, "VmRSS"))
        time.sleep(0.5)
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = len(f.read().split())
    except OSError:
        children = 0
    return {"rss_bytes": rss, "hwm_bytes": status_bytes(pid, "VmHWM"), "children_left": children}


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


def batch(ctop: list[str], ebpf: bool, warmup: float, seconds: float) -> dict[str, int]:
    proc = subprocess.Popen([*ctop, "-b", "--json", "-d", "1", *([] if ebpf else ["--no-ebpf"])],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(warmup)
        return sample(proc.pid, seconds)
    finally:
        _stop(proc)


def interactive(ctop: list[str], ebpf: bool, warmup: float, seconds: float) -> dict[str, int]:
    tmux = Tmux([*ctop, *([] if ebpf else ["--no-ebpf"])])
    tmux.start()
    try:
        time.sleep(warmup)
        return sample(tmux.pid(), seconds)
    finally:
        tmux.stop()


def exporter(ctop: list[str], ebpf: bool, warmup: float, seconds: float, port: int) -> dict[str, int]:
    proc = subprocess.Popen([*ctop, "exporter", f"--web.listen-address=127.0.0.1:{port}",
                             *([] if ebpf else ["--no-ebpf"])], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + max(warmup, 120)
        want = "ctop_ebpf_enabled 1" if ebpf else "ctop_ebpf_enabled 0"
        while time.monotonic() < deadline and want not in _scrape(port):
            time.sleep(1)
        time.sleep(warmup / 4)
        return sample(proc.pid, seconds, tick=lambda: _scrape(port))
    finally:
        _stop(proc)


def run(ctop: str | None = None, seconds: float = 10.0, warmup: float = 20.0) -> dict[str, object]:
    if os.geteuid() != 0:
        raise SystemExit("bench/memory.py needs root (eBPF).")
    command = shlex.split(ctop) if ctop else [ctop_command()]
    results: dict[str, object] = {"command": shlex.join(command), "warmup_seconds": warmup, "seconds": seconds,
                                  "target_rss_bytes": TARGET_BYTES, "load": os.getloadavg()}
    for ebpf in (True, False):
        suffix = "" if ebpf else "_no_ebpf"
        results["ctop_batch" + suffix] = batch(command, ebpf, warmup, seconds)
        results["ctop_interactive" + suffix] = interactive(command, ebpf, warmup, seconds)
        results["ctop_exporter" + suffix] = exporter(command, ebpf, warmup, seconds, PORTS["ctop_exporter" + suffix])
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
