"""BENCHMARKS.md's headline table is built from whatever benchmarks ran; missing or failed ones are left out."""

from __future__ import annotations

from support.scripts import load_script


def load_run():
    return load_script("bench/run.py", "bench_run")


def test_headline_rows_carry_the_measured_figures_and_ratios() -> None:
    results = {
        "cgroup_refresh": {"1004_cgroups": {"ctop_cpu_ms_per_refresh": 76.3, "systemd_cgtop_cpu_ms_per_refresh": 128,
                                            "ratio_ctop_to_cgtop": 0.596, "ctop_fields_per_cgroup": 56},
                           "104_cgroups": {"error": "RuntimeError: no"}},
        "bpf_cost": {"empty_ns_per_switch": 61.5, "ctop": {"ns_per_switch": 175.0, "ratio_to_empty": 2.85}},
        "cgroup_watch": {"cgroups_built": 1004, "hierarchies": 7,
                         "unchanged": {"inotify_cpu_ms_per_refresh": 0.955, "stat_cpu_ms_per_refresh": 40.344,
                                       "ratio_inotify_to_stat": 0.0237},
                         "churn": {"inotify_cpu_ms_per_refresh": 3.723, "stat_cpu_ms_per_refresh": 45.118,
                                   "ratio_inotify_to_stat": 0.0825}},
        "exporter_scrape": {"error": "OSError: boom"},
        "exporter_load": {"clients": 50, "slow_clients": 20, "seconds": 60.0, "scrapes": 29637, "errors": 0,
                          "p99_s": 0.0118, "single_p99_s": 0.0045, "rss_baseline_bytes": 50 * 2**20,
                          "rss_after_bytes": 72 * 2**20},
        "steady_state": {"docker_stats": {"total_cpu_percent": 3.2}, "ratio_ctop_view_to_docker_stats": 0.5,
                         "ctop_interactive": {"total_cpu_percent": 1.6, "rss_bytes": 160 * 2**20}},
    }
    table = load_run().summary(results)
    text = "\n".join(table)
    assert table[0].startswith("| What")
    assert ("| CPU per refresh, 1004 cgroups | 76.3 ms (56 fields) | systemd-cgtop 128 ms (5 fields): ratio 0.596 |"
            in text)
    assert "175.0 ns" in text and "ratio 2.85" in text
    assert ("| finding cgroups per refresh, 1004 cgroups x 7 hierarchies, unchanged tree | 0.955 ms (inotify) | "
            "one stat per cgroup 40.344 ms: ratio 0.0237 |") in text
    assert "one pod in and one out per refresh | 3.723 ms (inotify)" in text
    assert "1.6 % of one CPU | RSS 160 MB" in text and "docker stats: 0.5" in text
    assert "29637 scrapes, 0 errors, p99 11.8 ms" in text and "50 MB before, 72 MB after" in text
    assert "104 cgroups" not in text and "exporter scrape" not in text


def test_nothing_ran_gives_no_table() -> None:
    assert load_run().summary({"cgroup_refresh": {"error": "x"}}) == []


def test_a_partial_run_keeps_the_other_benchmarks_figures(tmp_path) -> None:
    run = load_run()
    store = tmp_path / "BENCHMARKS.json"
    store.write_text('{"bpf_cost": {"figures": {"empty_ns_per_switch": 60, "ctop": {"ns_per_switch": 170, '
                     '"ratio_to_empty": 2.8}}, "commit": "abc", "machine": "m", "when": "then"}, "junk": 5}')
    runs = run.load_previous(str(store))
    assert list(runs) == ["bpf_cost"]
    runs["exporter_load"] = {"figures": {"error": "x"}, "commit": "def", "machine": "m", "when": "now"}
    text = run.markdown(runs)
    assert "170 ns" in text and "commit abc, then" in text and "commit def, now" in text
    assert text.index("## bpf_cost") < text.index("## exporter_load")
    assert run.load_previous(str(tmp_path / "missing.json")) == {}


def test_what_a_person_wrote_survives_a_run() -> None:
    """Notes under the table and sections that no benchmark writes are kept; a benchmark's own section is replaced."""
    run = load_run()
    runs = {"bpf_cost": {"figures": {"empty_ns_per_switch": 60, "ctop": {"ns_per_switch": 170, "ratio_to_empty": 2.8}},
                         "commit": "abc", "machine": "m", "when": "then"}}
    previous = ("# Benchmarks\n\nintro\n\n| What | ctop | Against |\n|---|---|---|\n| old row | 1 | 2 |\n\n"
                "A note on the figures above.\nIts second line.\n\n"
                "## issue 99: before and after\n\nHand-measured table.\n| a | b |\n\n"
                "## bpf_cost\n\nstale text 999 ns\n")
    text = run.markdown(runs, previous)
    assert "A note on the figures above.\nIts second line.\n" in text
    assert "## issue 99: before and after\n\nHand-measured table.\n| a | b |\n" in text
    assert "stale text" not in text and "old row" not in text and "170 ns" in text
    assert text.index("| BPF cost") < text.index("A note") < text.index("## issue 99") < text.index("## bpf_cost")
    assert run.markdown(runs, text) == text  # a second run over its own output changes nothing


def test_a_benchmark_not_run_keeps_its_section_as_a_person_left_it() -> None:
    run = load_run()
    runs = {"bpf_cost": {"figures": {"empty_ns_per_switch": 60, "ctop": {"ns_per_switch": 170, "ratio_to_empty": 2.8}},
                         "commit": "abc", "machine": "m", "when": "then"},
            "exporter_load": {"figures": {"error": "x"}, "commit": "def", "machine": "m", "when": "now"}}
    previous = run.markdown(runs).replace("Run on m, commit def, now.", "Run on m, commit def, now, by hand: load 9.")
    text = run.markdown(runs, previous, ["bpf_cost"])
    assert "commit def, now, by hand: load 9." in text
    assert run.markdown(runs, previous, ["exporter_load"]).count("by hand") == 0


def test_the_fleet_row_names_the_older_exporters_figure_of_the_same_run() -> None:
    fleet = {"nodes": 20, "pods": 1000, "rows_per_refresh": 2030, "queries_per_refresh": 9,
             "steady_queries_per_refresh": 6, "refresh_s_median": 0.545, "refresh_s_max": 0.649,
             "full_refresh": {"refresh_s_median": 0.645}, "steady_refresh_older_exporters": {"refresh_s_median": 0.812}}
    text = "\n".join(load_run().summary({"fleet_refresh": fleet}))
    assert ("| fleet view refresh, 20 nodes and 1000 pods in Prometheus | median 0.545 s, max 0.649 s, 6 queries "
            "(steady); full refresh median 0.645 s, 9 queries | targets: under 1 s, at most 10 queries (2030 rows); "
            "older exporters' steady refresh (bucket series) 0.812 s in the same run |") in text
    del fleet["steady_refresh_older_exporters"]  # an older result file: the row without it
    assert "older exporters" not in "\n".join(load_run().summary({"fleet_refresh": fleet}))
