"""Plans a load of ctop's BPF programs (options become -D flags), has a child process compile and attach them, and
seeds the thread->cgroup map through the fds it hands over."""

from __future__ import annotations

import importlib.resources
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from ..sources.cgroupfs_layout import CgroupLayout
from ..sources.readfile import read_bytes, read_int
from . import bcc_types, btf, hybrid
from .compiler import CompilerProcess, LoadError
from .fdtables import FdTable
from .threads import ThreadMap, ThreadTables, thread_map

__all__ = ["CompilerProcess", "LoadError", "LoadOptions", "Loaded", "Tracking", "load", "plan", "seed_threads"]

# Order matters: maps and helpers first (bcc rewrites map calls only in the main text, not in headers).
PROGRAM_FILES = ("maps.bpf.c", "sched.bpf.c", "proc.bpf.c", "cgroup.bpf.c")
# v1 hierarchy tracked on pure-v1 hosts, in order of preference.
V1_TRACKED = ("cpu", "cpuacct", "memory", "pids", "cpuset", "blkio")
DEFAULT_CGROUPS_MAX = 2048
TASK_BTF_KERNEL = (5, 11)  # from this kernel on, tracepoint programs may call bpf_get_current_task_btf()
DEFAULT_CULPRITS_MAX = 8192  # (victim, culprit) cgroup pairs; an LRU map: the least recently used pairs go first
MMAPABLE_KERNEL = (5, 5)  # from this kernel on, an array map may be mmapable (and its values page-aligned)
MMAPABLE_FLAG = "-DTHREADS_MMAPABLE"
RAW_SWITCH_KERNEL = (5, 18)  # from this kernel on, the raw sched_switch tracepoint passes prev_state (args[3])
RAW_SWITCH_FLAG = "-DRAW_SCHED_SWITCH"
# sched_switch as a BTF-typed raw tracepoint (tp_btf, loaded by tracing.py): with the raw one's kernel and BTF, and
# the task_struct.pid offset. A kernel that refuses it gets the raw one.
BTF_SWITCH_FLAG = "-DBTF_SCHED_SWITCH"
# Names of the sched_switch program: BTF-typed raw tracepoint, raw tracepoint, classic tracepoint.
SWITCH_PROGRAMS = (b"tp_btf__sched_switch", b"raw_tracepoint__sched_switch", b"tracepoint__sched__sched_switch")


@dataclass(frozen=True)
class Tracking:
    """The cgroup hierarchy whose ids the programs use: cgroup2 where there is one, else one v1 hierarchy."""

    hierarchy_id: int
    root: str
    root_id: int
    v2: bool
    v1: hybrid.V1Tracking | None = None  # hybrid hosts: the v1 cpu hierarchy, for tasks in the cgroup2 root


@dataclass(frozen=True)
class LoadOptions:
    """Tunables; each becomes a compiler flag. ``threads_max``: thread array slots (rounded up to a power of two;
    None: pid_max, at most threads.ARRAY_LIMIT); fewer than pid_max makes the array tagged (ctop/ebpf/threads.py)."""

    threads_max: int | None = None
    cgroups_max: int = DEFAULT_CGROUPS_MAX
    use_btf: bool = True
    culprits_max: int = DEFAULT_CULPRITS_MAX
    raw_tracepoint: bool = True  # sched_switch as a raw tracepoint where the kernel and BTF allow it
    btf_tracepoint: bool = True  # that raw tracepoint BTF-typed (tp_btf), where the kernel accepts it


@dataclass
class Loaded:
    """A compiled, attached program set and what it was built for."""

    bpf: bcc_types.Program
    tracking: Tracking
    threads: ThreadMap
    cgroups_max: int
    runq_method: str
    seeded_threads: int = 0
    culprits_max: int = DEFAULT_CULPRITS_MAX
    switch_probe: str = "tracepoint"  # how sched_switch is attached: "tp_btf", "raw_tracepoint" or "tracepoint"


