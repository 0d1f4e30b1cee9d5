"""A test run that gets SIGTERM (a CI timeout, ``kill <pid>``) still tears its fixtures down: the private dockerd,
Prometheus, exporters and cgroups of the system tests live in fixtures, so without this they outlived the run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent

PROBE_CONFTEST = f"""
import importlib.util
spec = importlib.util.spec_from_file_location("ctop_tests_conftest", {str(TESTS / "conftest.py")!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
pytest_configure = module.pytest_configure
"""

PROBE_TEST = """
import os, time, pytest

@pytest.fixture(scope="session")
def made():
    path = os.environ["PROBE_DIR"] + "/session-resource"
    open(path, "w").close()
    yield
    os.unlink(path)

@pytest.fixture
def made_per_test():
    path = os.environ["PROBE_DIR"] + "/test-resource"
    open(path, "w").close()
    yield
    os.unlink(path)

def test_waits_to_be_killed(made, made_per_test):
    open(os.environ["PROBE_DIR"] + "/running", "w").close()
    time.sleep(60)
"""


def test_sigterm_to_pytest_runs_every_fixture_teardown(tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "conftest.py").write_text(textwrap.dedent(PROBE_CONFTEST))
    (probe / "test_probe.py").write_text(textwrap.dedent(PROBE_TEST))
    env = {**os.environ, "PROBE_DIR": str(tmp_path), "PYTHONPATH": str(TESTS)}
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(probe)],
                            cwd=probe, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "running").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the probe run did not start its test"
            time.sleep(0.05)
        assert (tmp_path / "session-resource").exists() and (tmp_path / "test-resource").exists()
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0, output
    assert not (tmp_path / "test-resource").exists(), output
    assert not (tmp_path / "session-resource").exists(), output
    assert "SIGTERM" in output
