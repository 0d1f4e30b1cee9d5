"""Replay shows what live showed; events follow workloads across restarts; times parse as people type them."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import time

import pytest
from click.testing import CliRunner

from ctop.batch import BatchOptions, render_json
from ctop.cli import cli
from ctop.collector import Enrichment, build_frame, recorded_events, with_history
from ctop.history.frames import record_of, replayed_frame
from ctop.history.recorder import Recorder
from ctop.history.store import StoreReader, StoreWriter
from ctop.history.when import BadTime, parse_when
from ctop.model.ebpf import RUNQ_SLOTS, EbpfCgroupCounters, EbpfReading, OomKill
from ctop.model.ebpf_rates import EbpfRates
from ctop.model.events import GONE_KEPT, NAMING_GRACE_S, Event, EventDetector
from ctop.model.frame import Frame, Identity, NetCounters
from ctop.model.sample import CgroupSample, HostSample, IoCounters, Pressure, Snapshot
from ctop.model.workload import workload_key

T0 = 1_800_000_000.0
WEB = "/docker/" + "a" * 64
DB = "/kubepods/burstable/pod1234-5678/" + "b" * 64


def sample(path: str, t: int, inode: int = 1, limit: int = 64 * 2**20, oom: int = 0) -> CgroupSample:
    return CgroupSample(
        path=path, inode=inode, cpu_usage_ns=t * 3 * 10**8 + 7, cpu_user_ns=t * 2 * 10**8, cpu_system_ns=t * 10**8,
        cpu_quota_us=50_000, cpu_period_us=100_000, cpu_periods=t * 10, cpu_throttled_periods=t * 6,
        cpu_throttled_ns=t * 10**7, cpuset_cpus="0-1", memory_usage_bytes=30 * 2**20 + t * 4096,
        memory_inactive_file_bytes=2**20, memory_limit_bytes=limit, memory_oom_kills=oom, memory_pgmajfault=t * 3,
        io_total=IoCounters(t * 4096, t * 8192, t, 2 * t), pids_current=4, threads=4, processes=2,
        pressure_cpu=Pressure(1.5, t * 1000, None, None))


IDENTITIES = {
    "/": Identity(kind="root"),
    WEB: Identity(kind="container", runtime="docker", name="web", image="busybox", container_id="a" * 64),
    DB: Identity(kind="container", runtime="containerd", name="db", pod="db-0", namespace="shop", container="db",
                 qos_class="burstable"),
}


def live_frame(t: int, previous: tuple[Snapshot, Enrichment] | None, web_inode: int = 1,
               web_limit: int = 64 * 2**20, web_oom: int = 0,
               kills: tuple[OomKill, ...] = ()) -> tuple[Frame, tuple[Snapshot, Enrichment]]:
    """A Frame as the collector builds it, from counters that grow with ``t`` (seconds)."""
    host = HostSample(monotonic_s=100.0 + t, wall_time_s=T0 + t, cpu_time_ns=t * 2 * 10**9, online_cpus=2,
                      memory_total_bytes=2**34)
    cgroups = {"/": sample("/", t, 0, -1), WEB: sample(WEB, t, web_inode, web_limit, web_oom), DB: sample(DB, t, 2)}
    snapshot = Snapshot(host=host, cgroups=cgroups, mode="hybrid")
    buckets = [0] * RUNQ_SLOTS
    buckets[5] = 10 * t
    reading = EbpfReading(monotonic_time=99.5 + t, unattributed=EbpfCgroupCounters(), oom_kills=kills,
                          by_cgroup={WEB: EbpfCgroupCounters(cgroup_id=web_inode, runq_buckets=tuple(buckets),
                                                             runq_count=10 * t, runq_sum_seconds=t / 1000,
                                                             nvcsw=50 * t, forks=t, execs=t)})
    enrichment = Enrichment(identities=IDENTITIES, net={WEB: {"eth0": NetCounters(rx_bytes=1000 * t,
                                                                                  tx_bytes=500 * t),
                                                              "lo": NetCounters(rx_bytes=7 * t, tx_bytes=7 * t)}},
                            ebpf=reading)
    frame = build_frame(snapshot, previous[0] if previous else None, enrichment, previous[1] if previous else None)
    frame = dataclasses.replace(frame, ebpf_state="ready", ebpf_monotonic_s=reading.monotonic_time,
                                ebpf_oom_kills=kills)
    return frame, (snapshot, enrichment)


def test_replay_prints_exactly_what_live_batch_printed(store_dir: str) -> None:
    writer = StoreWriter(store_dir)
    live_json = []
    previous = None
    options = BatchOptions(output="json")
    for t in range(1, 8):
        frame, previous = live_frame(t, previous)
        writer.append(record_of(frame))
        live_json.append(render_json(frame, options))
    writer.close()
    reader = StoreReader(store_dir)
    recorded = list(reader.frames(0, 2**40))
    replayed = [render_json(replayed_frame(cur, prev), options) for prev, cur in itertools.pairwise(recorded)]
    assert replayed == live_json[1:]
    rows = {r["id"]: r for r in json.loads(replayed[-1])}
    web = rows[WEB]  # the rates are really there, not all null on both sides
    assert web["name"] == "web" and web["cpu_percent"] == pytest.approx(30.0)
    assert web["net_rx_bytes_per_s"] == 1000 and web["forks_per_s"] == pytest.approx(1.0)
    assert web["runq_latency_p99_seconds"] is not None and rows[DB]["pod"] == "db-0"


def test_events_follow_a_workload_across_restarts_and_oom_kills() -> None:
    detector = EventDetector()
    previous = None
    seen = []
    plan = [dict()] * 3 + [dict(web_oom=1)] + [dict(web_inode=9)] * 2 + [dict(web_inode=9, web_limit=2**27)] * 5
    for t, changes in enumerate(plan, start=1):
        frame, previous = live_frame(t, previous, **changes)  # type: ignore[arg-type]
        seen += detector.observe(dataclasses.replace(frame, ebpf_state="off"))
    kinds = [(e.type, e.workload) for e in seen]
    assert ("oom_kill", "docker:web") in kinds
    assert ("restart", "docker:web") in kinds
    assert ("limit_change", "docker:web") in kinds
    restart = next(e for e in seen if e.type == "restart")
    assert restart.figures["restarts"] == 1 and restart.figures["name"] == "web"
    change = next(e for e in seen if e.type == "limit_change")
    assert change.figures["changes"] == {"memory_limit_bytes": {"old": 64 * 2**20, "new": 2**27}}
    # CPU limited to 0.5 and throttled in 60 % of its periods for 5 s: one episode each, not one per refresh; web's
    # window starts again with its new cgroup at t=5.
    throttling = [(e.time - T0, e.workload, e.figures["throttled_percent"]) for e in seen if e.type == "throttling"]
    assert throttling == [(6, "pod:shop/db-0/db", 60.0), (10, "docker:web", 60.0)]
    state = detector.state("docker:web")
    assert state is not None and state.restarts == 1 and state.last_oom_kill == T0 + 4


def test_oom_kill_from_ebpf_names_the_victim_after_its_cgroup_is_gone() -> None:
    detector = EventDetector()
    frame, previous = live_frame(1, None)
    detector.observe(frame)
    kill = OomKill(cgroup=WEB, pid=4242, comm="leak", unix_time=T0 + 1.5)
    frame, _ = live_frame(2, previous, kills=(kill,))
    frame = dataclasses.replace(frame, rows={p: r for p, r in frame.rows.items() if p != WEB})
    events = detector.observe(frame)
    oom = [e for e in events if e.type == "oom_kill"]
    assert len(oom) == 1 and oom[0].workload == "docker:web" and oom[0].figures["pid"] == 4242
    assert oom[0].figures["comm"] == "leak" and oom[0].figures["memory_limit_bytes"] == 64 * 2**20
    assert ("stop", "docker:web") in [(e.type, e.workload) for e in events]
    assert detector.observe(frame) == []  # the same kill is reported once


def test_rows_carry_restarts_and_oom_age_which_carry_over_from_the_store(store_dir: str) -> None:
    writer = StoreWriter(store_dir)
    recorder = Recorder(writer)
    detector = EventDetector()
    previous = None
    for t, (inode, oom) in enumerate([(1, 0), (1, 1), (5, 0), (6, 0)], start=1):
        frame, previous = live_frame(t, previous, web_inode=inode, web_oom=oom)
        frame = with_history(dataclasses.replace(frame, ebpf_state="off"), detector)
        assert recorder.record(frame)
    writer.close()
    web, db = frame.rows[WEB], frame.rows[DB]
    assert web.restarts == 2 and web.oom_kill_age_seconds == 2.0  # killed at t=2, now t=4
    assert db.restarts == 0 and db.oom_kill_age_seconds is None and frame.rows["/"].restarts is None
    assert [e.type for e in frame.events] == ["restart"]
    # A new process (a live ctop, a restarted recorder) starts from what the store says, not from zero ...
    fresh = EventDetector()
    fresh.seed(recorded_events(store_dir, 0))
    frame, _ = live_frame(10, None, web_inode=6)
    row = with_history(frame, fresh).rows[WEB]
    assert row.restarts == 2 and row.oom_kill_age_seconds == 8.0
    # ... and its first sight of a running container is not a restart.
    assert with_history(frame, fresh).events == ()


def test_workload_keys() -> None:
    assert workload_key(IDENTITIES[WEB], WEB) == "docker:web"
    assert workload_key(IDENTITIES[DB], DB) == "pod:shop/db-0/db"
    assert workload_key(Identity(kind="service", runtime="systemd", name="ssh.service"), "/x") == "unit:ssh.service"
    assert workload_key(Identity(), "/mine") == "cgroup:/mine"


@pytest.mark.parametrize(("text", "expected"), [
    ("10m", T0 - 600), ("2h ago", T0 - 7200), ("1 day 3 hours ago", T0 - 97200), ("90s", T0 - 90),
    ("now", T0), ("1800000000", 1_800_000_000.0),
    ("2027-01-15T08:00:00+00:00", dt.datetime(2027, 1, 15, 8, tzinfo=dt.timezone.utc).timestamp()),
    ("2027-01-15 08:00:00Z", dt.datetime(2027, 1, 15, 8, tzinfo=dt.timezone.utc).timestamp()),
])
def test_times_as_people_type_them(text: str, expected: float) -> None:
    assert parse_when(text, T0) == pytest.approx(expected)


def test_relative_day_times_and_bad_times() -> None:
    yesterday = parse_when("yesterday 14:05", T0)
    assert T0 - 2 * 86400 < yesterday < T0
    assert parse_when("14:05", T0) <= T0
    for bad in ("soon", "10 parsecs ago", "", "25:99"):
        with pytest.raises(BadTime):
            parse_when(bad, T0)


def test_cli_events_and_replay_from_a_store(store_dir: str) -> None:
    writer = StoreWriter(store_dir)
    recorder = Recorder(writer)
    detector = EventDetector()
    previous = None
    for t, inode in enumerate([1, 1, 1, 3, 3], start=1):
        frame, previous = live_frame(t, previous, web_inode=inode)
        recorder.record(with_history(frame, detector))
    writer.close()
    runner = CliRunner()
    result = runner.invoke(cli, ["events", "--dir", store_dir, "--since", str(T0), "--until", str(T0 + 60),
                                 "--json", "--type", "restart"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [(e["type"], e["workload"], e["name"], e["restarts"]) for e in lines] == [
        ("restart", "docker:web", "web", 1)]
    assert lines[0]["time"] == T0 + 4
    result = runner.invoke(cli, ["replay", "-b", "--dir", store_dir, "--from", str(T0 + 2), "--to", str(T0 + 5),
                                 "--json", "--filter", "name=web"])
    assert result.exit_code == 0, result.output
    frames = [json.loads(line) for line in result.output.splitlines()]
    assert len(frames) == 4 and all(len(rows) == 1 and rows[0]["name"] == "web" for rows in frames)
    assert [rows[0]["time"] for rows in frames] == [T0 + 2, T0 + 3, T0 + 4, T0 + 5]
    assert frames[2][0]["cpu_percent"] is None  # the restarted container's first refresh has no rate: as live
    result = runner.invoke(cli, ["replay", "-b", "--dir", store_dir, "--from", str(T0 + 900), "--to", str(T0 + 901)])
    assert result.exit_code == 1 and "nothing recorded" in result.output and "Traceback" not in result.output
    result = runner.invoke(cli, ["events", "--dir", store_dir + "/missing"])
    assert result.exit_code != 0 and "ctop record" in result.output
    result = runner.invoke(cli, ["events", "--dir", store_dir, "--since", "last tuesday-ish"])
    assert result.exit_code == 2 and "Cannot read the time" in result.output


def episode_frames(values: list[tuple[float | None, float | None]]) -> list[Frame]:
    """One container's frames a second apart with these (run-queue p99, execs per second) eBPF rates."""
    out = []
    for t, (p99, execs) in enumerate(values):
        frame, _ = live_frame(t + 1, None)
        row = dataclasses.replace(frame.rows[WEB], ebpf_rates=EbpfRates(runq_latency_p99_seconds=p99,
                                                                        execs_per_s=execs))
        out.append(dataclasses.replace(frame, rows={WEB: row}))
    return out


