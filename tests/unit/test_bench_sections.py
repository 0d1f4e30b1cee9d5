"""The exporter_render and identify_refresh benchmarks check what they compare, and reach BENCHMARKS.md's table."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "bench")


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """bench/ on the path, as bench/run.py puts it; returns run.py's module."""
    monkeypatch.syspath_prepend(BENCH)
    return importlib.import_module("run")


def test_label_text_is_read_back_unescaped(bench: ModuleType) -> None:
    render = importlib.import_module("exporter_render")
    from ctop.exporters.families import label_text

    values = ('a"b', "c\\d", "e\nf", "", "plain")
    assert render.label_dict(label_text(("p", "q", "r", "s", "t"), values)) == dict(zip("pqrst", values))


def test_exporter_render_compares_equal_samples_both_ways(bench: ModuleType) -> None:
    render = importlib.import_module("exporter_render")
    figures = render.run(containers=10, repeats=1)
    for variant in ("scrape", "scrape_with_ebpf"):
        result = figures[variant]
        assert result["same_samples_after_parsing"] and result["samples"] > 100
        # prometheus_client writes a counter's TYPE line with "_total": cAdvisor's container_memory_failcnt has none
        assert result["families_written_differently"] == ["container_memory_failcnt"]
    assert figures["scrape_with_ebpf"]["samples"] > figures["scrape"]["samples"]


def test_exporter_render_notices_a_missing_sample(bench: ModuleType) -> None:
    render = importlib.import_module("exporter_render")
    from ctop.exporters.families import render as text

    families = render.families_of(render.synthetic_frame(4, tick=1))
    full = text(families)
    families[0].samples.pop()
    assert not render.compare(full, render.library_renderer(families)())["same_samples"]


def test_identify_refresh_counts_no_parse_on_a_repeated_scan(bench: ModuleType) -> None:
    figures = importlib.import_module("identify_refresh").run(count=2000, repeats=1)
    assert figures["identify_calls_on_repeated_refresh"] == 0
    assert figures["lru_cache_1024_hits_on_repeated_scan"] == 0  # why the fixed-size cache went


def test_both_sections_have_headline_rows(bench: ModuleType) -> None:
    results = {
        "exporter_render": {"scrape": {"samples": 29569, "ctop_ms_per_render": 18.7,
                                       "prometheus_client_ms_per_render": 462.5,
                                       "ratio_prometheus_client_to_ctop": 24.74}},
        "identify_refresh": {"paths": 2000, "enrich_repeated_refresh_ms": 16.1, "enrich_all_paths_new_ms": 40.8,
                             "identify_calls_on_repeated_refresh": 0, "identify_uncached_us_per_path": 7.95},
    }
    text = "\n".join(bench.summary(results))
    assert "| exporter text rendering, 500 containers (29569 samples) | 18.7 ms (hand-written) | " \
           "prometheus_client 462.5 ms: ratio 24.74 |" in text
    assert "16.1 ms repeated (0 parses), 40.8 ms all new" in text and "7.95 us per path" in text
    assert set(results) <= set(bench.BENCHMARKS)


def test_the_render_verdict_follows_the_figures_and_reaches_the_section(bench: ModuleType) -> None:
    render = importlib.import_module("exporter_render")

    def result(ours: float, theirs: float) -> dict[str, object]:
        scrape = {"ctop_ms_per_render": ours, "prometheus_client_ms_per_render": theirs,
                  "ratio_prometheus_client_to_ctop": round(theirs / ours, 2)}
        return {"containers": 500, "scrape": scrape, "scrape_with_ebpf": scrape,
                "hand_written_is_faster": ours < theirs}

    kept = render.verdict(result(20.0, 500.0))
    assert kept.startswith("The hand-written renderer") and "20.0 ms against 500.0 ms" in kept and "ratio 25.0" in kept
    assert "render through the library" in render.verdict(result(20.0, 19.0))
    runs = {"exporter_render": {"figures": {"verdict": kept}, "commit": "abc", "machine": "m", "when": "now"}}
    assert f"\n{kept}\n" in bench.markdown(runs)
