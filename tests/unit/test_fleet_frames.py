"""Answers of a refresh become the Frame every view reads: rows per node, cgroup, pod and namespace; no data stays
None; the queries stay few and aggregated; the time-travel source moves like the history replay."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from ctop.batch import BatchOptions, render_json
from ctop.fleet.client import Answer, Series
from ctop.fleet.frames import build_frame
from ctop.fleet.queries import FIELD_LABEL, refresh_queries, window_s
from ctop.fleet.source import FleetSource
from ctop.model import fields
from ctop.model.notices import NoticeKind
from ctop.model.sample import UNLIMITED

POD = "/kubepods/burstable/pod1234"


def s(field: str, value: float, **labels: str) -> Series:
    return Series({FIELD_LABEL: field, **labels}, value)


def container(node: str, cid: str, pod: str, ns: str, **kw: str) -> dict[str, str]:
    return {"node": node, "instance": f"{node}:10417", "id": f"{POD}/{cid}", "name": "", "image": "img",
            "container": cid, "pod": pod, "namespace": ns, **kw}


def answers() -> list[Answer]:
    a = container("n1", "app", "web-1", "shop")
    b = container("n1", "side", "web-1", "shop")
    c = container("n2", "app", "db-1", "data")
    root = {"instance": "10.0.0.9:8080", "id": "/"}
    rates = Answer((s("cpu_seconds_per_s", 0.5, **a), s("cpu_seconds_per_s", 0.25, **b), s("cpu_seconds_per_s", 1, **c),
                    s("cfs_periods_per_s", 10, **a), s("cfs_throttled_periods_per_s", 2.5, **a),
                    s("runq_p99", float("nan"), **a), s("csw_voluntary", 7, **a),
                    s("cpu_seconds_per_s", 3, **root)))
    gauges = Answer((s("working_set_bytes", 100, **a), s("memory_usage_bytes", 150, **a),
                     s("memory_limit_bytes", 400, **a), s("cpu_quota_us", 50000, **a), s("cpu_period_us", 100000, **a),
                     s("working_set_bytes", 50, **b), s("memory_limit_bytes", 0, **b),
                     s("cpu_period_us", 100000, **b),
                     s("working_set_bytes", 1000, **c), s("working_set_bytes", 5000, **root),
                     Series({FIELD_LABEL: "info", **a, "kind": "container", "runtime": "containerd",
                             "qos_class": "burstable"}, 1)), ("store-2 did not answer",))
    nodes = Answer((Series({FIELD_LABEL: "up", "node": "n1", "instance": "n1:10417"}, 1),
                    Series({FIELD_LABEL: "up", "node": "n3", "instance": "n3:10417"}, 0),
                    Series({FIELD_LABEL: "machine_cpu_cores", "node": "n1", "instance": "n1:10417"}, 8)))
    return [rates, gauges, nodes]


def test_rows_of_cgroups_pods_namespaces_and_nodes():
    frame = build_frame(answers(), 1700000000.0, 60.0)
    rows = frame.rows
    app = rows[f"/n1{POD}/app"]
    assert app.identity.node == "n1" and fields.NODE.get(app) == "n1"
    assert app.cpu_percent == 50.0 and app.cpu_limit_cores == 0.5 and app.cpu_limit_percent == 100.0
    assert app.throttled_percent == 25.0 and app.sample.working_set_bytes == 100
    assert app.memory_limit_percent == 25.0 and app.identity.runtime == "containerd"
    assert app.ebpf_rates is not None and app.ebpf_rates.runq_latency_p99_seconds is None  # NaN: no data
    assert app.ebpf_rates.ctx_switches_voluntary_per_s == 7
    side = rows[f"/n1{POD}/side"]
    assert side.sample.memory_limit_bytes == UNLIMITED and side.cpu_limit_cores is None
    assert side.throttled_percent is None and side.ebpf_rates is None and side.io_read_bytes_per_s is None
    assert side.identity.kind == "container"  # guessed from cAdvisor's labels
    pod = rows[f"/n1{POD}"]  # no pod cgroup was exported: summed from its containers, where the tree puts it
    assert (pod.identity.kind, pod.identity.pod, pod.identity.node) == ("pod", "web-1", "n1")
    assert pod.cpu_percent == 75.0 and pod.sample.working_set_bytes == 150
    assert rows["/~namespaces/shop"].sample.working_set_bytes == 150
    assert rows["/~namespaces/data"].cpu_percent == 100.0
    assert rows["/n1"].identity.kind == "node" and rows["/n1"].cpu_percent == 75.0  # the sum of its top cgroups
    root = rows["/10.0.0.9:8080"]  # no node label: the target names the node; its root cgroup is the node row
    assert root.identity.name == "10.0.0.9:8080" and root.cpu_percent == 300.0
    assert frame.snapshot.host.online_cpus == 8 and frame.snapshot.host.wall_time_s == 1700000000.0
    kinds = {n.kind for n in frame.notices}
    assert kinds == {NoticeKind.PARTIAL_DATA}
    text = " ".join(n.sentence for n in frame.notices)
    assert "store-2 did not answer" in text and "1 of 2 targets are down (n3)" in text


def test_batch_json_of_a_fleet_has_the_node_key_last_and_null_for_no_data():
    import json

    out = json.loads(render_json(build_frame(answers(), 1700000000.0, 60.0), BatchOptions()))
    side = next(r for r in out if r["id"] == f"/n1{POD}/side")
    assert list(side)[-1] == "node" and side["node"] == "n1"
    assert side["runq_latency_p99_seconds"] is None and side["oom_kills"] is None and side["memory_limit_bytes"] is None


def test_a_refresh_is_a_few_aggregated_queries_whatever_the_fleet_size():
    queries = refresh_queries('cluster="prod"', window_s(15))
    assert len(queries) <= 10
    text = " ".join(q.expr for q in queries)
    for q in queries:
        assert 'cluster="prod"' in q.expr and "by (node, instance" in q.expr
    assert "[60s]" in queries[0].expr and window_s(0.2) == 2.0
    for metric in ("container_cpu_usage_seconds_total", "ctop_context_switches_total", "ctop_container_info",
                   "container_memory_working_set_bytes", "ctop_runqueue_latency_seconds_bucket", "up"):
        assert metric in text


class FakeClient:
    """Answers every query at once with nothing and remembers the times asked (the Prometheus edge)."""

    def __init__(self) -> None:
        self.queries = 0
        self.times: list[float | None] = []

    def query(self, expr: str, at: float | None = None) -> Answer:
        self.queries += 1
        self.times.append(at)
        return Answer(())

    def query_all(self, exprs: list[str], at: float | None = None,
                  each: Callable[[int, Answer], None] | None = None) -> list[Answer]:
        answers = [self.query(e, at) for e in exprs]
        for i, answer in enumerate(answers if each else ()):
            each(i, answer)
        return answers


def test_a_refresh_pauses_the_cycle_collector_and_gives_it_back():
    import gc

    seen: list[bool] = []

    class Watching(FakeClient):
        def query(self, expr: str, at: float | None = None) -> Answer:
            seen.append(gc.isenabled())
            return super().query(expr, at)

    assert gc.isenabled()
    FleetSource(Watching(), "", 10.0).frame_at(None)  # type: ignore[arg-type]
    assert seen and not any(seen) and gc.isenabled()
    gc.disable()
    try:
        FleetSource(Watching(), "", 10.0).frame_at(None)  # type: ignore[arg-type]
        assert not gc.isenabled()  # not switched on when it was off
    finally:
        gc.enable()


def test_time_travel_steps_and_jumps_like_the_replay():
    fake = FakeClient()
    now = [1000.0]
    source = FleetSource(fake, "", 10.0, at=400.0, clock=lambda: now[0])  # type: ignore[arg-type]
    posted: list = []
    source.post = posted.append
    source.collect()
    # the probe (which targets serve the run-queue gauges: none here), then the refresh's queries but the buckets
    assert source.last_queries == 1 + len(refresh_queries("", window_s(10.0), runq=False))
    assert fake.times == [400.0] * source.last_queries
    source.request("step:-1")
    source.collect()
    assert fake.times[-1] == 390.0
    source.request("jump:600")
    source.request("jump:600")
    source.collect()
    assert fake.times[-1] == 1000.0 and posted[-1][1].edge == "end"  # not past now
    source.request("jump:-60")
    source.request("follow")
    source.collect()
    now[0] += 5
    source.collect()
    assert fake.times[-1] == 945.0 and posted[-1][1].following


def test_each_ebpf_tag_fills_the_attribute_it_names():
    from ctop.fleet.frames import EBPF_ATTRIBUTES

    assert EBPF_ATTRIBUTES == {
        "runq_p50": "runq_latency_p50_seconds", "runq_p99": "runq_latency_p99_seconds",
        "runq_wait": "runq_wait_seconds_per_s", "csw_voluntary": "ctx_switches_voluntary_per_s",
        "csw_involuntary": "ctx_switches_involuntary_per_s", "preempt_others": "preempted_by_others_per_s",
        "preempt_host": "preempted_by_host_per_s", "forks": "forks_per_s", "execs": "execs_per_s",
        "exits": "exits_per_s"}


def test_run_queue_quantiles_from_bucket_rates_read_as_histogram_quantile_reads_them():
    from ctop.fleet.frames import runq_quantile

    inf = float("inf")
    buckets = {0.001: 5.0, 0.002: 10.0, inf: 10.0}  # cumulative rates by upper bound
    assert runq_quantile(buckets, 0.5) == 0.001  # the first bucket's lower bound is 0
    assert runq_quantile(buckets, 0.75) == 0.0015  # interpolated inside its bucket
    assert runq_quantile({0.001: 5.0, inf: 10.0}, 0.99) == 0.001  # in the +Inf bucket: the largest finite bound
    assert runq_quantile({0.001: 0.0, inf: 0.0}, 0.5) is None  # nothing happened: no data
    assert runq_quantile({0.001: 5.0, 0.002: 10.0}, 0.5) is None  # no +Inf bucket: not a histogram
    assert runq_quantile({0.001: 6.0, 0.002: 5.0, inf: 10.0}, 0.5) == 0.001 * 5 / 6  # not monotonic: read as 6, 6, 10


class FleetServer(FakeClient):
    """Answers the refresh's queries as a Prometheus holding ``cgroups`` (path -> limit) on node n1 would."""

    def __init__(self, cgroups: dict[str, float]) -> None:
        self.cgroups = cgroups
        self.queries = 0
        self.asked: list[str] = []
        self.ebpf = True  # its exporter counts with eBPF but serves no run-queue quantile gauges (an older one)

    def query(self, expr: str, at: float | None = None) -> Answer:
        self.queries += 1
        self.asked.append(expr)
        key = {"node": "n1", "instance": "n1:9100"}
        out: list[Series] = []
        for path, limit in self.cgroups.items():
            if "container_memory_working_set_bytes|" in expr:  # the gauges, grouped by metric name
                out.append(Series({**key, "id": path, "__name__": "container_memory_working_set_bytes"}, 100))
                if self.ebpf:  # an exporter that counts with eBPF but serves no run-queue quantiles: its buckets
                    out.append(Series({**key, "id": path, "__name__": "ctop_oom_kills_total"}, 0))
            if "container_spec_memory_limit_bytes|" in expr:  # the limits (kept)
                out.append(Series({**key, "id": path, "__name__": "container_spec_memory_limit_bytes"}, limit))
            if f'"{FIELD_LABEL}", "names"' in expr:  # the names (kept)
                out.append(Series({**key, "id": path, FIELD_LABEL: "names", "name": path.strip("/"), "image": "",
                                   "container": "", "pod": "", "namespace": ""}, 1))
        if expr.startswith("count by (instance, __name__)") and self.ebpf:  # the probe
            out = [Series({**key, "__name__": "ctop_oom_kills_total"}, len(self.cgroups))]
        return Answer(tuple(out))


