"""A fleet on loopback for the fleet view's tests: `ctop exporter`s on fixed ports, static expositions, and one real
Prometheus scraping them all, each target with its own ``node`` label. Ports 19100-19149 only (or the 50 from
$CTOP_TEST_FLEET_PORT_BASE, for a run beside another)."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import yaml

from .env import need_binary, patience
from .prometheus import _stop, exporter_argv, wait_ready

PORTS = range(int(os.environ.get("CTOP_TEST_FLEET_PORT_BASE", "19100")),
              int(os.environ.get("CTOP_TEST_FLEET_PORT_BASE", "19100")) + 50)


def _listening(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


@contextmanager
def exporter_on(port: int, *args: str, ebpf: bool = False) -> Iterator[subprocess.Popen]:
    """`ctop exporter` on 127.0.0.1:``port`` with ``args`` (and eBPF if ``ebpf``); stopped by its pid afterwards."""
    assert port in PORTS
    base = tempfile.mkdtemp(prefix="ctoph-fleet-exporter-")
    log_path = os.path.join(base, "exporter.log")
    with open(log_path, "wb") as log:
        # At a high priority: each scrape then reads the node at the time Prometheus stamps on it, even on a loaded
        # shared machine (a collection delayed by seconds skews every rate computed from the samples).
        proc = subprocess.Popen(["nice", "-n", "-15", *exporter_argv(), f"--web.listen-address=127.0.0.1:{port}",
                                 *([] if ebpf else ["--no-ebpf"]), *args],
                                stdout=log, stderr=subprocess.STDOUT, cwd=base)

    def tail() -> str:
        with open(log_path, "rb") as f:
            return f.read()[-3000:].decode("utf-8", "replace")

    try:
        wait_ready(proc, lambda: _listening(port), "ctop exporter", tail, 60)
        yield proc
    finally:
        _stop(proc)
        shutil.rmtree(base, ignore_errors=True)


class _Static(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *_args: Any) -> None:
        pass


@contextmanager
def static_target(port: int, exposition: bytes) -> Iterator[str]:
    """A tiny HTTP server answering every GET with ``exposition`` (a recorded /metrics page)."""
    assert port in PORTS
    handler = type("Handler", (_Static,), {"body": exposition})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class FleetPrometheus:
    """A real Prometheus on loopback: its URL and a few API helpers for waiting."""

    proc: subprocess.Popen
    port: int
    base: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": expr} | ({"time": str(at)} if at is not None else {})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}", timeout=30) as r:
            return json.loads(r.read())["data"]["result"]

    def wait(self, ready: Callable[[], bool], what: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + patience(timeout)
        while not ready():
            if time.monotonic() > deadline:
                raise AssertionError(f"Prometheus never had {what}: {self.log()}")
            time.sleep(0.5)

    def log(self) -> str:
        try:
            with open(os.path.join(self.base, "prometheus.log"), "rb") as f:
                return f.read()[-3000:].decode("utf-8", "replace")
        except OSError:
            return ""


@contextmanager
def fleet_prometheus(port: int, targets: dict[str, str], scrape_interval: str = "1s",
                     extra_args: tuple[str, ...] = (),
                     older: dict[str, tuple[str, str]] | None = None) -> Iterator[FleetPrometheus]:
    """A real Prometheus on 127.0.0.1:``port`` scraping ``targets`` (node name -> host:port), each labelled with its
    node, in one job; its own config and data directory, removed afterwards. ``older``: node name -> (host:port,
    regular expression of metric names): targets in a second job whose series of those names are dropped at each
    scrape (a real exporter standing for an older one that did not serve them), each with its node name as its
    ``instance`` (so that it can share a host:port with a target of ``targets``)."""
    assert port in PORTS
    binary = need_binary("prometheus")
    base = tempfile.mkdtemp(prefix="ctoph-fleet-prometheus-")
    job = {"scrape_interval": scrape_interval, "scrape_timeout": scrape_interval}
    jobs = [{"job_name": "fleet", **job,
             "static_configs": [{"targets": [t], "labels": {"node": n}} for n, t in targets.items()]}]
    for node, (target, dropped) in (older or {}).items():
        jobs.append({"job_name": f"fleet-older-{node}", **job,
                     "static_configs": [{"targets": [target], "labels": {"node": node, "instance": node}}],
                     "metric_relabel_configs": [{"source_labels": ["__name__"], "regex": dropped,
                                                 "action": "drop"}]})
    config = {"global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
              "scrape_configs": jobs}
    path = os.path.join(base, "prometheus.yml")
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    with open(os.path.join(base, "prometheus.log"), "wb") as log:
        proc = subprocess.Popen(["nice", "-n", "-15", binary, f"--config.file={path}",
                                 f"--storage.tsdb.path={base}/data", f"--web.listen-address=127.0.0.1:{port}",
                                 "--log.level=warn", *extra_args],
                                stdout=log, stderr=subprocess.STDOUT, cwd=base)
    prom = FleetPrometheus(proc, port, base)

    def ready() -> bool:
        with urllib.request.urlopen(f"{prom.url}/-/ready", timeout=2) as r:
            return r.status == 200

    try:
        wait_ready(proc, ready, "prometheus", prom.log, 60)
        yield prom
    finally:
        _stop(proc)
        shutil.rmtree(base, ignore_errors=True)
