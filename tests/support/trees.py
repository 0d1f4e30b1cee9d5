"""Paths of the recorded cgroup trees in tests/data and a copy helper for tests that modify one."""

from __future__ import annotations

import os
import shutil

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "cgroups")


def tree(name: str) -> tuple[str, str]:
    """(cgroup_root, proc_root) of a recorded tree."""
    base = os.path.join(DATA, name)
    return os.path.join(base, "cgroup"), os.path.join(base, "proc")


def copy_tree(name: str, dest: str) -> tuple[str, str]:
    """A writable copy of a recorded tree under ``dest``."""
    shutil.copytree(os.path.join(DATA, name), dest, symlinks=True)
    return os.path.join(dest, "cgroup"), os.path.join(dest, "proc")


def paths_the_reader_opens(monkeypatch) -> list[str]:  # type: ignore[no-untyped-def]
    """From now on, every path ctop's cgroup reader opens (on a recorded tree it keeps none open), in order."""
    from ctop.sources import cgroupfs

    opened: list[str] = []
    real = cgroupfs.read_bytes

    def read_bytes(path: str, errors=None):  # type: ignore[no-untyped-def]
        opened.append(path)
        return real(path, errors)

    monkeypatch.setattr(cgroupfs, "read_bytes", read_bytes)
    return opened
