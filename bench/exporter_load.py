"""Exporter under load: concurrent scrapers plus slow-loris clients; latency, errors, RSS and open fds of the exporter.

Usage: bench/exporter_load.py [--clients 50] [--seconds 60] [--slow 20]   (starts its own `ctop exporter`)
``load(port, pid, ...)`` drives an exporter that is already running (tests/system/test_exporter_load.py).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def scrape_once(conn: http.client.HTTPConnection, path: str = "/metrics", gzip: bool = True) -> int:
    """One GET on a kept-alive connection; the status (body fully read)."""
    conn.request("GET", path, headers={"Accept-Encoding": "gzip"} if gzip else {})
    resp = conn.getresponse()
    resp.read()
    return resp.status


def single_client_latency(port: int, count: int = 20, pause_s: float = 0.05) -> list[float]:
    """Sequential scrapes by one client on one connection (the reference for the loaded figures)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out: list[float] = []
    try:
        for _ in range(count):
            start = time.monotonic()
            status = scrape_once(conn)
            out.append(time.monotonic() - start)
            if status != 200:
                raise RuntimeError(f"single client got HTTP {status}")
            time.sleep(pause_s)
    finally:
        conn.close()
    return out


class _Scrapers:
    """Well-behaved clients: keep-alive scrapes with a short random pause; every 5th scrape on a new connection."""

    def __init__(self, port: int, clients: int, pause_s: float) -> None:
        self.port, self.clients, self.pause_s = port, clients, pause_s
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def worker(self, seed: int) -> None:
        rnd = random.Random(seed)
        conn: http.client.HTTPConnection | None = None
        done = 0
        while not self.stop.is_set():
            if conn is None or done % 5 == 0:
                if conn is not None:
                    conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            start = time.monotonic()
            try:
                status = scrape_once(conn, gzip=rnd.random() < 0.7)
                error = "" if status == 200 else f"HTTP {status}"
            except (OSError, http.client.HTTPException) as e:
                error = f"{type(e).__name__}: {e}"
                conn.close()
                conn = None
            elapsed = time.monotonic() - start
            with self.lock:
                if error:
                    self.errors.append(error)
                else:
                    self.latencies.append(elapsed)
            done += 1
            self.stop.wait(rnd.uniform(0.5, 1.5) * self.pause_s)
        if conn is not None:
            conn.close()


class _SlowLoris:
    """Clients that hold connections: request heads sent a byte per second, and full requests never read."""

    def __init__(self, port: int, clients: int) -> None:
        self.port, self.clients = port, clients
        self.stop = threading.Event()
        self.connections = 0
        self.lock = threading.Lock()
        self.socks: list[socket.socket] = []

    def _connect(self, rcvbuf: int | None = None) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: a small window
        s.settimeout(5)
        s.connect(("127.0.0.1", self.port))
        with self.lock:
            self.connections += 1
            self.socks.append(s)
        return s

    def _close(self, s: socket.socket) -> None:
        with self.lock:
            if s in self.socks:
                self.socks.remove(s)
        s.close()

    def trickler(self) -> None:
        head = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\nX-Pad: " + b"a" * 200
        while not self.stop.is_set():
            try:
                s = self._connect()
            except OSError:
                self.stop.wait(1.0)
                continue
            try:
                for i in range(len(head)):
                    if self.stop.wait(1.0):
                        break
                    s.sendall(head[i:i + 1])
            except OSError:
                pass  # the server cut it off (request deadline): start again
            self._close(s)

    def non_reader(self) -> None:
        while not self.stop.is_set():
            try:
                s = self._connect(rcvbuf=4096)
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                s.setblocking(False)  # only peeked at from here on
            except OSError:
                self.stop.wait(1.0)
                continue
            # Never read: the server's write blocks until its write timeout closes the connection.
            while not self.stop.wait(1.0):
                try:
                    if s.recv(1, socket.MSG_PEEK) == b"":
                        break  # closed by the server
                except BlockingIOError:
                    continue
                except OSError:  # closed here too: by close_all() at the end of the run
                    break
            self._close(s)

    def close_all(self) -> None:
        with self.lock:
            socks, self.socks = list(self.socks), []
        for s in socks:
            s.close()


