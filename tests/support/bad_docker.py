"""A unix-socket server that answers Docker API requests badly (garbage, wrong types, hangs, huge bodies).

The one fake in the suite: a real dockerd cannot be made to answer garbage. Each mode answers every request
(/containers/json, /containers/<id>/json, /events, ...) the same bad way.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import threading
from collections.abc import Iterator

HUGE_BYTES = 50 * 1024 * 1024
# A container the server lists in the "wrong-types" mode, among entries of every wrong shape.
LISTED_ID = "f" * 64

MODES = ("invalid-json", "wrong-types", "deep-json", "truncated-chunked", "http-500", "hang", "close",
         "huge", "garbage-bytes", "scripted")


def _response(status: str, body: bytes, content_type: str = "application/json") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def _wrong_types(path: str) -> bytes:
    if path.startswith("/containers/json"):
        entries: list[object] = [None, 1, "x", [], {"Id": 5}, {"Id": None}, {"Id": ["a"]},
                                 {"Id": LISTED_ID, "Names": {"a": 1}, "Labels": [1, 2], "Image": 7, "State": {}},
                                 {"Id": "e" * 64, "Names": [None, 5, "/ok/nested", "//"],
                                  "Labels": {"a": None, "b": {}}}]
        return json.dumps(entries).encode()
    if path.startswith("/containers/"):
        return json.dumps({"State": {"Pid": 2**80, "StartedAt": 12, "Status": ["running"]}}).encode()
    return json.dumps([1, 2, 3]).encode()


class BadDockerServer:
    """Serves one bad ``mode`` on ``socket_path`` from a thread until ``close()``."""

    def __init__(self, mode: str, socket_path: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode}")
        self.mode = mode
        self.socket_path = socket_path
        self.requests: list[str] = []
        # "scripted": the bodies to send (200 OK) to the list, to every inspect and to /events.
        self.list_body = b"[]"
        self.inspect_body = b"{}"
        self.events_body = b""
        self._stop = threading.Event()
        self._held: list[socket.socket] = []
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(socket_path)
        self._listener.listen(64)
        self._listener.settimeout(0.2)
        self._thread = threading.Thread(target=self._serve, name=f"bad-docker-{mode}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for conn in self._held:
            with contextlib.suppress(OSError):
                conn.close()
        self._listener.close()
        with contextlib.suppress(OSError):
            os.unlink(self.socket_path)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _read_request(self, conn: socket.socket) -> str:
        conn.settimeout(5)
        data = b""
        with contextlib.suppress(OSError):
            while b"\r\n\r\n" not in data and len(data) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
        line = data.split(b"\r\n", 1)[0].decode("latin-1")
        path = line.split(" ")[1] if line.count(" ") >= 2 else ""
        self.requests.append(path)
        return path

    def _answer(self, conn: socket.socket) -> None:
        if self.mode == "close":
            conn.close()
            return
        path = self._read_request(conn)
        if self.mode == "hang":
            self._held.append(conn)  # never answered; closed by close()
            return
        try:
            conn.sendall(self._reply(path))
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _reply(self, path: str) -> bytes:
        mode = self.mode
        if mode == "scripted":
            if path.startswith("/containers/json"):
                return _response("200 OK", self.list_body)
            return _response("200 OK", self.events_body if path.startswith("/events") else self.inspect_body)
        if mode == "invalid-json":
            return _response("200 OK", b'[{"Id": "abc", "Names": ["/x"')
        if mode == "wrong-types":
            return _response("200 OK", _wrong_types(path))
        if mode == "deep-json":
            return _response("200 OK", b"[" * 100000 + b"]" * 100000)
        if mode == "truncated-chunked":
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            return head + b"400\r\n" + b'[{"Id": "' + b"a" * 100
        if mode == "http-500":
            return _response("500 Internal Server Error", b'{"message": "boom"}')
        if mode == "huge":
            filler = b"a" * (HUGE_BYTES - 200)
            return _response("200 OK", b'[{"Id": "' + b"d" * 64 + b'", "Labels": {"x": "' + filler + b'"}}]')
        # garbage-bytes: not even HTTP
        return bytes(range(256)) * 64


@contextlib.contextmanager
def bad_docker(mode: str) -> Iterator[BadDockerServer]:
    """A BadDockerServer on a fresh socket in a private directory; closed and removed afterwards."""
    base = tempfile.mkdtemp(prefix="ctop-bad-docker-")
    server = BadDockerServer(mode, os.path.join(base, "docker.sock"))
    try:
        yield server
    finally:
        server.close()
        with contextlib.suppress(OSError):
            os.rmdir(base)
