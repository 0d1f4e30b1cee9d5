"""Churn: 300 containers and 2000 plain cgroups come and go under the real interactive view and the real exporter.

Checked: nothing crashes or reports an error; every live container is exported (and, spot-checked, listed in the
view) within one refresh plus one collection after ``docker run`` returns; a removed one is gone within two
refreshes; at the end ctop's RSS and its BPF maps are back near their baseline. ``CHURN_SCALE`` (default 1)
scales both counts (guest/run.py sets 0.1 in emulated guests), ``CTOP_TEST_PATIENCE`` stretches the time bounds.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass

import pytest
from support.churn import (
    CgroupChurn,
    Containers,
    ExportWatcher,
    MapCounts,
    alive,
    descendant_running,
    exported,
    fd_count,
    kept_cgroup_files,
    map_counts,
    metric_value,
    poll_until,
    rss_kib,
    wait_bpf_maps,
)
from support.dockerd import PrivateDockerd, dockerd, unique  # noqa: F401
from support.env import ctop_command, need_binary, need_root, patience
from support.prometheus import Exporter, running_exporter
from support.tmux import Tmux, tmux_session

pytestmark = pytest.mark.system

SCALE = float(os.environ.get("CHURN_SCALE", "1"))
CONTAINERS = max(20, round(300 * SCALE))
CGROUPS = max(100, round(2000 * SCALE))
WAVE = 10  # containers started at once (4 `docker run` in parallel: this machine has 2 cores)
REFRESH_S = 1.0  # the view's -d and the exporter's --collector.max-age
ROW_SLACK_S = 0.5  # scrape polling (0.1 s) and scheduling on a loaded 2-core machine
NAME_SLACK_S = 2.0  # + the Docker API: its event, then a list and one inspect per new container, while it starts more
TMUX_S = 0.5  # capture-pane polling
# "Near baseline" is judged on anonymous memory (RssAnon): VmRSS also holds ~90 MiB of LLVM file pages that the
# kernel evicts and faults in again with the memory pressure of whatever else runs. Python keeps freed small
# objects in its arenas and dicts keep their high-water size, so some MiB above the warmed-up baseline is no leak;
# 10 MiB over 2300 churned containers and cgroups is a bound of about 4.5 KiB kept per churned object.
RSS_TOLERANCE = (10 * 1024, 0.15)  # KiB, share of the baseline: the larger one applies
STALE_ALLOWED = 2  # map entries that outlived their cgroup/thread (confirmed by a second dump): a pid reused at once
ERROR_MARKS = ("Traceback", "Refresh failed", "stopped because", "Error", "error:")


def _assert_healthy(exporter: Exporter, view: Tmux, view_pid: int) -> None:
    assert exporter.proc.poll() is None, f"the exporter exited: {exporter.log()}"
    log = exporter.log()
    assert not any(mark in log for mark in ERROR_MARKS), f"exporter log:\n{log}"
    assert not view.dead() and alive(view_pid), f"the view ended:\n{view.screen()}"
    screen = view.screen()
    assert not any(mark in screen for mark in ERROR_MARKS), f"the view reports an error:\n{screen}"


def _status(screen: str) -> str:
    return next((line for line in screen.splitlines() if "rows" in line and "sort" in line), "")


@dataclass(frozen=True)
class Resources:
    rss_kib: int
    anon_kib: int
    fds: int
    maps: MapCounts
    kept: tuple[int, frozenset[tuple[str, str]]]  # cgroup files kept open, and those of cgroups gone


def _resources(pid: int, maps: dict[str, int]) -> Resources:
    return Resources(rss_kib(pid), rss_kib(pid, "RssAnon"), fd_count(pid), map_counts(maps), kept_cgroup_files(pid))


def _near(base: int, end: int) -> bool:
    return end <= base + max(RSS_TOLERANCE[0], base * RSS_TOLERANCE[1])


def _clear_filter(view: Tmux) -> None:
    """Esc clears the filter; a key sent right after it would reach urwid as Alt+key, so wait for the redraw."""
    if "filter '" in _status(view.screen()):
        view.send("Escape")
        poll_until(lambda: "filter '" not in _status(view.screen()), 3, 0.05)
        time.sleep(0.3)


def _filter_view(view: Tmux, text: str) -> None:
    _clear_filter(view)
    view.send("/")
    view.type(text)
    view.send("Enter")


def test_churn_of_containers_and_cgroups(dockerd: PrivateDockerd) -> None:  # noqa: F811
    need_root()
    need_binary("bpftool")
    ctop = ctop_command()
    containers = Containers(dockerd)
    churns: list[CgroupChurn] = []  # stopped (their cgroups removed) in the end whatever happens
    started = time.monotonic()
    parent = "/" + unique("ctop-churn")  # the test's cgroups: <parent>-warm/c<N>, <parent>-main/c<N>
    # Only containers and the test's cgroups are exported (the host may hold a thousand more; all are collected).
    include = f"--cgroup.include=^/(docker|system\\.slice/docker-[0-9a-f]+\\.scope|{parent[1:]}-(warm|main))(/.*)?$"
    with running_exporter(f"--docker.socket={dockerd.socket}", f"--collector.max-age={REFRESH_S}", include,
                          ) as exporter, \
            tmux_session([ctop, "--docker-socket", dockerd.socket, "-d", str(REFRESH_S)], 200, 50) as view:
        try:
            view_pid = descendant_running(view.pid(), ctop)
            view.wait_for(lambda s: s.startswith("NAME") and "Containers" in s, 20, "the first screen")
            exporter_maps, view_maps = wait_bpf_maps(exporter.proc.pid), wait_bpf_maps(view_pid)

            # Warm-up: a wave of containers and of cgroups, so that lazy imports and first allocations are behind us.
            warm = containers.start(WAVE)
            warm_cgroups = CgroupChurn(100, batch=50, lifetime_s=REFRESH_S, parent=parent + "-warm")
            churns.append(warm_cgroups)
            warm_cgroups.start()
            warm_cgroups.wait(60)
            warm_cgroups.stop()
            assert not warm_cgroups.errors, warm_cgroups.errors
            assert poll_until(lambda: set(warm) <= exported(exporter.scrape())[0], 20) is not None
            containers.remove(list(warm))
            time.sleep(4 * REFRESH_S)  # gone for two refreshes, and the next scrape has to collect
            collections = [metric_value(exporter.scrape(), "ctop_collection_duration_seconds") or 0.0]
            base = {"exporter": _resources(exporter.proc.pid, exporter_maps),
                    "view": _resources(view_pid, view_maps)}
            print(f"\nwarm-up done after {time.monotonic() - started:.0f} s; one collection {collections[0]:.3f} s")

            cgroups = CgroupChurn(CGROUPS, batch=max(10, CGROUPS * WAVE // CONTAINERS // 2), lifetime_s=REFRESH_S,
                                  parent=parent + "-main")
            churns.append(cgroups)
            cgroups.start()
            row_s: list[float] = []  # docker run returned -> its cgroup exported
            name_s: list[float] = []  # docker run returned -> exported with its name
            gone_s: list[float] = []  # container ended -> neither its cgroup nor its name exported
            view_shown: list[float] = []
            view_gone: list[float] = []
            previous: dict[str, tuple[str, float]] = {}
            previous_auto = False
            previous_spot: str | None = None
            with ExportWatcher(exporter.scrape) as watcher:
                for wave in range(CONTAINERS // WAVE):
                    # Odd waves end on their own (--rm, a short sleep); even ones are removed with `docker rm -f`.
                    auto = wave % 2 == 1
                    batch = containers.start(WAVE, ("sleep", "5") if auto else ("sleep", "600"), auto_remove=auto)
                    spot = next(iter(batch)) if wave % 10 == 0 else None
                    if spot:
                        _filter_view(view, spot)
                        took = poll_until(lambda n=spot: n in view.screen() and "1 rows" in _status(view.screen()),
                                          10, 0.05)
                        assert took is not None, f"{spot} not listed in the view:\n{view.screen()}"
                        view_shown.append(time.monotonic() - batch[spot][1])
                    row_s += watcher.wait_shown({dockerd.cgroup_path(cid): t for cid, t in batch.values()}, 15).values()
                    name_s += watcher.wait_shown({name: t for name, (_, t) in batch.items()}, 15).values()
                    if previous and not previous_auto:  # the previous wave still runs: still exported
                        assert set(previous) <= watcher.latest[2]

                    # The previous wave ends: removed now, or (--rm) when its sleep is over.
                    if previous:
                        if previous_auto:
                            poll_until(lambda p=list(previous): not containers.running(p), 30, 0.2)
                            containers.forget(list(previous))
                        else:
                            containers.remove(list(previous))
                        ended = time.monotonic()
                        keys = set(previous) | {dockerd.cgroup_path(cid) for cid, _ in previous.values()}
                        gone_s.append(watcher.wait_gone(keys, ended, 15))
                        if previous_spot:
                            took = poll_until(lambda: "0 rows" in _status(view.screen()), 10, 0.05)
                            assert took is not None, f"{previous_spot} still listed:\n{view.screen()}"
                            view_gone.append(time.monotonic() - ended)
                            _clear_filter(view)
                    previous, previous_auto, previous_spot = batch, auto, spot
                    if wave % 5 == 0:
                        _assert_healthy(exporter, view, view_pid)
            assert not watcher.errors, watcher.errors[:3]
            collections += watcher.collections

            containers.remove_all()
            assert cgroups.wait(240), f"cgroup churn unfinished: {cgroups.created} made"
            assert not cgroups.errors, cgroups.errors
            churn_s = time.monotonic() - started
            time.sleep(3 * REFRESH_S)
            _assert_healthy(exporter, view, view_pid)
            text = exporter.scrape()
            names, ids = exported(text)
            assert not {n for n in names if n.startswith("churn-")}, "removed containers still exported"
            assert [i for i in ids if i.startswith(cgroups.parent.path + "/")] == []
            assert metric_value(text, "ctop_collection_errors_total") == 0
            assert metric_value(text, "ctop_ebpf_enabled") == 1
            _filter_view(view, cgroups.parent.path.strip("/"))
            view.send("5")
            view.wait_for(lambda s: "All cgroups" in s and "1 rows" in _status(s), 5, "only the churn parent")
            _clear_filter(view)
            view.send("1")

            end = {"exporter": _resources(exporter.proc.pid, exporter_maps),
                   "view": _resources(view_pid, view_maps)}
            collection_max = max(collections)
            # (an emulated guest runs everything several times slower: CTOP_TEST_PATIENCE stretches the bounds there)
            row_bound = patience(REFRESH_S + collection_max + ROW_SLACK_S)
            name_bound = patience(REFRESH_S + collection_max + NAME_SLACK_S)
            gone_bound = patience(2 * REFRESH_S + collection_max + ROW_SLACK_S)
            print(f"{containers.started} containers, {cgroups.created} cgroups churned; "
                  f"{time.monotonic() - started:.0f} s in all ({churn_s:.0f} s to the end of the churn)")
            print(f"collection: median {statistics.median(collections):.3f} s, max {collection_max:.3f} s; "
                  f"scrape size up to {max(watcher.sizes) / 1e6:.1f} MB")
            for what, values, bound in (("exported by cgroup", row_s, row_bound), ("exported by name", name_s,
                                        name_bound), ("gone from the export", gone_s, gone_bound)):
                print(f"{what:21} median {statistics.median(values):.2f} s, max {max(values):.2f} s "
                      f"(bound {bound:.2f} s)")
            print(f"view: listed after {', '.join(f'{x:.2f}' for x in view_shown)} s; "
                  f"gone after {', '.join(f'{x:.2f}' for x in view_gone)} s")
            print(f"{'process':9} {'VmRSS':>15} {'RssAnon':>13} {'fds':>7} {'kept files':>17} {'cgroups map':>17} "
                  f"{'threads map':>17}")
            for who in ("exporter", "view"):
                b, e = base[who], end[who]
                print(f"{who:9} {b.rss_kib / 1024:6.1f}->{e.rss_kib / 1024:5.1f}M "
                      f"{b.anon_kib / 1024:5.1f}->{e.anon_kib / 1024:5.1f}M {b.fds:>3}->{e.fds:<3} "
                      f"{b.kept[0]:>5}->{e.kept[0]:<4}({len(e.kept[1])} stale) "
                      f"{b.maps.cgroups:>6}->{e.maps.cgroups:<4}({e.maps.cgroups_stale} stale) "
                      f"{b.maps.threads:>6}->{e.maps.threads:<4}({e.maps.threads_stale} stale)")
            assert max(row_s) <= row_bound and max(name_s) <= name_bound and max(gone_s) <= gone_bound
            assert all(x <= name_bound + TMUX_S for x in view_shown)
            assert all(x <= gone_bound + TMUX_S for x in view_gone)
            for who in ("exporter", "view"):
                b, e = base[who], end[who]
                assert _near(b.anon_kib, e.anon_kib), f"{who} RssAnon {b.anon_kib} KiB -> {e.anon_kib} KiB"
                assert e.fds <= b.fds + 2, f"{who} fds {b.fds} -> {e.fds}"
                assert e.maps.cgroups_stale <= STALE_ALLOWED and e.maps.threads_stale <= STALE_ALLOWED, e.maps
                # other tests may run containers meanwhile: a loose bound on the raw count, the stale check is exact
                assert e.maps.cgroups <= b.maps.cgroups + 50, f"{who} cgroups map {b.maps} -> {e.maps}"
            time.sleep(2 * REFRESH_S)  # a cgroup removed since a process's latest refresh is closed at its next
            exporter.scrape()  # (the exporter collects when scraped)
            for who, pid in (("exporter", exporter.proc.pid), ("view", view_pid)):
                leaked = end[who].kept[1] & kept_cgroup_files(pid)[1]
                assert not leaked, f"{who} keeps files of removed cgroups open: {sorted(leaked)[:5]}"
        finally:
            containers.remove_all()
            for churn in churns:
                churn.stop()
