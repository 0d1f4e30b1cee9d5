"""Bad runtime metadata: Docker API answers, config.json, containers.json, kubelet log names and cgroup paths.

Every parser gives a value or no data and every notice is one inert sentence; nothing raises, in the caller or in
the watcher's threads. The Docker API is a unix-socket server that answers badly (tests/support/bad_docker.py):
test_runtimes_docker_api.py covers the well-behaved and slow daemon, this file the garbage.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
import unicodedata
from collections.abc import Iterator

import pytest
from ctop.exporters.collector import SharedFrames, build_families
from ctop.exporters.families import render
from ctop.exporters.labels import CgroupFilter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from support.bad_docker import LISTED_ID, MODES, BadDockerServer, bad_docker
from unit.test_ui_frames import make_frame, make_row

from ctop.batch import BatchOptions, render_csv, render_json, render_text
from ctop.collector import identity_of
from ctop.model.notices import Notice, NoticeKind
from ctop.model.safe_text import inert
from ctop.runtimes import kubelet_logs
from ctop.runtimes.docker_api import DockerClient
from ctop.runtimes.docker_meta import DockerWatcher, apply_inspect, meta_from_list_entry, parse_docker_time
from ctop.runtimes.identify import KINDS, RUNTIMES, identify
from ctop.runtimes.locate import container_cgroups, matches
from ctop.runtimes.meta import ContainerMeta, clean_labels, kubernetes_fields
from ctop.runtimes.metadata import MetadataService
from ctop.runtimes.oci_config import crio_meta, read_json, storage_entries
from ctop.sources.cgroupfs_layout import CgroupLayout

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EVIL = ["\x1b[2J", "\x1b]0;title\x07", "\r", "\x9b31m", "\u202e", "x" * 2000, "\udcff", "\x00", ""]
K8S_KEYS = ["io.kubernetes.pod.name", "io.kubernetes.pod.namespace", "io.kubernetes.pod.uid",
            "io.kubernetes.container.name", "io.kubernetes.docker.type", "io.kubernetes.cri-o.Created",
            "io.kubernetes.cri-o.Name", "io.kubernetes.cri-o.ContainerType", "io.kubernetes.cri.sandbox-id"]
API_KEYS = ["Id", "Names", "Image", "State", "Labels", "Pid", "Status", "StartedAt", "Action", "id", "names",
            "metadata", "created", "annotations"]

text = st.text(max_size=24) | st.sampled_from(EVIL)
scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.sampled_from([2**64, -(2**63), 10**400])
           | st.floats() | text)
json_like = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(API_KEYS + K8S_KEYS) | text, inner, max_size=6),
    max_leaves=25,
)


def no_control(value: str) -> bool:
    return inert(value) == value


def assert_meta_is_plain(meta: ContainerMeta | None) -> None:
    """A ContainerMeta holds strings where it should, and serialises (what ctop -b --json and inspect do)."""
    if meta is None:
        return
    for name in ("runtime", "container_id", "name", "image", "pod", "namespace", "container", "state"):
        assert isinstance(getattr(meta, name), str), name
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta.labels.items())
    json.dumps(meta.as_dict(), default=str)
    identity_of(identify("/docker/" + "a" * 64), meta)


# --- pure parsers ----------------------------------------------------------------------------------------------------

@given(json_like, json_like)
@SETTINGS
def test_docker_list_and_inspect_entries_never_raise(entry: object, inspect: object) -> None:
    meta = meta_from_list_entry(entry)
    assert_meta_is_plain(meta)
    if meta is not None:
        full = apply_inspect(meta, inspect)
        assert_meta_is_plain(full)
        assert full.started_at is None or isinstance(full.started_at, float | int)


@given(st.text(alphabet="0123456789-+:.TZ٣ ", max_size=40) | text | scalars)
@SETTINGS
def test_docker_time_of_anything_is_a_time_or_none(value: object) -> None:
    got = parse_docker_time(value)
    assert got is None or isinstance(got, float | int)


@given(json_like)
@SETTINGS
def test_labels_and_kubernetes_fields_of_anything(value: object) -> None:
    labels = clean_labels(value)
    fields = kubernetes_fields(labels)
    assert all(isinstance(fields[k], str) for k in ("pod", "namespace", "pod_uid", "container"))


@given(json_like, st.lists(json_like, max_size=3))
@SETTINGS
def test_crio_and_podman_metadata_of_anything(config: object, storage: list[object]) -> None:
    entry = next((e for e in storage if isinstance(e, dict)), None)
    assert_meta_is_plain(crio_meta("c" * 64, config, entry))


file_bytes = (st.binary(max_size=300)
              | json_like.map(lambda v: json.dumps(v).encode("utf-8", "surrogatepass"))
              | st.integers(1, 200000).map(lambda n: b"[" * n + b"]" * n)
              | st.sampled_from([b'[{"id": "x", "metadata": "' + b"[" * 5000 + b'"}]', b"\xff\xfe{}", b"",
                                 b'[{"id": "x", "names": "notalist", "created": 5}]']))


@given(data=file_bytes)
@SETTINGS
def test_json_files_of_anything_are_data_or_none(scratch: str, data: bytes) -> None:
    path = os.path.join(scratch, "x.json")
    with open(path, "wb") as f:
        f.write(data)
    read_json(path)
    entries = storage_entries(path)
    for cid, entry in entries.items():
        assert isinstance(cid, str)
        assert_meta_is_plain(crio_meta(cid, read_json(path), entry))


# --- paths and names from directories ------------------------------------------------------------------------------

raw_name = st.binary(min_size=1, max_size=80).filter(lambda b: b"/" not in b and b"\0" not in b and b not in (b".",
                                                                                                              b".."))
log_name = raw_name | st.builds(lambda a, b, c, d: b"_".join([a, b, c]) + b"-" + d + b".log",
                                raw_name, raw_name, raw_name, st.just(b"a" * 64) | raw_name)


@given(pods=st.lists(log_name | st.builds(lambda a, b, c: b"_".join([a, b, c]), raw_name, raw_name, raw_name),
                     max_size=6),
       containers=st.lists(log_name, max_size=6))
@SETTINGS
def test_kubelet_log_names_of_any_bytes(scratch: str, pods: list[bytes], containers: list[bytes]) -> None:
    root = os.path.join(os.fsencode(scratch), b"host")
    shutil.rmtree(root, ignore_errors=True)
    for sub, names in ((b"var/log/pods", pods), (b"var/log/containers", containers)):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
        for name in names:
            target = os.path.join(root, sub, name)
            if not os.path.exists(target):
                os.mkdir(target)
                os.mkdir(os.path.join(target, name[:50]))
    index = kubelet_logs.scan(os.fsdecode(root))
    for value in [*index.pods.values(), *index.containers.values()]:
        json.dumps(value)  # surrogate-escaped names still serialise


path_text = st.lists(st.text(max_size=30) | st.binary(max_size=30).map(os.fsdecode) | st.sampled_from(
    ["kubepods", "kubepods.slice", "burstable", "pod" + "a" * 32, "docker", "docker-" + "b" * 64 + ".scope",
     "crio-conmon-" + "c" * 64, "libpod_parent", "k8s.io", "x.slice", "y.service"]), max_size=8).map(
    lambda parts: "/" + "/".join(p.replace("/", "") for p in parts))


@given(st.lists(path_text, max_size=8))
@SETTINGS
def test_identify_of_any_path(paths: list[str]) -> None:
    for path in paths:
        ident = identify(path)
        assert ident.runtime in RUNTIMES and ident.kind in KINDS


@given(query=text, meta=st.none() | st.builds(ContainerMeta, runtime=text, name=text, pod=text, namespace=text,
                                                  container=text))
@SETTINGS
def test_locate_matches_any_query(query: str, meta: ContainerMeta | None) -> None:
    assert matches(query, identify("/docker/" + "a" * 64), meta) in (True, False)


def test_locate_walks_a_tree_with_non_utf8_and_escape_names(tmp_path: object) -> None:
    root = os.fsencode(str(tmp_path))
    cid = b"d" * 64
    for rel in (b"docker/" + cid, b"bad\xff\xfe", b"esc\x1b[2J/kubepods/pod" + b"e" * 32 + b"/" + cid):
        os.makedirs(os.path.join(root, rel))
    layout = CgroupLayout(mode="v1", root=str(tmp_path), controllers={"memory": str(tmp_path)})
    found = dict(container_cgroups(layout))
    assert "/docker/" + "d" * 64 in found
    assert all(ident.kind == "container" for ident in found.values())


# --- the Docker API answering badly ----------------------------------------------------------------------------------

@pytest.fixture
def thread_errors() -> Iterator[list[str]]:
    """Exceptions that ended any thread (the watcher's poll and events threads) during the test."""
    errors: list[str] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: errors.append(f"{args.thread.name if args.thread else '?'}: "
                                                      f"{args.exc_type.__name__}: {args.exc_value}")
    try:
        yield errors
    finally:
        threading.excepthook = previous


def assert_one_inert_sentence(notices: list[str], socket_path: str) -> None:
    assert len(notices) == 1, notices
    notice = notices[0]
    assert notice.endswith("container names are missing.") and socket_path in notice
    assert no_control(notice) and len(notice) < 300 and "Traceback" not in notice


EXPECTED_NOTICE = {
    "invalid-json": "not JSON", "deep-json": "not JSON", "truncated-chunked": "not answering",
    "http-500": "HTTP 500", "hang": "did not answer within 0.5 s", "close": "not answering",
    "garbage-bytes": "not HTTP",
}


@pytest.mark.parametrize("mode", [m for m in MODES if m != "scripted"])
def test_metadata_service_against_a_bad_daemon(mode: str, thread_errors: list[str]) -> None:
    """One synchronous re-list, then the background threads: names only, a notice, bounded time, no raise."""
    with bad_docker(mode) as server:
        # A 50 MB answer takes longer than 0.5 s to read on a loaded machine: it gets a timeout it can meet.
        service = MetadataService(docker_socket=server.socket_path, docker_timeout_s=5.0 if mode == "huge" else 0.5,
                                  docker_refresh_s=0.2, host_root=tempfile.gettempdir())
        start = time.monotonic()
        assert service.refresh(timeout_s=10)
        took = time.monotonic() - start
        assert took < (15 if mode == "huge" else 2), f"{mode}: a re-list took {took:.2f} s"
        docker_path = "/docker/" + LISTED_ID
        if mode in EXPECTED_NOTICE:
            notices: list[Notice] = service.notices()
            assert [n.kind for n in notices] == [NoticeKind.NO_CONTAINER_NAMES]
            assert_one_inert_sentence([n.sentence for n in notices], server.socket_path)
            assert EXPECTED_NOTICE[mode] in notices[0].sentence
            assert service.docker_containers() == {}
            assert service.lookup(docker_path, identify(docker_path)) is None
        else:  # wrong types and a 50 MB answer are still a list: the well-formed parts are used
            assert service.notices() == []
            for meta in service.docker_containers().values():
                assert_meta_is_plain(meta)
                assert meta.pid is None or meta.pid > 0
        service.start()
        try:
            assert service.refresh(timeout_s=10), f"{mode}: the watcher thread stopped publishing"
            assert service.refresh(timeout_s=10)
        finally:
            start = time.monotonic()
            service.close()
            assert time.monotonic() - start < 3
    assert thread_errors == []


@given(list_body=file_bytes, inspect_body=file_bytes, events=st.lists(file_bytes, max_size=3))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_watcher_on_any_answer_body(list_body: bytes, inspect_body: bytes, events: list[bytes]) -> None:
    """Whatever body a 200 answer carries: containers with plain names, or none and one inert sentence."""
    server = bad_docker_server()
    server.list_body, server.inspect_body = list_body, inspect_body
    server.events_body = b"\n".join(events)
    watcher = DockerWatcher(DockerClient(server.socket_path, timeout_s=1.0), explicit=True)
    watcher.poll_once()
    if watcher.notice:
        assert_one_inert_sentence([watcher.notice], server.socket_path)
    for meta in watcher.containers.values():
        assert_meta_is_plain(meta)
    watcher.client.stream_events(watcher._on_event)  # reads the scripted /events lines, then the stream ends


_SERVER: list[BadDockerServer] = []


def bad_docker_server() -> BadDockerServer:
    """One scripted server for all examples of the property above (closed at exit with the module)."""
    if not _SERVER:
        base = tempfile.mkdtemp(prefix="ctop-bad-docker-")
        _SERVER.append(BadDockerServer("scripted", os.path.join(base, "docker.sock")))
    return _SERVER[0]


def teardown_module() -> None:
    for server in _SERVER:
        server.close()
        shutil.rmtree(os.path.dirname(server.socket_path), ignore_errors=True)
    _SERVER.clear()


# --- hostile names on the way out: batch text, CSV, JSON and the exporter --------------------------------------------

hostile = st.lists(st.sampled_from([*EVIL, "a", "é", "日", "\n", '"', "\\", "\x7f", "\u2028", "\t"]) | text,
                   min_size=1, max_size=6).map("".join)


@given(name=hostile, pod=hostile, namespace=hostile, leaf=hostile)
@SETTINGS
def test_hostile_names_leave_every_output_inert(name: str, pod: str, namespace: str, leaf: str) -> None:
    path = "/kubepods/" + leaf.replace("/", "").encode("utf-8", "replace").decode("utf-8")
    frame = make_frame([make_row("/", "root"), make_row(path, "container", name=name, pod=pod, namespace=namespace,
                                                        memory=1 << 20)])
    options = BatchOptions()
    for out in (render_text(frame, options, 120), render_csv(frame, options, header=True)):
        assert inert(out, keep="\n") == out  # nothing a terminal would act on; lines are the format's own
    doc = render_json(frame, options)
    assert doc.encode("utf-8") and not any(unicodedata.category(c) == "Cc" for c in doc)  # escaped, or U+FFFD
    rows = {r["id"]: r for r in json.loads(doc)}
    assert any(r["name"] == name for r in rows.values()) or not name.isprintable()
    exposition = render(build_families(SharedFrames(lambda: frame).get(), CgroupFilter())).decode("utf-8")
    assert inert(exposition, keep="\n") == exposition
    seen = {s.labels.get("name") for fam in text_string_to_metric_families(exposition) for s in fam.samples}
    assert inert(name, keep="\n")[:512].encode("utf-8", "replace").decode("utf-8") in seen or "\udcff" in name
