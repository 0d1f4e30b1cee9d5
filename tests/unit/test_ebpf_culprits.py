"""Culprits of preemptions: BPF pairs to paths, paths to workload names, rates, JSON/CSV, exporter, detail line."""

from __future__ import annotations

import csv
import dataclasses
import io
import json

from ctop.exporters.ctop_families import CULPRITS_EXPORTED, ebpf_families
from ctop.exporters.families import render

from ctop.batch import BatchOptions, render_csv, render_json
from ctop.collector import Enrichment, build_frame
from ctop.ebpf.maps import culprits_by_path
from ctop.model.culprits import HOST, CulpritRates, by_name, workload_namer
from ctop.model.ebpf import EbpfCgroupCounters, EbpfReading
from ctop.model.ebpf_rates import culprit_rates, ebpf_rates
from ctop.model.frame import Identity
from ctop.model.sample import CgroupSample, HostSample, Snapshot
from ctop.ui.detail import culprit_line

WEB, BATCH1, BATCH2 = "/docker/web", "/docker/b1", "/docker/b2"
IDENTITIES = {
    "/": Identity(kind="root"),
    "/docker": Identity(kind="cgroup"),
    WEB: Identity(kind="container", runtime="docker", name="web"),
    BATCH1: Identity(kind="container", runtime="docker", name="batch1"),
    BATCH2: Identity(kind="container", runtime="docker", name="batch2"),
    BATCH2 + "/inner": Identity(kind="cgroup"),
    "/system.slice": Identity(kind="slice", runtime="systemd", name="system.slice"),
    "/system.slice/cron.service": Identity(kind="service", runtime="systemd", name="cron.service"),
    "/user.slice/user-0.slice/session-3.scope": Identity(kind="scope", runtime="systemd", name="session-3.scope"),
    "/ctop-test/a": Identity(kind="cgroup"),
}


def test_culprits_are_named_by_their_workload() -> None:
    name_of = workload_namer(IDENTITIES)
    assert name_of(BATCH1) == "batch1"
    assert name_of(BATCH2 + "/inner") == "batch2"  # a cgroup inside a container is that container
    assert name_of(BATCH2 + "/not-read-this-refresh") == "batch2"
    assert name_of("/") == HOST
    assert name_of("/system.slice/cron.service") == HOST  # system services are the host
    assert name_of("/user.slice/user-0.slice/session-3.scope") == HOST
    assert name_of("/ctop-test/a") == "/ctop-test/a"  # a plain cgroup outside containers: its path
    assert workload_namer({})("/") == HOST and workload_namer({})("/x/y") == "/x/y"


def test_rates_add_up_by_name_largest_first() -> None:
    rates = by_name([(BATCH1, 10.0), ("/", 1.0), (BATCH2, 5.0), (BATCH2 + "/inner", 7.0), ("/system.slice", 2.0),
                     ("/ctop-test/a", 0.0)], workload_namer(IDENTITIES))
    assert list(rates.items()) == [("batch2", 12.0), ("batch1", 10.0), (HOST, 3.0)]
    assert rates.top() == "batch2" and CulpritRates().top() is None
    assert [(n, round(s)) for n, s in rates.shares()] == [("batch2", 48), ("batch1", 40), (HOST, 12)]
    assert json.loads(json.dumps(rates)) == {"batch2": 12.0, "batch1": 10.0, HOST: 3.0}
    assert str(rates) == "batch2:12,batch1:10,host:3"
    assert str(CulpritRates({"evil\x1b[31m": 1.0})) == "evil?[31m:1"


def counters(cgroup_id: int = 7, **by: int) -> EbpfCgroupCounters:
    return EbpfCgroupCounters(cgroup_id=cgroup_id, nivcsw=sum(by.values()),
                              preempted_by=tuple((path, n) for path, n in by.items()))


def test_culprit_rates_between_readings_and_an_evicted_pair() -> None:
    old = counters(**{BATCH1: 100, BATCH2: 50})
    new = counters(**{BATCH1: 160, BATCH2: 20, "/": 4})  # batch2's pair was evicted and counted 20 since
    assert sorted(culprit_rates(new, old, 2.0)) == [("/", 2.0), (BATCH1, 30.0), (BATCH2, 10.0)]
    rates = ebpf_rates(new, old, 2.0, workload_namer(IDENTITIES))
    assert rates.top_preemptor == "batch1" and rates.preempted_by == {"batch1": 30.0, "batch2": 10.0, HOST: 2.0}