def _v1_hierarchy_ids() -> dict[str, int]:
    ids: dict[str, int] = {}
    data = read_bytes("/proc/cgroups") or b""
    for line in data.decode("ascii", "replace").splitlines():
        parts = line.split()
        if len(parts) >= 4 and not line.startswith("#") and parts[1].isdigit():
            ids[parts[0]] = int(parts[1])
    return ids


def choose_tracking(layout: CgroupLayout) -> Tracking:
    """cgroup2 (hierarchy 0) on v2 and hybrid hosts; the first mounted v1 controller of V1_TRACKED otherwise."""
    if layout.unified:
        return Tracking(hierarchy_id=0, root=layout.unified, root_id=os.stat(layout.unified).st_ino, v2=True,
                        v1=hybrid.v1_tracking(layout, _v1_hierarchy_ids()))
    ids = _v1_hierarchy_ids()
    for name in V1_TRACKED:
        mount = layout.controllers.get(name)
        if mount and ids.get(name):
            return Tracking(hierarchy_id=ids[name], root=mount, root_id=os.stat(mount).st_ino, v2=False)
    raise LoadError("No cgroup hierarchy could be tracked: neither cgroup2 nor a cpu/memory v1 hierarchy is mounted.")


def program_dir() -> str:
    return str(importlib.resources.files("ctop.bpf"))


def program_text() -> str:
    """The program set as one translation unit (bcc only sees TRACEPOINT_PROBEs of the main text)."""
    base = program_dir()
    parts = []
    for name in PROGRAM_FILES:
        with open(os.path.join(base, name)) as f:
            parts.append(f"#line 1 \"{name}\"\n" + f.read())
    return "\n".join(parts)


def kernel_version(release: str | None = None) -> tuple[int, int]:
    """(major, minor) of ``release`` (default: the running kernel); (0, 0) when it does not start with them."""
    match = re.match(r"(\d+)\.(\d+)", release if release is not None else os.uname().release)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def build_cflags(tracking: Tracking, options: LoadOptions, offsets: dict[str, int], threads: ThreadMap,
                 task_btf: bool = False, raw_switch: bool = False, mmapable: bool = False) -> list[str]:
    """Compiler flags for one load; every option of the programs is a -D here."""
    flags = [f"-I{program_dir()}", f"-DTRACK_HIERARCHY={tracking.hierarchy_id}",
             f"-DROOT_CGROUP_ID={tracking.root_id}", f"-DCGROUPS_MAX={options.cgroups_max}",
             f"-DCULPRITS_MAX={options.culprits_max}"]
    if tracking.v2:
        flags.append("-DCURRENT_CGROUP_V2")
    flags.extend(threads.cflags())
    if mmapable:
        flags.append(MMAPABLE_FLAG)
    flags.extend(f"-D{name}={value}" for name, value in sorted(offsets.items()))
    flags.extend(hybrid.cflags(tracking.v1))
    if task_btf and "RUN_DELAY_OFFSET" in offsets:
        flags.append("-DCURRENT_TASK_BTF")
    if raw_switch and options.raw_tracepoint and "RUN_DELAY_OFFSET" in offsets:
        flags.append(RAW_SWITCH_FLAG)
        if options.btf_tracepoint and task_btf and "PID_OFFSET" in offsets:
            flags.append(BTF_SWITCH_FLAG)
    return flags


def plan(layout: CgroupLayout, options: LoadOptions = LoadOptions()) -> tuple[Tracking, ThreadMap, dict[str, int],
                                                                               list[str]]:
    """What one load is built for: (tracking, thread map, BTF offsets, compiler flags)."""
    tracking = choose_tracking(layout)
    offsets = btf.task_offsets() if options.use_btf else {}
    pid_max = read_int("/proc/sys/kernel/pid_max") or 32768
    threads = thread_map(options.threads_max, pid_max)
    release = kernel_version()
    cflags = build_cflags(tracking, options, offsets, threads, task_btf=release >= TASK_BTF_KERNEL,
                          raw_switch=release >= RAW_SWITCH_KERNEL, mmapable=release >= MMAPABLE_KERNEL)
    return tracking, threads, offsets, cflags