def test_run_queue_and_exec_episodes_start_after_3_s_and_end_once() -> None:
    detector = EventDetector()
    slow, busy = (0.08, 120.0), (0.001, 2.0)
    seen = []
    for frame in episode_frames([busy, slow, slow, slow, slow, slow, busy, (None, None), slow, busy]):
        seen += [(e.time - T0, e.type, e.figures) for e in detector.observe(frame) if "throttling" not in e.type]
    kinds = [(t, kind) for t, kind, _ in seen]
    assert kinds == [(5, "runq_latency"), (5, "exec_storm"), (7, "runq_latency_end"), (7, "exec_storm_end")]
    figures = {kind: f for _, kind, f in seen}
    assert figures["runq_latency"]["runq_latency_p99_seconds"] == 0.08
    assert figures["runq_latency_end"]["duration_s"] == 5.0 and figures["exec_storm_end"]["peak_execs_per_s"] == 120


def test_gone_workloads_are_kept_up_to_a_count_the_longest_gone_forgotten_first() -> None:
    """A node churning short-lived jobs: the detector remembers the GONE_KEPT latest gone workloads (for their restart
    counts), not every one of the last hour."""
    detector = EventDetector()
    detector.seed([Event(T0 - 1000 + i, "stop", f"docker:job-{i}", {"restarts": 2}) for i in range(GONE_KEPT + 100)])
    frame, _ = live_frame(1, None)
    detector.observe(frame)
    assert all(detector.state(f"docker:job-{i}") is None for i in range(100))
    assert all(detector.state(f"docker:job-{i}") is not None for i in range(100, GONE_KEPT + 100))
    assert detector.state("docker:web") is not None  # present workloads do not count against the bound
    gone = [k for k, s in detector.workloads.items() if s.incarnation is None]
    assert len(gone) == GONE_KEPT


