"""Benchmark: the exporter's hand-written text renderer against prometheus_client's own exposition.

Both render the same families of the 500-container scrape (exporter_scrape's synthetic Frame, once as it is and
once with eBPF counters on every cgroup, which adds the run-queue histograms): ctop through
``ctop.exporters.families.render``, prometheus_client through ``Metric`` objects built from those families,
collected from a registry by a custom collector and written by ``exposition.generate_latest``. The two outputs are
parsed back with prometheus_client's parser and must hold the same samples; the time per render is the median
of interleaved repeats.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from ctop.exporters.collector import Collected, build_families
from ctop.exporters.ctop_families import Health
from ctop.exporters.families import Family, render
from ctop.exporters.labels import CgroupFilter
from exporter_scrape import synthetic_frame
from prometheus_client.core import Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector, CollectorRegistry

from ctop.model.ebpf import EbpfCgroupCounters
from ctop.model.frame import Frame

_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
_UNESCAPE = re.compile(r"\\(.)")


def label_dict(text: str) -> dict[str, str]:
    """``a="x",b="y"`` (as ctop escapes it) back to {"a": "x", "b": "y"}."""
    return {name: _UNESCAPE.sub(lambda m: "\n" if m.group(1) == "n" else m.group(1), value)
            for name, value in _LABEL.findall(text)}


def with_ebpf(frame: Frame) -> Frame:
    """``frame`` with eBPF counters on every row: a run-queue histogram and the switch/process counters."""
    counters = EbpfCgroupCounters
    rows = {}
    for i, (path, row) in enumerate(frame.rows.items()):
        slots = len(counters().runq_buckets)
        buckets = tuple((i * 7 + s * 13) % 997 for s in range(slots))
        ev = counters(cgroup_id=i + 1, runq_buckets=buckets, runq_sum_seconds=i * 0.001 + 0.5,
                      runq_count=sum(buckets), nvcsw=i * 100, nivcsw=i * 10, preempted_by_others=i * 3,
                      preempted_by_host=i, forks=i % 50, execs=i % 20, exits=i % 40, oom_kills=i % 2)
        rows[path] = dataclasses.replace(row, ebpf=ev)
    return dataclasses.replace(frame, rows=rows, ebpf_state="ready")


def families_of(frame: Frame) -> list[Family]:
    """The families one scrape of ``frame`` renders (the exporter's own build_families)."""
    health = Health(collection_duration_s=0.0123, collections_total=7, last_success=True,
                    bpf_ns_per_event={"sched_switch": 120.5}, bpf_map_fill={"cgroups": 0.25})
    return build_families(Collected(frame, health, 1, 0.0), CgroupFilter())


class FamiliesCollector(Collector):
    """A prometheus_client custom collector yielding ``families`` as Metric objects, built at every collect()."""

    def __init__(self, families: list[Family]) -> None:
        self.families = families
        # A library-based exporter would build each cgroup's label dict once per scrape, as ctop builds its label
        # text once: parsed here ahead of the timing, looked up per sample inside it.
        self.labels = {text: label_dict(text) for fam in families for _, text, _ in fam.samples}

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        labels = self.labels
        for fam in self.families:
            if not fam.samples:
                continue
            # prometheus_client names a counter family without "_total" and adds it back when it writes
            base = fam.name[:-6] if fam.kind == "counter" and fam.name.endswith("_total") else fam.name
            metric = Metric(base, fam.help, fam.kind)
            name = fam.name
            for suffix, text, value in fam.samples:
                metric.add_sample(name + suffix, labels[text], value)
            yield metric


def library_renderer(families: list[Family]) -> Callable[[], bytes]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FamiliesCollector(families))
    return lambda: generate_latest(registry)


def parsed(text: bytes) -> dict[str, Any]:
    """Family name -> ({(type, help)}, samples) as prometheus_client's parser reads ``text``.

    Sample names are compared without a trailing "_total": the parser names the samples of a counter family
    that lacks the suffix (container_memory_failcnt) with it, and the other way round when the TYPE line has it.
    Values are compared as text: NaN (a run-queue quantile without waits) is not equal to itself.
    """
    out: dict[str, Any] = {}
    for fam in text_string_to_metric_families(text.decode("utf-8")):
        kinds, samples = out.setdefault(fam.name, (set(), []))
        kinds.add((fam.type, fam.documentation))  # more than one: samples the parser could not file under a TYPE
        samples.extend((s.name.removesuffix("_total"), tuple(sorted(s.labels.items())), repr(float(s.value)))
                       for s in fam.samples)
    return out


