"""Turns the answers of one fleet refresh into the Frame every view reads: one row per node, cgroup, pod, namespace.

Row paths are ``/<node>`` for a node (its root cgroup, or the sum of what it exports) and ``/<node><cgroup path>``
for its cgroups, so the tree view nests them; pods a node exports no cgroup for are summed from their containers,
and namespaces from their pods across nodes (``/~namespaces/<namespace>``). A figure no source has stays None.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..model.ebpf import histogram_quantile
from ..model.ebpf_rates import EBPF_KEYS, EbpfRates
from ..model.frame import CgroupRow, Frame, Identity
from ..model.groups import sum_present, summed_row
from ..model.notices import Notice, NoticeKind
from ..model.sample import UNLIMITED, CgroupSample, HostSample, Pressure, Snapshot
from .client import Answer, FleetError
from .queries import (
    EBPF_MARK,
    EBPF_TAGS,
    FIELD_LABEL,
    GAUGES,
    INFO_FIELD,
    INFO_LABELS,
    METRIC_FIELDS,
    NAMED,
    NAMES_FIELD,
    QUANTILES,
    RUNQ_BUCKETS_FIELD,
    RUNQ_SERVED,
    runq_coverage,
)

NAMESPACES_PATH = "/~namespaces"
NAME_LABELS = ("name", "image", "container", "pod", "namespace")
PRESENT_FIELDS = frozenset({INFO_FIELD, NAMES_FIELD, *(f for f, _, _ in GAUGES)})
UNLIMITED_FROM = 2**62  # cAdvisor on cgroup v1 reports "no limit" as the page-rounded maximum
EBPF_ATTRIBUTES = dict(zip(EBPF_TAGS, EBPF_KEYS))  # tag -> EbpfRates attribute (the rates come first, in order)


@dataclass
class _Cgroup:
    """What the answers said about one cgroup of one node."""

    node: str
    cgroup: str
    labels: dict[str, str]
    values: dict[str, float] = field(default_factory=dict)
    info: dict[str, str] = field(default_factory=dict)
    present: bool = False  # a gauge or info series of a fresh answer has it: the cgroup still exists
    buckets: dict[float, float] = field(default_factory=dict)  # run-queue bucket rates by upper bound
    runq_served: bool = False  # its exporter serves its run-queue quantiles (RUNQ_SERVED), NaN when no wait


def node_of(labels: Mapping[str, str]) -> str:
    """The node a series is from: its ``node`` label, else the target's instance; "/" cannot be part of it."""
    return str(labels.get("node") or labels.get("instance") or "unknown").replace("/", "_")


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _int(value: float | None) -> int | None:
    return None if value is None else round(value)


def _limit(value: float | None) -> int | None:
    """A limit as cAdvisor exports it (0 or huge: unlimited)."""
    if value is None:
        return None
    return UNLIMITED if value <= 0 or value >= UNLIMITED_FROM else int(value)


def field_of(labels: Mapping[str, str]) -> str:
    """The figure a series of an answer is: its ``ctop_field`` tag, else a run-queue bucket (it has ``le``), else the
    field of its metric name."""
    tag = labels.get(FIELD_LABEL)
    if tag is not None:
        return str(tag)
    return RUNQ_BUCKETS_FIELD if "le" in labels else METRIC_FIELDS.get(str(labels.get("__name__", "")), "")


def runq_quantile(buckets: Mapping[float, float], q: float) -> float | None:
    """The ``q`` quantile of bucket rates by upper bound (cumulative, as Prometheus' histogram_quantile reads them:
    0 is the first bucket's lower bound, a rank in the +Inf bucket is the largest finite bound); None when empty."""
    return runq_quantiles(buckets, (q,))[0]


