"""``make bench``: runs every benchmark in this folder and rewrites BENCHMARKS.md with the machine and the figures.

Usage: bench/run.py [NAME ...]   (names: the keys of BENCHMARKS below, e.g. exporter_render; default: all)
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Iterable

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

BENCHMARKS = {
    "cgroup_refresh": "ctop CPU per refresh vs systemd-cgtop -b, ~1000 Kubernetes-shaped cgroups",
    "cgroup_watch": "finding new and removed cgroups each refresh: inotify events vs one stat per known cgroup, "
                    "every hierarchy, ~1000 cgroups",
    "bpf_cost": "BPF cost per context switch vs an empty program (pipe ping-pong)",
    "exporter_scrape": "exporter scrape latency, size, CPU and RSS vs container count",
    "steady_state": "steady CPU and RSS of the interactive view and the exporter, with `docker stats` as a peer",
    "exporter_load": "exporter under 50 clients scraping back to back for 60 s plus 20 slow-loris connections",
    "history_store": "flight recorder store, 200 containers (271 cgroups) at 1 s for an hour: bytes per value, CPU, "
                     "opening a 7-day store, one hour of one container",
    "exporter_render": "the exporter's hand-written text renderer vs prometheus_client's generate_latest, same "
                       "families of the 500-container scrape (outputs checked equal after parsing)",
    "identify_refresh": "naming 2000 Kubernetes-shaped cgroup paths: identify() uncached vs the collector's "
                        "per-refresh map on a repeated scan",
    "memory": "RSS of the batch loop, the interactive view and the exporter, with eBPF (compiled in a child "
              "process) and with --no-ebpf",
    "fleet_refresh": "the fleet view (ctop --prometheus): one refresh over a real Prometheus holding 20 nodes and "
                     "1000 pods (a synthetic exporter), time and queries per refresh",
}


def _get(results: dict[str, object], *keys: str) -> object:
    value: object = results
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _fmt(value: object, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if unit == "MB" and isinstance(value, (int, float)):
        return f"{value / 2**20:.0f} MB"
    if unit == "ms" and isinstance(value, (int, float)):
        return f"{value * 1000:.1f} ms"
    return f"{value}{unit}"


def summary(results: dict[str, object]) -> list[str]:
    """The headline figures as a table (details follow as JSON); "n/a" where a benchmark did not run."""
    rows: list[tuple[str, str, str]] = []
    refresh = results.get("cgroup_refresh")
    if isinstance(refresh, dict):
        for size, figures in refresh.items():
            if isinstance(figures, dict) and "ratio_ctop_to_cgtop" in figures:
                rows.append((f"CPU per refresh, {size.replace('_', ' ')}",
                             f"{figures['ctop_cpu_ms_per_refresh']} ms ({figures['ctop_fields_per_cgroup']} fields)",
                             f"systemd-cgtop {figures['systemd_cgtop_cpu_ms_per_refresh']} ms (5 fields): "
                             f"ratio {figures['ratio_ctop_to_cgtop']}"))
    watch = results.get("cgroup_watch")
    if isinstance(watch, dict) and "unchanged" in watch:
        for case, label in (("unchanged", "unchanged tree"), ("churn", "one pod in and one out per refresh")):
            figures = watch[case]
            rows.append((f"finding cgroups per refresh, {watch['cgroups_built']} cgroups x {watch['hierarchies']} "
                         f"hierarchies, {label}", f"{figures['inotify_cpu_ms_per_refresh']} ms (inotify)",
                         f"one stat per cgroup {figures['stat_cpu_ms_per_refresh']} ms: ratio "
                         f"{figures['ratio_inotify_to_stat']}"))
    for variant, label in (("ctop", "BPF cost per context switch"),
                           ("ctop_timestamps", "BPF cost per context switch, no-BTF fallback")):
        ns = _get(results, "bpf_cost", variant, "ns_per_switch")
        if ns is not None:
            rows.append((label, f"{ns} ns", f"empty program {_get(results, 'bpf_cost', 'empty_ns_per_switch')} ns: "
                                            f"ratio {_get(results, 'bpf_cost', variant, 'ratio_to_empty')} "
                                            f"(empty raw tracepoint program: "
                                            f"{_get(results, 'bpf_cost', variant, 'ratio_to_empty_raw')})"))
    for variant, label in (("ctop", "BPF cost per context switch, busy loop on every CPU"),
                           ("ctop_tagged", "BPF cost per context switch, busy loop on every CPU, tagged thread array"),
                           ("ctop_rawtp", "BPF cost per context switch, busy loop on every CPU, raw tracepoint "
                                          "without BTF types (fallback)")):
        ns = _get(results, "bpf_cost", "busy", variant, "ns_per_switch")
        if ns is not None:
            rows.append((label, f"{ns} ns", f"empty program {_get(results, 'bpf_cost', 'busy', 'empty_ns_per_switch')}"
                                            f" ns: ratio {_get(results, 'bpf_cost', 'busy', variant, 'ratio_to_empty')}"
                                            f" (median of runs: "
                                            f"{_get(results, 'bpf_cost', 'busy', variant + '_ratio_median')})"))
    added = _get(results, "bpf_cost", "full_cost", "added_ns_per_switch")
    if isinstance(added, dict) and "ctop" in added:
        rows.append(("BPF full cost per context switch (trace record included)", f"{added['ctop']} ns",
                     f"empty classic tracepoint program {added.get('empty_classic')} ns, empty raw "
                     f"{added.get('empty_raw')} ns"))
    by_count = _get(results, "exporter_scrape", "by_container_count")
    if isinstance(by_count, dict):
        for count, figures in by_count.items():
            rows.append((f"exporter scrape, {count} containers, 20 concurrent scrapers",
                         f"p50 {_fmt(figures.get('p50_s'), 'ms')}, p99 {_fmt(figures.get('p99_s'), 'ms')}",
                         f"{_fmt(figures.get('exposition_bytes'), 'MB')} text, "
                         f"{figures.get('exposition_gzip_bytes', 0) // 1024} KB gzip"))
    for label, key in (("interactive view", "ctop_interactive"), ("interactive view, --no-ebpf",
                                                                   "ctop_interactive_no_ebpf"),
                       ("exporter, one scrape per 15 s", "ctop_exporter"),
                       ("exporter, --no-ebpf", "ctop_exporter_no_ebpf")):
        figures = _get(results, "steady_state", key)
        if isinstance(figures, dict):
            rows.append((f"steady state, {label}", f"{figures['total_cpu_percent']} % of one CPU",
                         f"RSS {_fmt(figures['rss_bytes'], 'MB')}"))
    for label, key in (("batch loop", "ctop_batch"), ("interactive view", "ctop_interactive"),
                       ("exporter", "ctop_exporter")):
        with_ebpf, without = _get(results, "memory", key), _get(results, "memory", key + "_no_ebpf")
        if isinstance(with_ebpf, dict) and isinstance(without, dict):
            rows.append((f"RSS, {label} with eBPF", _fmt(with_ebpf.get("rss_bytes"), "MB"),
                         f"--no-ebpf {_fmt(without.get('rss_bytes'), 'MB')}: ratio "
                         f"{with_ebpf.get('ratio_to_no_ebpf')} (target: at most 60 MB)"))
    peer = _get(results, "steady_state", "docker_stats")
    if isinstance(peer, dict):
        rows.append(("peer: `docker stats` for the same containers", f"{peer['total_cpu_percent']} % of one CPU",
                     f"ctop view / docker stats: {_get(results, 'steady_state', 'ratio_ctop_view_to_docker_stats')}"))
    for variant, label in (("scrape", "500 containers"), ("scrape_with_ebpf", "500 containers with eBPF")):
        render = _get(results, "exporter_render", variant)
        if isinstance(render, dict) and "ctop_ms_per_render" in render:
            rows.append((f"exporter text rendering, {label} ({render['samples']} samples)",
                         f"{render['ctop_ms_per_render']} ms (hand-written)",
                         f"prometheus_client {render['prometheus_client_ms_per_render']} ms: "
                         f"ratio {render['ratio_prometheus_client_to_ctop']}"))
    names = results.get("identify_refresh")
    if isinstance(names, dict) and "enrich_repeated_refresh_ms" in names:
        rows.append((f"naming {names['paths']} cgroup paths per refresh",
                     f"{names['enrich_repeated_refresh_ms']} ms repeated ({names['identify_calls_on_repeated_refresh']}"
                     f" parses), {names['enrich_all_paths_new_ms']} ms all new",
                     f"identify() alone {names['identify_uncached_us_per_path']} us per path"))
    store = results.get("history_store")
    if isinstance(store, dict) and "recording" in store:
        rec = store["recording"]
        opened = store["open_7_day_store_at_random_instants_ms"]
        rows.append((f"flight recorder, {rec['cgroups']} cgroups at 1 s ({rec['counters_per_cgroup']} counters each)",
                     f"{rec['bytes_per_counter_value']} bytes per value, {rec['append_cpu_percent_of_one_cpu_at_1s']} %"
                     " of one CPU",
                     f"budget 0.5 B and 0.5 %; open a 7-day store: median {opened['median']} ms, max {opened['max']} ms"
                     f" (budget 200); one hour of one container {store['one_hour_of_one_container_s']} s (budget 1)"))
    fleet = results.get("fleet_refresh")
    if isinstance(fleet, dict) and "refresh_s_median" in fleet:
        rows.append((f"fleet view refresh, {fleet['nodes']} nodes and {fleet['pods']} pods in Prometheus",
                     f"median {fleet['refresh_s_median']} s, max {fleet['refresh_s_max']} s, "
                     + (f"{fleet['steady_queries_per_refresh']} queries (steady); full refresh median "
                        f"{fleet['full_refresh']['refresh_s_median']} s, " if "full_refresh" in fleet else "")
                     + f"{fleet['queries_per_refresh']} queries",
                     f"targets: under 1 s, at most 10 queries ({fleet['rows_per_refresh']} rows)"
                     + (f"; older exporters' steady refresh (bucket series) "
                        f"{fleet['steady_refresh_older_exporters']['refresh_s_median']} s in the same run"
                        if "steady_refresh_older_exporters" in fleet else "")))
    load = results.get("exporter_load")
    if isinstance(load, dict) and "p99_s" in load:
        rows.append((f"exporter under {load['clients']} clients + {load['slow_clients']} slow ones, "
                     f"{load['seconds']:.0f} s",
                     f"{load['scrapes']} scrapes, {load['errors']} errors, p99 {_fmt(load['p99_s'], 'ms')}",
                     f"one client alone: p99 {_fmt(load['single_p99_s'], 'ms')}; RSS "
                     f"{_fmt(load['rss_baseline_bytes'], 'MB')} before, {_fmt(load['rss_after_bytes'], 'MB')} after"))
    if not rows:
        return []
    return ["| What | ctop | Against |", "|---|---|---|", *(f"| {a} | {b} | {c} |" for a, b, c in rows), ""]


def machine() -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.node()}: kernel {platform.release()}, {os.cpu_count()} CPUs, {mem:.0f} GiB, " \
           f"Python {platform.python_version()}"


def load_previous(path: str) -> dict[str, dict[str, object]]:
    """Figures of earlier runs (BENCHMARKS.json): name -> {"when", "commit", "machine", "figures"}."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict) and "figures" in v} if isinstance(data, dict) else {}


