"""`ctop replay` in tmux: a real container recorded for a few seconds and removed is back in the view at a time when
it ran, under a REPLAY banner; the stepping keys move the shown time; the detail view's timeline has its stop."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest
from support.dockerd import IMAGE, PrivateDockerd, dockerd, unique  # noqa: F401
from support.env import need_root
from support.tmux import tmux_session
from system.test_history_record import events, latest_frame, recorder, wait_until

pytestmark = pytest.mark.system
BANNER = re.compile(r"^ REPLAY (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \(")


@pytest.fixture
def store(readable_store_dir: str) -> str:
    return readable_store_dir


def shown(screen: str) -> float:
    """The time the REPLAY banner on the first line shows."""
    match = BANNER.match(screen.splitlines()[0])
    if match is None:
        raise LookupError("no REPLAY banner")
    return dt.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").timestamp()


def recorded_names(directory: str) -> set[str]:
    frame = latest_frame(directory)
    return set() if frame is None else {a.identity.name for a in frame.attributes.values()}


def test_a_removed_container_is_back_in_the_interactive_replay(ctop: str, dockerd: PrivateDockerd,  # noqa: F811
                                                              store: str) -> None:
    need_root()
    name = unique("replayed")
    with recorder(ctop, store, "--no-ebpf", docker_socket=dockerd.socket, interval=1.0) as proc:
        dockerd.out("run", "-d", "--name", name, "--memory=48m", IMAGE, "sh", "-c", "while :; do :; done")
        try:
            wait_until(lambda: name in recorded_names(store), 60, "the container in the store", proc)
            time.sleep(3)
            ran_at = time.time()
            time.sleep(3)
        finally:
            dockerd.run("rm", "-f", name, check=False)
        wait_until(lambda: any(e["type"] == "stop" for e in events(ctop, store, "--workload", name)), 30,
                   "the stop event", proc)
        # Replay while the recorder still writes the same store.
        with tmux_session([ctop, "replay", "--dir", store, "--at", str(ran_at)], 200, 100) as t:
            screen = t.wait_for(lambda s: shown(s) > 0 and s.splitlines()[1].startswith("NAME"), 20,
                                "the REPLAY banner over the list")
            assert "paused" in screen.splitlines()[0] and "REPLAY paused" in screen
            t.send("/")
            t.type(f"name={name}")
            t.send("Enter")
            screen = t.wait_for(lambda s: name in s and "1 rows" in s, 10, "the removed container's row")
            at = shown(screen)
            assert ran_at - 2 <= at <= ran_at  # the last sample at or before --at (shown to the second)
            t.send("]")
            screen = t.wait_for(lambda s: shown(s) > at, 10, "one sample forward")
            assert shown(screen) <= at + 3
            t.send("[")
            t.wait_for(lambda s: shown(s) == at, 10, "one sample back")
            t.send("Enter")
            screen = t.wait_for(lambda s: "Timeline" in s and "the replayed moment" in s, 10, "the detail timeline")
            assert shown(screen) == at and screen.splitlines()[0].startswith(" REPLAY ")
            assert "not available in replay" in screen
            timeline = screen[screen.index("Timeline"):].splitlines()
            marker = next(i for i, line in enumerate(timeline) if "the replayed moment" in line)
            stops = [i for i, line in enumerate(timeline) if re.search(r"\bstop\b", line)]
            recorded = events(ctop, store, "--workload", name)
            assert stops and stops[-1] > marker, (timeline, recorded)  # it stopped after the moment shown
            t.send("}")  # a minute on: the recorder's newest sample (the recording is shorter than that)
            t.wait_for(lambda s: shown(s) > at + 2 and "end of the recording" in s.splitlines()[0], 10,
                       "a minute forward")
            t.send("b")
            screen = t.wait_for(lambda s: "start of the recording" in s.splitlines()[0], 10, "the start")
            t.send("q")
            t.wait_for(lambda s: s.splitlines()[1].startswith("NAME"), 5, "the list again")
            t.send("q")
            t.wait_for(lambda s: t.dead(), 5, "ctop to exit")
            assert t.exit_status() == 0
