"""Benchmark: naming 2000 Kubernetes-shaped cgroup paths from the path alone, uncached and from the collector's map.

identify() parses a path (no I/O, no cache). The collector keeps the identities of the cgroups of its latest
refresh (Collector.enrich), so a repeated scan of an unchanged node parses nothing; that map is as large as the
node and forgets churned paths. For comparison, a fixed lru_cache(1024) (what identify() used to have) makes no
hit at all when 2000 paths are scanned in order again.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from support.k8s_paths import kubernetes_paths  # noqa: E402
from support.trees import tree  # noqa: E402

import ctop.collector  # noqa: E402
from ctop.collector import Collector, CollectorConfig  # noqa: E402
from ctop.model.sample import CgroupSample, HostSample, Snapshot  # noqa: E402
from ctop.runtimes.identify import Identity, identify  # noqa: E402


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1000, 3)


def _snapshot(paths: list[str]) -> Snapshot:
    host = HostSample(monotonic_s=1.0, wall_time_s=1.7e9, cpu_time_ns=0, online_cpus=2, memory_total_bytes=2**30)
    return Snapshot(host=host, cgroups={p: CgroupSample(path=p, inode=i) for i, p in enumerate(paths)}, mode="v1")


def _lru_hits_on_repeat(paths: list[str], size: int | None) -> int:
    cached = functools.lru_cache(maxsize=size)(identify)
    for _ in range(2):
        for p in paths:
            cached(p)
    return cached.cache_info().hits


def run(count: int = 2000, repeats: int = 50) -> dict[str, Any]:
    paths = kubernetes_paths(count)
    snapshot = _snapshot(paths)
    churned = [_snapshot(kubernetes_paths(count, offset=10_000 * (1 + i % 2))) for i in range(2)]
    cgroup_root, proc_root = tree("v1-k8s-cgroupfs")
    config = CollectorConfig(cgroup_root=cgroup_root, proc_root=proc_root, containers=False, ebpf=False)

    def uncached() -> None:
        for p in paths:
            identify(p)

    fresh = Collector(config)
    turn = [0]

    def all_new() -> None:  # every path differs from the previous refresh's: each one is identified
        turn[0] += 1
        fresh.enrich(churned[turn[0] % 2])

    warm = Collector(config)
    warm.enrich(snapshot)

    calls = [0]
    real: Callable[[str], Identity] = ctop.collector.identify

    def counted(path: str) -> Identity:
        calls[0] += 1
        return real(path)

    ctop.collector.identify = counted  # type: ignore[assignment]
    try:
        warm.enrich(snapshot)
        calls_on_repeat = calls[0]
    finally:
        ctop.collector.identify = real  # type: ignore[assignment]

    identify_ms = _median_ms(uncached, repeats)
    first_ms = _median_ms(all_new, repeats)
    repeat_ms = _median_ms(lambda: warm.enrich(snapshot), repeats)
    return {
        "paths": count,
        "identify_uncached_ms_per_scan": identify_ms,
        "identify_uncached_us_per_path": round(identify_ms * 1000 / count, 2),
        "enrich_all_paths_new_ms": first_ms,
        "enrich_repeated_refresh_ms": repeat_ms,
        "identify_calls_on_repeated_refresh": calls_on_repeat,
        "saved_ms_per_refresh": round(first_ms - repeat_ms, 3),
        "lru_cache_1024_hits_on_repeated_scan": _lru_hits_on_repeat(paths, 1024),
        "repeats": repeats,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--paths", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    print(json.dumps(run(args.paths, args.repeats), indent=2))


if __name__ == "__main__":
    sys.exit(main())
