"""Benchmark: ctop's steady CPU and RSS as the interactive view and as the exporter, beside `docker stats`.

One private dockerd runs ``containers`` small containers. Each watcher runs alone for ``seconds`` after a warm-up
(eBPF compilation and the first collections are start-up, not steady state): the interactive view in tmux at its
default 1 s refresh, the exporter scraped every ``scrape_interval_s``, and `docker stats` streaming (its own 1 s
refresh). A watcher's cost is its own process tree's CPU plus what it adds to the container daemons
(dockerd, containerd and shims) over their idle baseline measured first, in the same run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from support.dockerd import IMAGE, PrivateDockerd  # noqa: E402
from support.env import ctop_command  # noqa: E402
from support.prometheus import free_port  # noqa: E402
from support.tmux import Tmux  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
DAEMONS = {"dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v2", "docker-proxy"}


def _stat(pid: int) -> tuple[int, str, float] | None:
    """(ppid, comm, CPU seconds) of one process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            raw = f.read()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1:raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2:].split()
    return int(fields[1]), comm, (int(fields[11]) + int(fields[12])) / TICK


def _table() -> dict[int, tuple[int, str, float]]:
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (s := _stat(int(name))) is not None:
            out[int(name)] = s
    return out


def tree_cpu(root: int, only: set[str] | None = None) -> float:
    """CPU seconds of ``root`` and its descendants (only those named in ``only``, when given)."""
    table = _table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _comm, _cpu) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        if pid in table and (only is None or table[pid][1] in only):
            total += table[pid][2]
        stack.extend(children.get(pid, []))
    return total


def tree_rss(root: int) -> int:
    """Resident bytes of ``root``'s largest process in its tree (the Python process, not its shell)."""
    table = _table()
    best, stack = 0, [root]
    while stack:
        pid = stack.pop()
        try:
            with open(f"/proc/{pid}/status") as f:
                rss = next((int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:")), 0)
        except OSError:
            rss = 0
        best = max(best, rss)
        stack.extend(p for p, (ppid, _c, _cpu) in table.items() if ppid == pid)
    return best


def steady(daemon_pid: int, watcher_pid: int, warmup: float, seconds: float,
           tick: Callable[[], None] | None = None, tick_every: float = 0.0) -> dict[str, float]:
    """CPU % of one CPU for the watcher's tree and for the container daemons over ``seconds`` after ``warmup``."""
    time.sleep(warmup)
    w0, d0, t0 = tree_cpu(watcher_pid), tree_cpu(daemon_pid, DAEMONS), time.monotonic()
    next_tick = t0
    while (now := time.monotonic()) < t0 + seconds:
        if tick is not None and now >= next_tick:
            tick()
            next_tick += tick_every
        time.sleep(min(0.2, max(0.0, t0 + seconds - now)))
    elapsed = time.monotonic() - t0
    return {"watcher_cpu_percent": round(100 * (tree_cpu(watcher_pid) - w0) / elapsed, 2),
            "daemons_cpu_percent": round(100 * (tree_cpu(daemon_pid, DAEMONS) - d0) / elapsed, 2),
            "rss_bytes": tree_rss(watcher_pid)}


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(containers: int = 20, seconds: float = 30.0, warmup: float = 20.0,
        scrape_interval_s: float = 15.0) -> dict[str, object]:
    ctop = ctop_command()
    daemon = PrivateDockerd(base=tempfile.mkdtemp(prefix="ctopd-bench-", dir="/tmp"))
    results: dict[str, object] = {"containers": containers, "seconds": seconds, "warmup_seconds": warmup}
    try:
        daemon.start()
        daemon.build_busybox_image()
        assert daemon.pid is not None
        for i in range(containers):  # a little steady activity in each, like real services
            daemon.out("run", "-d", "--name", f"bench-{os.getpid()}-{i}", IMAGE,
                       "sh", "-c", "while :; do sleep 0.5; done")
        time.sleep(3)
        idle = steady(daemon.pid, os.getpid(), 0, seconds / 2)
        baseline = idle["daemons_cpu_percent"]
        results["daemons_idle_cpu_percent"] = baseline

        def cost(figures: dict[str, float]) -> dict[str, float]:
            extra = max(0.0, figures["daemons_cpu_percent"] - baseline)
            return {**figures, "daemons_extra_cpu_percent": round(extra, 2),
                    "total_cpu_percent": round(figures["watcher_cpu_percent"] + extra, 2)}

        stats = subprocess.Popen(["docker", "-H", "unix://" + daemon.socket, "stats", "--format",
                                  "{{.Name}} {{.CPUPerc}} {{.MemUsage}}"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        try:
            results["docker_stats"] = cost(steady(daemon.pid, stats.pid, 5.0, seconds))
        finally:
            _stop(stats)

        for label, extra_args in (("ctop_interactive", []), ("ctop_interactive_no_ebpf", ["--no-ebpf"])):
            session = Tmux([ctop, "--docker-socket", daemon.socket, *extra_args], 160, 50)
            session.start()
            try:
                results[label] = cost(steady(daemon.pid, session.pid(), warmup, seconds))
            finally:
                session.stop()

        for label, extra_args in (("ctop_exporter", []), ("ctop_exporter_no_ebpf", ["--no-ebpf"])):
            port = free_port()
            exporter = subprocess.Popen([ctop, "exporter", f"--web.listen-address=127.0.0.1:{port}",
                                         "--docker.socket", daemon.socket, *extra_args],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

            def scrape(port: int = port) -> None:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
                    r.read()

            try:
                time.sleep(2)
                scrape()
                figures = steady(daemon.pid, exporter.pid, warmup, max(seconds, 4 * scrape_interval_s),
                                 scrape, scrape_interval_s)
                results[label] = {**cost(figures), "scrape_interval_s": scrape_interval_s}
            finally:
                _stop(exporter)
    finally:
        daemon.stop()
    view, peer = results.get("ctop_interactive"), results.get("docker_stats")
    if isinstance(view, dict) and isinstance(peer, dict) and peer["total_cpu_percent"] > 0:
        results["ratio_ctop_view_to_docker_stats"] = round(view["total_cpu_percent"] / peer["total_cpu_percent"], 3)
    return results


if __name__ == "__main__":
    if os.geteuid() != 0 or not shutil.which("dockerd"):
        sys.exit("steady_state.py needs root and dockerd (run: sudo ./setup.sh bench steady_state)")
    print(json.dumps(run(), indent=2))
