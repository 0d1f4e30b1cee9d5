"""The interactive replay on a canvas: a store written here, the banner, stepping and jumping, follow, the detail
view's timeline in replay and live, and one-sentence errors."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator

import pytest
import urwid
from click.testing import CliRunner
from unit.test_history_replay import DB, T0, WEB, live_frame
from unit.test_ui_widgets import attrs_of, press, screen

from ctop.cli import cli
from ctop.collector import with_history
from ctop.history.frames import record_of
from ctop.history.recorder import Recorder
from ctop.history.replay import ReplaySource, open_replay
from ctop.history.store import META, StoreError, StoreReader, StoreWriter, encode_record, list_segments
from ctop.model.events import Event, EventDetector
from ctop.ui import detail, keys
from ctop.ui.app import App
from ctop.ui.feed import Feed
from ctop.ui.replay import workload_events

SECONDS = 130  # frames at T0+1 .. T0+130, one a second
OOM_AT = 40  # web's kernel OOM counter goes up here ...
RESTART_AT = 50  # ... and web gets a new cgroup here
BIG = (140, 200)


@pytest.fixture(scope="module")
def store() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="ctop-ui-replay-test-")
    writer = StoreWriter(path)
    recorder = Recorder(writer)
    detector = EventDetector()
    previous = None
    for t in range(1, SECONDS + 1):
        frame, previous = live_frame(t, previous, web_inode=1 if t < RESTART_AT else 2,
                                     web_oom=1 if t >= OOM_AT else 0)
        assert recorder.record(with_history(dataclasses.replace(frame, ebpf_state="off"), detector))
    writer.close()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def replay_app(store: str, at: float, clock: Clock | None = None) -> tuple[App, ReplaySource]:
    """An App over a ReplaySource; ``pump`` plays the Feed's part (collect, then post) on this thread."""
    source = ReplaySource(StoreReader(store), at, clock=clock or Clock(T0 + 1000))
    app = App(replay=source)
    source.post = app.receive
    pump(app, source)
    return app, source


def pump(app: App, source: ReplaySource) -> None:
    app.receive(("frame", source.collect()))


def shown_time(app: App) -> float:
    assert app.replay_state is not None and app.frame is not None
    assert app.frame.snapshot.host.wall_time_s == app.replay_state.time
    return app.replay_state.time