def test_limits_and_names_are_kept_a_minute_unless_a_new_cgroup_appears():
    server = FleetServer({"/a": 400})
    now = [1000.0]
    source = FleetSource(server, "", 10.0, clock=lambda: now[0])  # type: ignore[arg-type]
    queries = refresh_queries("", window_s(10.0))  # its exporter serves no run-queue gauges: the buckets are asked
    every = len(queries)
    kept = [q for q in queries if q.cached]
    assert len(kept) == 2 and every <= 10
    # (and, at the first refresh, the query that asks which targets serve the run-queue quantiles)
    assert source.frame_at(None).rows["/n1/a"].identity.name == "a" and source.last_queries == every + 1
    now[0] += 10
    server.cgroups["/a"] = 800  # a limit changed: seen within the minute, not at once
    row = source.frame_at(None).rows["/n1/a"]
    assert source.last_queries == every - len(kept) and row.identity.name == "a"
    assert row.sample.memory_limit_bytes == 400 and row.memory_limit_percent == 25.0
    server.cgroups["/b"] = 200  # a new cgroup: its names and limits at once, in the same refresh
    rows = source.frame_at(None).rows
    assert source.last_queries == every  # the refresh's, then the kept ones
    assert rows["/n1/b"].identity.name == "b" and rows["/n1/b"].sample.memory_limit_bytes == 200
    assert rows["/n1/a"].sample.memory_limit_bytes == 800
    del server.cgroups["/a"]  # a removed cgroup is no row, though the kept answers still name it
    assert "/n1/a" not in source.frame_at(None).rows and source.last_queries == every - len(kept)
    now[0] += 60  # a minute later: everything asked again (and who serves the run-queue quantiles)
    source.frame_at(None)
    assert source.last_queries == every + 1
    source.frame_at(now[0] - 3600)  # time travel an hour back: asked at that time
    assert source.last_queries == every + 1
    source.frame_at(now[0] - 3590)
    assert source.last_queries == every - len(kept)


