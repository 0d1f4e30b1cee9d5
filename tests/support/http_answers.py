"""A real HTTP server on loopback whose answers a test decides (the fleet view's Prometheus edge), on the fleet
tests' ports (19100-19149)."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .fleet import PORTS

PORT = PORTS.start + 20

Reply = Callable[[http.server.BaseHTTPRequestHandler], tuple[int, bytes]]


def ok(result: list[dict[str, Any]], warnings: list[str] | None = None) -> bytes:
    body: dict[str, Any] = {"status": "success", "data": {"resultType": "vector", "result": result}}
    if warnings:
        body["warnings"] = warnings
    return json.dumps(body).encode()


@contextmanager
def server(reply: Reply, port: int = PORT) -> Iterator[list[http.server.BaseHTTPRequestHandler]]:
    """A real HTTP server on 127.0.0.1:``port`` answering every GET with ``reply(request)``; yields the requests."""
    seen: list[http.server.BaseHTTPRequestHandler] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self)
            status, body = reply(self)
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:  # the client gave up (the slow-answer test)
                pass

        def log_message(self, *_args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        httpd.shutdown()
        httpd.server_close()


