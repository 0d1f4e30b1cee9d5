"""`ctop exporter --user`: root loads eBPF, then the process runs as a plain user with CAP_SYS_PTRACE only (root)."""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from support.dockerd import IMAGE, dockerd, unique  # noqa: F401
from support.env import ctop_command, need, need_binary, need_root
from support.prometheus import Exporter, free_port, running_exporter

from ctop.privileges import CAPABILITIES

pytestmark = pytest.mark.system

BUSY = "while :; do :; done"
KEPT_MASK = 1 << CAPABILITIES["CAP_SYS_PTRACE"]


@pytest.fixture
def plain_user() -> Iterator[str]:
    """A uniquely named system user with its own group, removed (with the group) afterwards."""
    need_root()
    useradd, userdel = need_binary("useradd"), need_binary("userdel")
    name = f"ctopt{uuid.uuid4().hex[:10]}"
    subprocess.run([useradd, "--system", "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin", name],
                   check=True, capture_output=True, timeout=30)
    try:
        yield name
    finally:
        subprocess.run([userdel, name], capture_output=True, timeout=30)


@contextmanager
def tempfile_log() -> Iterator[tuple[IO[bytes], Callable[[], str]]]:
    with tempfile.TemporaryFile() as log:
        def read() -> str:
            log.seek(0)
            return log.read()[-3000:].decode("utf-8", "replace")
        yield log, read


def status(pid: int | str) -> dict[str, str]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return out


def samples(text: str, family: str) -> dict[tuple[tuple[str, str], ...], float]:
    for fam in text_string_to_metric_families(text):
        if family in (fam.name, fam.name + "_total"):  # the parser names a counter's family without _total
            return {tuple(sorted(s.labels.items())): s.value for s in fam.samples if s.name == family}
    return {}


def value_for(text: str, family: str, **labels: str) -> float:
    """Sum of the samples of ``family`` whose labels include ``labels``."""
    found = [v for key, v in samples(text, family).items() if set(labels.items()) <= set(key)]
    assert found, f"no {family} sample with {labels}"
    return sum(found)


def wait_scrape(exp: Exporter, predicate, timeout: float = 60) -> str:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        text = exp.scrape()
        if predicate(text) or time.monotonic() > deadline:
            return text
        time.sleep(0.5)