def _promql_regex(matcher: str) -> str:
    """The regular expression of a ``le=~"..."`` matcher, as Prometheus reads the string (backslashes undoubled)."""
    assert matcher.startswith('le=~"') and matcher.endswith('"')
    return matcher[len('le=~"'):-1].replace("\\\\", "\\")


def test_the_run_queue_query_selects_its_bounds_as_the_exporter_writes_them():
    import re

    from ctop.exporters.ctop_families import runq_buckets

    from ctop.fleet.queries import RUNQ_ALL_BOUNDS_SECONDS, RUNQ_COARSE_BOUNDS_SECONDS, le_matcher
    from ctop.model.ebpf import RUNQ_SLOTS

    exported = [le for le, _ in runq_buckets([0] * RUNQ_SLOTS)]
    for bounds, count in ((RUNQ_ALL_BOUNDS_SECONDS, 28), (RUNQ_COARSE_BOUNDS_SECONDS, 12)):
        pattern = re.compile(_promql_regex(le_matcher(bounds)))  # RE2 anchors a label matcher at both ends
        chosen = [le for le in exported if pattern.fullmatch(le)]
        assert [float(le) for le in chosen] == list(bounds) and len(chosen) == count
        assert not pattern.fullmatch("4x096e-06") and not pattern.fullmatch("0.0042")  # dots are dots, whole labels
        assert le_matcher(bounds) in refresh_queries("", 20.0, bounds)[0].expr
    coarse = [le for le in exported if float(le) in RUNQ_COARSE_BOUNDS_SECONDS]
    assert coarse[0] == "4.096e-06" and coarse[-2:] == ["4.294967296", "+Inf"]