def _web_frames(plan: list[tuple[str, int]]) -> list[Frame]:
    """Frames at t = 1, 2, ... in which the web container is absent, nameless or named (with its cgroup's inode)."""
    nameless = dataclasses.replace(IDENTITIES[WEB], name="")
    frames, previous = [], None
    for t, (web, inode) in enumerate(plan, start=1):
        frame, previous = live_frame(t, previous, web_inode=inode)
        rows = {p: r for p, r in frame.rows.items() if p != WEB or web != "absent"}
        if web == "nameless":
            rows[WEB] = dataclasses.replace(rows[WEB], identity=nameless)
        frames.append(dataclasses.replace(frame, rows=rows))
    return frames


def _lifecycle_events(detector: EventDetector, frames: list[Frame]) -> list[tuple[float, str, str]]:
    return [(e.time - T0, e.type, e.workload) for f in frames for e in detector.observe(f)
            if e.type in ("start", "stop", "restart")]


def test_a_new_container_starts_under_its_name_when_the_name_comes_a_moment_later() -> None:
    """Its start waits for the runtime's name (an events --follow for the name would miss a start told by path)."""
    frames = _web_frames([("absent", 1), ("nameless", 1), ("nameless", 1), ("named", 1), ("named", 1)])
    assert _lifecycle_events(EventDetector(), frames) == [(2, "start", "docker:web")]  # at its first sight


