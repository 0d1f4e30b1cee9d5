"""The few aggregated PromQL queries of one fleet refresh: every figure of every cgroup of every node in 9 answers.

Rates join sub-expressions with ``or`` (a balanced tree of them); ``label_replace`` tags each with a ``ctop_field``
label so that one answer carries several figures. Gauges are one selector over several metric names aggregated ``by
(__name__, ...)``, which keeps the name (cheaper for the server than tagging each). The queries are sent a few at
once, the costliest first, so a server evaluates them in parallel. Every sub-expression aggregates by the cgroup's
identity labels: the cost follows the size of the answer (one series per cgroup and figure), never the number of
containers. Rates are computed by PromQL over a window of several scrape intervals, so one instant query per group
and refresh suffices, now or at any past time. The run-queue quantiles are read from the gauges ctop exporter keeps
of them (its own finer histogram, over its latest collection interval); only for targets that do not serve them
(older exporters) from one answer of bucket rates (frames.py), not by two ``histogram_quantile``s that would each
rate every bucket. What rarely changes (limits, names, ctop's info, the machines) is in the CACHED queries, which
the source asks again only every CACHE_S seconds of evaluation time or when a new cgroup appears. Both cAdvisor's
names and ctop's own ``ctop_*`` families are read; a family a source lacks just adds no series.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..model.ebpf import RUNQ_EXPORTED_BOUNDS_SECONDS, le_text

FIELD_LABEL = "ctop_field"
# What names one cgroup of one node: the node (a scrape-config label where set, else the target's instance) and
# cAdvisor's container labels.
BY = ("node", "instance", "id", "name", "image", "container", "pod", "namespace")
KEY = ("node", "instance", "id")  # the figures carry only these: the names come once per cgroup (NAMES_FIELD)
NAMED = "working_set_bytes"  # every source has it for every cgroup: its series say which cgroups exist
NAMED_METRIC = "container_memory_working_set_bytes"
NAMES_FIELD = "names"  # the series of NAMED_METRIC grouped by every label in BY: the cgroup's names
RUNQ_BUCKETS_FIELD = "runq_buckets"  # bucket rates of ctop's run-queue histogram: the series with an ``le`` label
NAMING_QUERIES = ("gauges", "names")  # the queries whose answers say which cgroups exist (NAMED_METRIC, NAMES_FIELD)
CACHE_S = 60.0  # the CACHED queries' answers serve this long (in evaluation time) while no new cgroup appears
WINDOW_SCRAPES = 4  # rates over this many scrape intervals (rate() needs two samples; four survive a missed scrape)
MIN_WINDOW_S = 2.0

# Counters read as per-second rates: (field, metric, extra matchers).
RATES: tuple[tuple[str, str, str], ...] = (
    ("cpu_seconds_per_s", "container_cpu_usage_seconds_total", ""),
    ("cfs_periods_per_s", "container_cpu_cfs_periods_total", ""),
    ("cfs_throttled_periods_per_s", "container_cpu_cfs_throttled_periods_total", ""),
    ("cfs_throttled_seconds_per_s", "container_cpu_cfs_throttled_seconds_total", ""),
    ("io_read_bytes_per_s", "container_fs_reads_bytes_total", ""),
    ("io_write_bytes_per_s", "container_fs_writes_bytes_total", ""),
    ("io_read_ops_per_s", "container_fs_reads_total", ""),
    ("io_write_ops_per_s", "container_fs_writes_total", ""),
    ("net_rx_bytes_per_s", "container_network_receive_bytes_total", 'interface!="lo"'),
    ("net_tx_bytes_per_s", "container_network_transmit_bytes_total", 'interface!="lo"'),
    ("major_faults_per_s", "container_memory_failures_total", 'failure_type="pgmajfault",scope="container"'),
    ("psi_cpu_some", "container_pressure_cpu_waiting_seconds_total", ""),
    ("psi_memory_some", "container_pressure_memory_waiting_seconds_total", ""),
    ("psi_memory_full", "container_pressure_memory_stalled_seconds_total", ""),
    ("psi_io_some", "container_pressure_io_waiting_seconds_total", ""),
    ("psi_io_full", "container_pressure_io_stalled_seconds_total", ""),
    ("runq_wait", "ctop_runqueue_latency_seconds_sum", ""),
    ("csw_voluntary", "ctop_context_switches_total", 'kind="voluntary"'),
    ("csw_involuntary", "ctop_context_switches_total", 'kind="involuntary"'),
    ("preempt_others", "ctop_preemptions_total", 'by="other_cgroup"'),
    ("preempt_host", "ctop_preemptions_total", 'by="host"'),
    ("forks", "ctop_forks_total", ""),
    ("execs", "ctop_execs_total", ""),
    ("exits", "ctop_exits_total", ""),
)
# The tags of ctop's eBPF figures, in the order of EbpfRates' attributes (frames.py pairs them up).
EBPF_TAGS = ("runq_p50", "runq_p99", "runq_wait", "csw_voluntary", "csw_involuntary", "preempt_others",
             "preempt_host", "forks", "execs", "exits")
QUANTILES: tuple[tuple[str, float], ...] = (("runq_p50", 0.5), ("runq_p99", 0.99))
# The run-queue bucket bounds a refresh asks for. The bucket series are most of a refresh's cost to the server (about
# 16 us of its CPU each, 28 per cgroup): a scope of up to RUNQ_FINE_MAX_CGROUPS cgroups gets every bound the exporter
# writes (its quantiles are those of Grafana's histogram_quantile), a larger one every other power of two from 4 us to
# 4.3 s and +Inf (12 bounds: its quantiles come from buckets 4x wide instead of 2x, typically within 30 %).
RUNQ_ALL_BOUNDS_SECONDS: tuple[float, ...] = (*RUNQ_EXPORTED_BOUNDS_SECONDS, math.inf)
RUNQ_COARSE_BOUNDS_SECONDS: tuple[float, ...] = (*RUNQ_EXPORTED_BOUNDS_SECONDS[2:23:2], math.inf)
RUNQ_FINE_MAX_CGROUPS = 1000
# Gauges (and counters read as they stand): (field, metric, aggregation). Those aggregated by "max" come in one query
# grouped by metric name (METRIC_FIELDS maps it back); SPEC_FIELDS are the rarely changing ones (CACHED).
GAUGES: tuple[tuple[str, str, str], ...] = (
    (NAMED, "container_memory_working_set_bytes", "max"),
    ("memory_usage_bytes", "container_memory_usage_bytes", "max"),
    ("memory_rss_bytes", "container_memory_rss", "max"),
    ("memory_cache_bytes", "container_memory_cache", "max"),
    ("memory_swap_bytes", "container_memory_swap", "max"),
    ("memory_mapped_file_bytes", "container_memory_mapped_file", "max"),
    ("memory_max_usage_bytes", "container_memory_max_usage_bytes", "max"),
    ("memory_failcnt", "container_memory_failcnt", "max"),
    ("memory_limit_bytes", "container_spec_memory_limit_bytes", "max"),
    ("memory_swap_limit_bytes", "container_spec_memory_swap_limit_bytes", "max"),
    ("cpu_quota_us", "container_spec_cpu_quota", "max"),
    ("cpu_period_us", "container_spec_cpu_period", "max"),
    ("cpu_shares", "container_spec_cpu_shares", "max"),
    ("processes", "container_processes", "max"),
    ("threads", "container_threads", "max"),
    ("threads_max", "container_threads_max", "max"),
    ("oom_events", "container_oom_events_total", "max"),
    ("cpu_seconds_total", "container_cpu_usage_seconds_total", "sum"),
    ("throttled_seconds_total", "container_cpu_cfs_throttled_seconds_total", "max"),
    ("ebpf_oom_kills", "ctop_oom_kills_total", "max"),  # every cgroup ctop's eBPF counts has it (EBPF_MARK)
    ("runq_p50", "ctop_runqueue_latency_p50_seconds", "max"),  # NaN where it had no wait: served, no data
    ("runq_p99", "ctop_runqueue_latency_p99_seconds", "max"),
    ("start_time_seconds", "container_start_time_seconds", "max"),
)
SPEC_FIELDS = frozenset({"memory_limit_bytes", "memory_swap_limit_bytes", "cpu_quota_us", "cpu_period_us",
                         "cpu_shares", "threads_max", "start_time_seconds"})
METRIC_FIELDS = {m: f for f, m, agg in GAUGES if agg == "max"}
EBPF_MARK = "ebpf_oom_kills"  # a cgroup with this figure is counted by ctop's eBPF: it has run-queue figures
_GAUGE_METRICS = {f: m for f, m, _ in GAUGES}
_PROBED = _GAUGE_METRICS[QUANTILES[-1][0]]  # the p99 gauge: an exporter that serves it serves both
RUNQ_SERVED = frozenset(tag for tag, _ in QUANTILES)  # gauges of an exporter that serves its run-queue quantiles
INFO_FIELD = "info"
INFO_LABELS = ("kind", "runtime", "qos_class")
# Per target: (field, expression over the selector).
NODE_FIELDS: tuple[tuple[str, str], ...] = (
    ("machine_cpu_cores", "machine_cpu_cores"),
    ("machine_memory_bytes", "machine_memory_bytes"),
    ("up", "up"),
)


@dataclass(frozen=True)
class Query:
    """One query of a refresh: its name (for messages), its PromQL, and whether its answer is kept (CACHE_S)."""

    name: str
    expr: str
    cached: bool = False


def window_s(scrape_interval_s: float) -> float:
    """The rate window: WINDOW_SCRAPES scrape intervals, whole seconds, at least MIN_WINDOW_S."""
    return max(MIN_WINDOW_S, float(round(WINDOW_SCRAPES * scrape_interval_s)))


def _selector(selector: str, extra: str = "") -> str:
    inner = ",".join(part for part in (extra, selector.strip().strip("{}").strip()) if part)
    return "{" + inner + "}"


def _tag(field: str, expr: str) -> str:
    return f'label_replace({expr}, "{FIELD_LABEL}", "{field}", "", "")'


def refresh_queries(selector: str, window: float, runq_bounds: Iterable[float] = RUNQ_ALL_BOUNDS_SECONDS,
                    runq_except: Iterable[str] = (), runq: bool = True) -> tuple[Query, ...]:
    """The queries of one refresh (at most 10, sent at once): rates in four groups, run-queue buckets (of
    ``runq_bounds``, but not of the targets whose instances are ``runq_except``; none without ``runq``), gauges,
    the targets; then the CACHED ones: limits, names, ctop's info."""
    by, key = ", ".join(BY), ", ".join(KEY)  # (the answers' size is their cost: labels are most of it)
    w = f"[{window:g}s]"
    rates = {f: _tag(f, f"sum by ({key}) (rate({m}{_selector(selector, x)}{w}))") for f, m, x in RATES}

    def gauges(fields: Iterable[str]) -> str:
        names = "|".join(m for f, m, agg in GAUGES if agg == "max" and f in fields)
        matcher = f'__name__=~"{names}"'
        return f"max by ({key}, __name__) ({_selector(selector, matcher)})"

    def group(prefix: str) -> list[str]:
        return [e for f, e in rates.items() if f.startswith(prefix)]

    fresh = [f for f, _, _ in GAUGES if f not in SPEC_FIELDS]
    summed = [_tag(f, f"sum by ({key}) ({m}{_selector(selector)})") for f, m, agg in GAUGES if agg == "sum"]
    skip = sorted(set(runq_except))
    unserved = f'instance!~"{"|".join(map(regex_literal, skip))}",' if skip else ""
    bucket_selector = _selector(selector, unserved + le_matcher(runq_bounds))
    buckets = f"sum by ({key}, le) (rate(ctop_runqueue_latency_seconds_bucket{bucket_selector}{w}))"
    info = f"max by ({key}, {', '.join(INFO_LABELS)}) (ctop_container_info{_selector(selector)})"
    groups = {  # the costliest first: they start at once, the cheap ones fill the server's gaps
        **({"runq": [buckets]} if runq else {}),  # untagged: its series are the ones with an ``le`` label
        "gauges": [gauges(fresh), *summed],
        "cpu": group("c"),  # cpu_seconds, cfs_*, ctx_switches_*
        "io": group("io_") + group("net_") + group("major_"),
        "ebpf": [rates[f] for f in ("runq_wait", "preempt_others", "preempt_host", "forks", "execs", "exits")],
        "pressure": group("psi_"),
        "nodes": [_tag(f, f"max by (node, instance, job) ({m}{_selector(selector)})") for f, m in NODE_FIELDS],
    }
    cached = {
        "limits": [gauges(SPEC_FIELDS)],
        "names": [_tag(NAMES_FIELD, f"group by ({by}) ({NAMED_METRIC}{_selector(selector)})"),
                  _tag(INFO_FIELD, info)],
    }
    return (*(Query(name, union(parts)) for name, parts in groups.items()),
            *(Query(name, union(parts), cached=True) for name, parts in cached.items()))