def test_a_scope_of_many_cgroups_asks_for_the_coarser_run_queue_buckets():
    from ctop.fleet.queries import (
        RUNQ_ALL_BOUNDS_SECONDS,
        RUNQ_COARSE_BOUNDS_SECONDS,
        RUNQ_FINE_MAX_CGROUPS,
        le_matcher,
    )

    fine, coarse = le_matcher(RUNQ_ALL_BOUNDS_SECONDS), le_matcher(RUNQ_COARSE_BOUNDS_SECONDS)
    for cgroups, second in ((RUNQ_FINE_MAX_CGROUPS, fine), (RUNQ_FINE_MAX_CGROUPS + 1, coarse)):
        server = FleetServer({f"/c{i}": 1 for i in range(cgroups)})
        source = FleetSource(server, "", 15, clock=lambda: 1000.0)
        for expected in (fine, second):  # the first refresh knows no count yet: every bound
            del server.asked[:]
            frame = source.frame_at(None)
            runq = [e for e in server.asked if "ctop_runqueue_latency_seconds_bucket" in e]
            assert len(runq) == 1 and expected in runq[0], cgroups
        assert len([r for r in frame.rows.values() if r.identity.kind != "node"]) == cgroups


def test_run_queue_quantiles_from_the_queried_bounds_stay_within_their_coarser_buckets():
    from ctop.exporters.ctop_families import runq_buckets

    from ctop.fleet.frames import runq_quantiles
    from ctop.fleet.queries import RUNQ_COARSE_BOUNDS_SECONDS
    from ctop.model.ebpf import RUNQ_SLOTS, histogram_quantile

    queried = set(RUNQ_COARSE_BOUNDS_SECONDS)
    for first, last in ((8, 20), (20, 44), (30, 31), (40, 70), (60, RUNQ_SLOTS)):  # waits spread over these slots
        counts = [7 if first <= i < last else 0 for i in range(RUNQ_SLOTS)]
        buckets = {float(le): float(c) for le, c in runq_buckets(counts) if float(le) in queried}
        for q, estimate in zip((0.5, 0.99), runq_quantiles(buckets, (0.5, 0.99))):
            exact = histogram_quantile(counts, q)  # what the node's own view shows (4 buckets per octave)
            assert exact is not None and estimate is not None
            if exact < RUNQ_COARSE_BOUNDS_SECONDS[-2]:  # beyond the last finite bound both read as an edge
                assert exact / 4 <= estimate <= exact * 4, (first, last, q, exact, estimate)


