"""The real `ctop` in tmux with real containers of a private dockerd: names, limits, detail; hung and stopped daemon."""

from __future__ import annotations

import os
import signal
import time

import pytest
from support.dockerd import IMAGE, PrivateDockerd, dockerd, own_dockerd, unique  # noqa: F401
from support.env import need_root, patience
from support.tmux import tmux_session

pytestmark = pytest.mark.system


def row_of(screen: str, needle: str) -> list[str]:
    for line in screen.splitlines():
        if needle in line:
            return line.split()
    raise LookupError(needle)


def cell(screen: str, needle: str, header: str) -> str:
    heads = [h.rstrip("▲▼") for h in screen.splitlines()[0].split()]
    return row_of(screen, needle)[heads.index(header)]


def test_container_view_names_a_real_container_with_its_limits(ctop: str, dockerd: PrivateDockerd) -> None:  # noqa: F811
    need_root()
    name = unique("ui")
    cid = dockerd.out("run", "-d", "--name", name, "--memory", "64m", "--cpus", "0.2", IMAGE,
                      "sh", "-c", "while :; do :; done")
    try:
        with tmux_session([ctop, "--docker-socket", dockerd.socket], 200, 40) as t:
            t.wait_for(lambda s: s.startswith("NAME"), 5, "the first screen")
            # Filter first: other tests' containers and cgroups may fill the screen on a busy machine.
            t.send("/")
            t.type(name)
            t.send("Enter")
            screen = t.wait_for(lambda s: name in s and "Containers" in s, 10, "the container by name")
            screen = t.wait_for(lambda s: "1 rows" in s and cell(s, name, "CPU%") != "-", 10, "its CPU rate")
            assert cell(screen, name, "MEMLIM") == "64.0M"
            assert 5.0 < float(cell(screen, name, "CPU%")) < 40.0  # --cpus 0.2
            screen = t.wait_for(lambda s: float(cell(s, name, "%CPULIM")) > 50.0, 10, "CPU % of the limit")
            t.send("Enter")
            screen = t.wait_text(dockerd.cgroup_path(cid), 5)
            assert name in screen and IMAGE in screen and "docker" in screen
            # The first screen of the detail view: memory beside its 64M limit, the CPU limit, then the processes.
            first = screen.splitlines()[:12]
            assert any("MEMLIM" in line and "64.0M" in line for line in first), screen
            assert any("CPULIM" in line and "0.20" in line for line in first), screen
            screen = t.wait_for(lambda s: "Processes" in s and "while :; do :; done" in s, 10, "the processes")
            t.send("Escape")
            t.wait_for(lambda s: s.startswith("NAME") and "1 rows" in s, 5, "the list again")
            t.send("5")
            # The filter stays across views: in all cgroups only the container matches its name (not /docker).
            screen = t.wait_for(lambda s: "All cgroups" in s and "1 rows" in s and name in s, 5, "all cgroups")
            t.send("q")
            t.wait_for(lambda s: t.dead(), 5, "ctop to exit")
            assert t.exit_status() == 0
    finally:
        dockerd.run("rm", "-f", cid, check=False)


def test_hung_then_stopped_daemon_never_freezes_the_view(ctop: str, own_dockerd: PrivateDockerd) -> None:  # noqa: F811
    need_root()
    cid = own_dockerd.out("run", "-d", "--name", unique("hung"), IMAGE, "sleep", "300")
    assert own_dockerd.pid is not None
    os.kill(own_dockerd.pid, signal.SIGSTOP)  # the socket accepts, nothing answers
    try:
        with tmux_session([ctop, "--docker-socket", own_dockerd.socket], 160, 30) as t:
            t.wait_for(lambda s: s.startswith("NAME"), 5, "the first screen")
            took = time.monotonic() - t.started_at
            print(f"first screen with a hung daemon after {took:.2f} s")
            assert took < patience(5.0)  # never blocked by the hung daemon (an emulated guest: longer); printed
            t.send("5", "/")
            t.type(cid[:12])
            t.send("Enter")
            started = time.monotonic()
            screen = t.wait_for(lambda s: "All cgroups" in s and cid[-12:] in s, 5, "the container cgroup")
            print(f"view switch answered in {time.monotonic() - started:.2f} s")
            t.send("p")
            t.wait_text("PAUSED", 2)
            t.send("p", "q")
            t.wait_for(lambda s: t.dead(), 5, "ctop to exit")
            assert t.exit_status() == 0
    finally:
        os.kill(own_dockerd.pid, signal.SIGCONT)
    own_dockerd.stop()  # containers go with it: the socket is gone
    with tmux_session([ctop, "--docker-socket", own_dockerd.socket], 160, 30) as t:
        t.wait_for(lambda s: s.startswith("NAME"), 5, "the first screen")
        screen = t.wait_text("container names are missing", 10)
        notice = next(line for line in screen.splitlines() if "container names are missing" in line)
        print("status:", notice.strip())
        assert own_dockerd.socket in notice
        t.send("q")
        t.wait_for(lambda s: t.dead(), 5, "ctop to exit")
        assert t.exit_status() == 0


def test_compose_projects_view_and_tree_with_real_labelled_containers(ctop: str, dockerd: PrivateDockerd) -> None:  # noqa: F811
    need_root()
    project = unique("shop").replace("-", "")
    ids = [dockerd.out("run", "-d", "--name", f"{project}-{service}-1", "--label",
                       f"com.docker.compose.project={project}", "--label", f"com.docker.compose.service={service}",
                       "--memory", "32m", IMAGE, "sleep", "300") for service in ("web", "db")]
    try:
        with tmux_session([ctop, "--docker-socket", dockerd.socket, "--no-ebpf"], 200, 40) as t:
            t.wait_for(lambda s: s.startswith("NAME"), 5, "the first screen")
            t.send("8")
            screen = t.wait_for(lambda s: "Compose projects" in s and project in s, 15, "the project's row")
            assert cell(screen, project, "MEMLIM") == "64.0M"  # two 32m containers
            t.send("1", "t")
            t.send("/")
            t.type(f"project={project}")
            t.send("Enter")
            screen = t.wait_for(lambda s: "tree" in s.splitlines()[-1] and f"{project}-web-1" in s, 15,
                                "the tree with the project")
            lines = screen.splitlines()
            top = next(i for i, line in enumerate(lines) if line.split()[:1] == [project])
            below = lines[top + 1:top + 3]
            assert all("─" in line for line in below), screen  # its containers are drawn under it
            assert {f"{project}-web-1", f"{project}-db-1"} <= {w for line in below for w in line.replace("─", " ")
                                                               .replace("├", " ").replace("└", " ").split()}
            t.send("q")
            t.wait_for(lambda s: t.dead(), 5, "ctop to exit")
    finally:
        for cid in ids:
            dockerd.run("rm", "-f", cid, check=False)