def load(layout: CgroupLayout, options: LoadOptions = LoadOptions(), *,
         compiler: CompilerProcess | None = None) -> Loaded:
    """Compile, load and attach every program in a child process (see compiler.py), then seed the thread map
    through the fds it handed over. Raises LoadError. ``compiler`` (not started) lets a caller kill the child."""
    tracking, threads, offsets, cflags = plan(layout, options)
    request = {"text": program_text(), "cflags": cflags,
               # a kernel that refuses the BTF-typed tracepoint: the raw one; one that refuses the BTF-typed task
               # pointer or the raw tracepoint: read run_delay with a helper instead, from the classic tracepoint
               "optional": ["-DCURRENT_TASK_BTF", RAW_SWITCH_FLAG, BTF_SWITCH_FLAG, MMAPABLE_FLAG],
               "first_dropped": [BTF_SWITCH_FLAG], "tp_btf": [BTF_SWITCH_FLAG]}
    child = compiler if compiler is not None else CompilerProcess(request)
    child.request = request
    bpf = child.run()
    loaded = Loaded(bpf=bpf, tracking=tracking, threads=threads,
                    cgroups_max=options.cgroups_max, culprits_max=options.culprits_max,
                    runq_method="sched_info" if "RUN_DELAY_OFFSET" in offsets else "timestamps",
                    switch_probe=switch_probe(bpf.funcs))
    try:
        loaded.seeded_threads = seed_threads(loaded)
    except Exception:
        bpf.cleanup()
        raise
    return loaded


def switch_probe(funcs: Mapping[bytes, object]) -> str:
    """How the loaded sched_switch program is attached, from its name: "tp_btf", "raw_tracepoint" or "tracepoint"."""
    if SWITCH_PROGRAMS[0] in funcs:
        return "tp_btf"
    return "raw_tracepoint" if SWITCH_PROGRAMS[1] in funcs else "tracepoint"


def seed_threads(loaded: Loaded, proc: str = "/proc") -> int:
    """Put every existing thread's cgroup in the thread map (only where the programs know nothing yet).

    Runs after attaching, so threads born later are seen by sched_process_fork. A thread that ends between the
    listing and its insertion would keep its entry (its last context switch is already past): those are taken out
    again afterwards. Returns how many entries stay.
    """
    more = cast(FdTable, loaded.bpf[b"threads_more"]) if loaded.threads.tagged else None
    tables = ThreadTables(loaded.threads, cast(FdTable, loaded.bpf[b"threads"]), more)
    ino_of: dict[str, int | None] = {}
    seeded: list[tuple[str, int]] = []
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return 0
    t = loaded.tracking
    for pid in pids:
        task_dir = os.path.join(proc, pid, "task")
        try:
            tids = os.listdir(task_dir)
        except OSError:
            continue
        for tid in tids:
            if not tid.isdigit() or int(tid) >= (1 << 31):
                continue
            keys = hybrid.seed_key(os.path.join(task_dir, tid), t.hierarchy_id, t.root, t.root_id, t.v1, ino_of)
            if keys is None:
                continue
            cgroup_id, v1_id = keys

            def learnt(table: Any, key: Any, cgroup_id: int = cgroup_id, v1_id: int = v1_id) -> None:
                hybrid.complete_learnt(table, key, cgroup_id, v1_id, t.root_id)

            if tables.seed(int(tid), cgroup_id, v1_id, learnt):
                seeded.append((tid, cgroup_id))
    gone = [(tid, cgroup_id) for tid, cgroup_id in seeded if not _thread_alive(proc, tid)]
    for tid, cgroup_id in gone:
        tables.forget(int(tid), cgroup_id)
    return len(seeded) - len(gone)


def _thread_alive(proc: str, tid: str) -> bool:
    """True while thread ``tid`` exists and has not exited (a zombie has had its last context switch)."""
    data = read_bytes(f"{proc}/{tid}/stat")
    if not data or b")" not in data:
        return False
    fields = data.rsplit(b")", 1)[1].split()
    return bool(fields) and fields[0] not in (b"Z", b"X", b"x")
