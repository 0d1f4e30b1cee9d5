"""Benchmark: one refresh of the fleet view (ctop --prometheus) over a real Prometheus holding 20 nodes and 1000 pods.

A small synthetic exporter (one HTTP server per node on 127.0.0.1, ports base+1 to base+20) serves, per node, 50
pods of one container each in ctop exporter's format (cAdvisor's names and labels, ctop_container_info, context
switches, the run-queue histogram and the run-queue quantile gauges), with counters that grow with time; a real
Prometheus (from the distribution, port base) scrapes all 20 every 5 s. The base is 19129, in the fleet tests' ports
19100-19149; with CTOP_TEST_FLEET_PORT_BASE=B in the environment those are B to B+49 and the base B+29
(``run(port_base=...)`` picks another base among them). Once Prometheus holds three scrapes, ``repeats`` rounds of
refreshes are timed, interleaved: a full one (a new source, as the first refresh: the small query that asks which
targets serve the run-queue quantile gauges, then every query but the bucket series, since all do), two steady ones
(the same source again: the limits, names and info it keeps are not asked), and a steady one of a source for which
no target serves the gauges (older exporters: the bucket series of 12 bounds, as a scope of more than 1000 cgroups
asks for; what a steady refresh was before the gauges). Measured: the time of a whole refresh (every query answered
and the Frame built), queries per refresh, and the CPU of Prometheus and of ctop per refresh. Targets (issue 14):
under 1 s per refresh and at most 10 queries.

``quantile_error`` says what reading the quantiles from buckets costs in precision: log-normal run-queue waits
(seeded), their quantiles from the exporter's buckets (all 28, or the 12) and from ctop's own 4-per-octave histogram
(the node's view, and the exporter's quantile gauges) against the quantiles of the waits themselves.
"""

from __future__ import annotations

import http.server
import math
import os
import random
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from ctop.exporters.ctop_families import runq_buckets  # noqa: E402
from support.fleet import PORTS, fleet_prometheus  # noqa: E402

from ctop.fleet.client import ClientConfig, PrometheusClient  # noqa: E402
from ctop.fleet.frames import runq_quantiles  # noqa: E402
from ctop.fleet.queries import RUNQ_COARSE_BOUNDS_SECONDS, Query  # noqa: E402
from ctop.fleet.source import FleetSource  # noqa: E402
from ctop.model.ebpf import RUNQ_GEOMETRY, RUNQ_SLOTS, histogram_quantile  # noqa: E402

PORT_OFFSET = 29  # within the fleet tests' 50 ports, after the system test's
SCRAPE_INTERVAL_S = 5
# The run-queue buckets as ctop exporter writes them (28 ``le`` bounds, 1 us to 69 s and +Inf), for waits spread
# evenly over the histogram's slots 16-47 (about 4 us to 4 ms): (le, share of the count at or below it).
_SPREAD = tuple(1 if 16 <= i < 48 else 0 for i in range(RUNQ_SLOTS))
RUNQ_SHAPE = tuple((le, cumulative / sum(_SPREAD)) for le, cumulative in runq_buckets(_SPREAD))
RUNQ_P50, RUNQ_P99 = (histogram_quantile(_SPREAD, q) for q in (0.5, 0.99))  # what the exporter's gauges say


class OlderExporters(FleetSource):
    """A fleet source for which no target serves the run-queue quantile gauges: it asks for the bucket series at
    every refresh (as it does of older exporters)."""

    def queries_for(self, cgroups: int) -> tuple[Query, ...]:
        self._runq = None  # what the previous refresh said of the gauges, forgotten
        return super().queries_for(cgroups)