def wait_for_fds(pid: int, target: int, timeout_s: float) -> int:
    """Open fds of ``pid`` once they are back to ``target`` or the timeout passed."""
    deadline = time.monotonic() + timeout_s
    count = open_fds(pid)
    while count > target and time.monotonic() < deadline:
        time.sleep(0.5)
        count = open_fds(pid)
    return count


def load(port: int, pid: int, clients: int = 50, seconds: float = 60.0, slow: int = 20,
         pause_s: float = 0.1, drain_s: float = 45.0, warmup_s: float = 5.0) -> dict[str, Any]:
    """Drive a running exporter (``pid`` listening on ``port``) and return the figures (seconds, bytes, counts)."""
    single_client_latency(port, count=int(warmup_s / 0.3), pause_s=0.3)  # a few collections: steady state
    single = single_client_latency(port)
    baseline_rss, baseline_fds = rss_bytes(pid), open_fds(pid)
    scrapers = _Scrapers(port, clients, pause_s)
    loris = _SlowLoris(port, slow)
    threads = [threading.Thread(target=scrapers.worker, args=(i,), daemon=True) for i in range(clients)]
    threads += [threading.Thread(target=loris.trickler if i % 2 == 0 else loris.non_reader, daemon=True)
                for i in range(slow)]
    peak_rss = baseline_rss
    peak_fds = baseline_fds
    for t in threads:
        t.start()
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        time.sleep(1.0)
        peak_rss, peak_fds = max(peak_rss, rss_bytes(pid)), max(peak_fds, open_fds(pid))
    scrapers.stop.set()
    loris.stop.set()
    loris.close_all()
    for t in threads:
        t.join(timeout=35)
    after_fds = wait_for_fds(pid, baseline_fds, drain_s)
    after_single = single_client_latency(port, 5)
    return {
        "clients": clients, "slow_clients": slow, "seconds": seconds,
        "single_p50_s": percentile(single, 0.5), "single_p99_s": percentile(single, 0.99),
        "scrapes": len(scrapers.latencies), "errors": len(scrapers.errors), "error_examples": scrapers.errors[:5],
        "p50_s": percentile(scrapers.latencies, 0.5), "p99_s": percentile(scrapers.latencies, 0.99),
        "max_s": max(scrapers.latencies, default=float("nan")),
        "scrapes_per_s": len(scrapers.latencies) / seconds,
        "slow_connections": loris.connections,
        "rss_baseline_bytes": baseline_rss, "rss_peak_bytes": peak_rss, "rss_after_bytes": rss_bytes(pid),
        "fds_baseline": baseline_fds, "fds_peak": peak_fds, "fds_after": after_fds,
        "single_after_p50_s": percentile(after_single, 0.5),
    }


def _ctop() -> str:
    beside = os.path.join(os.path.dirname(sys.executable), "ctop")
    return beside if os.access(beside, os.X_OK) else (shutil.which("ctop") or "ctop")


def run(clients: int = 50, seconds: float = 60.0, slow: int = 20) -> dict[str, Any]:
    """For bench/run.py: start `ctop exporter` (eBPF off, loopback), load it, stop it; the figures."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen([_ctop(), "exporter", f"--web.listen-address=127.0.0.1:{port}", "--no-ebpf"],
                                stdout=log, stderr=subprocess.STDOUT, cwd="/")
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        raise RuntimeError("ctop exporter did not start: " + log.read()[-2000:].decode()) from None
                    time.sleep(0.1)
            return load(port, proc.pid, clients, seconds, slow)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--slow", type=int, default=20)
    args = parser.parse_args()
    print(json.dumps(run(args.clients, args.seconds, args.slow), indent=2))


if __name__ == "__main__":
    main()