def runq_quantiles(buckets: Mapping[float, float], qs: Sequence[float]) -> list[float | None]:
    """runq_quantile for each of ``qs``, the buckets read once."""
    bounds = sorted(buckets)
    if len(bounds) < 2 or bounds[-1] != math.inf:
        return [None for _ in qs]
    counts, before = [], 0.0
    for bound in bounds:  # cumulative -> per bucket, never below 0 (rates of separate series may not be monotonic)
        cumulative = max(before, buckets[bound])
        counts.append(cumulative - before)
        before = cumulative
    lower = [0.0, *bounds[:-1]]
    upper = [*bounds[:-1], bounds[-2]]
    return [histogram_quantile(counts, q, lower_seconds=lower, upper_seconds=upper)  # type: ignore[arg-type]
            for q in qs]


class Gatherer:
    """Per (node, cgroup path) the figures of the answers added, one answer at a time as they come; per node the
    target's figures (cores, up). Answers added with ``fresh=False`` are kept from earlier refreshes (the rarely
    changing figures): they add figures to cgroups, never cgroups."""

    def __init__(self) -> None:
        self.cgroups: dict[tuple[str, str], _Cgroup] = {}
        self.nodes: dict[str, dict[str, float]] = {}
        self._by_labels: dict[tuple[Any, Any, Any], _Cgroup] = {}  # (node, instance, id) labels as given -> cgroup
        self._bounds: dict[Any, float | None] = {}  # ``le`` label -> its bound (None: not a number)

    def add(self, answer: Answer, fresh: bool = True) -> None:
        """The figures of one answer."""
        cgroups, by_labels, bounds = self.cgroups, self._by_labels, self._bounds
        metric_fields, special, present_fields = METRIC_FIELDS, _SPECIAL, PRESENT_FIELDS
        try:
            for labels, raw in answer.series:  # (the hot loop of a refresh: tens of thousands of series)
                get = labels.get
                tag = get(FIELD_LABEL)  # (field_of, inline)
                le = None
                if tag is not None:
                    name = str(tag)
                elif "le" in labels:
                    name, le = RUNQ_BUCKETS_FIELD, get("le")
                else:
                    name = metric_fields.get(str(get("__name__", "")), "")
                value = raw if raw - raw == 0 else None  # NaN and infinities: no data
                cgroup = get("id")
                if cgroup is None:  # a per-target figure
                    if value is not None:
                        figures = self.nodes.setdefault(node_of(labels), {})
                        figures[name] = max(figures.get(name, value), value) if name == "up" else \
                            figures.get(name, 0.0) + value
                    continue
                raw_key = (get("node"), get("instance"), cgroup)
                entry = by_labels.get(raw_key)
                if entry is None:
                    key = (node_of(labels), str(cgroup) or "/")
                    entry = cgroups.get(key)
                    if entry is None:
                        entry = cgroups[key] = _Cgroup(key[0], key[1], dict.fromkeys(NAME_LABELS, ""))
                    by_labels[raw_key] = entry
                if le is not None:  # a run-queue bucket (the most numerous series: their bounds are few)
                    bound = bounds[le] if le in bounds else bounds.setdefault(le, _bound(le))
                    if value is not None and bound is not None:
                        entry.buckets[bound] = value
                elif name in special:
                    _special(entry, name, labels, value)
                elif value is not None:
                    entry.values[name] = value
                if fresh and not entry.present and name in present_fields:
                    entry.present = True
        except (TypeError, AttributeError) as e:  # a label value that is not a string
            raise FleetError(f"Prometheus answered a query with a malformed sample ({e}).") from None

    def runq_coverage(self) -> tuple[frozenset[str], bool]:
        """The instances of the targets that serve their cgroups' run-queue quantiles, and whether any cgroup with
        ctop's eBPF figures came from another (whose quantiles only its bucket series give)."""
        entries = self._by_labels.items()
        return runq_coverage((instance for (_, instance, _), e in entries if e.runq_served),
                             (instance for (_, instance, _), e in entries if EBPF_MARK in e.values))

    def result(self) -> tuple[dict[tuple[str, str], _Cgroup], dict[str, dict[str, float]]]:
        """The cgroups (in the order of their keys, whatever the order the answers came in) and the nodes; run-queue
        quantiles from the buckets only where no exporter served them."""
        tags, qs = [t for t, _ in QUANTILES], [q for _, q in QUANTILES]
        for entry in self.cgroups.values():
            if entry.buckets and not entry.runq_served:
                for tag, quantile in zip(tags, runq_quantiles(entry.buckets, qs)):
                    if quantile is not None:
                        entry.values[tag] = quantile
        # A rate outlives its cgroup by the window: only what the last scrape still had is a row.
        return {k: self.cgroups[k] for k in sorted(self.cgroups) if self.cgroups[k].present}, self.nodes


