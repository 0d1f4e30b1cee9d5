"""Docker API client and watcher against a real unix-socket HTTP server answering well, badly, slowly or not."""

from __future__ import annotations

import http.server
import json
import os
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctop.model.notices import Notice, NoticeKind
from ctop.runtimes.docker_api import DockerClient, DockerUnavailable
from ctop.runtimes.docker_meta import DockerWatcher, apply_inspect, meta_from_list_entry, parse_docker_time
from ctop.runtimes.identify import identify
from ctop.runtimes.metadata import MetadataService

CID = "ab" * 32
LIST = [{"Id": CID, "Names": ["/web"], "Image": "nginx:1.25", "State": "running",
         "Labels": {"com.docker.compose.project": "shop", "com.docker.compose.service": "front"}}]
INSPECT = {"Id": CID, "State": {"Status": "running", "Pid": 4242, "StartedAt": "2024-05-06T07:08:09.5Z"}}


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        mode = self.server.mode  # type: ignore[attr-defined]
        if mode == "slow":
            time.sleep(1.5)
        if mode == "500":
            self.send_response(500)
            self.end_headers()
            return
        if mode == "garbage":
            body = b"\x00not json{"
        elif self.path.startswith("/containers/json"):
            body = json.dumps(LIST).encode()
        elif self.path.startswith("/containers/"):
            body = json.dumps(INSPECT).encode()
        elif self.path.startswith("/events"):
            self.send_response(404)
            self.end_headers()
            return
        else:
            body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    mode = "ok"


@pytest.fixture
def fake_daemon(tmp_path) -> Iterator[_Server]:
    path = os.path.join(str(tmp_path), "d.sock")
    server = _Server(path, _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_answers_are_parsed(fake_daemon: _Server) -> None:
    client = DockerClient(fake_daemon.server_address, timeout_s=1.0)  # type: ignore[arg-type]
    watcher = DockerWatcher(client, explicit=True)
    watcher.poll_once()
    meta = watcher.containers[CID]
    assert (meta.name, meta.image, meta.pid, meta.state) == ("web", "nginx:1.25", 4242, "running")
    assert (meta.compose_project, meta.compose_service) == ("shop", "front")
    assert meta.started_at == pytest.approx(1714979289.5)
    assert watcher.notice == ""


@pytest.mark.parametrize(("mode", "words"), [("garbage", "not JSON"), ("500", "HTTP 500"),
                                             ("slow", "did not answer within 0.5 s")])
def test_bad_daemon_only_costs_names(fake_daemon: _Server, mode: str, words: str) -> None:
    client = DockerClient(fake_daemon.server_address, timeout_s=0.5)  # type: ignore[arg-type]
    watcher = DockerWatcher(client, explicit=True)
    watcher.poll_once()
    assert CID in watcher.containers
    fake_daemon.mode = mode
    start = time.monotonic()
    watcher.poll_once()
    assert time.monotonic() - start < 1.4
    assert watcher.containers == {}
    assert words in watcher.notice and watcher.notice.endswith("container names are missing.")
    fake_daemon.mode = "ok"
    watcher.poll_once()
    assert CID in watcher.containers and watcher.notice == ""


def test_missing_socket(tmp_path) -> None:
    sock = str(tmp_path / "none.sock")
    with pytest.raises(DockerUnavailable, match="no Docker socket"):
        DockerClient(sock).list_containers()
    # The default socket missing on a host without Docker is normal: no notice then.
    implicit = MetadataService(host_root=str(tmp_path))
    implicit.refresh(2)
    assert implicit.notices() == []
    explicit = MetadataService(docker_socket=sock)
    explicit.refresh(2)
    assert explicit.notices() == [Notice(NoticeKind.NO_CONTAINER_NAMES,
                                         f"No Docker socket at {sock}: container names are missing.")]


def test_service_threads_follow_the_daemon(fake_daemon: _Server) -> None:
    svc = MetadataService(docker_socket=fake_daemon.server_address, docker_refresh_s=0.2,  # type: ignore[arg-type]
                          docker_timeout_s=0.5)
    svc.start()
    try:
        path = f"/docker/{CID}"
        assert svc.refresh(3)
        meta = svc.lookup(path, identify(path))
        assert meta is not None and meta.name == "web"
        fake_daemon.mode = "garbage"
        assert svc.refresh(3)
        assert svc.lookup(path, identify(path)) is None
        assert len(svc.notices()) == 1
    finally:
        start = time.monotonic()
        svc.close()
        assert time.monotonic() - start < 3


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)
entry_like = st.fixed_dictionaries({}, optional={
    "Id": json_values | st.just(CID), "Names": json_values | st.just(["/x", 3]), "Image": json_values,
    "State": json_values, "Labels": json_values | st.just({"io.kubernetes.pod.name": "p", "k": 1}),
})


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, entry_like), json_values)
def test_malformed_api_json_never_raises(entry: object, inspect: object) -> None:
    meta = meta_from_list_entry(entry)
    if meta is None:
        return
    assert isinstance(meta.name, str) and isinstance(meta.image, str) and meta.container_id
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta.labels.items())
    full = apply_inspect(meta, inspect)
    assert full.pid is None or (isinstance(full.pid, int) and full.pid > 0)


def test_docker_time() -> None:
    assert parse_docker_time("2024-05-06T07:08:09.123456789Z") == pytest.approx(1714979289.123456789)
    assert parse_docker_time("2024-05-06T09:08:09+02:00") == pytest.approx(1714979289)
    assert parse_docker_time("0001-01-01T00:00:00Z") is None
    assert parse_docker_time("yesterday") is None
    assert parse_docker_time(12) is None
    assert parse_docker_time("2024-13-45T07:08:09Z") is None
