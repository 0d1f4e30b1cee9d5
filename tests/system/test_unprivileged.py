"""ctop as an unprivileged user (setpriv to nobody): batch, doctor and exporter show what they can, say once why not."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.request

import pytest
from support.env import ctop_command, need_binary, need_root
from support.prometheus import free_port

from ctop.model.notices import NOT_ROOT

pytestmark = pytest.mark.system

NOBODY = ("--reuid=65534", "--regid=65534", "--clear-groups")


def as_nobody(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    need_root()  # to switch to nobody
    setpriv = need_binary("setpriv")
    return subprocess.run([setpriv, *NOBODY, ctop_command(), *args], capture_output=True, text=True,
                          timeout=timeout, cwd="/", env={**os.environ, "HOME": "/"})


def test_batch_as_nobody_shows_cgroups_and_says_once_that_it_is_not_root():
    out = as_nobody("-b", "-n", "3", "-d", "0.3")
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[0] == "CGROUP" and any(line.split()[0] == "/" for line in lines[1:]), out.stdout[:500]
    not_root = [line for line in out.stderr.splitlines() if "root" in line.lower()]
    assert not_root == [f"ctop: {NOT_ROOT.sentence}"], out.stderr
    as_json = as_nobody("-b", "--json", "-n", "1", "-d", "0.3")
    rows = json.loads(as_json.stdout)
    root = next(r for r in rows if r["id"] == "/")
    assert root["cpu_percent"] is not None  # cgroup files are world-readable: the figures are there


def test_doctor_as_nobody_warns_once_and_exits_zero():
    out = as_nobody("doctor")
    assert out.returncode == 0, out.stdout + out.stderr  # ctop runs without root: eBPF only adds fields
    assert "[FAIL]" not in out.stdout and "Traceback" not in out.stderr, out.stdout
    root_lines = [line for line in out.stdout.splitlines() if line.split()[1:2] == ["root"]]
    assert len(root_lines) == 1 and root_lines[0].startswith("[WARN]") and "sudo" in root_lines[0], out.stdout


def test_exporter_as_nobody_serves_without_ebpf_and_says_so_once():
    need_root()
    setpriv = need_binary("setpriv")
    port = free_port()
    with tempfile.TemporaryFile() as log:
        argv = [setpriv, *NOBODY, ctop_command(), "exporter", f"--web.listen-address=127.0.0.1:{port}"]
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd="/", env={**os.environ, "HOME": "/"})
        try:
            bodies = []
            deadline = time.monotonic() + 60
            while len(bodies) < 3:
                assert proc.poll() is None, "exporter exited"
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as resp:
                        bodies.append(resp.read().decode())
                    time.sleep(1.1)
                except OSError:
                    assert time.monotonic() < deadline, "exporter did not answer"
                    time.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)
        log.seek(0)
        text = log.read().decode("utf-8", "replace")
    last = bodies[-1]
    assert 'container_cpu_usage_seconds_total{id="/"' in last
    assert "ctop_ebpf_enabled 0" in last
    assert "\nctop_context_switches_total{" not in last and "\nctop_runqueue" not in last
    assert text.count(NOT_ROOT.sentence) == 1, text
    assert "Traceback" not in text, text

