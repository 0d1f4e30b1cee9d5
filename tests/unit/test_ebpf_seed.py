"""Seeding the thread map: a thread that ended while /proc was listed must not keep an entry (recorded stat files)."""

from __future__ import annotations

import os

import pytest

from ctop.ebpf.loader import _thread_alive


def _proc(tmp_path: object, stats: dict[str, bytes]) -> str:
    root = str(tmp_path)
    for tid, stat in stats.items():
        os.makedirs(os.path.join(root, tid))
        with open(os.path.join(root, tid, "stat"), "wb") as f:
            f.write(stat)
    return root


@pytest.mark.parametrize(("stat", "alive"), [
    (b"42 (sleep) S 1 42 42 0 -1 4194304\n", True),
    (b"42 (busy) R 1 42 42 0 -1 4194304\n", True),
    (b"42 (a) b) Z 1 42 42 0 -1 4194304\n", False),  # ")" in the name; a zombie had its last switch
    (b"42 (gone) X 1 42\n", False),
    (b"", False),
    (b"42 (truncated", False),
])
def test_thread_alive_reads_the_state_after_the_last_parenthesis(tmp_path: object, stat: bytes, alive: bool) -> None:
    assert _thread_alive(_proc(tmp_path, {"42": stat}), "42") is alive


def test_a_thread_without_a_proc_entry_is_not_alive(tmp_path: object) -> None:
    assert _thread_alive(_proc(tmp_path, {}), "42") is False
    assert _thread_alive("/proc", str(os.getpid())) is True