def runq_probe(selector: str) -> Query:
    """Which targets serve the run-queue quantile gauges, and which count with eBPF (EBPF_MARK): one series per
    target and metric, asked before a refresh that does not know it yet (probe_coverage reads the answer)."""
    matcher = f'__name__=~"{_GAUGE_METRICS[EBPF_MARK]}|{_PROBED}"'
    return Query("runq_probe", f"count by (instance, __name__) ({_selector(selector, matcher)})")


def runq_coverage(served: Iterable[object], counted: Iterable[object]) -> tuple[frozenset[str], bool]:
    """From the ``instance`` labels of targets that serve the quantile gauges and of targets that count with eBPF:
    the serving instances, and whether any other counts with eBPF (so that its bucket series are needed)."""
    serving = set(served)
    return frozenset(i for i in serving if isinstance(i, str)), bool(set(counted) - serving)


def probe_coverage(series: Iterable[tuple[Mapping[str, str], float]]) -> tuple[frozenset[str], bool]:
    """runq_coverage of the answer of runq_probe."""
    served: list[str | None] = []
    counted: list[str | None] = []
    for labels, _ in series:
        (served if labels.get("__name__") == _PROBED else counted).append(labels.get("instance"))
    return runq_coverage(served, counted)


def le_matcher(bounds: Iterable[float]) -> str:
    """A label matcher selecting the buckets of ``bounds``, their ``le`` written as the exporter writes it."""
    # the regular expression's \. and \+, each backslash doubled inside a PromQL string
    pattern = "|".join(le_text(b).replace(".", r"\\.").replace("+", r"\\+") for b in bounds)
    return f'le=~"{pattern}"'


def regex_literal(text: str) -> str:
    """``text`` as a PromQL regular expression matching exactly it, inside a double-quoted PromQL string."""
    escaped = "".join("\\" + c if c in _REGEX_SPECIAL else c for c in text)
    return escaped.replace("\\", "\\\\").replace('"', '\\"')


_REGEX_SPECIAL = frozenset("\\.+*?()|[]{}^$")


def union(parts: list[str]) -> str:
    """``parts`` joined with ``or`` as a balanced tree: a chain would match every series of its left side again at
    each ``or`` (the server's cost grows with the square of their number)."""
    if len(parts) == 1:
        return parts[0]
    half = len(parts) // 2
    return f"({union(parts[:half])}) or ({union(parts[half:])})"