def stamp(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


def test_replay_opens_at_the_time_with_a_banner_on_every_screen(store: str) -> None:
    app, source = replay_app(store, T0 + 30.5)
    assert shown_time(app) == T0 + 30  # the last frame at or before the time asked for
    lines = screen(app, (120, 24))
    assert lines[0].startswith(" REPLAY ") and stamp(T0 + 30) in lines[0] and "paused" in lines[0]
    assert "ago" in lines[0] and lines[1].startswith("NAME")
    assert "REPLAY paused" in lines[-1]
    assert "replay" in attrs_of(app, "REPLAY", (120, 24))
    assert any("web" in line for line in lines) and any("db" in line for line in lines)
    # The rows are what live showed: the same rates from the same counters.
    assert app.frame is not None and app.frame.rows[WEB].cpu_percent == pytest.approx(30.0)
    press(app, "enter", size=BIG)
    assert app.screen == "detail"
    detail = screen(app, BIG)
    assert detail[0].startswith(" REPLAY ") and stamp(T0 + 30) in detail[0]
    assert any("not available in replay" in line for line in detail)
    source.reader.close()


def test_keys_step_and_jump_and_the_ends_are_said(store: str) -> None:
    app, source = replay_app(store, T0 + 30)
    for key, expected in (("]", 31), ("]", 32), ("[", 31), ("}", 91), ("{", 31), ("f", SECONDS), ("b", 1)):
        press(app, key)
        pump(app, source)
        assert shown_time(app) == T0 + expected, key
    assert app.replay_state is not None and app.replay_state.edge == "start"
    assert "start of the recording" in screen(app, (120, 24))[0]
    press(app, "[")
    pump(app, source)
    assert shown_time(app) == T0 + 1 and "start of the recording" in screen(app, (120, 24))[0]
    press(app, "f", "]")
    pump(app, source)
    assert shown_time(app) == T0 + SECONDS and "end of the recording" in screen(app, (120, 24))[0]
    press(app, "{")
    pump(app, source)
    assert "recording" not in screen(app, (120, 24))[0]  # back inside: no end is mentioned
    source.reader.close()


def test_views_filters_and_sorting_work_in_replay(store: str) -> None:
    app, source = replay_app(store, T0 + 60)
    press(app, "/")
    for ch in "name=db":
        press(app, ch)
    press(app, "enter")
    assert [d.path for d in app.displayed] == [DB]
    press(app, "2")  # pods
    assert app.view.key == "pods"
    press(app, "1", "M")
    assert app.sort_key == "memory_working_set_bytes"
    press(app, "]")
    pump(app, source)
    assert shown_time(app) == T0 + 61 and [d.path for d in app.displayed] == [DB]
    source.reader.close()


def test_follow_advances_in_real_time_and_pause_stays_put(store: str) -> None:
    clock = Clock(T0 + 1000)
    app, source = replay_app(store, T0 + 10, clock)
    press(app, "p")
    pump(app, source)
    assert not app.paused and "following" in screen(app, (120, 24))[0]
    clock.now += 5
    pump(app, source)
    assert shown_time(app) == T0 + 15
    press(app, "p")
    clock.now += 5
    pump(app, source)
    assert app.paused and shown_time(app) == T0 + 15
    press(app, "p")
    pump(app, source)
    clock.now += 1000
    pump(app, source)
    assert shown_time(app) == T0 + SECONDS and "end of the recording: waiting" in screen(app, (120, 24))[0]
    press(app, "[")  # a step while following stays put where it went
    pump(app, source)
    assert app.paused and shown_time(app) == T0 + SECONDS - 1
    source.reader.close()


def test_follow_picks_up_what_a_recorder_still_appends(tmp_path: object) -> None:
    directory = str(tmp_path)
    writer = StoreWriter(directory)
    previous = None
    for t in range(1, 6):
        frame, previous = live_frame(t, previous)
        writer.append(record_of(frame))
    clock = Clock(T0 + 5)
    source = ReplaySource(StoreReader(directory), T0 + 5, following=True, clock=clock)
    assert source.collect().snapshot.host.wall_time_s == T0 + 5
    for t in range(6, 9):
        frame, previous = live_frame(t, previous)
        Recorder(writer).record(dataclasses.replace(frame, ebpf_state="off"))
    clock.now = T0 + 8
    assert source.collect().snapshot.host.wall_time_s == T0 + 8
    writer.close()
    source.reader.close()


def test_replay_rows_carry_restarts_and_the_oom_age_as_of_then(store: str) -> None:
    app, source = replay_app(store, T0 + 45)
    assert app.frame is not None
    web = app.frame.rows[WEB]
    assert web.restarts == 0 and web.oom_kill_age_seconds == 5.0
    assert app.frame.rows[DB].restarts == 0 and app.frame.rows[DB].oom_kill_age_seconds is None
    press(app, "}")
    pump(app, source)
    assert app.frame.rows[WEB].restarts == 1
    source.reader.close()


def test_detail_timeline_in_replay_lists_the_events_around_the_moment(store: str) -> None:
    app, source = replay_app(store, T0 + 45)
    press(app, "/")
    for ch in "name=web":
        press(app, ch)
    press(app, "enter", "enter", size=BIG)
    text = screen(app, BIG)
    start = next(i for i, line in enumerate(text) if line.startswith("Timeline"))
    procs = next(i for i, line in enumerate(text) if line.startswith("Processes"))
    figures = next(i for i, line in enumerate(text) if "MEMLIM" in line)
    assert figures < start < procs  # right after the figures, before the processes
    timeline = [line.strip() for line in text[start + 1:procs] if line.strip()]
    oom = next(line for line in timeline if "oom_kill" in line)
    assert oom.startswith(stamp(T0 + OOM_AT)) and "-5s" in oom and "kills=1" in oom
    assert "memory_limit_bytes=64.0M" in oom or "memory_limit_bytes=64M" in oom, oom
    marker = next(i for i, line in enumerate(timeline) if "the replayed moment" in line)
    restart = next(i for i, line in enumerate(timeline) if " restart " in f" {line} ")
    assert timeline.index(oom) < marker < restart  # the OOM kill before the moment, the restart after it
    assert "+5s" in timeline[restart] and "restarts=1" in timeline[restart]
    assert not any("db" in line for line in timeline)  # only this workload's events
    assert "crit" in attrs_of(app, "oom_kill", BIG)
    source.reader.close()


def test_live_detail_timeline_keeps_the_events_the_app_saw() -> None:
    app = App()
    detector = EventDetector()
    previous = None
    for t, inode in enumerate([1, 1, 2, 2], start=1):
        frame, previous = live_frame(t, previous, web_inode=inode)
        app.receive(("frame", with_history(dataclasses.replace(frame, ebpf_state="off"), detector)))
    lines = screen(app, (120, 24))
    assert not lines[0].startswith(" REPLAY") and "REPLAY" not in lines[-1]
    focus = next(i for i, d in enumerate(app.displayed) if d.path == WEB)
    app.walker.set_focus(focus)
    press(app, "enter", size=BIG)
    text = screen(app, BIG)
    start = next(i for i, line in enumerate(text) if line.startswith("Timeline"))
    procs = next(i for i, line in enumerate(text) if line.startswith("Processes"))
    timeline = [line.strip() for line in text[start + 1:procs] if line.strip()]
    assert len(timeline) == 1 and "restart" in timeline[0] and timeline[0].startswith(stamp(T0 + 3))
    assert not any("inspect" in line and "replay" in line for line in text)
    # The replay keys are not bound live, and only replay's help lists them.
    press(app, "esc", "[")
    assert app.screen == "list"
    assert keys.lookup("]", "list") is None
    press(app, "?")
    help_text = "\n".join(screen(app, BIG))
    assert "one sample back" not in help_text


def test_replay_help_lists_the_replay_keys(store: str) -> None:
    app, source = replay_app(store, T0 + 10)
    press(app, "?")
    text = "\n".join(screen(app, BIG))
    for meaning in ("one sample back", "one sample forward", "one minute back", "ten minutes forward"):
        assert meaning in text
    source.reader.close()


def test_a_paused_feed_collects_once_when_poked() -> None:
    collected = threading.Semaphore(0)
    posted: list[tuple[object, ...]] = []

    def collect():  # type: ignore[no-untyped-def]
        collected.release()
        return "frame"

    feed = Feed(collect, 30.0, posted.append)
    feed.set_paused(True)
    feed.poke()
    feed.start()
    try:
        assert collected.acquire(timeout=10)
        assert not collected.acquire(timeout=0.3)  # paused: nothing more until poked
        feed.poke()
        assert collected.acquire(timeout=10)
    finally:
        feed.stop()


def test_errors_are_one_sentence(store: str, tmp_path: object) -> None:
    runner = CliRunner()
    missing = os.path.join(str(tmp_path), "missing")
    result = runner.invoke(cli, ["replay", "--dir", missing])
    assert result.exit_code == 1 and "No ctop recording" in result.output and "Traceback" not in result.output
    empty = str(tmp_path)
    result = runner.invoke(cli, ["replay", "--dir", empty])
    assert result.exit_code == 1 and "Nothing is recorded" in result.output
    with pytest.raises(StoreError):
        open_replay(missing, T0)
    result = runner.invoke(cli, ["replay", "--dir", store, "--at", str(T0 + 10)])  # not a terminal
    assert result.exit_code == 2 and "needs a terminal" in result.output
    result = runner.invoke(cli, ["replay", "--dir", store, "--at", "soonish"])
    assert result.exit_code == 2 and "--at" in result.output



def test_a_newer_or_damaged_store_is_one_sentence(store: str, tmp_path: object) -> None:
    newer = os.path.join(str(tmp_path), "newer")
    shutil.copytree(store, newer)
    [(_, path)] = list_segments(newer)
    with open(path, "ab") as f:
        f.write(encode_record(META, T0 + 500, b'{"format_version": 99, "mode": "v2"}'))
    result = CliRunner().invoke(cli, ["replay", "--dir", newer, "--at", str(T0 + 10)])
    assert result.exit_code == 1 and "newer ctop" in result.output and "Traceback" not in result.output
    damaged = os.path.join(str(tmp_path), "damaged")
    shutil.copytree(store, damaged)
    [(_, path)] = list_segments(damaged)
    size = os.path.getsize(path)
    with open(path, "r+b") as f:  # garbage over the last third: what comes before it still replays
        f.seek(size * 2 // 3)
        f.write(b"\xff" * 4096)
    app, source = replay_app(damaged, T0 + 10)
    assert shown_time(app) == T0 + 10
    lines = screen(app, (200, 24))
    assert any("damaged" in line for line in lines), lines
    source.reader.close()


def test_detail_sparklines_in_replay_are_the_recorded_values_up_to_the_moment(store: str) -> None:
    app, source = replay_app(store, T0 + 100)
    press(app, "/")
    for ch in "name=web":
        press(app, ch)
    press(app, "enter", "enter", size=BIG)
    pump(app, source)
    cpu = list(app.history.cpu[WEB])
    assert len(cpu) == 100 and cpu[0] is None and cpu[RESTART_AT - 1] is None  # no rate: first sample, new cgroup
    assert all(v == pytest.approx(30.0) for i, v in enumerate(cpu) if i not in (0, RESTART_AT - 1))
    assert app.frame is not None and len(app.history.memory[WEB]) == 100
    assert app.history.memory[WEB][-1] == app.frame.rows[WEB].sample.working_set_bytes
    line = next(line for line in screen(app, BIG) if line.startswith("CPU %"))
    assert sum(ch in "▁▂▃▄▅▆▇█" for ch in line) >= 90
    reads: list[object] = []
    frames = source.reader.frames
    source.reader.frames = lambda *a: reads.append(a[2:]) or frames(*a)  # type: ignore[method-assign]
    press(app, "]")
    pump(app, source)
    assert len(app.history.cpu[WEB]) == 101  # one more, added without reading the series from the store again
    assert reads and all(r == () for r in reads)
    press(app, "{")
    pump(app, source)
    assert shown_time(app) == T0 + 41 and len(app.history.cpu[WEB]) == 41
    press(app, "esc")
    pump(app, source)
    assert app.replay_state is not None and app.replay_state.series is None
    assert len(app.history.cpu[WEB]) == 1
    source.reader.close()


def test_timeline_lines_say_what_happened_with_its_figures() -> None:
    oom = Event(T0 + 5, "oom_kill", "docker:web", {"name": "web", "id": WEB, "restarts": 2, "pid": 4242,
                                                      "comm": "leak", "memory_limit_bytes": 64 * 2**20})
    line = detail.event_line(oom, T0 + 65)
    assert line.split() == [stamp(T0 + 5), "-1m00s", "oom_kill", "pid=4242", "comm=leak",
                            "memory_limit_bytes=64.0M"]  # no name, id or restart count: the view says those
    change = Event(T0, "limit_change", "docker:web", {"changes": {"memory_limit_bytes": {"old": 2**26, "new": None}}})
    assert detail.event_line(change, T0).endswith("limit_change      memory_limit_bytes 64.0M -> none")
    restart = Event(T0 + 90, "restart", "docker:web", {"restarts": 3})
    assert "+1m30s  restart           restarts=3" in detail.event_line(restart, T0)
    widgets = detail.timeline_section([], None)
    text = [w.text for w in widgets if isinstance(w, urwid.Text)]
    assert text[0].startswith("Timeline") and "no start, stop, restart, OOM kill" in text[1]


def test_a_named_containers_timeline_leaves_out_what_its_path_did_before_it_had_a_name(store: str) -> None:
    app, source = replay_app(store, T0 + 10)
    assert app.frame is not None
    web = app.frame.rows[WEB]
    early = [Event(T0, "start", f"cgroup:{WEB}", {"id": WEB}), Event(T0 + 1, "stop", f"cgroup:{WEB}", {"id": WEB}),
             Event(T0 + 2, "oom_kill", f"cgroup:{WEB}", {"id": WEB, "pid": 7}),
             Event(T0 + 3, "restart", "docker:web", {"id": WEB}), Event(T0 + 4, "stop", "docker:other", {})]
    assert [(e.type, e.time) for e in workload_events(early, web)] == [("oom_kill", T0 + 2), ("restart", T0 + 3)]
    source.reader.close()