def _bound(le: Any) -> float | None:
    try:
        return float(str(le))
    except ValueError:
        return None


def gathered(answers: Iterable[Answer], kept: Iterable[Answer] = ()) -> Gatherer:
    """A Gatherer of every answer; ``kept``: answers of earlier refreshes (the rarely changing figures)."""
    gatherer = Gatherer()
    for answer in answers:
        gatherer.add(answer)
    for answer in kept:
        gatherer.add(answer, fresh=False)
    return gatherer


_SPECIAL = frozenset({NAMES_FIELD, NAMED, INFO_FIELD, *RUNQ_SERVED})


def _special(entry: _Cgroup, name: str, labels: Mapping[str, str], value: float | None) -> None:
    """The series that are more than a figure: names, ctop's info (and the working set, which carried the names in
    the past), the run-queue quantiles an exporter serves; run-queue buckets are read in Gatherer.add."""
    if name in RUNQ_SERVED:
        entry.runq_served = True
        if value is not None:
            entry.values[name] = value
        return
    if name in (NAMES_FIELD, NAMED) and any(k in labels for k in NAME_LABELS):
        entry.labels.update({k: str(labels.get(k, "")) for k in NAME_LABELS})
    if name == INFO_FIELD:
        entry.info = {k: str(labels.get(k, "")) for k in INFO_LABELS}
    elif name == NAMED and value is not None:
        entry.values[name] = value


def _kind(entry: _Cgroup) -> str:
    """ctop's kind from its info series, else guessed from cAdvisor's labels and the path."""
    if entry.cgroup == "/":
        return "node"
    if entry.info.get("kind"):
        return entry.info["kind"]
    labels = entry.labels
    if labels["container"] or labels["image"] or labels["name"]:
        return "container"
    if labels["pod"]:
        return "pod"
    for suffix in (".slice", ".service", ".scope"):
        if entry.cgroup.endswith(suffix):
            return suffix[1:]
    return "cgroup"


def row_path(node: str, cgroup: str) -> str:
    return f"/{node}" if cgroup == "/" else f"/{node}{cgroup}"


