"""A real `ctop exporter` process and a real Prometheus (apt) scraping it, both on loopback, for system tests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import yaml

from .env import ctop_command, need_binary, patience


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def exporter_argv() -> list[str]:
    """The installed `ctop exporter` (never the source tree, which is not an installed package)."""
    return [ctop_command(), "exporter"]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@dataclass
class Exporter:
    proc: subprocess.Popen
    port: int
    scheme: str = "http"
    log_path: str = ""

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str = "/metrics") -> str:
        return f"{self.scheme}://{self.address}{path}"

    def log(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-4000:].decode("utf-8", "replace")
        except OSError:
            return ""

    def scrape(self, path: str = "/metrics", timeout: float = 30) -> str:
        ctx = ssl._create_unverified_context() if self.scheme == "https" else None
        with urllib.request.urlopen(self.url(path), timeout=timeout, context=ctx) as resp:
            return resp.read().decode("utf-8")


def wait_ready(proc: subprocess.Popen, ready: Callable[[], bool], what: str, log: Callable[[], str],
               timeout: float) -> None:
    """Poll ``ready`` (OSError means "not yet") until it holds; RuntimeError with the log if ``proc`` exits first
    or ``timeout`` (stretched by ``patience``) passes."""
    deadline = time.monotonic() + patience(timeout)
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {log()}")
        try:
            if ready():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not become ready in time: {log()}")
        time.sleep(0.1)


@contextmanager
def running_exporter(*args: str, scheme: str = "http", ready_timeout: float = 60) -> Iterator[Exporter]:
    """Start `ctop exporter` on a free loopback port; yields once it answers; stopped (by pid) afterwards."""
    port = free_port()
    base = tempfile.mkdtemp(prefix="ctop-exporter-test-")
    log_path = os.path.join(base, "exporter.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([*exporter_argv(), f"--web.listen-address=127.0.0.1:{port}", *args],
                                stdout=log, stderr=subprocess.STDOUT, cwd=base)  # any directory works
    exporter = Exporter(proc, port, scheme, log_path)
    try:
        def listening() -> bool:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True

        wait_ready(proc, listening, "ctop exporter", exporter.log, ready_timeout)
        yield exporter
    finally:
        _stop(proc)
        shutil.rmtree(base, ignore_errors=True)


@dataclass
class Prometheus:
    proc: subprocess.Popen
    port: int
    base: str
    rule_files: list[str] = field(default_factory=list)

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}" + (f"?{query}" if query else "")
        with urllib.request.urlopen(url, timeout=30) as resp:
            body = json.loads(resp.read())
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus API {path} failed: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant vector result of ``expr`` now."""
        return self.api("query", query=expr)["result"]

    def wait_for(self, expr: str, timeout: float = 60) -> list[dict[str, Any]]:
        deadline = time.monotonic() + patience(timeout)
        while True:
            result = self.query(expr)
            if result or time.monotonic() > deadline:
                return result
            time.sleep(0.5)

    def targets(self) -> list[dict[str, Any]]:
        return self.api("targets")["activeTargets"]

    def log(self) -> str:
        try:
            with open(os.path.join(self.base, "prometheus.log"), "rb") as f:
                return f.read()[-4000:].decode("utf-8", "replace")
        except OSError:
            return ""


@contextmanager
def running_prometheus(target: str, job: str = "ctop", scrape_interval: str = "1s",
                       rule_files: tuple[str, ...] = (), scrape_extra: dict[str, Any] | None = None,
                       ready_timeout: float = 60) -> Iterator[Prometheus]:
    """A real Prometheus on a free loopback port with its own config and data dir, scraping ``target``."""
    binary = need_binary("prometheus")
    base = tempfile.mkdtemp(prefix="ctop-prometheus-test-")
    copied = []
    for i, path in enumerate(rule_files):
        dest = os.path.join(base, f"rules-{i}.yml")
        shutil.copy(path, dest)
        copied.append(dest)
    job_config: dict[str, Any] = {"job_name": job, "honor_labels": True, "scrape_interval": scrape_interval,
                                  "scrape_timeout": scrape_interval, "static_configs": [{"targets": [target]}]}
    job_config.update(scrape_extra or {})
    config = {"global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
              "rule_files": copied, "scrape_configs": [job_config]}
    config_path = os.path.join(base, "prometheus.yml")
    with open(config_path, "w") as f:
        yaml.safe_dump(config, f)
    port = free_port()
    with open(os.path.join(base, "prometheus.log"), "wb") as log:
        proc = subprocess.Popen(
            [binary, f"--config.file={config_path}", f"--storage.tsdb.path={os.path.join(base, 'data')}",
             f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1h", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT, cwd=base)
    prom = Prometheus(proc, port, base, copied)
    try:
        def ready() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2) as resp:
                return resp.status == 200

        wait_ready(proc, ready, "prometheus", prom.log, ready_timeout)
        yield prom
    finally:
        _stop(proc)
        shutil.rmtree(base, ignore_errors=True)


def make_self_signed_cert(directory: str, cn: str = "127.0.0.1") -> tuple[str, str]:
    """A self-signed certificate and key for ``cn`` (also as IP SAN), made with the openssl binary."""
    openssl = need_binary("openssl")
    cert, key = os.path.join(directory, "server.crt"), os.path.join(directory, "server.key")
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={cn}",
                    "-addext", f"subjectAltName=IP:{cn}", "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=60)
    return cert, key