def exposition(node: int, pods: int, started: float) -> bytes:
    """One node's page: the root cgroup and ``pods`` pods of one container each, counters growing with time."""
    elapsed = time.time() - started
    lines = []
    cgroups = [("/", "", "", "", "", "", "root")]
    for p in range(pods):
        uid = f"{node:04d}{p:04d}-0000-4000-8000-000000000000"
        pod, ns = f"web-{node}-{p}", f"team-{p % 10}"
        cgroups.append((f"/kubepods/burstable/pod{uid}", "", "", "", pod, ns, "pod"))
        cgroups.append((f"/kubepods/burstable/pod{uid}/{'c' * 60}{p:04d}", f"k8s_app_{pod}", "registry/app:1", "app",
                        pod, ns, "container"))
    for i, (cid, name, image, container, pod, ns, kind) in enumerate(cgroups):
        labels = f'id="{cid}",name="{name}",image="{image}",container="{container}",pod="{pod}",namespace="{ns}"'
        cpu = 0.01 * (1 + i % 7)
        lines += [
            f'container_cpu_usage_seconds_total{{{labels},cpu="total"}} {cpu * elapsed + i:.6f}',
            f"container_memory_working_set_bytes{{{labels}}} {(20 + i % 50) * 2**20}",
            f"container_memory_usage_bytes{{{labels}}} {(24 + i % 50) * 2**20}",
            f"container_memory_rss{{{labels}}} {(16 + i % 50) * 2**20}",
            f"container_spec_memory_limit_bytes{{{labels}}} {256 * 2**20 if kind == 'container' else 0}",
            f"container_spec_cpu_period{{{labels}}} 100000",
            f"container_processes{{{labels}}} {1 + i % 3}",
            f"container_threads{{{labels}}} {2 + i % 5}",
            f"container_oom_events_total{{{labels}}} 0",
            f'container_fs_reads_bytes_total{{{labels},device="/dev/vda"}} {int(4096 * elapsed)}',
            f'container_fs_writes_bytes_total{{{labels},device="/dev/vda"}} {int(8192 * elapsed)}',
            f'ctop_container_info{{{labels},runtime="containerd",qos_class="burstable",kind="{kind}"}} 1',
            f'ctop_context_switches_total{{{labels},kind="voluntary"}} {int(50 * elapsed)}',
            f'ctop_context_switches_total{{{labels},kind="involuntary"}} {int(5 * elapsed)}',
        ]
        if kind == "container":
            lines += [f"container_spec_cpu_quota{{{labels}}} 50000",
                      f"container_cpu_cfs_periods_total{{{labels}}} {int(10 * elapsed)}",
                      f"container_cpu_cfs_throttled_periods_total{{{labels}}} {int(elapsed)}"]
        if kind == "pod":
            lines += [f'container_network_receive_bytes_total{{{labels},interface="eth0"}} {int(1000 * elapsed)}',
                      f'container_network_transmit_bytes_total{{{labels},interface="eth0"}} {int(700 * elapsed)}']
        count = int(60 * elapsed)
        lines += [f'ctop_runqueue_latency_seconds_bucket{{{labels},le="{le}"}} {int(count * share)}'
                  for le, share in RUNQ_SHAPE]
        lines += [f"ctop_runqueue_latency_seconds_sum{{{labels}}} {0.0004 * count:.6f}",
                  f"ctop_runqueue_latency_seconds_count{{{labels}}} {count}",
                  f"ctop_runqueue_latency_p50_seconds{{{labels}}} {RUNQ_P50!r}",
                  f"ctop_runqueue_latency_p99_seconds{{{labels}}} {RUNQ_P99!r}"]
    lines += ["machine_cpu_cores 16", f"machine_memory_bytes {64 * 2**30}"]
    return ("\n".join(lines) + "\n").encode()


@contextmanager
def synthetic_node(port: int, node: int, pods: int, started: float) -> Iterator[str]:
    """One synthetic exporter on 127.0.0.1:``port``."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = exposition(node, pods, started)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # Prometheus gave up on a scrape (its timeout)
                pass

        def log_message(self, *_args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


def _cpu_s(pid: int) -> float:
    """User plus system CPU seconds a process has used."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _up(client: PrometheusClient, nodes: int) -> bool:
    answer = client.query("count(rate(container_cpu_usage_seconds_total[20s]))")
    return bool(answer.series) and answer.series[0].value >= nodes * 101


