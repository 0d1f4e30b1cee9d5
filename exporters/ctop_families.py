"""ctop's own metric families: what only ctop measures (eBPF), container info, and the exporter's own health."""

from __future__ import annotations

import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import ctop
from ctop.model.frame import Frame

from .cadvisor import Labeled
from .families import Family, escape_label_value, format_value
from .labels import clean

NS_PER_S = 1e9


@dataclass(frozen=True)
class Health:
    """How the exporter itself is doing, measured around each collection."""

    collection_duration_s: float | None = None
    collections_total: int = 0
    collection_errors_total: int = 0
    last_success: bool = False
    # BPF program name -> average cost of one run in nanoseconds; map name -> entries used / max entries.
    bpf_ns_per_event: dict[str, float] = field(default_factory=dict)
    bpf_map_fill: dict[str, float] = field(default_factory=dict)


def _get(obj: Any, *names: str) -> Any:
    """The first attribute (or mapping key) of ``obj`` that exists and is not None."""
    for name in names:
        value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
        if value is not None:
            return value
    return None


def runq_buckets(counts: Sequence[int], unit_s: float) -> list[tuple[str, float]]:
    """Cumulative Prometheus buckets from a log2 histogram: slot i counts latencies in [2^i, 2^(i+1)) units.

    The upper bound of slot i is 2^(i+1) units (exclusive, so ``le`` is a slight over-approximation, as in
    every log2 histogram); the last bucket is +Inf and equals the total count.
    """
    out: list[tuple[str, float]] = []
    total = 0
    last = len(counts)
    while last > 0 and not counts[last - 1]:
        last -= 1
    for i in range(last):
        total += int(counts[i] or 0)
        out.append((format_value(float((2 ** (i + 1)) * unit_s)), total))
    out.append(("+Inf", total))
    return out


def _label(name: str, value: object) -> str:
    return f'{name}="{escape_label_value(clean(value))}"'


def info_families(rows: list[Labeled]) -> list[Family]:
    info = Family("ctop_container_info", "gauge", "Who owns each exported cgroup: runtime, QoS class and kind.")
    for labels, row in rows:
        ident = row.identity
        extra = ",".join((_label("runtime", ident.runtime), _label("qos_class", ident.qos_class),
                          _label("kind", ident.kind)))
        info.add(f"{labels},{extra}", 1)
    return [info]


def ebpf_families(rows: list[Labeled]) -> list[Family]:
    """Run-queue latency, context switches, preemptions, process churn and OOM kills per cgroup (eBPF)."""
    runq = Family("ctop_runqueue_latency_seconds", "histogram",
                  "Time tasks of the cgroup waited on a run queue before running (eBPF).")
    switches = Family("ctop_context_switches_total", "counter",
                      "Context switches of the cgroup's tasks by kind (voluntary, involuntary).")
    preempt = Family("ctop_preemptions_total", "counter",
                     "Times a task of the cgroup was switched out in favour of another cgroup's task.")
    forks = Family("ctop_forks_total", "counter", "Processes and threads created in the cgroup.")
    execs = Family("ctop_execs_total", "counter", "Programs executed in the cgroup.")
    exits = Family("ctop_exits_total", "counter", "Tasks of the cgroup that exited.")
    ooms = Family("ctop_oom_kills_total", "counter", "Tasks of the cgroup killed by the OOM killer (eBPF).")
    for labels, row in rows:
        ev = row.ebpf
        if ev is None:
            continue
        counts = _get(ev, "runq_hist", "runq_latency_hist", "runq_buckets")
        if counts is not None:
            unit_s = float(_get(ev, "runq_hist_unit_ns") or 1000) / NS_PER_S
            buckets = runq_buckets(list(counts), unit_s)
            for le, cumulative in buckets:
                runq.add(f'{labels},le="{le}"', cumulative, "_bucket")
            total_ns = _get(ev, "runq_sum_ns", "runq_latency_sum_ns", "runq_total_ns") or 0
            runq.add(labels, total_ns / NS_PER_S, "_sum")
            runq.add(labels, buckets[-1][1], "_count")
        vol = _get(ev, "voluntary_switches", "ctx_voluntary", "voluntary")
        invol = _get(ev, "involuntary_switches", "ctx_involuntary", "involuntary")
        if vol is not None:
            switches.add(f'{labels},kind="voluntary"', vol)
        if invol is not None:
            switches.add(f'{labels},kind="involuntary"', invol)
        for fam, names in (
            (preempt, ("preemptions", "preempted", "preempted_total")),
            (forks, ("forks",)),
            (execs, ("execs",)),
            (exits, ("exits",)),
            (ooms, ("oom_kills",)),
        ):
            value = _get(ev, *names)
            if value is not None:
                fam.add(labels, value)
    return [runq, switches, preempt, forks, execs, exits, ooms]


def _single(name: str, kind: str, help_text: str, value: float) -> Family:
    fam = Family(name, kind, help_text)
    fam.add("", value)
    return fam


def health_families(frame: Frame | None, health: Health, exported: int) -> list[Family]:
    """ctop's own health: build, eBPF state and cost, collection timing, exported cgroups."""
    build = Family("ctop_build_info", "gauge", "ctop build information.")
    build.add(",".join((_label("version", ctop.__version__), _label("python_version", platform.python_version()))),
              1)
    state = frame.ebpf_state if frame is not None else "off"
    out = [build, _single("ctop_ebpf_enabled", "gauge", "1 when eBPF counters are collected, else 0.",
                          1 if state == "ready" else 0)]
    cost = Family("ctop_bpf_program_run_seconds_per_event", "gauge",
                  "Average run time of one invocation of a BPF program.")
    for prog, ns in sorted(health.bpf_ns_per_event.items()):
        cost.add(_label("program", prog), ns / NS_PER_S)
    fill = Family("ctop_bpf_map_fill_ratio", "gauge", "Entries used in a BPF map as a share of its maximum.")
    for name, ratio in sorted(health.bpf_map_fill.items()):
        fill.add(_label("map", name), ratio)
    out.extend((cost, fill))
    if health.collection_duration_s is not None:
        out.append(_single("ctop_collection_duration_seconds", "gauge",
                           "Time the latest collection of cgroup data took.", health.collection_duration_s))
    out.append(_single("ctop_collections_total", "counter", "Collections of cgroup data since start.",
                       health.collections_total))
    out.append(_single("ctop_collection_errors_total", "counter", "Collections that failed since start.",
                       health.collection_errors_total))
    out.append(_single("ctop_collection_success", "gauge", "1 when the latest collection succeeded, else 0.",
                       1 if health.last_success else 0))
    out.append(_single("ctop_exported_cgroups", "gauge", "Cgroups exported by this scrape (after filters).",
                       exported))
    return out
