"""The Docker daemon stops while the MetadataService runs: names vanish, a notice says why, nothing raises."""

from __future__ import annotations

import time

import pytest
from support.dockerd import IMAGE, PrivateDockerd, cgroup_of, own_dockerd, unique  # noqa: F401
from support.env import need_root

from ctop.model.notices import NoticeKind
from ctop.runtimes.identify import identify
from ctop.runtimes.metadata import MetadataService

pytestmark = pytest.mark.system


def _wait(predicate, timeout_s: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_daemon_stopped_names_vanish_with_a_notice(own_dockerd: PrivateDockerd) -> None:  # noqa: F811
    need_root()
    name = unique("doomed")
    cid = own_dockerd.out("run", "-d", "--name", name, IMAGE, "sleep", "300")
    pid = own_dockerd.inspect(cid)["State"]["Pid"]
    path = cgroup_of(pid, "memory")
    ident = identify(path)
    service = MetadataService(docker_socket=own_dockerd.socket, docker_refresh_s=0.5, docker_timeout_s=1.0)
    service.start()
    try:
        # Started after the service: the events stream (or the next re-list) brings its name in.
        later = unique("later")
        own_dockerd.out("run", "-d", "--name", later, IMAGE, "sleep", "300")
        _wait(lambda: any(m.name == later for m in service.docker_containers().values()), 5)
        meta = service.lookup(path, ident)
        assert meta is not None and meta.name == name
        assert service.notices() == []

        own_dockerd.stop()
        took = _wait(lambda: service.lookup(path, ident) is None, 10)
        _wait(lambda: service.notices() != [], 5)
        notices = service.notices()
        assert [n.kind for n in notices] == [NoticeKind.NO_CONTAINER_NAMES]
        sentence = notices[0].sentence
        assert own_dockerd.socket in sentence and sentence.endswith("container names are missing.")
        print(f"names gone {took:.2f} s after the daemon stopped; notice: {sentence}")
        # Keeps running and answering without raising while the daemon stays down.
        for _ in range(20):
            assert service.lookup(path, ident) is None
            time.sleep(0.05)
    finally:
        start = time.monotonic()
        service.close()
        assert time.monotonic() - start < 5