def compare(ours: bytes, theirs: bytes) -> dict[str, Any]:
    """Equal samples in both? Families whose type or help the library writes differently are listed."""
    a, b = parsed(ours), parsed(theirs)
    samples_a = sorted(s for _, samples in a.values() for s in samples)
    samples_b = sorted(s for _, samples in b.values() for s in samples)
    differ = sorted(set(a) ^ set(b) | {n for n in set(a) & set(b) if a[n][0] != b[n][0]})
    return {"samples": len(samples_a), "same_samples": samples_a == samples_b, "families_written_differently": differ}


def timed(renderers: dict[str, Callable[[], bytes]], repeats: int) -> dict[str, list[float]]:
    """Seconds per call of each renderer, interleaved so that machine noise falls on all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in renderers}
    for fn in renderers.values():
        fn()  # warm up
    for _ in range(repeats):
        for name, fn in renderers.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def measure(frame: Frame, repeats: int) -> dict[str, Any]:
    families = families_of(frame)
    ours = render(families)
    library = library_renderer(families)
    theirs = library()
    check = compare(ours, theirs)
    if not check["same_samples"]:
        raise RuntimeError("ctop's and prometheus_client's expositions hold different samples")
    prebuilt = list(FamiliesCollector(families).collect())

    class Prebuilt(Collector):
        def collect(self) -> Iterator[Metric]:
            return iter(prebuilt)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Prebuilt())
    times = timed({"ctop": lambda: render(families), "prometheus_client": library,
                   "generate_latest_only": lambda: generate_latest(registry)}, repeats)
    ms = {name: round(statistics.median(t) * 1000, 2) for name, t in times.items()}
    best = {name: round(min(t) * 1000, 2) for name, t in times.items()}
    return {
        "exported_cgroups": len(frame.rows),
        "samples": check["samples"],
        "ctop_bytes": len(ours),
        "prometheus_client_bytes": len(theirs),
        "ctop_ms_per_render": ms["ctop"],
        "prometheus_client_ms_per_render": ms["prometheus_client"],
        "prometheus_client_generate_latest_only_ms": ms["generate_latest_only"],
        "ratio_prometheus_client_to_ctop": round(ms["prometheus_client"] / ms["ctop"], 2),
        "best_ms": best,
        "repeats": repeats,
        "same_samples_after_parsing": check["same_samples"],
        "families_written_differently": check["families_written_differently"],
    }


def run(containers: int = 500, repeats: int = 20) -> dict[str, Any]:
    frame = synthetic_frame(containers, tick=1)
    result = {"containers": containers, "scrape": measure(frame, repeats),
              "scrape_with_ebpf": measure(with_ebpf(frame), repeats)}
    if not any(f.name == "ctop_runqueue_latency_seconds" and f.samples for f in families_of(with_ebpf(frame))):
        raise RuntimeError("the eBPF variant rendered no run-queue histogram")
    result["hand_written_is_faster"] = all(
        result[k]["ctop_ms_per_render"] < result[k]["prometheus_client_ms_per_render"]
        for k in ("scrape", "scrape_with_ebpf"))
    result["verdict"] = verdict(result)
    return result


def verdict(result: dict[str, Any]) -> str:
    """One sentence for BENCHMARKS.md: which renderer the exporter should use, by these figures."""
    scrape = result["scrape"]
    figures = (f"{scrape['ctop_ms_per_render']} ms against {scrape['prometheus_client_ms_per_render']} ms per render "
               f"of the {result['containers']}-container scrape (ratio {scrape['ratio_prometheus_client_to_ctop']}, "
               f"{result['scrape_with_ebpf']['ratio_prometheus_client_to_ctop']} with eBPF families)")
    if result["hand_written_is_faster"]:
        return (f"The hand-written renderer (exporters/families.py) is kept: {figures}, with the same samples "
                f"after parsing.")
    return f"prometheus_client is as fast or faster ({figures}): the exporter should render through the library."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--containers", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    print(json.dumps(run(args.containers, args.repeats), indent=2))


if __name__ == "__main__":
    sys.exit(main())
