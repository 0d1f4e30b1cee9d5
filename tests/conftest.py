"""Fixtures shared by all tests."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator

import pytest
from support.cgroups import TestCgroup, fresh_cgroup
from support.ebpf import loaded_source
from support.env import ctop_command, need_root

from ctop.ebpf.source import EbpfSource


def _stop_on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM (a CI timeout, ``kill``) ends the run as Ctrl-C does, so every fixture's teardown still removes the
    cgroups, containers, daemons and ports it made; a second SIGTERM during those teardowns is ignored."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt("SIGTERM: tearing down what the tests made")


def pytest_configure(config: pytest.Config) -> None:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)


@pytest.fixture(autouse=True)
def private_config_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """XDG_CONFIG_HOME in a fresh temporary directory for each test: no test reads or writes the user's ctop settings
    or another test's (the interactive view saves them; ctop in tmux or a subprocess inherits this environment)."""
    path = tempfile.mkdtemp(prefix="ctop-test-config-")
    monkeypatch.setenv("XDG_CONFIG_HOME", path)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def test_cgroup() -> Iterator[TestCgroup]:
    """A fresh, uniquely named cgroup in every hierarchy of this host (root only); removed afterwards."""
    need_root()
    with fresh_cgroup() as cg:
        yield cg


@pytest.fixture
def ctop() -> str:
    """The installed ctop console script (the one beside this pytest)."""
    return ctop_command()


@pytest.fixture(scope="module")
def ebpf() -> Iterator[EbpfSource]:
    """One loaded eBPF source per test module (root and bcc)."""
    yield from loaded_source()


@pytest.fixture(scope="module")
def scratch() -> Iterator[str]:
    """One scratch directory per module (hypothesis runs many examples per test function); removed afterwards."""
    path = tempfile.mkdtemp(prefix="ctop-scratch-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def store_dir(tmp_path: object) -> str:
    """An empty directory for a flight-recorder store (pytest removes it)."""
    return str(tmp_path)


@pytest.fixture
def readable_store_dir() -> Iterator[str]:
    """A store directory other users can reach (0755, as /var/lib/ctop is): for a recorder that drops root and
    for replay as nobody; removed afterwards."""
    path = tempfile.mkdtemp(prefix="ctop-history-")
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
