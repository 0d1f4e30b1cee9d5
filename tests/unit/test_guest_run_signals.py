"""guest/run.py interrupted: `timeout` signals its child and then its whole process group, so the run gets SIGTERM
twice and qemu gets it too. Whatever the order, the run keeps the job's partial results, leaves no qemu behind and
removes its working directory.

qemu is replaced by a shell script (nothing boots): it writes the console and a partial job.log as a guest would,
signals the run, and either keeps running or exits first."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support.scripts import REPO

FAKE_QEMU = """\
share=$1; console=$2; how=$3; pidfile=$4
echo $$ > "$pidfile"
echo "ctoph-guest: job started" > "$console"
echo "partial log" > "$share/results/job.log"
run=$PPID
if [ "$how" = gone ]; then
    (sleep 0.5; kill -TERM "$run") &
    exit 0
fi
kill -TERM "$run"
exec sleep 300
"""

DRIVER = """\
import importlib.util, os, signal, sys, time
script, tmp, how = sys.argv[1:4]
spec = importlib.util.spec_from_file_location("guest_run", script)
run = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run)
run.CACHE = os.path.join(tmp, "cache")
os.makedirs(run.CACHE)
open(os.path.join(run.CACHE, "rootfs.raw"), "wb").close()
run.WORK_PARENT = os.path.join(tmp, "work")
os.makedirs(run.WORK_PARENT)
run.tar_tree = lambda dest: open(dest, "wb").close()
run.make_overlay = lambda disk: open(disk, "wb").close()
fake = os.path.join(tmp, "qemu.sh")
pidfile = os.path.join(tmp, "qemu.pid")
run.qemu_command = lambda mode, disk, share, console, accel: ["sh", fake, share, console, how, pidfile]
if how == "twice":
    copytree = run.shutil.copytree
    def second_signal_while_collecting(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # as `timeout` does to the process group, right after the child
        time.sleep(0.2)
        return copytree(*args, **kwargs)
    run.shutil.copytree = second_signal_while_collecting
sys.exit(run.main(["v2", "--results", os.path.join(tmp, "results"), "--timeout", "2"]))
"""


@pytest.mark.parametrize("how", ["twice", "gone"])
def test_an_interrupted_run_keeps_partial_results_and_removes_its_work(tmp_path: Path, how: str) -> None:
    (tmp_path / "qemu.sh").write_text(FAKE_QEMU)
    (tmp_path / "driver.py").write_text(DRIVER)
    done = subprocess.run([sys.executable, str(tmp_path / "driver.py"), os.path.join(REPO, "guest", "run.py"),
                           str(tmp_path), how], capture_output=True, text=True, timeout=60)
    assert done.returncode == 128 + 15, textwrap.shorten(done.stderr, 2000)
    results = tmp_path / "results"
    assert (results / "job.log").read_text() == "partial log\n", "the job's partial log was not kept"
    assert "job started" in (results / "console.log").read_text()
    assert list((tmp_path / "work").iterdir()) == [], "the run left its working directory"
    qemu = int((tmp_path / "qemu.pid").read_text())
    assert not os.path.exists(f"/proc/{qemu}"), "the run left its qemu running"