def previous_sections(previous: str) -> tuple[list[str], dict[str, list[str]]]:
    """The BENCHMARKS.md being replaced: (the lines a person added between the summary table and the first
    section, every section's lines by its heading)."""
    parts = re.split(r"^(?=## )", previous, flags=re.M)
    head = parts[0].splitlines()
    table_end = max((i for i, line in enumerate(head) if line.startswith("|")), default=None)
    notes = head[table_end + 1:] if table_end is not None else []
    while notes and not notes[0].strip():
        notes.pop(0)
    while notes and not notes[-1].strip():
        notes.pop()
    sections = {part.splitlines()[0][3:].strip(): [*part.rstrip("\n").splitlines(), ""] for part in parts[1:]}
    return notes, sections


def _section(name: str, run: dict[str, object]) -> list[str]:
    figures = run["figures"]
    verdict = [str(figures["verdict"]), ""] if isinstance(figures, dict) and "verdict" in figures else []
    return [f"## {name}", "", BENCHMARKS.get(name, ""), "",
            f"Run on {run.get('machine')}, commit {run.get('commit')}, {run.get('when')}.", "",
            f"Command: `{figures['how']}`" if isinstance(figures, dict) and "how" in figures else
            f"Command: `sudo ./setup.sh bench {name}` (runs `.venv/bin/python bench/run.py {name}`)", "",
            *verdict,
            "```json", json.dumps(figures, indent=2), "```", ""]


