"""A minimal Docker Engine API client over the unix socket (http.client, short timeouts, no dependency)."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import urllib.parse
from collections.abc import Callable

from ..model.safe_text import short_reason

DEFAULT_SOCKET = "/var/run/docker.sock"
MAX_RESPONSE_BYTES = 64 * 1024 * 1024


class DockerUnavailable(Exception):
    """The daemon did not answer usefully; the message is one sentence for the user."""


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, socket_path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self._socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class DockerClient:
    """GETs JSON from a Docker daemon; every failure becomes DockerUnavailable with a readable reason."""

    def __init__(self, socket_path: str = DEFAULT_SOCKET, timeout_s: float = 2.0) -> None:
        self.socket_path = socket_path
        self.timeout_s = timeout_s
        self._stream_lock = threading.Lock()
        self._stream_conn: _UnixHTTPConnection | None = None

    def get_json(self, path: str, params: dict[str, str] | None = None) -> object:
        url = path + ("?" + urllib.parse.urlencode(params) if params else "")
        conn = _UnixHTTPConnection(self.socket_path, self.timeout_s)
        try:
            conn.request("GET", url, headers={"Accept": "application/json"})
            resp = conn.getresponse()
            body = resp.read(MAX_RESPONSE_BYTES + 1)
            status = resp.status
        except FileNotFoundError as e:
            raise DockerUnavailable(f"no Docker socket at {self.socket_path}") from e
        except ConnectionRefusedError as e:
            raise DockerUnavailable(f"Docker daemon at {self.socket_path} refuses connections") from e
        except TimeoutError as e:
            raise DockerUnavailable(f"Docker daemon at {self.socket_path} did not answer within "
                                    f"{self.timeout_s:g} s") from e
        except http.client.BadStatusLine as e:  # its message is whatever bytes came back
            raise DockerUnavailable(f"Docker daemon at {self.socket_path} answered something that is not HTTP") from e
        except (OSError, http.client.HTTPException) as e:
            raise DockerUnavailable(f"Docker daemon at {self.socket_path} is not answering ({short_reason(e)})") from e
        finally:
            conn.close()
        if len(body) > MAX_RESPONSE_BYTES:
            raise DockerUnavailable(f"Docker daemon at {self.socket_path} sent an oversized answer")
        if status != 200:
            raise DockerUnavailable(f"Docker daemon at {self.socket_path} answered HTTP {status} to {path}")
        try:
            return json.loads(body)
        except (ValueError, RecursionError) as e:  # RecursionError: nested too deep to parse
            raise DockerUnavailable(f"Docker daemon at {self.socket_path} answered something that is not JSON") from e

    def list_containers(self) -> object:
        """GET /containers/json (running and paused containers)."""
        return self.get_json("/containers/json")

    def inspect(self, container_id: str) -> object:
        return self.get_json(f"/containers/{urllib.parse.quote(container_id, safe='')}/json")

    def stream_events(self, on_event: Callable[[object], None]) -> None:
        """Follow GET /events for containers, calling ``on_event`` per event, until the stream ends.

        Raises DockerUnavailable when it cannot connect; returns when the daemon (or close_stream) ends it.
        """
        conn = _UnixHTTPConnection(self.socket_path, self.timeout_s)
        params = urllib.parse.urlencode({"filters": json.dumps({"type": ["container"]})})
        try:
            conn.request("GET", "/events?" + params)
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise DockerUnavailable(f"Docker daemon at {self.socket_path} is not answering ({short_reason(e)})") from e
        if resp.status != 200:
            conn.close()
            raise DockerUnavailable(f"Docker daemon at {self.socket_path} answered HTTP {resp.status} to /events")
        if conn.sock is not None:
            conn.sock.settimeout(None)  # an idle stream is normal; close_stream() interrupts it
        with self._stream_lock:
            self._stream_conn = conn
        try:
            while True:
                line = resp.readline(1024 * 1024)
                if not line:
                    return
                line = line.strip()
                if not line:
                    continue
                try:
                    event = json.loads(line)
                except (ValueError, RecursionError):
                    continue
                on_event(event)
        except (OSError, http.client.HTTPException, ValueError):
            return
        finally:
            with self._stream_lock:
                self._stream_conn = None
            conn.close()

    def close_stream(self) -> None:
        """Interrupt a stream_events() running in another thread."""
        with self._stream_lock:
            conn = self._stream_conn
        if conn is not None and conn.sock is not None:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
