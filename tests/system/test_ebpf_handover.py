"""Programs compiled in a child process: the fds it hands over keep working after it exited (maps update under a
real workload, writes go through, program statistics read), LLVM never enters ctop, and a child that dies or exits
without a word leaves one sentence and output without eBPF fields."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from support.cgroups import TestCgroup, fresh_cgroup, host_layout
from support.ebpf import read
from support.env import ctop_command, need, need_root

from ctop.ebpf import progstats
from ctop.ebpf.source import EbpfSource

pytestmark = pytest.mark.system

EBPF_KEYS = ("runq_latency_p99_seconds", "ctx_switches_voluntary_per_s", "execs_per_s", "exits_per_s")
COMPILER_LIBRARIES = ("libbcc", "libLLVM", "libclang")


@pytest.fixture
def cgroup() -> Iterator[TestCgroup]:
    """A fresh cgroup named ctoph-ld-... in every hierarchy; removed afterwards."""
    need_root()
    with fresh_cgroup("ctoph-ld") as cg:
        yield cg


def _gone(pid: int) -> bool:
    """True once ``pid`` is no longer a live process (reaped, or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True


def test_llvm_never_enters_the_process_that_loads() -> None:
    """A fresh process (this one may have imported bcc for another test) loads through the child: neither libbcc nor
    LLVM is ever mapped in it."""
    need_root()
    tests = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = ("import sys\n"
              f"sys.path.insert(0, {tests!r})\n"
              "from support.ebpf import loaded_source\n"
              "source = loaded_source()\n"
              "loaded = next(source)\n"
              "with open('/proc/self/maps') as f:\n"
              "    maps = f.read()\n"
              f"print(loaded.compiler_pid, [lib for lib in {COMPILER_LIBRARIES!r} if lib in maps])\n"
              "next(source, None)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    compiler, libraries = result.stdout.split(" ", 1)
    assert compiler != "None" and libraries.strip() == "[]", result.stdout


def test_handed_over_fds_work_after_the_compiler_exited(ebpf: EbpfSource, cgroup: TestCgroup) -> None:
    pid = ebpf.compiler_pid
    assert pid is not None and _gone(pid)
    loaded = ebpf._loaded
    assert loaded is not None and loaded.seeded_threads > 0  # seeding wrote the thread map through its fd
    r0 = read(ebpf)
    cgroup.spawn(["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do /bin/true; sleep 0.01; done"]).wait(60)
    r1 = read(ebpf)
    before = r0.by_cgroup.get(cgroup.path)
    after = r1.by_cgroup[cgroup.path]
    assert after.execs - (before.execs if before else 0) >= 11  # sh, then ten /bin/true and ten sleeps
    assert after.nvcsw > (before.nvcsw if before else 0)
    assert cgroup.path in {path for path in r1.execs}
    # Program statistics through the program fds the child handed over.
    fds = [fn.fd for fn in loaded.bpf.funcs.values()]
    stats = [progstats.prog_stats(fd) for fd in fds]
    assert stats and all(s is not None and s.prog_id > 0 for s in stats)


def test_closing_detaches_the_programs() -> None:
    need_root()
    src = EbpfSource(host_layout())
    src.start()
    status = src.wait_ready(300)
    need(status.state == "ready", f"eBPF ({status.reason})")
    loaded = src._loaded
    assert loaded is not None
    ids = [s.prog_id for s in (progstats.prog_stats(fn.fd) for fn in loaded.bpf.funcs.values()) if s]
    attached = [fd for fd in loaded.bpf.attachments.values()]
    assert ids and attached
    src.close()
    for fd in attached:  # the perf-event fds, whose release detaches the programs, are closed
        with pytest.raises(OSError):
            os.fstat(fd)
    deadline = time.monotonic() + 60  # the kernel frees programs after an RCU grace period
    while time.monotonic() < deadline and any(_prog_exists(i) for i in ids):
        time.sleep(0.2)
    assert not any(_prog_exists(i) for i in ids)


def _prog_exists(prog_id: int) -> bool:
    out = subprocess.run(["bpftool", "prog", "show", "id", str(prog_id)], capture_output=True, text=True)
    return out.returncode == 0


def test_a_compiler_killed_while_it_works_leaves_one_sentence() -> None:
    need_root()
    # The real compiler, stopped by itself before it starts: killed there, deterministically, not after it finished.
    stopped_first = [sys.executable, "-c", "import os, signal, sys; os.kill(os.getpid(), signal.SIGSTOP); "
                     "from ctop.ebpf.compiler import main; main(sys.argv)"]
    src = EbpfSource(host_layout(), compiler_command=stopped_first)
    src.start()
    try:
        pid = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (pid is None or not _stopped(pid)):
            pid = src.compiler_pid
            time.sleep(0.05)
        assert pid is not None and _stopped(pid), src.status()
        os.kill(pid, signal.SIGKILL)
        status = src.wait_ready(60)
        assert status.state == "failed"
        assert status.reason == ("eBPF fields are off because the process compiling ctop's programs was killed by "
                                 "SIGKILL.")
        assert src.read() is None
    finally:
        src.close()


def _stopped(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "T"
    except (OSError, IndexError):
        return False


@pytest.mark.parametrize(("bcc_init", "reason"), [
    ("import os\nos._exit(1)\n", "exited with status 1 without a message"),
    ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", "was killed by SIGKILL"),
])
def test_ctop_batch_with_a_compiler_that_dies_prints_one_sentence_and_rows_without_ebpf(
        tmp_path: object, cgroup: TestCgroup, bcc_init: str, reason: str) -> None:
    # A bcc that ends the process as it is imported: only the compiler child imports bcc, as LLVM would end it.
    fake = os.path.join(str(tmp_path), "bcc")
    os.makedirs(fake)
    with open(os.path.join(fake, "__init__.py"), "w") as f:
        f.write(bcc_init)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run([ctop_command(), "-b", "--json", "-n", "1", "-d", "0.5", "--ebpf-wait", "120"],
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    notes = [line for line in out.stderr.splitlines() if "eBPF" in line]
    assert len(notes) == 1 and reason in notes[0] and notes[0].startswith("ctop: eBPF fields are off because ")
    assert "Traceback" not in out.stderr
    rows = {r["id"]: r for r in json.loads(out.stdout.splitlines()[-1])}
    assert all(rows[cgroup.path][key] is None for key in EBPF_KEYS)