def test_no_culprits_across_a_recreated_cgroup_or_without_a_previous_reading() -> None:
    old = counters(**{BATCH1: 100})
    recreated = dataclasses.replace(counters(**{BATCH1: 300}), cgroup_id=8)
    assert ebpf_rates(recreated, old, 1.0).preempted_by is None
    assert ebpf_rates(old, None, None).top_preemptor is None
    quiet = ebpf_rates(old, old, 1.0)
    assert quiet.preempted_by == {} and quiet.top_preemptor is None  # eBPF on, nothing preempted it


def test_bpf_pairs_become_paths_and_unnamed_ids_are_left_out() -> None:
    paths = {1: "/", 10: WEB, 11: BATCH1, 12: BATCH2, (1 << 62) | 10: WEB}
    pairs = [(10, 11, 5), (10, 12, 9), (10, 1, 1), (10, 99, 7), (99, 11, 3), (11, 10, 0), (10, (1 << 62) | 10, 2)]
    assert culprits_by_path(pairs, paths.get) == {WEB: ((BATCH2, 9), (BATCH1, 5), ("/", 1))}


def test_a_pair_counted_in_the_map_and_in_slots_adds_up() -> None:
    paths = {1: "/", 10: WEB, 11: BATCH1}
    pairs = [(10, 11, 16), (10, 11, 40), (10, 11, 3), (10, 1, 2)]  # the map, then two CPUs' slots
    assert culprits_by_path(pairs, paths.get) == {WEB: ((BATCH1, 59), ("/", 2))}


def _reading(t: float, web: EbpfCgroupCounters) -> EbpfReading:
    return EbpfReading(monotonic_time=t, by_cgroup={WEB: web}, unattributed=EbpfCgroupCounters())


def _snapshot(t: float, *more: str) -> Snapshot:
    host = HostSample(monotonic_s=t, wall_time_s=1.7e9 + t, cpu_time_ns=int(t * 2e9), online_cpus=2,
                      memory_total_bytes=2**30)
    paths = ("/", "/docker", WEB, BATCH1, BATCH2, *more)
    return Snapshot(host=host, cgroups={p: CgroupSample(path=p, inode=len(p), cpu_usage_ns=int(t * 1e9))
                                        for p in paths}, mode="v2")


def test_batch_json_has_an_object_and_csv_the_compact_text() -> None:
    before = Enrichment(identities=IDENTITIES, ebpf=_reading(1.0, counters(**{BATCH1: 10})))
    after = Enrichment(identities=IDENTITIES, ebpf=_reading(2.0, counters(**{BATCH1: 72, BATCH2: 30, "/": 8})))
    frame = build_frame(_snapshot(2.0), _snapshot(1.0), after, before)
    web = next(r for r in json.loads(render_json(frame, BatchOptions())) if r["id"] == WEB)
    assert web["top_preemptor"] == "batch1"
    assert web["preempted_by"] == {"batch1": 62.0, "batch2": 30.0, "host": 8.0}
    keys = list(web)
    assert keys[keys.index("top_preemptor"):][:2] == ["top_preemptor", "preempted_by"]  # appended together
    table = list(csv.DictReader(io.StringIO(render_csv(frame, BatchOptions(), header=True))))
    assert next(r for r in table if r["id"] == WEB)["preempted_by"] == "batch1:62,batch2:30,host:8"
    assert culprit_line(frame.rows[WEB].ebpf_rates.preempted_by  # type: ignore[union-attr]
                        ) == "preempted by: batch1 62 %, batch2 30 %, host 8 %"
    assert culprit_line(None) == "preempted by: -"


def test_the_exporter_names_culprits_and_keeps_only_the_main_ones() -> None:
    many = {f"/docker/c{i}": 100 - i for i in range(CULPRITS_EXPORTED + 3)}
    idents = {p: Identity(kind="container", name=f"c{i}") for i, p in enumerate(many)} | {"/": Identity(kind="root")}
    snap = _snapshot(2.0, *many)
    frame = build_frame(snap, None, Enrichment(identities=idents))
    row = dataclasses.replace(frame.rows[WEB], ebpf=counters(**many, **{"/": 1}))
    text = render(ebpf_families([('id="/docker/web"', row)], frame)).decode()
    assert "# TYPE ctop_preemptions_by_culprit_total counter" in text
    assert 'ctop_preemptions_by_culprit_total{id="/docker/web",culprit="c0"} 100' in text.splitlines()
    assert text.count("culprit=") == CULPRITS_EXPORTED
    assert 'culprit="c0"' in text and 'culprit="c4"' in text and 'culprit="c5"' not in text