def test_a_container_without_a_name_starts_by_its_path_after_the_grace() -> None:
    steps = int(NAMING_GRACE_S) + 3
    frames = _web_frames([("absent", 1)] + [("nameless", 1)] * steps)
    assert _lifecycle_events(EventDetector(), frames) == [(2, "start", f"cgroup:{WEB}")]


def test_a_container_gone_before_its_name_came_started_and_stopped() -> None:
    frames = _web_frames([("absent", 1), ("nameless", 1), ("nameless", 1), ("absent", 1)])
    assert _lifecycle_events(EventDetector(), frames) == [(2, "start", f"cgroup:{WEB}"), (4, "stop", f"cgroup:{WEB}")]


def test_a_nameless_container_restarting_before_the_grace_is_over_counts_restarts() -> None:
    """A crash loop no runtime names (a runtime socket out of reach): its first cgroup went while its start waited for a
    name (a start and a stop), then each new cgroup is a restart."""
    detector = EventDetector()
    frames = _web_frames([("absent", 1), ("nameless", 1), ("nameless", 2), ("nameless", 2), ("nameless", 3)])
    assert _lifecycle_events(detector, frames) == [
        (2, "start", f"cgroup:{WEB}"), (3, "stop", f"cgroup:{WEB}"), (3, "restart", f"cgroup:{WEB}"),
        (5, "restart", f"cgroup:{WEB}")]
    assert detector.state(f"cgroup:{WEB}").restarts == 2  # type: ignore[union-attr]


