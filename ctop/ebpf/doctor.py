"""eBPF readiness checks for `ctop doctor`: root, tracefs, headers, BTF, bcc, a real compile, cost per event."""

from __future__ import annotations

import os
import time

from ..model.notices import NOT_ROOT
from ..sources.cgroupfs_layout import CgroupLayout, detect_layout
from . import btf, headers, progstats
from .bcc_types import Program
from .health import RunStats
from .loader import SWITCH_PROGRAMS, Loaded, LoadError

Check = tuple[str, str, str]
SWITCHES_PER_S = 50_000


def _cost_check(bpf: Program) -> Check:
    """Run a short pipe ping-pong with kernel BPF statistics held on and report ns per context switch."""
    stats = RunStats()
    if not stats.open():
        return ("warn", "eBPF cost", "The kernel would not switch BPF run-time statistics on, so the cost per event "
                "cannot be measured.")
    try:
        fds = {name.decode(): fn.fd for name, fn in bpf.funcs.items()}
        before = {n: progstats.prog_stats(fd) for n, fd in fds.items()}
        progstats.pipe_pingpong(20_000)
        after = {n: progstats.prog_stats(fd) for n, fd in fds.items()}
    finally:
        stats.close()
    switch = next((n.decode() for n in SWITCH_PROGRAMS if n.decode() in fds), SWITCH_PROGRAMS[-1].decode())
    b, a = before.get(switch), after.get(switch)
    if not a or not b or a.run_cnt <= b.run_cnt:
        return ("warn", "eBPF cost", "No context switch was counted while measuring.")
    switches = a.run_cnt - b.run_cnt
    total_ns = 0
    for name in (switch, "tracepoint__sched__sched_wakeup",
                 "tracepoint__sched__sched_wakeup_new"):
        pb, pa = before.get(name), after.get(name)
        if pb and pa:
            total_ns += pa.run_time_ns - pb.run_time_ns
    per_switch = total_ns / switches
    share = per_switch * SWITCHES_PER_S / 1e9 * 100
    return ("ok", "eBPF cost", f"Scheduler programs cost {per_switch:.0f} ns per context switch "
            f"({share:.2f} % of one CPU at {SWITCHES_PER_S // 1000}k switches/s).")


def _read_check(loaded: Loaded) -> Check:
    """One read of every map through the fds the compiler process handed over, as ctop reads them."""
    from .maps import MapReader

    try:
        reading = MapReader(loaded).read()
    except Exception as e:  # LoadError carries its sentence; a failed bpf() call is summed up
        return ("fail", "map reading", str(e) if isinstance(e, LoadError) else
                f"Reading the BPF maps through the handed-over fds failed ({e.__class__.__name__}: {str(e)[:120]}).")
    return ("ok", "map reading", f"ctop reads the maps through the fds the compiler handed over "
            f"({len(reading.by_cgroup)} cgroups counted so far, {reading.map_fill['threads'].used} threads tracked).")


def doctor_checks(layout: CgroupLayout | None = None, *, bcc_module: str = "bcc",
                  measure_cost: bool = True) -> list[Check]:
    """(status ok|warn|fail, check name, one sentence) for every eBPF prerequisite, then a real load."""
    checks: list[Check] = []
    if os.geteuid() != 0:
        checks.append(("fail", "root", NOT_ROOT.sentence))
        return checks
    checks.append(("ok", "root", "Running as root."))
    tracefs = headers.ensure_tracefs()
    if tracefs is None:
        checks.append(("fail", "tracefs", "tracefs is not mounted: mount -t tracefs nodev /sys/kernel/tracing."))
        return checks
    checks.append(("ok", "tracefs", f"Tracepoint formats are readable under {tracefs}."))
    try:
        tree = headers.find_headers()
    except OSError as e:
        checks.append(("fail", "kernel headers",
                       f"Could not prepare a header tree under {headers.DEFAULT_CACHE_DIR}: {e.strerror}."))
        return checks
    if tree is None:
        checks.append(("fail", "kernel headers", "No kernel headers found: install linux-headers for your kernel."))
        return checks
    headers.apply_to_environment(tree)
    checks.append(("ok" if tree.matches_kernel else "warn", "kernel headers",
                   f"Using {tree.description}" + ("." if tree.matches_kernel else
                   "; safe because ctop's programs read only tracepoint arguments and BTF offsets.")))
    offsets = btf.task_offsets()
    if "RUN_DELAY_OFFSET" in offsets:
        checks.append(("ok", "BTF", "Run-queue latency comes from task_struct.sched_info (offsets read from "
                       f"{btf.VMLINUX_BTF})."))
    else:
        checks.append(("warn", "BTF", f"{btf.VMLINUX_BTF} gives no task_struct offsets: run-queue latency uses "
                       "wake-up timestamps, which cost more per event."))
    try:
        import importlib

        bcc = importlib.import_module(bcc_module)
    except Exception:
        checks.append(("fail", "bcc", "The bcc Python module cannot be imported: install python3-bpfcc."))
        return checks
    checks.append(("ok", "bcc", f"bcc is importable from {os.path.dirname(bcc.__file__ or '?')}."))
    from . import loader

    t0 = time.monotonic()
    try:
        loaded = loader.load(layout or detect_layout())
    except Exception as e:
        checks.append(("fail", "compile and attach", str(e)))
        return checks
    try:
        elapsed = time.monotonic() - t0
        checks.append(("ok", "compile and attach", f"Compiled and attached {len(loaded.bpf.funcs)} programs in a "
                       f"child process that handed them over in {elapsed:.2f} s (tracking hierarchy "
                       f"{loaded.tracking.hierarchy_id} at {loaded.tracking.root})."))
        checks.append(_read_check(loaded))
        if measure_cost:
            checks.append(_cost_check(loaded.bpf))
    finally:
        loaded.bpf.cleanup()
    return checks
