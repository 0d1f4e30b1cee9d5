"""The guest's slower clock: guest/run.py tells the tests in a TCG guest to wait longer (CTOP_TEST_PATIENCE), and
the test helpers stretch their hang guards by it (never below this host's)."""

from __future__ import annotations

import importlib
import sys
import time

import pytest
import support.env
from support.scripts import load_script


def _guest_run():
    return load_script("guest/run.py", "guest_run")


def test_the_job_exports_the_patience_of_the_accelerator(monkeypatch: pytest.MonkeyPatch) -> None:
    run = _guest_run()
    monkeypatch.delenv("CTOP_GUEST_PATIENCE", raising=False)
    assert run.patience("tcg") == run.TCG_PATIENCE and float(run.TCG_PATIENCE) > 1
    assert run.patience("kvm") == "1"
    monkeypatch.setenv("CTOP_GUEST_PATIENCE", "3")
    assert run.patience("tcg") == "3"
    monkeypatch.delenv("CTOP_GUEST_CHURN_SCALE", raising=False)
    assert run.churn_scale("tcg") == run.TCG_CHURN_SCALE and float(run.TCG_CHURN_SCALE) < 1
    assert run.churn_scale("kvm") == "1"
    job = run.job_script(None, ["tests/system"], 0, run.patience("tcg"), run.churn_scale("tcg"))
    assert f"export CTOP_TEST_PATIENCE=3 CHURN_SCALE={run.TCG_CHURN_SCALE}\n" in job
    assert job.index("export CTOP_TEST_PATIENCE") < job.index("./setup.sh guest-test")


@pytest.mark.parametrize(("value", "factor"), [(None, 1.0), ("6", 6.0), ("0.5", 1.0), ("lots", 1.0)])
def test_hang_guards_stretch_by_the_patience_factor(monkeypatch: pytest.MonkeyPatch, value: str | None,
                                                   factor: float) -> None:
    if value is None:
        monkeypatch.delenv("CTOP_TEST_PATIENCE", raising=False)
    else:
        monkeypatch.setenv("CTOP_TEST_PATIENCE", value)
    env = importlib.reload(support.env)
    try:
        assert env.patience(10) == pytest.approx(10 * factor)
    finally:
        monkeypatch.delenv("CTOP_TEST_PATIENCE", raising=False)
        importlib.reload(support.env)


def test_a_tmux_wait_lasts_its_stretched_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """tmux_session's wait_for gives up after timeout x patience, not after timeout."""
    import support.tmux as tmux

    monkeypatch.setattr(tmux, "patience", lambda seconds: seconds * 4)
    with tmux.tmux_session([sys.executable, "-c", "import time; print('up'); time.sleep(30)"], 80, 10) as t:
        begin = time.monotonic()
        with pytest.raises(AssertionError, match="timed out"):
            t.wait_text("never printed", 0.25)
        assert time.monotonic() - begin >= 1.0  # 0.25 s stretched four times


def test_extra_kernel_arguments_reach_the_guests_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    run = _guest_run()
    monkeypatch.setenv("CTOP_GUEST_APPEND", " loglevel=7 softlockup_all_cpu_backtrace=1 ")
    cmd = run.qemu_command("v1", "disk", "share", "console", "tcg")
    append = cmd[cmd.index("-append") + 1]
    assert append.endswith(run.V1_ARGS + " loglevel=7 softlockup_all_cpu_backtrace=1")
    monkeypatch.delenv("CTOP_GUEST_APPEND")
    cmd = run.qemu_command("v2", "disk", "share", "console", "tcg")
    assert cmd[cmd.index("-append") + 1].endswith("panic=10")