def _timed(source: FleetSource, prom_pid: int) -> tuple[float, int, float, float, Any]:
    """One refresh: (seconds, queries, Prometheus CPU s, ctop CPU s, frame)."""
    prom_cpu, own_cpu, begin = _cpu_s(prom_pid), time.process_time(), time.perf_counter()
    frame = source.frame_at(None)
    return (time.perf_counter() - begin, source.last_queries, _cpu_s(prom_pid) - prom_cpu,
            time.process_time() - own_cpu, frame)


def _figures(runs: list[tuple[float, int, float, float, Any]]) -> dict[str, float]:
    times = [r[0] for r in runs]
    return {"queries": max(r[1] for r in runs), "refresh_s_median": round(statistics.median(times), 3),
            "refresh_s_max": round(max(times), 3),
            "prometheus_cpu_s_per_refresh": round(statistics.mean(r[2] for r in runs), 3),
            "ctop_cpu_s_per_refresh": round(statistics.mean(r[3] for r in runs), 3)}


def quantile_error(histograms: int = 400, waits: int = 5000, seed: int = 1) -> dict[str, Any]:
    """How far p50 and p99 read from the exporter's buckets are from the true quantiles of log-normal waits (median 5 us
    to 5 ms, sigma 0.3 to 2): the median, 90th percentile and worst ratio (>= 1) over the histograms and both
    quantiles, for all 28 bounds, the 12 of large scopes, and ctop's own 4-per-octave histogram (the node's view and
    the exporter's quantile gauges)."""
    rng = random.Random(seed)
    ratios: dict[str, list[float]] = {"all_28_bounds": [], "coarse_12_bounds": [], "node_view": []}
    coarse = set(RUNQ_COARSE_BOUNDS_SECONDS)
    for _ in range(histograms):
        median, sigma = math.exp(rng.uniform(math.log(5e-6), math.log(5e-3))), rng.uniform(0.3, 2.0)
        samples = sorted(rng.lognormvariate(math.log(median), sigma) for _ in range(waits))
        counts = [0] * RUNQ_SLOTS
        for x in samples:
            counts[RUNQ_GEOMETRY.slot(int(x * 1e9))] += 1  # the slot the BPF program would use
        exported = {float(le): float(c) for le, c in runq_buckets(counts)}
        for q in (0.5, 0.99):
            true = samples[int(q * waits) - 1]
            for name, estimate in (
                    ("all_28_bounds", runq_quantiles(exported, (q,))[0]),
                    ("coarse_12_bounds", runq_quantiles({b: c for b, c in exported.items() if b in coarse}, (q,))[0]),
                    ("node_view", histogram_quantile(counts, q))):
                assert estimate is not None
                ratios[name].append(max(estimate / true, true / estimate))
    out: dict[str, Any] = {"histograms": histograms, "waits_each": waits, "seed": seed}
    for name, values in ratios.items():
        values.sort()
        out[name] = {"median_ratio": round(values[len(values) // 2], 2),
                     "p90_ratio": round(values[int(len(values) * 0.9)], 2), "max_ratio": round(values[-1], 2)}
    return out


def run(nodes: int = 20, pods_per_node: int = 50, repeats: int = 10, port_base: int | None = None) -> dict[str, Any]:
    base = PORTS.start + PORT_OFFSET if port_base is None else port_base
    started = time.time()
    with ExitStack() as stack:
        targets = {f"node-{n:02d}": stack.enter_context(synthetic_node(base + 1 + n, n, pods_per_node, started))
                   for n in range(nodes)}
        prom = stack.enter_context(fleet_prometheus(base, targets, f"{SCRAPE_INTERVAL_S}s"))
        client = PrometheusClient(ClientConfig(url=prom.url, timeout_s=30))
        deadline = time.monotonic() + 180
        while not _up(client, nodes):
            if time.monotonic() > deadline:
                raise RuntimeError("Prometheus did not hold rates of every synthetic cgroup within 180 s")
            time.sleep(1)
        time.sleep(SCRAPE_INTERVAL_S)
        interval = client.scrape_interval_s()
        loads = [os.getloadavg()[0]]
        full, steady, older = [], [], []
        frame = full_rows = None
        for _ in range(repeats):
            # Only the last frame is kept while the next is made, as the view keeps it: twenty frames alive would make
            # the garbage collector's work (and the CPU of a refresh) bigger than in the view.
            source = FleetSource(client, "", interval)
            *figures, full_frame = _timed(source, prom.proc.pid)
            full.append((*figures, None))
            full_rows = len(full_frame.rows)
            del full_frame
            *figures, frame = _timed(source, prom.proc.pid)
            steady.append((*figures, None))
            frame = None
            without_gauges = OlderExporters(client, "", interval)  # its first (full) refresh is not timed
            without_gauges.frame_at(None)
            older.append((*_timed(without_gauges, prom.proc.pid)[:4], None))
            *figures, frame = _timed(source, prom.proc.pid)
            steady.append((*figures, None))
            loads.append(os.getloadavg()[0])
        assert frame is not None and len(frame.rows) == full_rows
        kinds: dict[str, int] = {}
        for row in frame.rows.values():
            kinds[row.identity.kind] = kinds.get(row.identity.kind, 0) + 1
        series = client.query("count({__name__=~\"container_.*|ctop_.*\"})").series[0].value
    f, s, o = _figures(full), _figures(steady), _figures(older)
    queries = max(f["queries"], s["queries"])
    return {
        "nodes": nodes, "pods": nodes * pods_per_node, "series_in_prometheus": int(series),
        "source": f"real Prometheus scraping a synthetic exporter ({nodes} loopback ports), {SCRAPE_INTERVAL_S} s "
                  "scrape interval",
        "rows_per_refresh": len(frame.rows), "rows_by_kind": kinds,
        "queries_per_refresh": queries, "steady_queries_per_refresh": s["queries"],
        "refresh_s_median": s["refresh_s_median"], "refresh_s_max": s["refresh_s_max"],
        "steady_refresh": s, "full_refresh": f, "steady_refresh_older_exporters": o,
        "steady_over_older_ratio": round(s["refresh_s_median"] / o["refresh_s_median"], 2),
        "runq_quantile_error": quantile_error(),
        "load_average_1m": [round(min(loads), 1), round(max(loads), 1)],
        "how": " ".join([*(f"{k}={os.environ[k]}" for k in ("CTOP_TEST_FLEET_PORT_BASE",) if k in os.environ),
                         ".venv/bin/python bench/run.py fleet_refresh"]),
        "verdict": f"steady refresh median {s['refresh_s_median']:.2f} s, max {s['refresh_s_max']:.2f} s, full refresh "
                   f"(a first one, with the limits, names and who serves the run-queue gauges) median "
                   f"{f['refresh_s_median']:.2f} s "
                   f"(target < 1 s): {'met' if s['refresh_s_median'] < 1 else 'NOT met'} on a machine at load "
                   f"{min(loads):.0f}-{max(loads):.0f} (2 CPUs); CPU per steady refresh: Prometheus "
                   f"{s['prometheus_cpu_s_per_refresh']:.2f} s, ctop {s['ctop_cpu_s_per_refresh']:.2f} s; "
                   f"{s['queries']} queries per steady refresh, {f['queries']} per full one (target <= 10): "
                   f"{'met' if queries <= 10 else 'NOT met'}; a steady refresh of older exporters (no quantile "
                   f"gauges: 12 bucket bounds) in the same run: median {o['refresh_s_median']:.2f} s, Prometheus "
                   f"{o['prometheus_cpu_s_per_refresh']:.2f} CPU s (steady/older "
                   f"{s['refresh_s_median'] / o['refresh_s_median']:.2f})",
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=1))
