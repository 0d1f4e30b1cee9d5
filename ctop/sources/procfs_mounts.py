"""Mounts of a process (/proc/<pid>/mountinfo) and its overlay writable layer."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .readfile import ReadErrors, read_bytes


@dataclass(frozen=True)
class Mount:
    """One line of mountinfo, unescaped."""

    mount_point: str
    fstype: str
    source: str
    root: str
    options: str
    super_options: str


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as \\ooo octal."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and all(c in "01234567" for c in field[i + 1:i + 4]):
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(data: bytes | None) -> list[Mount]:
    """Lines of mountinfo as Mount records; malformed lines are skipped."""
    mounts: list[Mount] = []
    if not data:
        return mounts
    for raw in data.decode("utf-8", "replace").split("\n"):
        left, sep, right = raw.partition(" - ")
        if not sep:
            continue
        lf, rf = left.split(" "), right.split(" ")
        if len(lf) < 6 or len(rf) < 3:
            continue
        mounts.append(Mount(mount_point=_unescape(lf[4]), fstype=rf[0], source=_unescape(rf[1]),
                            root=_unescape(lf[3]), options=lf[5], super_options=rf[2]))
    return mounts


def mounts_of(pid: int, proc_root: str = "/proc", errors: ReadErrors | None = None) -> list[Mount]:
    """The mounts ``pid`` sees ([] when unreadable)."""
    return parse_mountinfo(read_bytes(os.path.join(proc_root, str(pid), "mountinfo"), errors))


def overlay_upper_dir(mounts: list[Mount]) -> str | None:
    """The ``upperdir=`` of the overlay mounted at "/" (a container's writable layer), or None."""
    for m in mounts:
        if m.mount_point == "/" and m.fstype == "overlay":
            for opt in m.super_options.split(","):
                if opt.startswith("upperdir="):
                    return opt[len("upperdir="):]
    return None


def directory_size(path: str, max_entries: int = 20000) -> int | None:
    """Bytes allocated under ``path`` if it holds at most ``max_entries`` entries (cheap); else None."""
    total, seen = 0, 0
    stack = [path]
    try:
        while stack:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    seen += 1
                    if seen > max_entries:
                        return None
                    st = entry.stat(follow_symlinks=False)
                    total += st.st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
    except OSError:
        return None
    return total