def test_exporter_drops_to_a_user_and_keeps_serving_containers_and_ebpf(plain_user, dockerd, test_cgroup):  # noqa: F811
    need_root()
    sock = os.stat(dockerd.socket)
    need(sock.st_gid != 0, "a docker group owning the Docker socket")
    base_mode = os.stat(dockerd.base).st_mode & 0o777
    os.chmod(dockerd.base, 0o711)  # the private daemon's directory: let the user reach the socket inside it
    name = unique("ctop-priv")
    cid = ""
    try:
        cid = dockerd.out("run", "-d", "--name", name, "--cpus", "0.2", IMAGE, "sh", "-c", BUSY).strip()
        test_cgroup.limit_cpu(20000)
        test_cgroup.spawn(["sh", "-c", BUSY])
        include = f"^(/|{re.escape(test_cgroup.path)}|.*{cid}(\\.scope)?)$"  # /docker/<id> or .../docker-<id>.scope
        with running_exporter(f"--user={plain_user}", f"--docker.socket={dockerd.socket}",
                              f"--cgroup.include={include}", ready_timeout=240) as exp:
            # Names come from the Docker thread; the test cgroup's first context switches may land a moment after
            # the programs attach: wait for both before comparing two scrapes.
            own_switches = f'ctop_context_switches_total{{id="{test_cgroup.path}"'
            text = wait_scrape(exp, lambda t: f'name="{name}"' in t and own_switches in t)
            assert "running as user " + plain_user in exp.log(), exp.log()
            ebpf_on = value_for(text, "ctop_ebpf_enabled")
            need(ebpf_on == 1, f"eBPF loaded before the drop ({exp.log()})")

            # Credentials of every thread: the user, its group plus the socket's group, CAP_SYS_PTRACE only.
            st = status(exp.proc.pid)
            entry = pwd.getpwnam(plain_user)
            uid, gid = str(entry.pw_uid), str(entry.pw_gid)
            for task in os.listdir(f"/proc/{exp.proc.pid}/task"):
                ts = status(f"{exp.proc.pid}/task/{task}")
                assert set(ts["Uid"].split()) == {uid}, ts
                assert set(ts["Gid"].split()) == {gid}, ts
                assert int(ts["CapEff"], 16) & ~KEPT_MASK == 0 and int(ts["CapPrm"], 16) & ~KEPT_MASK == 0, ts
            assert int(st["CapEff"], 16) == KEPT_MASK and int(st["CapBnd"], 16) == KEPT_MASK, st
            assert int(st["CapAmb"], 16) == 0 and int(st["CapInh"], 16) == 0 and st["NoNewPrivs"] == "1", st
            assert set(st["Groups"].split()) == {gid, str(sock.st_gid)}, (st, grp.getgrgid(sock.st_gid).gr_name)
            print(f"\nexporter pid {exp.proc.pid}: Uid {st['Uid']} Groups {st['Groups']} CapEff {st['CapEff']} "
                  f"CapBnd {st['CapBnd']}")

            # Still serving after the drop: container names (Docker socket), CPU that advances, eBPF that advances.
            first = exp.scrape()
            time.sleep(2.5)
            second = exp.scrape()
            for key in ({"name": name}, {"id": test_cgroup.path}):
                before = value_for(first, "container_cpu_usage_seconds_total", cpu="total", **key)
                after = value_for(second, "container_cpu_usage_seconds_total", cpu="total", **key)
                assert after > before, (key, before, after)
            switches = [value_for(t, "ctop_context_switches_total", id="/") for t in (first, second)]
            assert switches[1] > switches[0], switches
            dispatched = [value_for(t, "ctop_context_switches_total", id=test_cgroup.path) for t in (first, second)]
            assert dispatched[1] > dispatched[0], dispatched
            assert value_for(second, "ctop_collection_errors_total") == 0
            assert exp.proc.poll() is None
            _same_credentials_cannot_touch_root_files(st)
    finally:
        if cid:
            dockerd.run("rm", "-f", cid, check=False)
        os.chmod(dockerd.base, base_mode)


def _same_credentials_cannot_touch_root_files(exporter_status: dict[str, str]) -> None:
    """A process dropped by the same code to the same credentials cannot read /etc/shadow or write in /root."""
    uid = int(exporter_status["Uid"].split()[0])
    gid = int(exporter_status["Gid"].split()[0])
    groups = [gid, *(int(g) for g in exporter_status["Groups"].split() if int(g) != gid)]
    probe = os.path.join("/root", f"ctop-priv-probe-{uuid.uuid4().hex[:8]}")
    code = f"""
import json, os
from ctop.privileges import Target, drop_privileges, status_of
drop_privileges(Target("probe", {uid}, {groups[0]}, tuple({groups})), ["CAP_SYS_PTRACE"])
out = {{"status": status_of()}}
for what, action in (("shadow", lambda: open("/etc/shadow").read()),
                     ("root_write", lambda: open({probe!r}, "w").write("x")),
                     ("setuid0", lambda: os.setuid(0)),
                     ("kill_init", lambda: os.kill(1, 0))):
    try:
        action()
        out[what] = "allowed"
    except OSError as e:
        out[what] = e.__class__.__name__
print(json.dumps(out))
"""
    try:
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd="/")
    finally:
        if os.path.exists(probe):
            os.unlink(probe)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    for key in ("Uid", "Gid", "Groups", "CapEff", "CapPrm", "CapBnd", "CapAmb", "NoNewPrivs"):
        assert out["status"][key] == exporter_status[key], key
    assert out["shadow"] == "PermissionError" and out["root_write"] == "PermissionError", out
    assert out["setuid0"] == "PermissionError" and out["kill_init"] == "PermissionError", out


def _exporter(*args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, ctop_command(), "exporter", f"--web.listen-address=127.0.0.1:{free_port()}",
                           *args], capture_output=True, text=True, timeout=120, cwd="/",
                          env={**os.environ, "HOME": "/"})


