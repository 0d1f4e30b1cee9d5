"""Benchmark of `ctop exporter`: scrape latency, exposition size, exporter CPU and RSS with 500 containers."""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from typing import Any

from ctop import allocator
from ctop.model.frame import CgroupRow, Frame, Identity, NetCounters
from ctop.model.sample import UNLIMITED, CgroupSample, HostSample, IoCounters, Pressure, Snapshot

# What Prometheus 2.42 sends.
PROM_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
               "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
TARGET_P99_S = 0.050
WARMUP_BURSTS = 4  # bursts before the exporter can forecast the next one (see exporters/forecast.py)
BURST_PERIOD_S = 1.25  # between burst starts: longer than the exporter's collection max age (1 s)
TARGET_RSS_NO_EBPF = 80 * 2**20
TARGET_RSS_EBPF = 200 * 2**20


def _sample(path: str, i: int, tick: int, limited: bool) -> CgroupSample:
    base = (i + 1) * 1_000_000 + tick * 10_000_000
    return CgroupSample(
        path=path, inode=10_000 + i,
        cpu_usage_ns=base * 7, cpu_user_ns=base * 4, cpu_system_ns=base * 3,
        cpu_quota_us=50_000 if limited else UNLIMITED, cpu_period_us=100_000, cpu_shares=512, cpu_weight=20,
        cpu_periods=tick * 100 + i, cpu_throttled_periods=tick * 3, cpu_throttled_ns=tick * 1_000_000,
        memory_usage_bytes=(64 + i % 100) * 2**20, memory_max_usage_bytes=(200 + i % 100) * 2**20,
        memory_limit_bytes=256 * 2**20 if limited else UNLIMITED, memory_inactive_file_bytes=2**20,
        memory_rss_bytes=40 * 2**20, memory_cache_bytes=20 * 2**20, memory_mapped_file_bytes=2**20,
        memory_swap_bytes=0, memory_swap_limit_bytes=UNLIMITED, memory_failcnt=i % 3, memory_oom_kills=0,
        io_by_device={"8:0": IoCounters(base, base, i, i), "8:16": IoCounters(base // 2, base // 3, i, i)},
        io_total=IoCounters(base * 2, base * 2, i * 2, i * 2),
        pids_current=3, pids_max=UNLIMITED, processes=2, threads=3,
        pressure_cpu=Pressure(0.1, base, 0.0, base // 2), pressure_memory=Pressure(0.0, base // 4, 0.0, 0),
        pressure_io=Pressure(0.0, base // 8, 0.0, 0),
    )


def synthetic_frame(containers: int = 500, tick: int = 0) -> Frame:
    """A kubelet-shaped tree: root, kubepods, QoS slices, and pods of one pause and one app container each."""
    host = HostSample(monotonic_s=1000.0 + tick, wall_time_s=1.7e9 + tick, cpu_time_ns=10**13 + tick * 10**9,
                      online_cpus=2, memory_total_bytes=24 * 2**30, block_devices={"8:0": "sda", "8:16": "sdb"})
    rows: dict[str, CgroupRow] = {}

    def add(path: str, identity: Identity, limited: bool = False, net: bool = False) -> None:
        i = len(rows)
        counters = NetCounters(i * 1000 + tick, i + tick, 0, 0, i * 900 + tick, i + tick, 0, 0)
        rows[path] = CgroupRow(sample=_sample(path, i, tick, limited), identity=identity,
                               net={"eth0": counters} if net else None)

    add("/", Identity(kind="root"))
    add("/kubepods", Identity(kind="slice", runtime="kubernetes"))
    qos = ("guaranteed", "burstable", "besteffort")
    for q in qos[1:]:
        add(f"/kubepods/{q}", Identity(kind="qos", runtime="kubernetes", qos_class=q))
    for p in range(max(1, containers // 2)):
        q = qos[p % 3]
        uid = f"{p:08d}-aaaa-bbbb-cccc-{p:012d}"
        pod_path = f"/kubepods/pod{uid}" if q == "guaranteed" else f"/kubepods/{q}/pod{uid}"
        pod, ns = f"web-{p}-7d9f8c6b5-x{p % 97:02d}", f"team-{p % 12}"
        add(pod_path, Identity(kind="pod", runtime="kubernetes", pod=pod, pod_uid=uid, namespace=ns, qos_class=q),
            net=True)
        for c, cname in enumerate(("POD", "app")):
            cid = f"{p:032x}{c:032x}"
            add(f"{pod_path}/{cid}", Identity(kind="container", runtime="docker", container_id=cid,
                                              name=f"k8s_{cname}_{pod}_{ns}_{uid}_0", image=f"registry/app:{p % 5}",
                                              pod=pod, pod_uid=uid, namespace=ns, container=cname, qos_class=q,
                                              start_time_s=1.69e9 + p),
                limited=q != "besteffort" and cname == "app")
    snapshot = Snapshot(host=host, cgroups={path: row.sample for path, row in rows.items()}, mode="v1")
    return Frame(snapshot=snapshot, rows=rows, interval_s=1.0 if tick else None)


def serve(containers: int, port_file: str, real: bool, ebpf: bool = False) -> None:
    """The exporter process of the benchmark: synthetic Frames (or the real collector) behind the real server."""
    from ctop.exporters.collector import FrameCollector, SharedFrames
    from ctop.exporters.exposition import Exposition
    from ctop.exporters.server import make_server
    from ctop.exporters.webconfig import WebConfig

    allocator.settle()  # as `ctop exporter` does (ctop.cli.main)
    if real:
        from ctop.exporter_cmd import make_collector

        collector = make_collector("/sys/fs/cgroup", "/proc", ebpf, None)
        deadline = time.monotonic() + 120
        while ebpf and time.monotonic() < deadline:  # measure with the programs loaded
            if collector.ebpf_state() in ("ready", "failed", "off"):
                break
            time.sleep(0.5)
        source = collector.collect
    else:
        frames = [synthetic_frame(containers, tick) for tick in range(2)]
        count = [0]

        def source() -> Frame:
            count[0] += 1
            return frames[count[0] % 2]

    server = make_server("127.0.0.1:0", Exposition(FrameCollector(SharedFrames(source, 1.0))), WebConfig())
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    server.serve_forever(poll_interval=0.5)


def _scrape(port: int, decompress: bool = False) -> tuple[float, int, int]:
    """One scrape as Prometheus does it (gzip); the time is until the last byte arrived."""
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/metrics", headers={"Accept": PROM_ACCEPT, "Accept-Encoding": "gzip"})
    resp = conn.getresponse()
    data = resp.read()
    elapsed = time.perf_counter() - start
    conn.close()
    if resp.status != 200:
        raise RuntimeError(f"scrape answered {resp.status}")
    gzipped = resp.getheader("Content-Encoding") == "gzip"
    plain = len(gzip.decompress(data)) if decompress and gzipped else len(data)
    return elapsed, len(data), plain


def _collections(port: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/metrics")
    body = conn.getresponse().read().decode()
    conn.close()
    line = next(line for line in body.splitlines() if line.startswith("ctop_collections_total "))
    return int(float(line.split()[1]))


def _proc_times(pid: int) -> tuple[float, int]:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu_s = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
    return cpu_s, rss


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _burst_worker(port: int, count: int, barrier: Any, results: Any) -> None:
    for _ in range(count):
        barrier.wait()
        results.put(_scrape(port)[0])


def _bursts(port: int, scrapers: int, count: int, warmup: int = WARMUP_BURSTS,
            period_s: float = BURST_PERIOD_S) -> tuple[list[float], list[float]]:
    """``warmup + count`` times, every ``period_s`` (as Prometheus schedules its scrapes, whatever the answers
    took): ``scrapers`` scrape at the same instant, once the cached collection is stale.

    Each scraper is its own process (like separate Prometheus servers, and no client-side GIL contention). The
    first ``warmup`` bursts come before the exporter can know the period: each pays for a fresh collection and
    render on the spot (the cold figure). The next ``count`` are the steady state a scraped exporter lives in
    (the p50/p99 headline): their collection and bodies can be made just before they are due.
    """
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(scrapers + 1)
    results = ctx.Queue()
    total = warmup + count
    workers = [ctx.Process(target=_burst_worker, args=(port, total, barrier, results)) for _ in range(scrapers)]
    for w in workers:
        w.start()
    cold: list[float] = []
    steady: list[float] = []
    try:
        start = time.monotonic() + 1.1  # the cached collection (max age 1 s) is stale by then
        for i in range(total):
            time.sleep(max(0.0, start + i * period_s - time.monotonic()))
            barrier.wait(timeout=60)
            (cold if i < warmup else steady).extend(results.get(timeout=60) for _ in range(scrapers))
    finally:
        for w in workers:
            w.join(timeout=30)
    return steady, cold


def measure(containers: int, scrapers: int, seconds: float, real: bool = False,
            ebpf: bool = False, bursts_count: int = 10) -> dict[str, Any]:
    """Start an exporter process and measure it: bursts of ``scrapers`` simultaneous scrapes on a fresh
    collection each, and ``scrapers`` threads scraping back to back for ``seconds`` (a stress figure: a fresh
    collection and render every second, while the others reuse it).
    """
    port_file = f"/tmp/ctop-bench-exporter-{os.getpid()}-{int(real)}{int(ebpf)}.port"
    args = [sys.executable, __file__, "--serve", str(containers), port_file]
    args += (["--real"] if real else []) + (["--ebpf"] if ebpf else [])
    proc = subprocess.Popen(args)
    try:
        deadline = time.monotonic() + 180
        while not os.path.exists(port_file):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the benchmark exporter did not start")
            time.sleep(0.05)
        with open(port_file) as f:
            port = int(f.read())
        _, wire_size, plain_size = _scrape(port, decompress=True)  # also warms up: first collection and render
        cpu0, _ = _proc_times(proc.pid)
        latencies: list[float] = []
        lock = threading.Lock()

        def worker() -> None:
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                elapsed, _, _ = _scrape(port)
                with lock:
                    latencies.append(elapsed)

        wall0 = time.perf_counter()
        threads = [threading.Thread(target=worker) for _ in range(scrapers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - wall0
        cpu1, rss = _proc_times(proc.pid)
        collections = _collections(port) - 1
        bursts, cold = _bursts(port, scrapers, count=bursts_count)
        # One scrape every 15 s: the cost of one fresh collection + render, spread over 15 s.
        time.sleep(1.1)
        c0, _ = _proc_times(proc.pid)
        single = [_scrape(port)[0]]
        time.sleep(1.1)
        single.append(_scrape(port)[0])
        c1, _ = _proc_times(proc.pid)
        return {
            "containers": containers if not real else None,
            "real_cgroups": real,
            "ebpf": ebpf,
            "scrapers": scrapers,
            "back_to_back_duration_s": round(wall, 2),
            "fresh_collections_during_run": collections,
            "p50_s": round(_percentile(bursts, 0.50), 4),
            "p99_s": round(_percentile(bursts, 0.99), 4),
            "max_s": round(max(bursts), 4),
            "bursts": bursts_count,
            "burst_period_s": BURST_PERIOD_S,
            "cold_bursts": WARMUP_BURSTS,
            "cold_p50_s": round(_percentile(cold, 0.50), 4),
            "cold_p99_s": round(_percentile(cold, 0.99), 4),
            "back_to_back_scrapes": len(latencies),
            "back_to_back_p50_s": round(_percentile(latencies, 0.50), 4),
            "back_to_back_p99_s": round(_percentile(latencies, 0.99), 4),
            "exposition_bytes": plain_size,
            "exposition_gzip_bytes": wire_size,
            "exporter_cpu_percent_under_load": round((cpu1 - cpu0) / wall * 100, 1),
            "exporter_cpu_s_per_fresh_scrape": round((c1 - c0) / 2, 4),
            "exporter_cpu_percent_at_15s_interval": round((c1 - c0) / 2 / 15 * 100, 3),
            "exporter_rss_bytes": rss,
            "fresh_scrape_latency_s": round(max(single), 4),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if os.path.exists(port_file):
            os.unlink(port_file)


def run(containers: int = 500, scrapers: int = 20, seconds: float = 5.0, real: bool = True,
        sweep: tuple[int, ...] = (100, 1000)) -> dict[str, Any]:
    """Synthetic Frames of ``containers`` (the target figure) and of each count in ``sweep`` (latency and size
    against container count), and, if cheap, runs against this host's real cgroups with and without eBPF."""
    result: dict[str, Any] = {"synthetic": measure(containers, scrapers, seconds)}
    syn = result["synthetic"]
    result["targets"] = {
        "p99_below_50ms": syn["p99_s"] < TARGET_P99_S,
        "rss_below_80MB_without_ebpf": syn["exporter_rss_bytes"] < TARGET_RSS_NO_EBPF,
        "cpu_below_1pct_at_15s": syn["exporter_cpu_percent_at_15s_interval"] < 1.0,
    }
    by_count = {containers: syn}
    for count in sweep:
        by_count[count] = measure(count, scrapers, seconds, bursts_count=5)
    result["by_container_count"] = {
        str(n): {k: by_count[n][k] for k in ("p50_s", "p99_s", "cold_p99_s", "exposition_bytes",
                                             "exposition_gzip_bytes", "exporter_rss_bytes") if k in by_count[n]}
        for n in sorted(by_count)}
    if real and os.path.isdir("/sys/fs/cgroup"):
        result["real"] = measure(0, scrapers, seconds, real=True)
        if os.geteuid() == 0:
            result["real_with_ebpf"] = measure(0, scrapers, seconds, real=True, ebpf=True)
            result["targets"]["rss_below_200MB_with_ebpf"] = \
                result["real_with_ebpf"]["exporter_rss_bytes"] < TARGET_RSS_EBPF
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--serve", nargs=2, metavar=("CONTAINERS", "PORT_FILE"), help=argparse.SUPPRESS)
    parser.add_argument("--real", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ebpf", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--containers", type=int, default=500)
    parser.add_argument("--scrapers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--no-real", action="store_true", help="skip the run against this host's cgroups")
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), args.serve[1], args.real, args.ebpf)
        return
    print(json.dumps(run(args.containers, args.scrapers, args.seconds, not args.no_real), indent=2))


if __name__ == "__main__":
    sys.exit(main())
