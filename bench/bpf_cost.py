"""Cost per context switch of ctop's scheduler programs vs an empty sched_switch program, from kernel BPF stats."""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import signal
import statistics
import time
from collections.abc import Callable, Iterator

import bpf_bracket

from ctop.ebpf import headers, loader, maps, progstats
from ctop.ebpf.threads import ARRAY_LIMIT
from ctop.sources.cgroupfs_layout import CgroupLayout, detect_layout

EMPTY_PROGRAM = "TRACEPOINT_PROBE(sched, sched_switch) { return 0; }"
EMPTY_RAW_PROGRAM = "RAW_TRACEPOINT_PROBE(sched_switch) { return 0; }"
SCHED_PROGRAMS = (b"tracepoint__sched__sched_switch", b"tracepoint__sched__sched_wakeup",
                  b"tracepoint__sched__sched_wakeup_new", b"raw_tracepoint__sched_switch", b"tp_btf__sched_switch")
EMPTY_RAW = b"raw_tracepoint__sched_switch"
SWITCHES_PER_S = 50_000
WARM_UP_ROUND_TRIPS = 2_000
TARGET_RATIO = 2.0  # issue 15: at most twice an empty program, also on a loaded host


def _snapshot(fds: dict[str, dict[bytes, int]]) -> dict[str, dict[bytes, progstats.ProgStats]]:
    result: dict[str, dict[bytes, progstats.ProgStats]] = {}
    for label, progs in fds.items():
        result[label] = {}
        for name, fd in progs.items():
            stats = progstats.prog_stats(fd)
            if stats is not None:
                result[label][name] = stats
    return result


@contextlib.contextmanager
def busy_loops(enabled: bool, cgroup_root: str | None) -> Iterator[list[int]]:
    """One busy loop pinned to each online CPU while the block runs (background load); yields their pids.

    With ``cgroup_root`` (a cgroup2 mount) the loops run in a cgroup of their own, like a noisy neighbour: the
    ping-pong's wake-ups then preempt another cgroup's tasks, which is the culprit-counting path."""
    pids: list[int] = []
    prefix = os.environ.get("CTOP_BENCH_CGROUP_PREFIX", "ctop-bench-")
    group = os.path.join(cgroup_root, f"{prefix}{os.getpid()}") if enabled and cgroup_root else None
    if group:
        os.mkdir(group)
    try:
        for cpu in sorted(os.sched_getaffinity(0)) if enabled else ():
            pid = os.fork()
            if pid == 0:  # child: spin until killed
                try:
                    os.sched_setaffinity(0, {cpu})
                    while True:
                        pass
                finally:
                    os._exit(0)
            pids.append(pid)
            if group:
                with open(os.path.join(group, "cgroup.procs"), "w") as f:
                    f.write(str(pid))
        if pids:
            time.sleep(0.2)
        yield pids
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        if group:
            os.rmdir(group)


def _load_against(layout: CgroupLayout, directory: str) -> loader.Loaded:
    """The program files of ``directory`` (an earlier checkout's bpf/), compiled with today's flags; not seeded."""
    saved = loader.program_dir
    loader.program_dir = lambda: directory  # type: ignore[assignment]
    seed, loader.seed_threads = loader.seed_threads, lambda loaded, proc="/proc": 0  # type: ignore[assignment]
    try:
        return loader.load(layout)
    finally:
        loader.program_dir = saved  # type: ignore[assignment]
        loader.seed_threads = seed  # type: ignore[assignment]


