"""run_batch waits for eBPF only while it loads, restarts from a reading with eBPF, says once if it gives up."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from unit.test_ui_frames import make_frame, make_row

from ctop.batch import BatchOptions
from ctop.cli import EBPF_WAIT_S, run_batch
from ctop.model.ebpf import State
from ctop.model.frame import Frame


@dataclass
class StubCollector:
    """What run_batch asks of a Collector, with eBPF in a given state before and after waiting."""

    state: State
    after_wait: State
    calls: list[str] = field(default_factory=list)

    def collect(self) -> Frame:
        self.calls.append(f"collect:{self.state}")
        return make_frame([make_row("/")])

    def ebpf_state(self) -> State:
        return self.state

    def wait_ebpf(self, timeout_s: float) -> State:
        self.calls.append(f"wait:{timeout_s:g}")
        self.state = self.after_wait
        return self.state


def run(stub: StubCollector, wait_s: float = EBPF_WAIT_S) -> None:
    run_batch(stub, BatchOptions(output="json"), 2, 0.0, wait_s)  # type: ignore[arg-type]


def test_no_wait_when_ebpf_is_off_ready_or_failed(capsys: pytest.CaptureFixture[str]) -> None:
    for state in ("off", "ready", "failed"):
        stub = StubCollector(state, state)
        run(stub)
        assert stub.calls == [f"collect:{state}"] * 3
    assert capsys.readouterr().err == ""


def test_a_loading_ebpf_is_waited_for_and_the_first_interval_starts_when_it_is_ready(
        capsys: pytest.CaptureFixture[str]) -> None:
    stub = StubCollector("starting", "ready")
    run(stub)
    # The first reading had no eBPF counters: a new one once ready, so that the first printed rates have both.
    assert stub.calls == ["collect:starting", "wait:5", "collect:ready", "collect:ready", "collect:ready"]
    assert capsys.readouterr().err == ""


def test_giving_up_is_said_once_and_zero_does_not_wait(capsys: pytest.CaptureFixture[str]) -> None:
    stub = StubCollector("starting", "starting")
    run(stub, 0.5)
    assert stub.calls == ["collect:starting", "wait:0.5", "collect:starting", "collect:starting"]
    assert capsys.readouterr().err.count("eBPF was still loading after 0.5 s") == 1
    stub = StubCollector("starting", "ready")
    run(stub, 0)
    assert "wait:0" not in stub.calls
    failed = StubCollector("starting", "failed")  # failed while waiting: its reason is a notice, not this sentence
    run(failed)
    assert "still loading" not in capsys.readouterr().err
