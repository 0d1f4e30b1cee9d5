"""`ctop exporter` as a real process: TLS and basic auth, bad requests, slow clients, and its error messages."""

from __future__ import annotations

import base64
import http.client
import os
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import bcrypt
import pytest
from support.prometheus import exporter_argv, free_port, make_self_signed_cert, running_exporter, running_prometheus

pytestmark = pytest.mark.system


def _get(port: int, path: str, headers: dict[str, str] | None = None, tls: bool = False,
         timeout: float = 30) -> tuple[int, bytes]:
    if tls:
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            "127.0.0.1", port, timeout=timeout, context=ssl._create_unverified_context())
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def tls_web_config():
    with tempfile.TemporaryDirectory(prefix="ctop-webcfg-") as d:
        cert, key = make_self_signed_cert(d)
        hashed = bcrypt.hashpw(b"s3cret pass", bcrypt.gensalt(rounds=6)).decode()
        path = os.path.join(d, "web.yml")
        with open(path, "w") as f:
            f.write(f"tls_server_config:\n  cert_file: {os.path.basename(cert)}\n  key_file: {key}\n"
                    f"basic_auth_users:\n  prometheus: '{hashed}'\n")
        yield path, cert


def test_tls_and_basic_auth(tls_web_config):
    web_config, cert = tls_web_config
    with running_exporter(f"--web.config.file={web_config}", "--no-ebpf", scheme="https") as exp:
        status, body = _get(exp.port, "/metrics", _basic("prometheus", "s3cret pass"), tls=True)
        assert status == 200 and b"container_cpu_usage_seconds_total" in body
        # Verified against the certificate itself, not just "unverified".
        ctx = ssl.create_default_context(cafile=cert)
        conn = http.client.HTTPSConnection("127.0.0.1", exp.port, timeout=30, context=ctx)
        conn.request("GET", "/healthz", headers=_basic("prometheus", "s3cret pass"))
        assert conn.getresponse().status == 200
        conn.close()
        assert _get(exp.port, "/metrics", _basic("prometheus", "wrong"), tls=True)[0] == 401
        assert _get(exp.port, "/metrics", _basic("nobody", "s3cret pass"), tls=True)[0] == 401
        status, _ = _get(exp.port, "/metrics", tls=True)
        assert status == 401
        assert _get(exp.port, "/metrics", {"Authorization": "Basic !!!notbase64"}, tls=True)[0] == 401
        # Plain HTTP to the TLS listener gets no HTTP answer.
        with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
            _get(exp.port, "/metrics", _basic("prometheus", "s3cret pass"), timeout=10)
        # The exporter is still serving afterwards.
        assert _get(exp.port, "/healthz", _basic("prometheus", "s3cret pass"), tls=True)[0] == 200
        assert exp.proc.poll() is None


def test_prometheus_scrapes_over_tls_with_basic_auth(tls_web_config):
    web_config, cert = tls_web_config
    with (running_exporter(f"--web.config.file={web_config}", "--no-ebpf", scheme="https") as exp,
          tempfile.TemporaryDirectory() as d):
        password_file = os.path.join(d, "password")
        with open(password_file, "w") as f:
            f.write("s3cret pass")
        extra = {"scheme": "https", "tls_config": {"ca_file": cert},
                 "basic_auth": {"username": "prometheus", "password_file": password_file}}
        with running_prometheus(exp.address, scrape_extra=extra) as prom:
            result = prom.wait_for('ctop_build_info{job="ctop"}', timeout=30)
            assert result, prom.targets()
            (target,) = prom.targets()
            assert target["health"] == "up", target