class TwoExporters(FakeClient):
    """A Prometheus scraping two ctop exporters: n1 serves its run-queue quantiles as gauges (p50 NaN for the idle
    cgroup), n2 (an older exporter) only its bucket series; both count the cgroups' OOM kills with eBPF."""

    # read from the buckets: p50 0.001 s
    BUCKETS: ClassVar[dict[str, float]] = {"0.001": 5.0, "0.002": 10.0, "+Inf": 10.0}

    def __init__(self, n2_serves: bool = False) -> None:
        super().__init__()
        self.asked: list[str] = []
        self.n2_serves = n2_serves

    def query(self, expr: str, at: float | None = None) -> Answer:
        self.queries += 1
        self.asked.append(expr)
        out: list[Series] = []
        for node, path in (("n1", "/busy"), ("n1", "/idle"), ("n2", "/old")):
            key = {"node": node, "instance": f"{node}:10417", "id": path}
            serves = node == "n1" or self.n2_serves
            if "container_memory_working_set_bytes|" in expr:
                out += [Series({**key, "__name__": "container_memory_working_set_bytes"}, 100),
                        Series({**key, "__name__": "ctop_oom_kills_total"}, 0)]
                if serves:
                    p50 = float("nan") if path == "/idle" else 2.5e-6
                    out += [Series({**key, "__name__": "ctop_runqueue_latency_p50_seconds"}, p50),
                            Series({**key, "__name__": "ctop_runqueue_latency_p99_seconds"}, p50 * 10)]
            if "ctop_runqueue_latency_seconds_bucket" in expr and not (serves and 'instance!~"n1:10417' in expr):
                out += [Series({**key, "le": le}, v) for le, v in self.BUCKETS.items()]
        if expr.startswith("count by (instance, __name__)"):  # the probe: who serves the quantiles
            out = [Series({"instance": f"{node}:10417", "__name__": name}, 2)
                   for node in ("n1", "n2") for name in ("ctop_oom_kills_total", "ctop_runqueue_latency_p99_seconds")
                   if name == "ctop_oom_kills_total" or node == "n1" or self.n2_serves]
        return Answer(tuple(out))


def _bucket_queries(server: TwoExporters) -> list[str]:
    return [e for e in server.asked if "ctop_runqueue_latency_seconds_bucket" in e]


