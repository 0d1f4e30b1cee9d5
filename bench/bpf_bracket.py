"""Full cost per context switch of sched_switch programs, trace record and dispatch included, with BPF stats off.

Two raw-tracepoint programs bracket what runs on sched_switch: one attached first stores bpf_ktime_get_ns() per CPU,
one attached last adds the time since then to a per-CPU sum. Tracepoint probes run in the order they were
registered, so a program set attached between them is timed with everything the kernel does for it: the trace
record a classic tracepoint fills before its program runs (which BPF run-time statistics leave out), the dispatch,
and the program. Each set is attached alone, in turns, while a pipe ping-pong pinned to one CPU runs; the brackets
alone are measured right after each set, so that a change of the host's load between sets cancels out."""

from __future__ import annotations

import ctypes
import os
import statistics
from collections.abc import Callable
from typing import Any

from ctop.ebpf import maps, progstats

BRACKET = b"""
BPF_PERCPU_ARRAY(start, u64, 1);
BPF_PERCPU_ARRAY(spent, u64, 2);
int bracket_open(struct bpf_raw_tracepoint_args *ctx)
{
    u32 k = 0;
    u64 *t = start.lookup(&k);
    if (t)
        *t = bpf_ktime_get_ns();
    return 0;
}
int bracket_close(struct bpf_raw_tracepoint_args *ctx)
{
    u64 now = bpf_ktime_get_ns();
    u32 k = 0, n = 1;
    u64 *t = start.lookup(&k);
    if (!t || !*t)
        return 0;
    u64 *sum = spent.lookup(&k), *count = spent.lookup(&n);
    if (sum && count) {
        *sum += now - *t;
        *count += 1;
    }
    *t = 0;
    return 0;
}
"""
EMPTY_CLASSIC = b"TRACEPOINT_PROBE(sched, sched_switch) { return 0; }"
EMPTY_RAW = b"RAW_TRACEPOINT_PROBE(sched_switch) { return 0; }"


def measure(loaders: dict[str, Callable[[], Any]], rounds: int = 5, repeat: int = 5,
            round_trips: int = 20_000) -> dict[str, Any]:
    """ns added between the brackets per switch by each set (label -> function that loads and attaches it,
    returning an object with ``cleanup()`` or a ctop Loaded), each against the brackets alone measured right after
    it (medians over ``rounds``); and ratios to the empty programs."""
    import bcc

    was_on = progstats.stats_enabled()
    progstats.set_stats_enabled(False)  # statistics add two clock reads to every program run
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {max(affinity)})  # both ping-pong sides on one CPU: every switch is between them
    bracket = bcc.BPF(text=BRACKET)
    opening = bracket.load_func(b"bracket_open", bcc.BPF.RAW_TRACEPOINT)
    closing = bracket.load_func(b"bracket_close", bcc.BPF.RAW_TRACEPOINT)
    lib = bcc.libbcc.lib
    open_fd = lib.bpf_attach_raw_tracepoint(opening.fd, b"sched_switch")
    spent = bracket[b"spent"]
    labels = ["empty_classic", "empty_raw", *loaders]
    sets: dict[str, Callable[[], Any]] = {
        "empty_classic": lambda: bcc.BPF(text=EMPTY_CLASSIC), "empty_raw": lambda: bcc.BPF(text=EMPTY_RAW), **loaders}
    added: dict[str, list[float]] = {label: [] for label in labels}
    floors: list[float] = []

    def bracketed_ns() -> float:
        """The least ns between the brackets per switch of ``repeat`` ping-pongs (other work on the CPU only adds)."""
        values = []
        for _ in range(repeat):
            sum0, n0 = _totals(spent)
            progstats.pipe_pingpong(round_trips)
            sum1, n1 = _totals(spent)
            values.append((sum1 - sum0) / max(n1 - n0, 1))
        return min(values)

    try:
        if open_fd < 0:
            raise RuntimeError("the opening bracket could not be attached to sched_switch")
        for turn in range(rounds):
            for label in labels if turn % 2 == 0 else labels[::-1]:
                attached = sets[label]()
                bpf = getattr(attached, "bpf", attached)
                close_fd = -1
                try:
                    if hasattr(attached, "bpf"):
                        maps.MapReader(attached).read()  # as ctop runs: counted cgroups have their index
                    close_fd = lib.bpf_attach_raw_tracepoint(closing.fd, b"sched_switch")
                    if close_fd < 0:
                        raise RuntimeError("the closing bracket could not be attached to sched_switch")
                    progstats.pipe_pingpong(2_000)
                    with_set = bracketed_ns()
                    bpf.cleanup()
                    bpf = None
                    floor = bracketed_ns()  # right after, with nothing between the brackets: the load drifts
                    floors.append(floor)
                    added[label].append(with_set - floor)
                finally:
                    if close_fd >= 0:
                        os.close(close_fd)
                    if bpf is not None:
                        bpf.cleanup()
    finally:
        if open_fd >= 0:
            os.close(open_fd)
        bracket.cleanup()
        os.sched_setaffinity(0, affinity)
        if was_on:
            progstats.set_stats_enabled(True)
    medians = {label: round(statistics.median(values), 1) for label, values in added.items()}
    result: dict[str, Any] = {
        "bracket_ns_with_nothing_attached": round(statistics.median(floors), 1),
        "added_ns_per_switch": medians,
        "added_ns_runs": {label: [round(v, 1) for v in values] for label, values in added.items()},
        "rounds": rounds, "repeats_per_measure": repeat, "round_trips": round_trips,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    for base in ("empty_classic", "empty_raw"):
        if medians[base] > 0:
            result[f"ratio_to_{base}"] = {label: round(medians[label] / medians[base], 2) for label in loaders}
    return result


def _totals(table: Any) -> tuple[int, int]:
    """(ns, switches) summed over CPUs."""
    return sum(table[ctypes.c_int(0)]), sum(table[ctypes.c_int(1)])
