"""What the test machine has, and the CI rule: in CI a missing component fails a system test, never skips it."""

from __future__ import annotations

import os
import shutil
import sys

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _patience_factor() -> float:
    try:
        return max(1.0, float(os.environ.get("CTOP_TEST_PATIENCE", "1")))
    except ValueError:
        return 1.0


# How much longer than on this host the test helpers wait for something to happen (a screen, a scrape, a server):
# an emulated guest (guest/run.py sets it under TCG) runs everything several times slower. Hang guards only: no
# test compares timings.
PATIENCE = _patience_factor()


def patience(seconds: float) -> float:
    """A hang guard of ``seconds`` on this host, stretched by CTOP_TEST_PATIENCE where everything runs slower."""
    return seconds * PATIENCE


def need(condition: object, what: str) -> None:
    """Skip (locally) or fail (in CI) the calling test unless ``condition`` holds; ``what`` names the component."""
    if condition:
        return
    message = f"missing component: {what}"
    if IN_CI:
        pytest.fail(message + " (CI=true: system tests must not skip)")
    pytest.skip(message)


def need_root() -> None:
    need(os.geteuid() == 0, "root")


def need_binary(name: str) -> str:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None)
    need(path, f"the {name} binary")
    return str(path)


def ctop_command() -> str:
    """The ``ctop`` console script installed beside this pytest (setup.sh's .venv), else on PATH."""
    candidates = [os.path.join(sys.prefix, "bin", "ctop")]
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    candidates += [os.path.join(repo, venv, "bin", "ctop") for venv in (".venv", ".venv-dev")]
    for candidate in candidates:
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("ctop")
    if found:
        return found
    need(False, "the installed ctop command (run ./setup.sh)")
    raise AssertionError("unreachable")