def _probes(server: TwoExporters) -> list[str]:
    return [e for e in server.asked if e.startswith("count by (instance, __name__)")]


def test_run_queue_quantiles_come_from_the_exporters_gauges_and_buckets_only_where_none_are_served():
    server = TwoExporters()
    source = FleetSource(server, "", 15, at=900.0, clock=lambda: 1000.0)  # type: ignore[arg-type]
    for refresh in range(3):
        del server.asked[:]
        rows = source.frame_at(None).rows
        busy, idle, old = (rows[p].ebpf_rates for p in ("/n1/busy", "/n1/idle", "/n2/old"))
        assert busy is not None and idle is not None and old is not None
        # served: the exporter's own figures, never the coarser buckets; NaN (no wait) is no data
        assert (busy.runq_latency_p50_seconds, busy.runq_latency_p99_seconds) == (2.5e-6, 2.5e-5)
        assert idle.runq_latency_p50_seconds is None and idle.runq_latency_p99_seconds is None
        assert old.runq_latency_p50_seconds == 0.001  # not served: from n2's buckets
        runq = _bucket_queries(server)
        # only the buckets of the targets that do not serve the quantiles: at the first refresh known from one small
        # query sent before the others, then from the previous refresh's gauges
        assert len(runq) == 1 and 'instance!~"n1:10417"' in runq[0]
        assert len(_probes(server)) == (1 if refresh == 0 else 0)
        assert source.last_queries == len(server.asked)
    server.n2_serves = True  # n2's exporter upgraded: one more refresh with its buckets, then none at all
    del server.asked[:]
    source.frame_at(None)
    every = len(server.asked)
    del server.asked[:]
    rows = source.frame_at(None).rows
    assert _bucket_queries(server) == [] and source.last_queries == every - 1
    assert rows["/n2/old"].ebpf_rates.runq_latency_p50_seconds == 2.5e-6  # type: ignore[union-attr]
    server.n2_serves = False  # as it was ten minutes ago
    source.request("jump:-600")  # a move in time (a minute or more): who served them then is asked again
    del server.asked[:]
    rows = source.collect().rows
    assert len(_probes(server)) == 1 and len(_bucket_queries(server)) == 1
    assert rows["/n2/old"].ebpf_rates.runq_latency_p50_seconds == 0.001  # type: ignore[union-attr]


def test_without_any_ebpf_exporter_no_bucket_query_is_sent():
    server = FleetServer({"/a": 400})
    server.ebpf = False  # cAdvisor only
    source = FleetSource(server, "", 15, clock=lambda: 1000.0)  # type: ignore[arg-type]
    for _ in range(2):
        del server.asked[:]
        source.frame_at(None)
        assert not any("ctop_runqueue_latency_seconds_bucket" in e for e in server.asked)


def test_instances_are_excluded_by_a_regular_expression_matching_exactly_them():
    import re

    from ctop.fleet.queries import regex_literal

    instances = ["10.0.0.1:10417", "node-a.example:9100", 'odd"(x|y)+\\.', "[::1]:10417"]
    matcher = "|".join(map(regex_literal, instances))
    pattern = re.compile(matcher.replace('\\"', '"').replace("\\\\", "\\"))  # as Prometheus reads the string
    assert all(pattern.fullmatch(i) for i in instances)
    for other in ("10.0.0.11:10417", "10x0x0x1:10417", "node-a", "oddx", "::1"):
        assert not pattern.fullmatch(other), other
    expr = refresh_queries("", 20.0, runq_except=instances[:2])[0].expr
    assert 'instance!~"10\\\\.0\\\\.0\\\\.1:10417|node-a\\\\.example:9100"' in expr
    assert all(q.name != "runq" for q in refresh_queries("", 20.0, runq=False))


def test_the_fleet_reads_the_run_queue_gauges_the_exporter_writes():
    from ctop.exporters.ctop_families import RECENT_RUNQ_QUANTILES

    from ctop.fleet.queries import GAUGES, QUANTILES

    read = {metric: f for f, metric, _ in GAUGES}
    assert [read[metric] for metric, _, _ in RECENT_RUNQ_QUANTILES] == [tag for tag, _ in QUANTILES]