def _row(entry: _Cgroup) -> CgroupRow:
    v = entry.values.get
    quota, period = v("cpu_quota_us"), v("cpu_period_us")
    limited = quota is not None and quota > 0 and bool(period)
    usage, ws = v("memory_usage_bytes"), v(NAMED)
    if usage is None and ws is not None:
        usage = ws
    inactive = None if usage is None or ws is None else max(0.0, usage - ws)
    psi = {r: Pressure(some_avg10=_pct(v(f"psi_{r}_some")), full_avg10=_pct(v(f"psi_{r}_full")))
           if v(f"psi_{r}_some") is not None or v(f"psi_{r}_full") is not None else None
           for r in ("cpu", "memory", "io")}
    seconds = v("cpu_seconds_total")
    throttled_s = v("throttled_seconds_total")
    sample = CgroupSample(
        path=row_path(entry.node, entry.cgroup), inode=0,
        cpu_usage_ns=None if seconds is None else int(seconds * 1e9),
        cpu_quota_us=_int(quota) if limited else (UNLIMITED if period else None), cpu_period_us=_int(period),
        cpu_shares=_int(v("cpu_shares")),
        cpu_throttled_ns=None if throttled_s is None else int(throttled_s * 1e9),
        memory_usage_bytes=_int(usage), memory_max_usage_bytes=_int(v("memory_max_usage_bytes")),
        memory_limit_bytes=_limit(v("memory_limit_bytes")), memory_inactive_file_bytes=_int(inactive),
        memory_rss_bytes=_int(v("memory_rss_bytes")), memory_cache_bytes=_int(v("memory_cache_bytes")),
        memory_mapped_file_bytes=_int(v("memory_mapped_file_bytes")), memory_swap_bytes=_int(v("memory_swap_bytes")),
        memory_swap_limit_bytes=_limit(v("memory_swap_limit_bytes")), memory_failcnt=_int(v("memory_failcnt")),
        memory_oom_kills=_int(v("oom_events")), pids_max=_limit(v("threads_max")),
        processes=_int(v("processes")), threads=_int(v("threads")),
        pressure_cpu=psi["cpu"], pressure_memory=psi["memory"], pressure_io=psi["io"])
    cpu = v("cpu_seconds_per_s")
    cpu_percent = None if cpu is None else cpu * 100.0
    cores = quota / period if limited and quota is not None and period else None
    periods, throttled_periods = v("cfs_periods_per_s"), v("cfs_throttled_periods_per_s")
    throttled = None
    if cores is not None and periods is not None and throttled_periods is not None:
        throttled = 0.0 if periods <= 0 else min(100.0, throttled_periods / periods * 100.0)
    limit = sample.memory_limit_bytes
    working = sample.working_set_bytes
    has_net = v("net_rx_bytes_per_s") is not None or v("net_tx_bytes_per_s") is not None
    kind = _kind(entry)
    ident = Identity(
        kind=kind, runtime=entry.info.get("runtime", ""),
        container_id=entry.cgroup.rsplit("/", 1)[-1] if kind == "container" else "",
        name=entry.node if kind == "node" else entry.labels["name"], image=entry.labels["image"],
        pod=entry.labels["pod"], namespace=entry.labels["namespace"], container=entry.labels["container"],
        qos_class=entry.info.get("qos_class", ""), start_time_s=v("start_time_seconds"), node=entry.node)
    return CgroupRow(
        sample=sample, identity=ident, cpu_percent=cpu_percent, cpu_limit_cores=cores,
        cpu_limit_percent=None if cpu_percent is None or cores is None else cpu_percent / cores,
        throttled_percent=throttled,
        memory_limit_percent=None if working is None or limit is None or limit <= 0 else working / limit * 100.0,
        io_read_bytes_per_s=v("io_read_bytes_per_s"), io_write_bytes_per_s=v("io_write_bytes_per_s"),
        io_read_ops_per_s=v("io_read_ops_per_s"), io_write_ops_per_s=v("io_write_ops_per_s"),
        memory_major_faults_per_s=v("major_faults_per_s"), net={} if has_net else None,
        net_rx_bytes_per_s=v("net_rx_bytes_per_s"), net_tx_bytes_per_s=v("net_tx_bytes_per_s"),
        ebpf_rates=_ebpf_rates(entry.values),
        throttled_percent_avg=throttled, throttled_seconds_per_s=v("cfs_throttled_seconds_per_s") if cores else None)


def _pct(value: float | None) -> float | None:
    return None if value is None else value * 100.0


def _ebpf_rates(values: Mapping[str, float]) -> EbpfRates | None:
    """ctop's eBPF figures where the node's exporter has them; None (no data) for any other source."""
    if not any(k in values for k in _EBPF_FIELDS):
        return None
    kills = values.get("ebpf_oom_kills")
    rates: dict[str, Any] = {attr: values.get(tag) for tag, attr in EBPF_ATTRIBUTES.items()}
    return EbpfRates(oom_kills=None if kills is None else int(kills), **rates)


_EBPF_FIELDS = (*EBPF_TAGS, "ebpf_oom_kills")


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


