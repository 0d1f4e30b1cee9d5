"""The flight recorder with real containers: an OOM loop under --restart=always, a removed container replayed,
kill -9, a full disk, a damaged store, replay while recording, and replay by a user who is not root."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from support.dockerd import IMAGE, PrivateDockerd, dockerd, unique  # noqa: F401
from support.env import need_binary, need_root, patience
from support.tmux import tmux_session

from ctop.history.store import FRAME, Entry, StoreReader, list_segments, scan

pytestmark = pytest.mark.system
NOBODY = ["--reuid=65534", "--regid=65534", "--clear-groups"]


@contextmanager
def recorder(ctop: str, directory: str, *args: str, docker_socket: str | None = None,
             interval: float = 0.5) -> Iterator[subprocess.Popen[str]]:
    """``ctop record`` running into ``directory``; stopped (SIGTERM, then SIGKILL) afterwards."""
    command = [ctop] + (["--docker-socket", docker_socket] if docker_socket else [])
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed below, after the recorder stopped
    proc = subprocess.Popen([*command, "record", "--dir", directory, "--interval", str(interval), *args],
                            stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    proc.log = log  # type: ignore[attr-defined]
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def output(proc: subprocess.Popen[str]) -> str:
    log = proc.log  # type: ignore[attr-defined]
    log.seek(0)
    return str(log.read())


def wait_until(check, timeout: float, what: str, proc: subprocess.Popen[str] | None = None):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + patience(timeout)  # (longer in an emulated guest)
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as e:  # a store being written may not be readable yet: keep polling
            last = e
        else:
            if last:
                return last
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the recorder exited while waiting for {what}: {output(proc)}")
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})"
                         + (f"; recorder said: {output(proc)}" if proc else ""))


def cell(screen: str, needle: str, header: str) -> str:
    """The cell under ``header`` in the first line of ``screen`` holding ``needle``."""
    heads = [h.rstrip("▲▼") for h in screen.splitlines()[0].split()]
    row = next(line.split() for line in screen.splitlines()[1:] if needle in line)
    return row[heads.index(header)]


def latest_frame(directory: str):  # type: ignore[no-untyped-def]
    reader = StoreReader(directory)
    try:
        return reader.frame_at(time.time() + 1)
    finally:
        reader.close()


def events(ctop: str, directory: str, *args: str) -> list[dict]:
    result = subprocess.run([ctop, "events", "--dir", directory, "--since", "1h", "--json", *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture
def store(readable_store_dir: str) -> str:
    return readable_store_dir


def test_oom_killed_container_restarts_and_keeps_its_history(ctop: str, dockerd: PrivateDockerd,  # noqa: F811
                                                             store: str) -> None:
    need_root()
    name = unique("oomloop")
    with recorder(ctop, store, docker_socket=dockerd.socket) as proc:
        # Wait for the eBPF programs: the OOM victim's pid and command come from them.
        wait_until(lambda: (f := latest_frame(store)) is not None and f.ebpf_monotonic_s is not None, 180,
                   "eBPF in the recorded frames", proc)
        cid = dockerd.out("run", "-d", "--name", name, "--memory=32m", "--memory-swap=32m", "--restart=always",
                          IMAGE, "sh", "-c", "sleep 2; dd if=/dev/zero of=/dev/null bs=100M count=1; sleep 1; exit 1")
        try:
            workload = f"docker:{name}"
            seen = wait_until(lambda: (e := events(ctop, store, "--workload", name)) and
                              {"oom_kill", "restart"} <= {x["type"] for x in e} and e, 90,
                              "an OOM kill and a restart", proc)
            oom = next(e for e in seen if e["type"] == "oom_kill")
            assert oom["workload"] == workload and oom["name"] == name
            assert oom["comm"] == "dd" and isinstance(oom["pid"], int) and oom["pid"] > 1
            assert oom["memory_limit_bytes"] == 32 * 2**20
            restart = next(e for e in seen if e["type"] == "restart")
            assert restart["workload"] == workload and restart["restarts"] >= 1
            assert restart["id"] == dockerd.cgroup_path(cid)
            # The text form says the same in one line per event.
            text = subprocess.run([ctop, "events", "--dir", store, "--since", "1h", "--workload", name],
                                  capture_output=True, text=True, timeout=60).stdout
            assert "oom_kill" in text and "comm=dd" in text and "restart" in text
            # A live view started now knows the restarts and the OOM kill from the recorder's store.
            with tmux_session([ctop, "--docker-socket", dockerd.socket, "--history", store, "--no-ebpf"], 250,
                              20) as t:
                t.wait_for(lambda s: s.startswith("NAME"), 10, "the first screen")
                t.send("/")
                t.type(f"name={name}")
                t.send("Enter")
                screen = t.wait_for(lambda s: name in s and int(cell(s, name, "RESTARTS")) >= restart["restarts"],
                                    20, "the restart count")
                age = cell(screen, name, "LASTOOM")
                assert age[-1] in "sm" and int(age[:-1]) >= 0, screen
                # Its detail view: the sparklines reach back through the restarts, from the recorder.
                t.send("Enter")
                t.wait_for(lambda s: "the node's recorder, " in s and "cgroups of this workload" in s, 20,
                           "recorded values across restarts")
                t.send("q")
        finally:
            dockerd.run("rm", "-f", name, check=False)


def test_a_removed_container_replays_with_the_rates_live_batch_printed(ctop: str, dockerd: PrivateDockerd,  # noqa: F811
                                                                       store: str) -> None:
    need_root()
    name = unique("gone")
    with recorder(ctop, store, "--no-ebpf", docker_socket=dockerd.socket) as proc:
        cid = dockerd.out("run", "-d", "--name", name, "--cpus=0.5", "--memory=64m", IMAGE, "sh", "-c",
                          "while :; do :; done")
        try:
            live = subprocess.run([ctop, "--docker-socket", dockerd.socket, "-b", "--json", "-n", "6", "-d", "1",
                                   "--no-ebpf", "--filter", f"name={name}"], capture_output=True, text=True,
                                  timeout=120, check=True)
            live_rows = [r for line in live.stdout.splitlines() for r in json.loads(line)]
        finally:
            dockerd.run("rm", "-f", name, check=False)
        gone_at = time.time()
        wait_until(lambda: latest_frame(store).host.wall_time_s > gone_at + 1, 30, "frames after the removal", proc)
    assert [r["name"] for r in live_rows] == [name] * 6 and live_rows[-1]["cpu_percent"] is not None
    first, last = live_rows[0]["time"], live_rows[-1]["time"]
    replay = subprocess.run([ctop, "replay", "-b", "--dir", store, "--from", str(first), "--to", str(last),
                             "--json", "--filter", f"name={name}"], capture_output=True, text=True, timeout=60)
    assert replay.returncode == 0, replay.stderr
    rows = [r for line in replay.stdout.splitlines() for r in json.loads(line)]
    path = dockerd.cgroup_path(cid)
    assert len(rows) >= 8 and all(r["name"] == name and r["id"] == path for r in rows)
    assert all(r["image"] == IMAGE and r["memory_limit_bytes"] == 64 * 2**20 for r in rows)
    rates = [r["cpu_percent"] for r in rows[1:]]
    live_rates = [r["cpu_percent"] for r in live_rows[1:]]
    # Different refresh instants, the same container: --cpus=0.5 reads as 50 % in both.
    assert abs(sum(rates) / len(rates) - sum(live_rates) / len(live_rates)) < 10, (rates, live_rates)
    assert abs(rows[-1]["memory_working_set_bytes"] - live_rows[-1]["memory_working_set_bytes"]) < 2**20
    # Replay by a user who is not root: the store is readable, so the same rows come back.
    setpriv = need_binary("setpriv")
    as_nobody = subprocess.run([setpriv, *NOBODY, ctop, "replay", "-b", "--dir", store, "--from", str(first),
                                "--to", str(last), "--json", "--filter", f"name={name}"], capture_output=True,
                               text=True, timeout=60)
    assert as_nobody.returncode == 0, as_nobody.stderr
    assert as_nobody.stdout == replay.stdout


def test_kill_9_loses_at_most_the_last_interval_and_replay_while_recording(ctop: str, store: str) -> None:
    need_root()
    with recorder(ctop, store, "--no-ebpf", "--no-containers", interval=0.2) as proc:
        wait_until(lambda: (f := latest_frame(store)) is not None and f.host.wall_time_s > time.time() - 1, 30,
                   "recent frames", proc)
        during = subprocess.run([ctop, "replay", "-b", "--dir", store, "--from", "3s", "--to", "now", "--json"],
                                capture_output=True, text=True, timeout=60)
        assert during.returncode == 0, during.stderr
        assert any(r["id"] == "/" for line in during.stdout.splitlines() for r in json.loads(line))
        time.sleep(2)
        os.killpg(proc.pid, signal.SIGKILL)
        killed_at = time.time()
        proc.wait()
    frame = latest_frame(store)
    assert frame is not None and killed_at - frame.host.wall_time_s < 0.2 + 0.5  # one interval, and the write
    reader = StoreReader(store)
    assert reader.problems == [] and len(list(reader.frames(0, 2**40))) >= 10
    reader.close()
    with recorder(ctop, store, "--no-ebpf", "--no-containers", interval=0.2) as proc:  # the lock went with it
        wait_until(lambda: latest_frame(store).host.wall_time_s > killed_at, 30, "frames after the restart", proc)
        assert "Traceback" not in output(proc)


def test_a_full_disk_pauses_recording_once_and_it_resumes(ctop: str) -> None:
    need_root()
    mount = tempfile.mkdtemp(prefix="ctop-fulldisk-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mount], check=True)
    try:
        filler = os.path.join(mount, "filler")
        st = os.statvfs(mount)
        with open(filler, "wb") as f:  # leave 48 KiB: a few frames fit, whatever this host's cgroups compress to
            f.write(b"\0" * (st.f_bavail * st.f_frsize - 48 * 2**10))
        directory = os.path.join(mount, "store")
        with recorder(ctop, directory, "--no-ebpf", "--no-containers", interval=0.1) as proc:
            wait_until(lambda: "paused" in output(proc), 120, "the full-disk notice", proc)
            time.sleep(1)
            assert output(proc).count("paused") == 1 and proc.poll() is None
            os.unlink(filler)
            paused_until = time.time()
            wait_until(lambda: "resumed" in output(proc), 30, "recording to resume", proc)
            wait_until(lambda: latest_frame(directory).host.wall_time_s > paused_until, 30, "new frames", proc)
            assert "Traceback" not in output(proc)
    finally:
        subprocess.run(["umount", "-l", mount], check=False)
        os.rmdir(mount)


def _newest_segment_frames(store: str) -> list[Entry]:
    """The frame records of the store's newest segment (a recording may have crossed an hour into a new one)."""
    segments = list_segments(store)
    if not segments:
        return []
    with open(segments[-1][1], "rb") as f:
        entries, _, _ = scan(f.read())
    return [e for e in entries if e.kind == FRAME]


