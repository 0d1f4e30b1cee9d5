"""The host row with a real container and a real busy process outside it: figures, processes, the TUI."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest
from support.dockerd import IMAGE, PrivateDockerd, dockerd, unique  # noqa: F401
from support.env import need_root
from support.tmux import tmux_session

from ctop.collector import Collector, CollectorConfig
from ctop.inspect_cmd import host_report
from ctop.model.host import HOST_PATH, top_level_workloads

pytestmark = pytest.mark.system


@pytest.fixture
def busy_container(dockerd: PrivateDockerd) -> Iterator[tuple[str, str]]:  # noqa: F811
    """A container spinning one CPU, whose command line carries a marker of its own: (cgroup path, marker)."""
    marker = unique("ctoph-inside")
    cid = dockerd.out("run", "-d", "--name", marker, IMAGE, "sh", "-c", "while :; do :; done", marker)
    try:
        yield dockerd.inspect(cid)["Id"], marker
    finally:
        dockerd.run("rm", "-f", cid, check=False)


@pytest.fixture
def busy_host_process() -> Iterator[str]:
    """A process spinning outside every container, with a marker in its command line."""
    marker = unique("ctoph-outside")
    proc = subprocess.Popen(["sh", "-c", "while :; do :; done", marker], start_new_session=True)
    try:
        yield marker
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_the_host_row_is_the_root_less_the_containers_and_lists_only_host_processes(
        dockerd: PrivateDockerd, busy_container: tuple[str, str], busy_host_process: str) -> None:  # noqa: F811
    need_root()
    cid, inside_marker = busy_container
    collector = Collector(CollectorConfig(docker_socket=dockerd.socket, ebpf=False, events=False, history_dir=None))
    collector.start()
    try:
        collector.collect()
        time.sleep(2.0)
        frame = collector.collect()
        host, root = frame.host, frame.rows["/"]
        container = next(r for r in frame.rows.values() if r.identity.container_id == cid)
        assert host is not None and host.path == HOST_PATH and HOST_PATH not in frame.rows
        assert root.cpu_percent is not None and host.cpu_percent is not None and container.cpu_percent is not None
        assert container.cpu_percent > 5.0  # it spins (on a busy machine it may get little of a CPU)
        workloads = top_level_workloads({p: r.identity for p, r in frame.rows.items()})
        assert container.path in workloads
        others = sum(frame.rows[w].cpu_percent or 0.0 for w in workloads)
        # The root's CPU less every top-level container's, read in one refresh (a few points of read skew).
        assert abs(host.cpu_percent - max(0.0, root.cpu_percent - others)) < 5.0, (host.cpu_percent, root.cpu_percent)
        assert host.cpu_percent < root.cpu_percent - container.cpu_percent + 5.0  # not the container's CPU
        root_mem, host_mem, cont_mem = (r.sample.memory_usage_bytes for r in (root, host, container))
        assert root_mem is not None and host_mem is not None and cont_mem is not None
        assert host_mem <= root_mem - cont_mem + 64 * 2**20  # the container's memory is not the host's
        assert host.tasks_recursive is not None and root.tasks_recursive is not None
        assert 0 < host.tasks_recursive < root.tasks_recursive
        report = host_report(workloads)
        commands = [p["command"] for p in report["processes"]]
        assert any(busy_host_process in c for c in commands)
        assert not any(inside_marker in c for c in commands)  # the container's process is not a host process
        mine = next(p for p in report["processes"] if busy_host_process in p["command"])
        assert mine["cpu_percent"] is not None and mine["cpu_percent"] > 10.0
        assert collector.inspect(host)["cgroup"] == HOST_PATH
    finally:
        collector.close()


def test_the_containers_view_lists_the_host_and_its_detail_shows_host_processes(
        ctop: str, dockerd: PrivateDockerd, busy_container: tuple[str, str],  # noqa: F811
        busy_host_process: str) -> None:
    need_root()
    _, inside_marker = busy_container
    with tmux_session([ctop, "--docker-socket", dockerd.socket, "--no-ebpf"], 200, 50) as t:
        t.wait_for(lambda s: s.startswith("NAME"), 5, "the first screen")
        t.send("/")
        t.type("name=host")
        t.send("Enter")
        screen = t.wait_for(lambda s: "Containers" in s and "1 rows" in s, 10, "the host row alone")
        assert any(line.split()[:1] == ["host"] for line in screen.splitlines()[1:]), screen
        t.send("Enter")
        screen = t.wait_for(lambda s: "Processes" in s and busy_host_process in s, 15, "the host's processes")
        assert inside_marker not in screen
        t.send("Escape")
        t.wait_for(lambda s: s.startswith("NAME"), 5, "the list again")
        t.send("Escape")  # clears the filter
        t.wait_for(lambda s: "filter '" not in s, 5, "no filter")
        t.send("/")
        t.type(inside_marker)
        t.send("Enter")
        t.wait_for(lambda s: "1 rows" in s and inside_marker in s, 10, "the container, not the host")
        t.send("q")
        t.wait_for(lambda s: t.dead(), 5, "ctop to exit")