def _one_sentence(run: subprocess.CompletedProcess, words: str) -> None:
    assert run.returncode == 1, (run.returncode, run.stderr)
    assert "Traceback" not in run.stderr, run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and words in lines[0], run.stderr


def test_user_errors_are_one_sentence():
    need_root()
    setpriv = need_binary("setpriv")
    _one_sentence(_exporter("--user", f"no-such-user-{uuid.uuid4().hex[:6]}", "--no-ebpf"), "there is no user")
    _one_sentence(_exporter("--user", "nobody:no-such-group-xyz", "--no-ebpf"), "there is no group")
    _one_sentence(_exporter("--user", "root", "--no-ebpf"), "names root itself")
    as_nobody = (setpriv, "--reuid=65534", "--regid=65534", "--clear-groups")
    _one_sentence(_exporter("--user", "nobody", "--no-ebpf", prefix=as_nobody), "needs ctop to start as root")
    # Root without CAP_SYS_PTRACE in its bounding set cannot keep it: capset fails, the exporter stops.
    no_ptrace = (setpriv, "--bounding-set=-sys_ptrace", "--inh-caps=-sys_ptrace")
    _one_sentence(_exporter("--user", "nobody", "--no-ebpf", prefix=no_ptrace), "capset failed")


def test_systemd_unit_and_daemonset_capabilities_are_enough_to_load_and_drop():
    """The unit's CapabilityBoundingSet (same as the DaemonSet's added capabilities) loads eBPF, then drops."""
    need_root()
    setpriv = need_binary("setpriv")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(repo, "exporters", "ctop-exporter.service")) as f:
        unit = f.read()
    bounding = re.search(r"^CapabilityBoundingSet=(.+)$", unit, re.M)
    exec_start = re.search(r"^ExecStart=(.+)$", unit, re.M)
    assert bounding and exec_start
    caps = bounding.group(1).split()
    with open(os.path.join(repo, "exporters", "deploy", "daemonset.yaml")) as f:
        daemonset = next(d for d in yaml.safe_load_all(f) if d and d.get("kind") == "DaemonSet")
    container = daemonset["spec"]["template"]["spec"]["containers"][0]
    assert {"CAP_" + c for c in container["securityContext"]["capabilities"]["add"]} == set(caps)
    user_flags = [a for a in exec_start.group(1).split() if a.startswith("--user=")]
    assert user_flags and user_flags == [a for a in container["args"] if a.startswith("--user=")]
    keep = "-all," + ",".join("+" + c.removeprefix("CAP_").lower() for c in caps)
    port = free_port()
    store = tempfile.mkdtemp(prefix="ctop-priv-store-")  # --record as the unit and the DaemonSet run it
    os.chmod(store, 0o755)  # like /var/lib/ctop: the dropped user must reach the store inside
    with tempfile_log() as (log, read_log):
        proc = subprocess.Popen([setpriv, f"--bounding-set={keep}", "--inh-caps=-all", ctop_command(), "exporter",
                                 f"--web.listen-address=127.0.0.1:{port}", *user_flags, f"--record={store}/h"],
                                stdout=log, stderr=subprocess.STDOUT, cwd="/")
        try:
            exp = Exporter(proc, port)
            deadline = time.monotonic() + 240
            text = ""
            while "ctop_ebpf_enabled" not in text:
                assert proc.poll() is None and time.monotonic() < deadline, read_log()
                try:
                    text = exp.scrape()
                except OSError:
                    time.sleep(0.5)
            need(value_for(text, "ctop_ebpf_enabled") == 1, f"eBPF loaded ({read_log()})")
            st = status(proc.pid)
            assert int(st["CapEff"], 16) == KEPT_MASK and st["Uid"].split()[0] != "0", st
            segments = [f for f in os.listdir(f"{store}/h") if f.endswith(".ctr")]
            assert segments and os.stat(f"{store}/h/{segments[0]}").st_uid == int(st["Uid"].split()[0]), read_log()
            assert "paused" not in read_log() and "Traceback" not in read_log()
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            shutil.rmtree(store, ignore_errors=True)