def test_a_truncated_store_is_read_up_to_the_damage_with_one_notice(ctop: str, store: str) -> None:
    need_root()
    with recorder(ctop, store, "--no-ebpf", "--no-containers", interval=0.1) as proc:
        wait_until(lambda: len(_newest_segment_frames(store)) >= 60, 90, "sixty frames in one segment", proc)
    path = list_segments(store)[-1][1]
    intact = subprocess.run([ctop, "replay", "-b", "--dir", store, "--from", "1h", "--to", "now", "--json"],
                            capture_output=True, text=True, timeout=300)
    assert intact.returncode == 0 and intact.stderr == ""
    frames = _newest_segment_frames(store)
    cut = frames[len(frames) // 2]  # halfway through a frame halfway through the segment (its first part can be
    with open(path, "r+b") as f:    # most of its bytes: identities and the key frame of a host with many cgroups)
        f.truncate(cut.offset + cut.length // 2)
    result = subprocess.run([ctop, "replay", "-b", "--dir", store, "--from", "1h", "--to", "now", "--json"],
                            capture_output=True, text=True, timeout=300)
    assert "Traceback" not in result.stderr
    notices = [line for line in result.stderr.splitlines() if line.startswith("ctop replay:")]
    assert len(notices) == 1 and "read up to it" in notices[0], result.stderr
    printed, complete = result.stdout.splitlines(), intact.stdout.splitlines()
    assert 0 < len(printed) < len(complete) and printed == complete[:len(printed)]  # the frames before the damage


def test_the_exporter_records_the_same_collections_as_it_serves(dockerd: PrivateDockerd, store: str) -> None:  # noqa: F811
    """`ctop exporter --record` after dropping to nobody (the DaemonSet's way): scrapes answer, frames and a
    container restart land in the store, and replay shows the container."""
    need_root()
    from support.prometheus import running_exporter

    name = unique("exprec")
    with running_exporter(f"--record={store}", "--record.interval=0.5", "--no-ebpf", "--user=nobody",
                          f"--docker.socket={dockerd.socket}") as exp:
        cid = dockerd.out("run", "-d", "--name", name, "--restart=always", IMAGE, "sh", "-c", "sleep 2; exit 3")
        try:
            # As nobody, the private daemon's socket may be out of reach: the workload is then known by its cgroup.
            wait_until(lambda: any(e["type"] == "restart" for e in events(ctop_cmd(), store, "--workload", cid)),
                       60, "a restart recorded by the exporter")
            path = dockerd.cgroup_path(cid)
            # (it restarts every 2 s: a scrape between its exit and its next start has no cgroup of it to serve)
            wait_until(lambda: f'id="{path}"' in exp.scrape(), 30, "the restarting container in a scrape")
        finally:
            dockerd.run("rm", "-f", name, check=False)
    assert all(os.stat(os.path.join(store, f)).st_uid == 65534 for f in os.listdir(store))  # written as nobody
    replay = subprocess.run([ctop_cmd(), "replay", "-b", "--dir", store, "--from", "2m", "--to", "now", "--json",
                             "--filter", f"id={cid}"], capture_output=True, text=True, timeout=60)
    assert replay.returncode == 0, replay.stderr
    rows = [r for line in replay.stdout.splitlines() for r in json.loads(line)]
    assert rows and all(r["id"] == path for r in rows)


def _ctrl_c_as_in_a_terminal() -> None:
    """SIGINT as a terminal's Ctrl-C finds it: a test run started in the background inherits it ignored (shells
    ignore SIGINT in asynchronous commands), and Python then never turns it into KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def ctop_cmd() -> str:
    from support.env import ctop_command

    return ctop_command()


def test_events_follow_prints_a_container_start_and_stop_as_they_are_recorded(ctop: str, dockerd: PrivateDockerd,  # noqa: F811
                                                                              store: str) -> None:
    need_root()
    name = unique("follow")
    with recorder(ctop, store, "--no-ebpf", docker_socket=dockerd.socket) as proc:
        wait_until(lambda: latest_frame(store) is not None, 60, "a first recorded frame", proc)
        since = f"{time.time():.3f}"  # epoch seconds: the follower may start after the container, under load
        errors = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed below) not a pipe: its writes never block it
        follow = subprocess.Popen([ctop, "events", "--dir", store, "--since", since, "--follow", "--poll", "0.2",
                                   "--json", "--workload", name], stdout=subprocess.PIPE, stderr=errors,
                                  text=True, start_new_session=True, preexec_fn=_ctrl_c_as_in_a_terminal)
        lines: list[dict] = []
        try:
            cid = dockerd.out("run", "-d", "--name", name, IMAGE, "sleep", "300")
            try:
                def read() -> None:
                    for line in follow.stdout:  # type: ignore[union-attr]
                        lines.append(json.loads(line))

                threading.Thread(target=read, daemon=True).start()

                def seen(kind: str) -> bool:
                    return any(e["type"] == kind for e in lines)

                wait_until(lambda: seen("start"), 60, "the start, followed", proc)
                dockerd.run("rm", "-f", cid)
                wait_until(lambda: seen("stop"), 60, "the stop, followed", proc)
            finally:
                dockerd.run("rm", "-f", cid, check=False)
            assert all(e["name"] == name and e["workload"] == f"docker:{name}" for e in lines), lines
            assert [e["type"] for e in lines].count("start") == 1  # each event once, though read many times
            follow.send_signal(signal.SIGINT)
            try:
                code = follow.wait(timeout=10)
            finally:
                errors.seek(0)
                said = errors.read()
            assert code == 0, said[-2000:]  # Ctrl-C ends it quietly
            assert "Traceback" not in said
        finally:
            if follow.poll() is None:
                follow.kill()
                follow.wait()
            errors.close()
    bad = subprocess.run([ctop, "events", "--dir", store, "--follow", "--until", "1m"], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "leave out --until" in bad.stderr and "Traceback" not in bad.stderr
