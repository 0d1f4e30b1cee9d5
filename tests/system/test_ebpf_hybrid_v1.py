"""Hybrid hosts: a cgroup made only in the v1 cpu hierarchy (its tasks stay in the cgroup2 root) gets its own eBPF
figures, which agree with /proc/<tid>/schedstat and with the execs the test ran; the `/` row no longer gets them."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest
from support.cgroups import host_layout, unique_name
from support.ebpf import read
from support.env import need

from ctop.ebpf.source import EbpfSource

pytestmark = pytest.mark.system

EXECS = 40
RUNQ_TOLERANCE = (0.25, 0.05)  # share of schedstat's wait, seconds: the larger applies (a slice may straddle reads)


@pytest.fixture
def v1_only() -> Iterator[tuple[str, str]]:
    """A cgroup in the v1 cpu hierarchy only (not in the unified one) and one in the v1 memory hierarchy only;
    yields their paths, relative to the hierarchy roots."""
    layout = host_layout()
    cpu, memory = layout.v1("cpu"), layout.v1("memory")
    need(layout.unified and cpu and memory, "a hybrid host (cgroup2 beside v1 cpu and memory)")
    assert cpu is not None and memory is not None
    path, mem_path = "/" + unique_name("ctoph-bpf-v1"), "/" + unique_name("ctoph-bpf-mem")
    os.mkdir(cpu + path)
    os.mkdir(memory + mem_path)
    try:
        yield path, mem_path
    finally:
        for d in (cpu + path, memory + mem_path):
            for _ in range(100):
                try:
                    os.rmdir(d)
                    break
                except OSError:
                    time.sleep(0.1)


def _spawn(cgroup_dir: str, args: list[str], cpu: int | None = None) -> subprocess.Popen:
    def join() -> None:
        with open(os.path.join(cgroup_dir, "cgroup.procs"), "w") as f:
            f.write("0")
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    return subprocess.Popen(args, preexec_fn=join)


def _run_delay_s(pid: int) -> float:
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[1]) / 1e9


def test_a_v1_only_cgroup_gets_its_own_run_queue_waits_and_execs(ebpf: EbpfSource,
                                                                 v1_only: tuple[str, str]) -> None:
    path, mem_path = v1_only
    cpu_dir = host_layout().v1("cpu")
    assert cpu_dir is not None
    cgroup_dir = cpu_dir + path
    marker = f"ctoph-bpf-exec-{uuid.uuid4().hex[:8]}"
    busy = [_spawn(cgroup_dir, ["/bin/sh", "-c", "while :; do :; done"], cpu=0) for _ in range(2)]
    try:
        time.sleep(0.5)
        first = read(ebpf)
        before = [_run_delay_s(p.pid) for p in busy]
        time.sleep(2.0)
        # Execs: the shell itself and EXECS runs of /bin/true (dash's `[` and arithmetic are builtins).
        loop = _spawn(cgroup_dir, ["/bin/sh", "-c", f'i=0; while [ $i -lt {EXECS} ]; do /bin/true {marker}; '
                                                    'i=$((i+1)); done'])
        assert loop.wait(timeout=60) == 0
        after = [_run_delay_s(p.pid) for p in busy]
        second = read(ebpf)
    finally:
        for p in busy:
            p.send_signal(signal.SIGKILL)
            p.wait()
    assert second.covers(path) and not second.covers(mem_path)
    new, old = second.by_cgroup.get(path), first.by_cgroup.get(path)
    assert new is not None and old is not None, f"no eBPF counters for {path}"
    schedstat_wait = sum(after) - sum(before)
    ebpf_wait = new.runq_sum_seconds - old.runq_sum_seconds
    tolerance = max(RUNQ_TOLERANCE[0] * schedstat_wait, RUNQ_TOLERANCE[1])
    assert schedstat_wait > 0.5, "two busy loops on one CPU should wait for it"
    assert abs(ebpf_wait - schedstat_wait) <= tolerance, (ebpf_wait, schedstat_wait)
    assert new.nivcsw > old.nivcsw
    assert new.execs - old.execs == EXECS + 1
    execs = [e for e in second.execs.get(path, ()) if marker in e.args]
    assert len(execs) == min(EXECS, 32) and execs[-1].args == f"/bin/true {marker}"
    assert not [e for e in second.execs.get("/", ()) if marker in e.args]  # none counted under the root