def markdown(runs: dict[str, dict[str, object]], previous: str = "", rerun: Iterable[str] | None = None) -> str:
    """BENCHMARKS.md from every benchmark's latest run; each section says when, where and at which commit. With
    ``previous`` (the file being replaced), only the sections of the benchmarks in ``rerun`` (default: all) are
    written anew: the others, sections no benchmark writes, and notes under the table stay as a person left them."""
    notes, kept = previous_sections(previous)
    fresh = set(runs if rerun is None else rerun)
    lines = ["# Benchmarks", "", "Regenerated by `sudo make bench` (`./setup.sh bench [NAME ...]`, as root). Running",
             "one benchmark replaces only its own figures; each section names its machine, commit and time.", "",
             "This machine is shared and noisy: compare ratios measured in the same run, not absolute numbers.", "",
             *summary({name: run["figures"] for name, run in runs.items()})]
    if lines[-1]:
        lines.append("")
    lines += [*notes, ""] if notes else []
    ordered = [n for n in BENCHMARKS if n in runs] + [n for n in runs if n not in BENCHMARKS]
    for name, section in kept.items():  # sections a person wrote come first, in their order
        if name not in runs:
            lines += section
    for name in ordered:
        lines += kept[name] if name in kept and name not in fresh else _section(name, runs[name])
    return "\n".join(lines)


def main(names: list[str]) -> int:
    store = os.path.join(REPO, "BENCHMARKS.json")
    runs = load_previous(store)
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    for name in names or list(BENCHMARKS):
        started = time.time()
        try:
            module = importlib.import_module(name)
            figures = module.run()
        except Exception as e:  # one failing benchmark must not hide the others' figures
            figures = {"error": f"{type(e).__name__}: {e}"}
        print(f"{name}: {json.dumps(figures)} ({time.time() - started:.0f} s)", flush=True)
        runs[name] = {"figures": figures, "commit": commit, "machine": machine(),
                      "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
        with open(store, "w") as f:
            json.dump(runs, f, indent=1)
        page = os.path.join(REPO, "BENCHMARKS.md")
        try:
            with open(page) as f:
                previous = f.read()
        except OSError:
            previous = ""
        with open(page, "w") as f:
            f.write(markdown(runs, previous, [name]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
