"""``ctop inspect`` on a real container of the private dockerd: CliRunner and the installed command (root)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from support.dockerd import IMAGE, PrivateDockerd, cgroup_dir, dockerd, unique  # noqa: F401
from support.env import need, need_root

from ctop.inspect_cmd import inspect_command

pytestmark = pytest.mark.system


def test_inspect_json_and_text(dockerd: PrivateDockerd) -> None:  # noqa: F811
    need_root()
    name = unique("insp")
    cid = dockerd.out("run", "-d", "--name", name, "--network", dockerd.network, "--cap-drop=NET_RAW",
                      "--memory=128m", "--cpus=0.5", IMAGE, "sh", "-c", "yes > /dev/null & sleep 300")
    info = dockerd.inspect(cid)
    procs_file = cgroup_dir(info["State"]["Pid"]) + "/cgroup.procs"  # /docker/<id> or .../docker-<id>.scope
    for _ in range(100):  # until the shell forked the busy child (busybox then execs sleep as pid 1)
        with open(procs_file) as f:
            if len(f.read().split()) == 2:
                break
        time.sleep(0.05)
    ip = info["NetworkSettings"]["Networks"][dockerd.network]["IPAddress"]
    runner = CliRunner()
    res = runner.invoke(inspect_command, [name, "--json", "--docker-socket", dockerd.socket])
    assert res.exit_code == 0, res.output
    r = json.loads(res.output)
    assert r["metadata"]["name"] == name and r["metadata"]["image"] == IMAGE
    assert r["identity"]["container_id"] == cid and r["identity"]["runtime"] == "docker"
    assert r["main_pid"] == info["State"]["Pid"]
    assert "NET_RAW" not in r["capabilities"] and "CHOWN" in r["capabilities"]
    assert r["namespaces"]["net"]["shared_with_host"] is False
    assert r["network"]["shares_host"] is False
    eth0 = next(i for i in r["network"]["interfaces"] if i["name"] == "eth0")
    assert any(a.startswith(ip + "/") for a in eth0["addresses"])
    assert r["mounts"]["count"] > 0 and r["mounts"]["list"][0]["fstype"] == "overlay"
    assert r["writable_layer"]["upper_dir"].startswith(dockerd.base)
    procs = {p["command"]: p for p in r["processes"]}
    # busybox runs `yes` inside the forked shell (same command line) and execs sleep as pid 1.
    assert set(procs) == {"sh -c yes > /dev/null & sleep 300", "sleep 300"}
    assert procs["sleep 300"]["pid_inside"] == 1 and procs["sleep 300"]["pid"] == r["main_pid"]
    assert procs["sleep 300"]["cpu_percent"] < 5
    assert 20 < procs["sh -c yes > /dev/null & sleep 300"]["cpu_percent"] < 70  # busy, held at 0.5 CPU

    by_prefix = runner.invoke(inspect_command, [cid[:12], "--docker-socket", dockerd.socket])
    assert by_prefix.exit_code == 0, by_prefix.output
    assert f"Container  {name}  (docker)" in by_prefix.output
    assert "NET_RAW" not in by_prefix.output and "eth0" in by_prefix.output and ip in by_prefix.output

    missing = runner.invoke(inspect_command, ["no-such-container-" + cid[:6], "--docker-socket", dockerd.socket])
    assert missing.exit_code == 1
    assert missing.output.startswith("Error: No running container is named") and "Traceback" not in missing.output
    dockerd.run("rm", "-f", cid)


def test_inspect_as_the_real_command(dockerd: PrivateDockerd) -> None:  # noqa: F811
    need_root()
    ctop = os.path.join(os.path.dirname(sys.executable), "ctop")
    need(os.path.exists(ctop), "the ctop command in the dev venv")
    name = unique("real")
    cid = dockerd.out("run", "-d", "--name", name, IMAGE, "sleep", "300")
    res = subprocess.run([ctop, "inspect", name, "--json", "--docker-socket", dockerd.socket],
                         capture_output=True, text=True, timeout=60)
    need("No such command" not in res.stderr, "the inspect command registered in ctop's CLI group")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["metadata"]["name"] == name
    bad = subprocess.run([ctop, "inspect", "nothing-" + cid[:8], "--docker-socket", "/nonexistent.sock"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "No Docker socket at /nonexistent.sock" in bad.stderr
    dockerd.run("rm", "-f", cid)
