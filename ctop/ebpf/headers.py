"""Finds or prepares a kernel header tree bcc can compile against, and mounts tracefs/debugfs for it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

DEFAULT_CACHE_DIR = "/var/cache/ctop/kernel-headers"
MODULES_DIR = "/lib/modules"
SRC_DIR = "/usr/src"
KHEADERS = "/sys/kernel/kheaders.tar.xz"
_STAMP = ".ctop-merged-from"


@dataclass(frozen=True)
class HeaderTree:
    """Headers bcc will use.

    ``kernel_source`` is the single tree to put in ``BCC_KERNEL_SOURCE`` (None when bcc finds headers itself:
    ``/lib/modules/<release>/build`` or the kernel's built-in kheaders). ``matches_kernel`` is False when the
    headers are of another kernel version (then only tracepoint arguments and helpers are safe to use).
    """

    kernel_source: str | None
    description: str
    matches_kernel: bool


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", name)[:4])


def _is_build_tree(path: str) -> bool:
    """A tree with generated headers (``include/generated/autoconf.h``): what kbuild calls the output tree."""
    return os.path.isfile(os.path.join(path, "include", "generated", "autoconf.h"))


def _is_source_tree(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "include", "linux", "kconfig.h"))


def _included_source(build: str) -> str | None:
    """Debian's split trees: the build tree's Makefile is ``include <source>/Makefile``."""
    try:
        with open(os.path.join(build, "Makefile")) as f:
            text = f.read(4096)
    except OSError:
        return None
    m = re.search(r"^include\s+(\S+)/Makefile\s*$", text, re.M)
    if m and _is_source_tree(m.group(1)):
        return m.group(1)
    return None


def candidate_trees(modules_dir: str = MODULES_DIR, src_dir: str = SRC_DIR) -> list[tuple[str, str | None]]:
    """(build tree, source tree or None) pairs installed on this host, newest kernel version first."""
    found: dict[str, str | None] = {}
    try:
        releases = os.listdir(modules_dir)
    except OSError:
        releases = []
    for release in releases:
        build = os.path.join(modules_dir, release, "build")
        if os.path.isdir(build) and _is_build_tree(build):
            real = os.path.realpath(build)
            source = os.path.join(modules_dir, release, "source")
            found[real] = None if _is_source_tree(real) else (
                os.path.realpath(source) if _is_source_tree(source) else _included_source(real)
            )
    for base in (src_dir, os.path.join(src_dir, "kernels")):
        try:
            names = os.listdir(base)
        except OSError:
            continue
        for name in names:
            path = os.path.realpath(os.path.join(base, name))
            if path in found or not _is_build_tree(path):
                continue
            found[path] = None if _is_source_tree(path) else _included_source(path)
    usable = [(b, s) for b, s in found.items() if s is not None or _is_source_tree(b)]
    return sorted(usable, key=lambda bs: _version_key(os.path.basename(bs[0])), reverse=True)


def _merge_dir(dst: str, primary: str, secondary: str) -> None:
    """Fill ``dst`` with symlinks so it reads as ``primary`` laid over ``secondary``; only shared dirs are real."""
    os.makedirs(dst, exist_ok=True)
    names: dict[str, list[str]] = {}
    for src in (primary, secondary):
        try:
            entries = os.listdir(src)
        except OSError:
            continue
        for name in entries:
            names.setdefault(name, []).append(os.path.join(src, name))
    for name, paths in names.items():
        target = os.path.join(dst, name)
        dirs = [p for p in paths if os.path.isdir(p)]
        if len(dirs) == 2:
            _merge_dir(target, os.path.realpath(dirs[0]), os.path.realpath(dirs[1]))
        else:
            os.symlink(os.path.realpath(paths[0]), target)


def merged_tree(build: str, source: str, cache_dir: str = DEFAULT_CACHE_DIR) -> str:
    """A single tree (a symlink farm under ``cache_dir``) made of ``build`` over ``source``; reused if present."""
    dst = os.path.join(cache_dir, os.path.basename(build.rstrip("/")))
    stamp = f"{build}\n{source}\n"
    try:
        with open(os.path.join(dst, _STAMP)) as f:
            if f.read() == stamp:
                return dst
    except OSError:
        pass
    os.makedirs(cache_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".merge-", dir=cache_dir)
    try:
        _merge_dir(tmp, build, source)
        with open(os.path.join(tmp, _STAMP), "w") as f:
            f.write(stamp)
        if os.path.lexists(dst):
            shutil.rmtree(dst, ignore_errors=True)
        os.rename(tmp, dst)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if os.path.isfile(os.path.join(dst, _STAMP)):  # another process won the race
            return dst
        raise
    return dst


def find_headers(
    release: str | None = None,
    cache_dir: str = DEFAULT_CACHE_DIR,
    modules_dir: str = MODULES_DIR,
    src_dir: str = SRC_DIR,
    kheaders: str = KHEADERS,
) -> HeaderTree | None:
    """Headers for the running kernel if any, else the newest installed tree (merged into one if split).

    Returns None when there is nothing bcc could compile against. Raises OSError only if a merge is needed
    and ``cache_dir`` cannot be written.
    """
    release = release or os.uname().release
    own = os.path.join(modules_dir, release, "build")
    if os.path.isdir(own):
        return HeaderTree(None, f"{own} (headers of the running kernel)", True)
    if os.path.isfile(kheaders):
        return HeaderTree(None, f"{kheaders} (the kernel's own headers)", True)
    for build, source in candidate_trees(modules_dir, src_dir):
        name = os.path.basename(build.rstrip("/"))
        if source is None:
            return HeaderTree(build, f"{build} (headers of {name}, not of {release})", False)
        merged = merged_tree(build, source, cache_dir)
        return HeaderTree(merged, f"{merged} (merged {name} headers, not of {release})", False)
    return None


def apply_to_environment(tree: HeaderTree) -> None:
    """Point bcc at ``tree`` (it reads ``BCC_KERNEL_SOURCE`` when a program is compiled)."""
    if tree.kernel_source:
        os.environ["BCC_KERNEL_SOURCE"] = tree.kernel_source


TRACEFS_DIRS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")


def tracefs_dir() -> str | None:
    """Where tracepoint formats can be read, or None."""
    for d in TRACEFS_DIRS:
        if os.path.isdir(os.path.join(d, "events", "sched")):
            return d
    return None


def _mount(fstype: str, target: str) -> None:
    if os.path.ismount(target) or not os.path.isdir(target):
        return
    subprocess.run(["mount", "-t", fstype, "nodev", target], capture_output=True, timeout=10, check=False)


def ensure_tracefs() -> str | None:
    """Mount debugfs and tracefs when they are not (root only; bcc reads tracepoint formats there).

    Returns the tracefs directory, or None when there is none and it could not be mounted.
    """
    if tracefs_dir() is None and os.geteuid() == 0:
        _mount("debugfs", "/sys/kernel/debug")
        _mount("tracefs", "/sys/kernel/tracing")
    elif os.geteuid() == 0 and not os.path.isdir("/sys/kernel/debug/tracing/events"):
        # bcc's libbcc looks at the debugfs path first; offering both keeps older bcc happy.
        _mount("debugfs", "/sys/kernel/debug")
    return tracefs_dir()
