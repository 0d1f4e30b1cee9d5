"""ctop's own eBPF health: kernel run-time statistics kept on while needed, cost per event by program, map fill."""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..model.ebpf import EbpfReading
from . import progstats
from .progstats import ProgStats


class RunStats:
    """Keeps the kernel's BPF run-time statistics on between ``open()`` and ``close()``.

    Prefers a BPF_ENABLE_STATS hold, which the kernel drops by itself if ctop is killed and which leaves
    kernel.bpf_stats_enabled untouched. On kernels without it, writes kernel.bpf_stats_enabled=1 when it was 0
    and writes 0 back on close. ``method`` says which: "fd", "sysctl", "already on", or "" (off).
    """

    def __init__(self) -> None:
        self._fd: int | None = None
        self._restore_sysctl = False
        self.method = ""

    def open(self) -> bool:
        """Switch the statistics on; False when the kernel refuses both ways. Never raises."""
        if self.method:
            return True
        fd = progstats.enable_stats_fd()
        if fd is not None:
            self._fd, self.method = fd, "fd"
            return True
        was_on = progstats.stats_enabled()
        if was_on:
            self.method = "already on"
        elif was_on is False and progstats.set_stats_enabled(True):
            self._restore_sysctl, self.method = True, "sysctl"
        return bool(self.method)

    def close(self) -> None:
        """Give the statistics back as they were; safe to call more than once."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
        if self._restore_sysctl:
            self._restore_sysctl = False
            progstats.set_stats_enabled(False)
        self.method = ""


def program_label(func_name: str) -> str:
    """bcc's function name as the event it runs on: ``tracepoint__sched__sched_switch`` -> ``sched:sched_switch``
    (and ``raw_tracepoint__sched_switch`` or ``tp_btf__sched_switch``, ctop's only raw tracepoint, ->
    ``sched:sched_switch`` too)."""
    prefix = "tracepoint__"
    if func_name.startswith(prefix) and "__" in func_name[len(prefix):]:
        category, _, event = func_name[len(prefix):].partition("__")
        return f"{category}:{event}"
    for raw in ("raw_tracepoint__", "tp_btf__"):
        if func_name.startswith(raw + "sched_"):
            return "sched:" + func_name[len(raw):]
    return func_name


def ns_per_event(stats: Mapping[str, ProgStats | None]) -> dict[str, float]:
    """Average run time of one invocation, by program label, over the programs that ran since they were loaded.

    A program that never ran while statistics were on (run_cnt 0) has no average and is left out.
    """
    out: dict[str, float] = {}
    for name, st in stats.items():
        if st is not None and st.run_cnt > 0:
            out[program_label(name)] = st.run_time_ns / st.run_cnt
    return out


def fill_ratios(reading: EbpfReading | None) -> dict[str, float]:
    """Entries used / maximum entries, by map, from one reading (clamped to [0, 1]; empty without a reading)."""
    if reading is None:
        return {}
    return {name: min(1.0, max(0.0, fill.used / fill.capacity))
            for name, fill in reading.map_fill.items() if fill.capacity > 0}
