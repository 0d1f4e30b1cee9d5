"""Execs with their arguments, end to end: an exec loop in a real container-shaped cgroup; its commands' arguments
show in the interactive detail view (tmux) and in ``ctop events`` from a recorder."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator

import pytest
from support.cgroups import TestCgroup, host_layout, make_cgroup, remove_tree, unique_name
from support.env import need_binary, need_root
from support.tmux import tmux_session
from system.test_history_record import recorder, wait_until

pytestmark = pytest.mark.system
BUSYBOX_SLEEP = f"0.000{uuid.uuid4().int % 10**6:06d}"  # a distinctive, valid second duration for busybox sleep


@pytest.fixture
def exec_loop() -> Iterator[tuple[TestCgroup, str]]:
    """A Docker-shaped cgroup (``/ctoph-bpf-.../docker/<id>``: a container row) running an exec loop whose commands
    carry a distinctive argument; yields the cgroup and that argument."""
    need_root()
    layout = host_layout()
    top = "/" + unique_name("ctoph-bpf")
    cg = make_cgroup(layout, f"{top}/docker/{uuid.uuid4().hex}{uuid.uuid4().hex}")
    marker = f"ctoph-bpf-arg-{uuid.uuid4().hex[:8]}"
    busybox = need_binary("busybox")
    try:
        # busybox's shell runs an applet by exec-ing /proc/self/exe (comm "exe"): its argv names the applet.
        cg.spawn(["/bin/sh", "-c", f"while :; do /usr/bin/printf %s {marker} second-arg >/dev/null; "
                                   f"{busybox} sh -c 'sleep 0 {BUSYBOX_SLEEP}'; /bin/sleep 0.3; done"])
        yield cg, marker
    finally:
        cg.stop_processes()
        remove_tree(layout, top)


def test_the_detail_view_lists_recent_execs_with_their_arguments(ctop: str,
                                                                  exec_loop: tuple[TestCgroup, str]) -> None:
    cg, marker = exec_loop
    with tmux_session([ctop, "-d", "1"], 200, 60) as t:
        t.wait_for(lambda s: "NAME" in s and "CPU%" in s, 10, "the first screen")
        t.send("5", "/")
        t.type(cg.path.rsplit("/", 1)[1][:12])
        t.send("Enter")
        t.wait_for(lambda s: "1 rows" in s or "1 row" in s, 10, "the filtered list")
        t.send("Enter")
        t.wait_text("Processes", 10)

        pages = [0]

        def execs_shown(screen: str) -> bool:
            """Page through the detail view (its eBPF section comes after the processes), from the top again."""
            if f"args=/usr/bin/printf %s {marker} second-arg" in screen:
                return True
            pages[0] += 1
            t.send("Home" if pages[0] % 8 == 0 else "PageDown")
            return False

        screen = t.wait_for(execs_shown, 20, "an exec with its arguments in the detail view")
        line = next(line for line in screen.splitlines() if f"args=/usr/bin/printf %s {marker}" in line)  # not the
        # shell's own command line in the processes, which holds the marker too
        assert "comm=printf" in line and "filename=/usr/bin/printf" in line
        t.send("q", "q")


def test_ctop_events_lists_the_execs_a_recorder_saw_with_their_arguments(ctop: str,
                                                                         exec_loop: tuple[TestCgroup, str]) -> None:
    cg, marker = exec_loop
    container_id = cg.path.rsplit("/", 1)[1]
    directory = tempfile.mkdtemp(prefix="ctoph-bpf-store-")
    try:
        def exec_events() -> list[dict]:
            result = subprocess.run([ctop, "events", "--dir", directory, "--since", "10m", "--json", "--type", "exec",
                                     "--type", "exec_more", "--workload", container_id[:12]],
                                    capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, result.stderr
            found = [json.loads(line) for line in result.stdout.splitlines()]
            applet = any(e.get("args") == f"sleep 0 {BUSYBOX_SLEEP}" for e in found)
            return found if applet and sum(marker in str(e.get("args")) for e in found) >= 2 else []

        with recorder(ctop, directory, interval=1.0) as proc:
            found = wait_until(exec_events, 40, "exec events with their arguments", proc)
        printf = [e for e in found if e["type"] == "exec" and marker in e["args"]]
        assert printf[0]["args"] == f"/usr/bin/printf %s {marker} second-arg"
        assert printf[0]["comm"] == "printf" and printf[0]["id"] == cg.path and printf[0]["pid"] > 0
        assert {e["type"] for e in found} <= {"exec", "exec_more"}
        applet = [e for e in found if e["type"] == "exec" and e["args"] == f"sleep 0 {BUSYBOX_SLEEP}"]
        assert applet and applet[0]["comm"] == "exe" and applet[0]["filename"] == "/proc/self/exe", found
        # The text form names the command too.
        text = subprocess.run([ctop, "events", "--dir", directory, "--since", "10m", "--type", "exec"],
                              capture_output=True, text=True, timeout=60).stdout
        assert marker in text
    finally:
        subprocess.run(["rm", "-rf", "--", directory], check=False)
        assert not os.path.exists(directory)
