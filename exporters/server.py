"""The exporter's HTTP server: threaded, TLS and basic auth, bounded requests, / landing page, /healthz, /metrics."""

from __future__ import annotations

import base64
import binascii
import errno
import html
import io
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import ctop

from .exposition import Exposition
from .webconfig import WebConfig

# A client gets this long to send a whole request head (request line and headers), however slowly it trickles.
REQUEST_TIMEOUT_S = 10.0
# Sending a response (or a TLS handshake) must make progress at least this often.
WRITE_TIMEOUT_S = 30.0
# Connections served at once; more are closed at once instead of queueing behind slow clients.
MAX_CONNECTIONS = 128


class ListenError(Exception):
    """The server cannot listen where it was asked to; the message is one sentence."""


class _DeadlineSocketIO(io.RawIOBase):
    """Reads from a socket, but never past a deadline: a slow client cannot hold a request open."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.deadline = time.monotonic() + REQUEST_TIMEOUT_S

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("request took too long")
        self.sock.settimeout(remaining)
        return self.sock.recv_into(buffer)


class Handler(BaseHTTPRequestHandler):
    """One connection: reads requests with a deadline and answers the four routes."""

    server: ExporterServer
    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.0"  # never answer in HTTP/0.9 (a bare body without a status line)
    server_version = f"ctop-exporter/{ctop.__version__}"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self._raw = _DeadlineSocketIO(self.connection)
        self.rfile = io.BufferedReader(self._raw)

    def handle_one_request(self) -> None:
        self._raw.deadline = time.monotonic() + REQUEST_TIMEOUT_S
        super().handle_one_request()

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: one line per scrape would flood the journal

    def do_HEAD(self) -> None:
        self._route(head=True)

    def do_GET(self) -> None:
        self._route(head=False)

    def _route(self, head: bool) -> None:
        self.connection.settimeout(WRITE_TIMEOUT_S)
        if not self._authorized():
            self._reply(401, b"Unauthorized\n", "text/plain; charset=utf-8", head,
                        {"WWW-Authenticate": 'Basic realm="ctop exporter"'})
            return
        path = self.path.split("?", 1)[0]
        srv = self.server
        if path == srv.telemetry_path:
            self._metrics(head)
        elif path == "/":
            self._reply(200, srv.landing_page(), "text/html; charset=utf-8", head)
        elif path == "/healthz":
            self._reply(200, b"ok\n", "text/plain; charset=utf-8", head)
        else:
            self._reply(404, b"Not Found\n", "text/plain; charset=utf-8", head)

    def _metrics(self, head: bool) -> None:
        exposition = self.server.exposition
        if exposition is None:
            self._reply(503, b"starting\n", "text/plain; charset=utf-8", head)
            return
        try:
            body = exposition.render(self.headers.get("Accept-Encoding", ""))
        except Exception as exc:  # a bug in rendering answers 500 for this scrape; the server keeps running
            self._reply(500, f"cannot render metrics: {type(exc).__name__}\n".encode(),
                        "text/plain; charset=utf-8", head)
            return
        extra = {"Content-Encoding": "gzip"} if body.gzipped else {}
        self._reply(200, body.data, body.content_type, head, extra)

    def _authorized(self) -> bool:
        users = self.server.web_config.users
        if not users:
            return True
        auth = self.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8", "surrogateescape")
        except (binascii.Error, ValueError):
            return False
        user, sep, password = decoded.partition(":")
        return bool(sep) and self.server.web_config.check_password(user, password)

    def _reply(self, code: int, data: bytes, content_type: str, head: bool,
               extra: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in {**self.server.web_config.headers, **(extra or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if not head:
            self.wfile.write(data)


class ExporterServer(ThreadingHTTPServer):
    """A thread per connection (bounded), TLS handshakes in the connection's thread, never in accept()."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], exposition: Exposition | None, web_config: WebConfig,
                 telemetry_path: str = "/metrics", max_connections: int = MAX_CONNECTIONS) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.exposition = exposition
        self.web_config = web_config
        self.telemetry_path = telemetry_path
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except Exception:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def finish_request(self, request: Any, client_address: Any) -> None:
        tls = self.web_config.tls
        if tls is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(REQUEST_TIMEOUT_S)
        try:
            conn = tls.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return  # plain HTTP, a bad handshake or a silent client: drop this connection only
        try:
            super().finish_request(conn, client_address)
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a broken connection concerns that client only

    def landing_page(self) -> bytes:
        path = html.escape(self.telemetry_path)
        return (
            "<!DOCTYPE html>\n<html><head><title>ctop exporter</title></head><body>\n"
            f"<h1>ctop exporter {html.escape(ctop.__version__)}</h1>\n"
            "<p>cgroup, container and pod metrics with cAdvisor's names, plus ctop's own <code>ctop_*</code>.</p>\n"
            f'<ul><li><a href="{path}">{path}</a></li><li><a href="/healthz">/healthz</a></li></ul>\n'
            "</body></html>\n"
        ).encode()


def parse_listen_address(value: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or ``:port`` (all interfaces) -> (host, port); ValueError otherwise."""
    host, sep, port_text = value.rpartition(":")
    if not sep:
        raise ValueError(f"--web.listen-address {value!r} must look like host:port or :port.")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"--web.listen-address {value!r} has no valid port number.") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"--web.listen-address {value!r} has a port outside 0-65535.")
    return (host or "0.0.0.0"), port


def make_server(listen_address: str, exposition: Exposition | None, web_config: WebConfig,
                telemetry_path: str = "/metrics", max_connections: int = MAX_CONNECTIONS) -> ExporterServer:
    """Bind the exporter's server; a port in use or a bad address ends in ListenError with one sentence."""
    host, port = parse_listen_address(listen_address)
    try:
        return ExporterServer((host, port), exposition, web_config, telemetry_path, max_connections)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ListenError(f"cannot listen on {listen_address}: the address is already in use.") from None
        if exc.errno == errno.EACCES:
            raise ListenError(f"cannot listen on {listen_address}: permission denied.") from None
        reason = exc.strerror or str(exc)
        raise ListenError(f"cannot listen on {listen_address}: {reason}.") from None
