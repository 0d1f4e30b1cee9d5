"""ctop's own metric families: what only ctop measures (eBPF), container info, and the exporter's own health."""

from __future__ import annotations

import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import ctop
from ctop.model import fields
from ctop.model.culprits import workload_namer
from ctop.model.ebpf import RUNQ_BUCKET_UPPER_SECONDS, RUNQ_POWER_OF_TWO_ENDS, le_text
from ctop.model.frame import Frame

from .cadvisor import Labeled
from .families import Family, escape_label_value
from .labels import clean

NS_PER_S = 1e9
CULPRITS_EXPORTED = 5  # culprits per cgroup in ctop_preemptions_by_culprit_total: the series stay bounded
# Gauges of the run-queue quantiles of the latest collection interval: (metric, field, what it is)
RECENT_RUNQ_QUANTILES = (
    ("ctop_runqueue_latency_p50_seconds", fields.RUNQ_LATENCY_P50_SECONDS, "Median"),
    ("ctop_runqueue_latency_p99_seconds", fields.RUNQ_LATENCY_P99_SECONDS, "99th percentile"),
)
NAN = float("nan")


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


def runq_buckets(counts: Sequence[int]) -> list[tuple[str, int]]:
    """Cumulative Prometheus buckets (``le`` in seconds) from ctop's run-queue histogram, at powers of two only.

    ctop keeps several buckets per power of two; the exposition adds them up to the buckets that end on a power of
    two (1.024 µs ... 68.7 s), so the series and dashboards stay what they were. The last slot also takes every
    longer wait, so it has no finite bound and only feeds ``+Inf``. Every cgroup gets the same fixed set of bounds.
    """
    out: list[tuple[str, int]] = []
    total = start = 0
    for end in RUNQ_POWER_OF_TWO_ENDS:
        total += sum(int(c) for c in counts[start:end + 1])
        start = end + 1
        out.append((le_text(RUNQ_BUCKET_UPPER_SECONDS[end]), total))
    total += sum(int(c) for c in counts[start:])
    out.append((le_text(float("inf")), total))
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


def ebpf_families(rows: list[Labeled], frame: Frame | None = None) -> list[Family]:
    """Run-queue latency, context switches, preemptions (and their culprits, named with the identities of
    ``frame``), process churn and OOM kills per cgroup (eBPF)."""
    runq = Family("ctop_runqueue_latency_seconds", "histogram",
                  "Time tasks of the cgroup waited on a run queue before running (eBPF).")
    recent = [(Family(metric, "gauge", f"{what} of the cgroup's run-queue waits since the exporter's previous "
                   "collection (ctop_collection_interval_seconds), from ctop's own histogram of 4 buckets per "
                   "power of two; NaN when it had none (eBPF)."), quantile_field)
              for metric, quantile_field, what in RECENT_RUNQ_QUANTILES]
    switches = Family("ctop_context_switches_total", "counter",
                      "Context switches of the cgroup's tasks by kind (voluntary, involuntary).")
    preempt = Family("ctop_preemptions_total", "counter",
                     "Involuntary switches of the cgroup's tasks in favour of another cgroup's or the host's task.")
    culprits = Family("ctop_preemptions_by_culprit_total", "counter",
                      f"Involuntary switches of the cgroup's tasks by the workload that ran instead (host: "
                      f"processes outside containers), for its {CULPRITS_EXPORTED} main culprits.")
    identities = {path: row.identity for path, row in frame.rows.items()} if frame is not None else {}
    name_of = workload_namer(identities or {row.path: row.identity for _, row in rows})
    forks = Family("ctop_forks_total", "counter", "Processes and threads created in the cgroup.")
    execs = Family("ctop_execs_total", "counter", "Programs executed in the cgroup.")
    exits = Family("ctop_exits_total", "counter", "Tasks of the cgroup that exited.")
    ooms = Family("ctop_oom_kills_total", "counter", "Tasks of the cgroup killed by the OOM killer (eBPF).")
    for labels, row in rows:
        ev = row.ebpf
        if ev is None:
            continue
        buckets = runq_buckets(ev.runq_buckets)
        for le, cumulative in buckets:
            runq.add(f'{labels},le="{le}"', cumulative, "_bucket")
        runq.add(labels, ev.runq_sum_seconds, "_sum")
        runq.add(labels, buckets[-1][1], "_count")
        for family, quantile_field in recent:
            value = quantile_field.get(row)
            family.add(labels, value if isinstance(value, float) else NAN)  # None: no wait in the interval
        switches.add(f'{labels},kind="voluntary"', ev.nvcsw)
        switches.add(f'{labels},kind="involuntary"', ev.nivcsw)
        preempt.add(f'{labels},by="other_cgroup"', ev.preempted_by_others)
        preempt.add(f'{labels},by="host"', ev.preempted_by_host)
        for name, count in culprit_totals(ev.preempted_by, name_of)[:CULPRITS_EXPORTED]:
            culprits.add(f"{labels},{_label('culprit', name)}", count)
        forks.add(labels, ev.forks)
        execs.add(labels, ev.execs)
        exits.add(labels, ev.exits)
        ooms.add(labels, ev.oom_kills)
    return [runq, *(family for family, _ in recent), switches, preempt, culprits, forks, execs, exits, ooms]


def culprit_totals(by_path: Sequence[tuple[str, int]], name_of: Callable[[str], str]) -> list[tuple[str, int]]:
    """Cumulative preemptions by culprit name (paths with one name add up), largest first."""
    totals: dict[str, int] = {}
    for path, count in by_path:
        name = name_of(path)
        totals[name] = totals.get(name, 0) + count
    return sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))


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
    if frame is not None and frame.interval_s is not None:
        out.append(_single("ctop_collection_interval_seconds", "gauge",
                           "Time between the latest collection and the one before it: the window of the recent "
                           "figures (ctop_runqueue_latency_p50_seconds, _p99_).", frame.interval_s))
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