def run(round_trips: int = 100_000, with_timestamp_mode: bool = True, background_load: bool | None = None,
        repeat: int = 5, against: str | None = None, bracket: bool = True) -> dict:
    """Load empty programs (a classic and a raw tracepoint) and ctop's programs (sched_info mode as loaded by
    default, the same from the classic tracepoint, and timestamp mode), run a pipe ping-pong with
    kernel.bpf_stats_enabled=1, and return ns per context switch of each, ratios to both empty programs and CPU share.

    BPF statistics time the program only: the trace record a classic tracepoint fills before its program runs
    (which a raw tracepoint skips) is in neither figure.

    ``background_load``: True measures with a busy loop on every CPU (switches then preempt other work), False
    without, None both (the quiet figures at the top level, the loaded ones under "busy"). ``repeat`` measures that
    many ping-pongs with the same programs and reports the median one. ``against`` (a directory holding an
    earlier bpf/, default $CTOP_BENCH_BPF_AGAINST) loads those programs too. Each set is attached and measured on
    its own, beside the two empty programs.
    ``bracket``: also the full cost per switch, trace record included, with statistics off (bpf_bracket.py)."""
    if os.geteuid() != 0:
        raise SystemExit("bench/bpf_cost.py needs root (it loads BPF programs).")
    if headers.ensure_tracefs() is None:
        raise SystemExit("tracefs is not mounted and could not be mounted.")
    tree = headers.find_headers()
    if tree is None:
        raise SystemExit("No kernel headers found for bcc.")
    headers.apply_to_environment(tree)
    import bcc

    against = against or os.environ.get("CTOP_BENCH_BPF_AGAINST") or None
    layout = detect_layout()
    _, threads, _, cflags = loader.plan(layout)
    load_classic = functools.partial(loader.load, layout, loader.LoadOptions(raw_tracepoint=False))
    loaders: dict[str, Callable[[], loader.Loaded]] = {"ctop": functools.partial(loader.load, layout)}
    if loader.BTF_SWITCH_FLAG in cflags:
        # what a kernel refusing the BTF-typed tracepoint runs: the raw one, one helper call per switch
        loaders["ctop_rawtp"] = functools.partial(loader.load, layout, loader.LoadOptions(btf_tracepoint=False))
    if loader.RAW_SWITCH_FLAG in cflags:
        loaders["ctop_classic"] = load_classic
    if not threads.tagged:
        # Hosts whose pid_max is above threads.ARRAY_LIMIT (systemd sets 4194304) have a tagged thread array with
        # a hash beside it: the same programs with such an array, half as large as this host's.
        loaders["ctop_tagged"] = functools.partial(loader.load, layout,
                                                   loader.LoadOptions(threads_max=threads.max_entries // 2))
    if with_timestamp_mode:
        loaders["ctop_timestamps"] = functools.partial(loader.load, layout, loader.LoadOptions(use_btf=False))
    if against:
        loaders["against"] = lambda: _load_against(layout, against)
    empty = bcc.BPF(text=EMPTY_PROGRAM.encode())
    empty_raw = bcc.BPF(text=EMPTY_RAW_PROGRAM.encode())
    empties: dict[str, dict[bytes, int]] = {"empty": {SCHED_PROGRAMS[0]: empty.funcs[SCHED_PROGRAMS[0]].fd},
                                            "empty_raw": {EMPTY_RAW: empty_raw.funcs[EMPTY_RAW].fd}}
    was_on = progstats.stats_enabled()
    progstats.set_stats_enabled(True)
    phases = [False, True] if background_load is None else [background_load]
    per_set: dict[str, list[dict]] = {}
    switch_probe = "tracepoint"
    try:
        # One set attached at a time (beside the empty programs): a set attached after another would find the
        # cache lines both touch (the task's own, this CPU's) already loaded and look cheaper than it is.
        for label, load in loaders.items():
            loaded = load()
            try:
                if label == "ctop":
                    switch_probe = loaded.switch_probe
                fds = {**empties, label: {n: loaded.bpf.funcs[n].fd for n in SCHED_PROGRAMS if n in loaded.bpf.funcs}}
                per_set[label] = [_measure({label: loaded}, fds, busy, layout.unified, round_trips, repeat, against)
                                  for busy in phases]
            finally:
                loaded.bpf.cleanup()
    finally:
        if not was_on:
            progstats.set_stats_enabled(False)
        empty.cleanup()
        empty_raw.cleanup()
    results = per_set["ctop"]
    for label, phase_results in per_set.items():
        if label != "ctop":
            for base, other in zip(results, phase_results):
                base[label] = other[label]
                base.update({k: v for k, v in other.items() if k.startswith(label + "_")})
    result = results[0]
    result["switch_probe"] = switch_probe
    if bracket:
        bracketed = {"ctop": loaders["ctop"], "ctop_classic": load_classic,
                     **({"ctop_rawtp": loaders["ctop_rawtp"]} if "ctop_rawtp" in loaders else {}),
                     **({"against": loaders["against"]} if "against" in loaders else {})}
        result["full_cost"] = bpf_bracket.measure(bracketed)
    if against:
        result["against_command"] = f"CTOP_BENCH_BPF_AGAINST={against} .venv/bin/python bench/run.py bpf_cost"
        result["how"] = result["against_command"]
    if len(results) > 1:
        result["busy"] = results[1]
        result["verdict"] = verdict(result, results[1], repeat)
        full = result.get("full_cost", {})
        if "ratio_to_empty_classic" in full:
            added = full["added_ns_per_switch"]
            result["verdict"] += (
                " BPF statistics time the program alone: not the trace record a classic tracepoint fills before"
                " its program runs, nor the dispatch."
                f" Full cost, trace record and dispatch included (bracketed, statistics off, load average "
                f"{full['load_average_1m']}): ctop {added['ctop']} ns per switch, "
                f"{full['ratio_to_empty_classic']['ctop']}x an empty classic tracepoint program "
                f"({added['empty_classic']} ns) and {full.get('ratio_to_empty_raw', {}).get('ctop')}x an empty raw "
                f"one ({added['empty_raw']} ns); from the classic tracepoint {added['ctop_classic']} ns"
                + (f"; from the raw tracepoint without BTF types {added['ctop_rawtp']} ns" if "ctop_rawtp" in added
                   else "")
                + (f"; the programs of {against} {added['against']} ns." if "against" in added else "."))
    return result


def verdict(quiet: dict, busy: dict, repeat: int) -> str:
    """One sentence: the medians without and with busy loops, the host's load, and the earlier programs' medians."""
    text = (f"Scheduler programs per context switch (median of {repeat}): {quiet['ctop_ratio_median']}x an empty "
            f"classic tracepoint program without busy loops (load average {quiet['load_average_1m']}), "
            f"{busy['ctop_ratio_median']}x with a busy loop on every CPU (load average {busy['load_average_1m']}); "
            f"target {TARGET_RATIO}x. Against an empty raw tracepoint program: {quiet['ctop_raw_ratio_median']}x "
            f"and {busy['ctop_raw_ratio_median']}x.")
    if "ctop_rawtp_ratio_median" in quiet and "ctop_rawtp_ratio_median" in busy:
        text += (f" The same programs from the raw tracepoint without BTF types (a kernel refusing tp_btf): "
                 f"{quiet['ctop_rawtp_ratio_median']}x and {busy['ctop_rawtp_ratio_median']}x.")
    if "ctop_classic_ratio_median" in quiet and "ctop_classic_ratio_median" in busy:
        text += (f" The same programs from the classic tracepoint (the fallback): {quiet['ctop_classic_ratio_median']}x"
                 f" and {busy['ctop_classic_ratio_median']}x.")
    if "ctop_tagged_ratio_median" in quiet and "ctop_tagged_ratio_median" in busy:
        text += (f" With a tagged thread array (hosts whose pid_max is above {ARRAY_LIMIT}): "
                 f"{quiet['ctop_tagged_ratio_median']}x and {busy['ctop_tagged_ratio_median']}x.")
    if "against_ratio_median" in quiet and "against_ratio_median" in busy:
        text += (f" The programs of {quiet['against_dir']}, measured the same way: {quiet['against_ratio_median']}x "
                 f"and {busy['against_ratio_median']}x.")
    return text


def _measure(sets: dict[str, loader.Loaded], fds: dict[str, dict[bytes, int]], busy: bool, unified: str | None,
             round_trips: int, repeat: int, against: str | None) -> dict:
    """``repeat`` measured ping-pongs (with or without busy loops): the median one, with every run's ratio."""
    runs: list[dict] = []
    with busy_loops(busy, unified) as loops:
        # As ctop runs: its reader has read the maps once after the programs counted the workload (the read
        # gives each counted cgroup its index in the `cgroups` array).
        readers = [maps.MapReader(loaded) for label, loaded in sets.items() if label != "against"]
        progstats.pipe_pingpong(WARM_UP_ROUND_TRIPS)
        for reader in readers:
            reader.read()
        for _ in range(max(repeat, 1)):
            before = _snapshot(fds)
            t0 = time.monotonic()
            progstats.pipe_pingpong(round_trips)
            elapsed = time.monotonic() - t0
            runs.append(_figures(before, _snapshot(fds), list(sets), elapsed, round_trips))
    first = next(iter(sets))
    result = dict(sorted(runs, key=lambda r: r[first]["ratio_to_empty"] or 0.0)[(len(runs) - 1) // 2])  # median
    result["repeats"] = len(runs)
    for label in sets:
        ratios = [r[label]["ratio_to_empty"] or 0.0 for r in runs]
        result[f"{label}_ratio_median"] = round(statistics.median(ratios), 2)
        result[f"{label}_ratio_runs"] = ratios
        result[f"{label}_raw_ratio_median"] = round(
            statistics.median(r[label]["ratio_to_empty_raw"] or 0.0 for r in runs), 2)
    if against and "against" in sets:
        result["against_dir"] = against
    result.update({
        "background_busy_loops": len(loops),
        "busy_loops_in_own_cgroup": bool(loops and unified),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "target_ratio": TARGET_RATIO,
    })
    return result


def _figures(before: dict[str, dict[bytes, progstats.ProgStats]], after: dict[str, dict[bytes, progstats.ProgStats]],
             labels: list[str], elapsed: float, round_trips: int) -> dict:
    """ns per context switch of each program set in one measured ping-pong, and its ratio to the empty program."""

    def delta(label: str, name: bytes) -> tuple[int, int]:
        a, b = after[label].get(name), before[label].get(name)
        if a is None or b is None:
            return 0, 0
        return a.run_time_ns - b.run_time_ns, a.run_cnt - b.run_cnt

    empty_ns, switches = delta("empty", SCHED_PROGRAMS[0])
    empty_per_switch = empty_ns / max(switches, 1)
    empty_raw_ns, raw_switches = delta("empty_raw", EMPTY_RAW)
    empty_raw_per_switch = empty_raw_ns / max(raw_switches, 1)
    result: dict = {
        "round_trips": round_trips,
        "elapsed_s": round(elapsed, 3),
        "context_switches": switches,
        "switches_per_s": round(switches / elapsed),
        "empty_ns_per_switch": round(empty_per_switch, 1),
        "empty_raw_ns_per_switch": round(empty_raw_per_switch, 1),
    }
    for label in labels:
        total_ns = 0
        per_program = {}
        for name in SCHED_PROGRAMS:
            ns, cnt = delta(label, name)
            if cnt:
                per_program[name.decode().rsplit("__", 1)[1]] = {"runs": cnt, "ns_per_run": round(ns / cnt, 1)}
            total_ns += ns
        per_switch = total_ns / max(switches, 1)
        result[label] = {
            "ns_per_switch": round(per_switch, 1),
            "ratio_to_empty": round(per_switch / empty_per_switch, 2) if empty_per_switch else None,
            "ratio_to_empty_raw": round(per_switch / empty_raw_per_switch, 2) if empty_raw_per_switch else None,
            "cpu_percent_at_50k_switches_per_s": round(per_switch * SWITCHES_PER_S / 1e9 * 100, 3),
            "programs": per_program,
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("round_trips", nargs="?", type=int, default=100_000, help="ping-pong round trips")
    parser.add_argument("--busy", action="store_true", help="only with a busy loop on every CPU as background load")
    parser.add_argument("--quiet", action="store_true", help="only without background load")
    parser.add_argument("--no-timestamps", action="store_true", help="skip the no-BTF (timestamp) program set")
    parser.add_argument("--repeat", type=int, default=5, help="measured ping-pongs; the median one is reported")
    parser.add_argument("--no-bracket", action="store_true", help="skip the full-cost (bracketed) measurement")
    parser.add_argument("--against", metavar="DIR", help="also measure the programs of an earlier bpf/ directory "
                        "(e.g. from git archive), measured the same way")
    args = parser.parse_args()
    load = True if args.busy else (False if args.quiet else None)
    print(json.dumps(run(args.round_trips, not args.no_timestamps, load, args.repeat, args.against,
                         not args.no_bracket), indent=2))


if __name__ == "__main__":
    main()