def test_a_restart_whose_new_cgroup_is_named_late_counts_as_a_restart() -> None:
    """Kubernetes restarts a container in a new cgroup, which the runtime names a moment later: one restart."""
    detector = EventDetector()
    frames = _web_frames([("named", 1), ("named", 1), ("absent", 1), ("nameless", 7), ("named", 7), ("named", 7)])
    assert _lifecycle_events(detector, frames) == [(3, "stop", "docker:web"), (4, "restart", "docker:web")]
    assert detector.state("docker:web").restarts == 1  # type: ignore[union-attr]


def test_a_container_named_a_moment_after_its_cgroup_appears_is_one_workload() -> None:
    """The runtime's name comes after the cgroup: no stop of ``cgroup:<path>``, no second start, no restart."""
    for seeded in (False, True):
        detector = EventDetector()
        if seeded:  # the store knows the workload from before: its count carries on, untouched
            detector.seed([Event(T0 - 100, "restart", "docker:web", {"restarts": 3})])
        nameless = dataclasses.replace(IDENTITIES[WEB], name="")
        seen = []
        previous = None
        for t in range(1, 5):
            frame, previous = live_frame(t, previous)
            if t <= 2:
                frame = dataclasses.replace(frame, rows={
                    p: dataclasses.replace(r, identity=nameless) if p == WEB else r for p, r in frame.rows.items()})
            seen += [(e.type, e.workload) for e in detector.observe(frame) if "throttling" not in e.type]
        assert seen == [], seen
        assert detector.state("docker:web").restarts == (3 if seeded else 0)  # type: ignore[union-attr]
        assert detector.state(f"cgroup:{WEB}") is None


def test_the_live_detail_view_gets_the_workloads_recorded_values_across_restarts(store_dir: str) -> None:
    from unit.test_ui_widgets import press, screen

    from ctop.history.series import workload_series
    from ctop.ui.app import App

    writer = StoreWriter(store_dir)
    recorder = Recorder(writer)
    detector = EventDetector()
    previous = None
    for t, inode in enumerate([1, 1, 1, 4, 4, 4], start=1):  # restarted at t=4: a new cgroup, the same workload
        frame, previous = live_frame(t, previous, web_inode=inode)
        recorder.record(with_history(frame, detector))
    writer.close()
    reader = StoreReader(store_dir)
    series = workload_series(reader, frame.rows[WEB], T0 + 6)
    assert series is not None and series.cgroups == 2 and len(series.cpu) == 6
    assert series.cpu[0] is None and series.cpu[3] is None  # no rate at a cgroup's first sample, as live
    assert series.cpu[1] == pytest.approx(30.0) and series.cpu[5] == pytest.approx(30.0)
    assert series.memory[-1] == 30 * 2**20 + 6 * 4096 - 2**20
    assert workload_series(reader, frame.rows[DB], T0 + 6) is not None
    # The view asks for them off its thread and draws them before what it saw itself, saying where they come from.
    asked = []
    app = App(BatchOptions(), 1.0, recorded=asked.append)  # called (here at once) when the detail view opens
    app.apply_frame(frame)
    press(app, "/", *"name=web", "enter", "enter")
    deadline = time.monotonic() + 10  # the view's worker thread calls it
    while not asked and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [row.path for row in asked] == [WEB]
    app.receive(("recorded", WEB, series))  # what the thread posts
    assert len(app.history.cpu[WEB]) == 7  # six recorded, one live
    app.refresh_detail()
    text = "\n".join(screen(app, (160, 40)))
    assert "the node's recorder, 2 cgroups of this workload" in text and "top: CPU 50 % (limit)" in text


def test_the_recorder_keeps_only_what_the_exporters_filters_accept(store_dir: str) -> None:
    from ctop.exporters.labels import compile_filter

    writer = StoreWriter(store_dir)
    recorder = Recorder(writer, row_filter=compile_filter("", "^/kubepods", True))  # containers only, no kubepods
    detector = EventDetector()
    previous = None
    for t, inode in enumerate([1, 1, 2], start=1):
        frame, previous = live_frame(t, previous, web_inode=inode)
        slice_row = dataclasses.replace(frame.rows["/"], sample=dataclasses.replace(frame.rows["/"].sample,
                                                                                    path="/system.slice"),
                                        identity=Identity(kind="slice", runtime="systemd", name="system.slice"))
        frame = dataclasses.replace(frame, rows={**frame.rows, "/system.slice": slice_row})
        recorder.record(with_history(frame, detector))
    writer.close()
    reader = StoreReader(store_dir)
    assert all(set(f.cgroups) == {"/", WEB} for f in reader.frames(0, 2**40))
    assert [(e.type, e.workload) for e in reader.events(0, 2**40)] == [("restart", "docker:web")]