def test_routes_and_bad_requests_never_stop_the_exporter():
    with running_exporter("--no-ebpf") as exp:
        port = exp.port
        status, body = _get(port, "/")
        assert status == 200 and b"/metrics" in body
        assert _get(port, "/healthz") == (200, b"ok\n")
        assert _get(port, "/nope")[0] == 404
        assert _get(port, "/metrics/../etc/passwd")[0] == 404
        # One huge header line, and too many headers: rejected, not served.
        assert _get(port, "/metrics", {"X-Big": "a" * 100_000})[0] in (400, 431)
        many = {f"X-H{i}": "v" for i in range(300)}
        assert _get(port, "/metrics", many)[0] in (400, 431)
        # Garbage and a request line of 100 KB.
        for raw in (b"GARBAGE\r\n\r\n", b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\n\r\n", b"\x16\x03\x01\x00\xff"):
            with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
                try:
                    s.sendall(raw)
                    s.shutdown(socket.SHUT_WR)
                    reply = s.recv(200)
                except OSError:  # refused and closed while the 100 KB were still arriving (reset, not connected)
                    reply = b""
                assert reply == b"" or reply.startswith(b"HTTP/1.")
                if reply:
                    assert reply.split()[1] in (b"400", b"414", b"431")
        assert exp.proc.poll() is None
        assert _get(port, "/metrics")[0] == 200


def test_slow_clients_never_starve_others():
    with running_exporter("--no-ebpf") as exp:
        port = exp.port
        slow: list[socket.socket] = []
        stop = threading.Event()
        try:
            for _ in range(30):  # slowloris: request heads trickling in a byte at a time
                s = socket.create_connection(("127.0.0.1", port), timeout=30)
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                slow.append(s)

            def trickle() -> None:
                while not stop.is_set():
                    for s in slow:
                        try:
                            s.sendall(b"X")
                        except OSError:
                            pass
                    stop.wait(0.5)

            threading.Thread(target=trickle, daemon=True).start()
            # Clients that connect and never send anything.
            idle = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(10)]
            slow.extend(idle)
            for _ in range(5):
                start = time.monotonic()
                status, body = _get(port, "/metrics", timeout=10)
                assert status == 200 and b"ctop_build_info" in body
                assert time.monotonic() - start < 5.0
            # The server gives up on every slow client within its request deadline (10 s).
            deadline = time.monotonic() + 20
            closed = 0
            for s in slow:
                s.settimeout(max(0.1, deadline - time.monotonic()))
                try:
                    data = s.recv(4096)
                    while data and not data.endswith(b"\n\n") and b"HTTP/1." not in data:
                        data = s.recv(4096)
                    closed += 1
                except (TimeoutError, OSError):
                    pass
            assert closed == len(slow)
        finally:
            stop.set()
            for s in slow:
                s.close()
        assert exp.proc.poll() is None
        assert _get(port, "/healthz")[0] == 200


def _run_exporter(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*exporter_argv(), *args], capture_output=True, text=True, timeout=timeout)


def test_errors_end_in_one_sentence_and_an_exit_status():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = _run_exporter(f"--web.listen-address=127.0.0.1:{port}")
    assert result.returncode == 1
    assert "already in use" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

    with tempfile.TemporaryDirectory() as d:
        bad = os.path.join(d, "web.yml")
        cases = {
            "tls_server_config: [unclosed": "not valid YAML",
            "basic_auth_users:\n  admin: plaintext\n": "not a bcrypt hash",
            "tls_server_config:\n  cert_file: /nonexistent.crt\n  key_file: /nonexistent.key\n": "cannot load TLS",
            "unknown_key: 1\n": "unknown key",
        }
        for text, message in cases.items():
            with open(bad, "w") as f:
                f.write(text)
            result = _run_exporter(f"--web.listen-address=127.0.0.1:{free_port()}", f"--web.config.file={bad}")
            assert result.returncode == 2, (text, result.stderr)
            assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
        result = _run_exporter(f"--web.config.file={os.path.join(d, 'missing.yml')}")
        assert result.returncode == 2 and "cannot read web config" in result.stderr
    result = _run_exporter("--cgroup.include=(")
    assert result.returncode == 2 and "not a valid regular expression" in result.stderr
    result = _run_exporter("--web.listen-address=nonsense")
    assert result.returncode == 1 and "Traceback" not in result.stderr