def build_rows(cgroups: Mapping[tuple[str, str], _Cgroup]) -> dict[str, CgroupRow]:
    """Every row of the refresh: the cgroups, then nodes, pods and namespaces summed where no cgroup stands for them."""
    rows = {row.path: row for row in (_row(e) for e in cgroups.values())}
    by_node: dict[str, list[CgroupRow]] = {}
    for row in rows.values():
        by_node.setdefault(row.identity.node, []).append(row)
    for node, members in by_node.items():
        path = row_path(node, "/")
        if path not in rows:
            top = [r for r in members if not any(p in rows for p in _ancestors(r.path, path))]
            rows[path] = summed_row(path, Identity(kind="node", name=node, node=node), top)
    pods: dict[tuple[str, str, str], list[CgroupRow]] = {}
    for row in list(rows.values()):
        ident = row.identity
        if ident.kind == "container" and ident.pod:
            pods.setdefault((ident.node, ident.namespace, ident.pod), []).append(row)
    pod_rows = [r for r in rows.values() if r.identity.kind == "pod"]
    have = {(r.identity.node, r.identity.namespace, r.identity.pod) for r in pod_rows}
    for (node, namespace, pod), members in pods.items():
        if (node, namespace, pod) in have:
            continue
        parents = {_parent(r.path) for r in members}
        path = parents.pop() if len(parents) == 1 else f"{row_path(node, '/')}/~pods/{namespace}/{pod}"
        if path in rows and rows[path].identity.kind not in ("node", "pod"):  # the pod's cgroup, unnamed
            old = rows[path]
            rows[path] = dataclasses.replace(old, identity=dataclasses.replace(
                old.identity, kind="pod", pod=pod, namespace=namespace))
        elif path not in rows:
            rows[path] = summed_row(path, Identity(kind="pod", name=pod, pod=pod, namespace=namespace, node=node,
                                                   qos_class=members[0].identity.qos_class), members)
        pod_rows.append(rows[path])
    namespaces: dict[str, list[CgroupRow]] = {}
    for row in pod_rows:
        if row.identity.namespace:
            namespaces.setdefault(row.identity.namespace, []).append(row)
    for namespace, members in namespaces.items():
        path = f"{NAMESPACES_PATH}/{namespace.replace('/', '_')}"
        rows[path] = summed_row(path, Identity(kind="namespace", name=namespace, namespace=namespace), members)
    return rows


def _ancestors(path: str, stop: str) -> list[str]:
    out = []
    while path != stop and path not in ("/", ""):
        path = _parent(path)
        if path == stop:
            break
        out.append(path)
    return out


def build_frame(answers: Iterable[Answer], at: float, window: float, kept: Iterable[Answer] = ()) -> Frame:
    """The Frame of one refresh evaluated at Unix time ``at`` with rates over ``window`` seconds; ``kept``: answers
    of the rarely changing figures from an earlier refresh (see Gatherer)."""
    answers = list(answers)
    return frame_of(gathered(answers, kept), answers, at, window)


def frame_of(gatherer: Gatherer, answers: Iterable[Answer], at: float, window: float) -> Frame:
    """The Frame of the figures ``gatherer`` holds (build_frame); ``answers``: the fresh ones, for their warnings."""
    cgroups, nodes = gatherer.result()
    rows = build_rows(cgroups)
    notices: list[Notice] = []
    warnings = sorted({w for a in answers for w in a.warnings})
    if warnings:
        notices.append(Notice(NoticeKind.PARTIAL_DATA, f"Prometheus returned partial data: {'; '.join(warnings)}."))
    down = sorted(n for n, figures in nodes.items() if figures.get("up") == 0)
    if down:
        notices.append(Notice(NoticeKind.PARTIAL_DATA,
                              f"{len(down)} of {len(nodes)} targets are down ({', '.join(down[:5])}"
                              f"{', ...' if len(down) > 5 else ''}): their rows are missing or stale."))
    cores = sum_present(f.get("machine_cpu_cores") for f in nodes.values())
    memory = sum_present(f.get("machine_memory_bytes") for f in nodes.values())
    host = HostSample(monotonic_s=time.monotonic(), wall_time_s=at, cpu_time_ns=None,
                      online_cpus=int(cores or 0), memory_total_bytes=None if memory is None else int(memory))
    ebpf = any(r.ebpf_rates is not None for r in rows.values())
    return Frame(snapshot=Snapshot(host=host, cgroups={p: r.sample for p, r in rows.items()}, mode="prometheus"),
                 rows=rows, interval_s=window, notices=tuple(notices), ebpf_state="ready" if ebpf else "off")
