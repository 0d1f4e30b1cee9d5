"""The exporter's exposition from constructed Frames: cAdvisor names, labels, semantics, ctop_* families, escaping."""

from __future__ import annotations

import dataclasses
import math
import re
import subprocess
import threading
import time

import pytest
from ctop.exporters.collector import FrameCollector, SharedFrames, build_families
from ctop.exporters.families import render
from ctop.exporters.labels import CgroupFilter, compile_filter
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from support.env import need_binary

from ctop.model.ebpf import RUNQ_BUCKET_UPPER_SECONDS, RUNQ_SLOTS, EbpfCgroupCounters
from ctop.model.ebpf_rates import EbpfRates
from ctop.model.frame import CgroupRow, Frame, Identity, NetCounters
from ctop.model.sample import UNLIMITED, CgroupSample, HostSample, IoCounters, Pressure, Snapshot

POD = "/kubepods/burstable/pod1234"
APP = POD + "/aaaa"
PAUSE = POD + "/pppp"
HOSTILE = '/docker/evil"\\\n{x="1"}'
NON_UTF8 = "/docker/bad" + b"\xff\xfe".decode("utf-8", "surrogateescape")


def _sample(path: str, **kw: object) -> CgroupSample:
    base = dict(
        inode=abs(hash(path)) % 10**6, cpu_usage_ns=2_500_000_000, cpu_user_ns=1_500_000_000,
        cpu_system_ns=1_000_000_000, cpu_quota_us=UNLIMITED, cpu_period_us=100_000, cpu_shares=1024,
        cpu_periods=0, cpu_throttled_periods=0, cpu_throttled_ns=0,
        memory_usage_bytes=100 * 2**20, memory_inactive_file_bytes=30 * 2**20, memory_limit_bytes=UNLIMITED,
        memory_max_usage_bytes=120 * 2**20, memory_rss_bytes=50 * 2**20, memory_cache_bytes=40 * 2**20,
        memory_mapped_file_bytes=2**20, memory_swap_bytes=0, memory_swap_limit_bytes=UNLIMITED,
        memory_failcnt=0, memory_oom_kills=0, pids_max=UNLIMITED, processes=1, threads=2,
    )
    base.update(kw)
    return CgroupSample(path=path, **base)  # type: ignore[arg-type]


def make_frame(ebpf: bool = False) -> Frame:
    host = HostSample(monotonic_s=10.0, wall_time_s=1_700_000_000.5, cpu_time_ns=10**12, online_cpus=4,
                      memory_total_bytes=8 * 2**30, block_devices={"8:0": "sda"})
    k8s = dict(pod="web-1", namespace="shop", pod_uid="1234", qos_class="burstable")
    counters = EbpfCgroupCounters(cgroup_id=7, runq_buckets=(3, 0, 5) + (0,) * (RUNQ_SLOTS - 4) + (2,),
                                  runq_sum_seconds=0.25, runq_count=10, nvcsw=11, nivcsw=4, preempted_by_others=3,
                                  preempted_by_host=1, forks=5, execs=2, exits=4, oom_kills=1)
    rows = {
        "/": CgroupRow(_sample("/", memory_limit_bytes=None), Identity(kind="root")),
        "/kubepods/burstable": CgroupRow(_sample("/kubepods/burstable"),
                                         Identity(kind="qos", runtime="kubernetes", qos_class="burstable")),
        POD: CgroupRow(_sample(POD), Identity(kind="pod", runtime="kubernetes", **k8s),
                       net={"eth0": NetCounters(1000, 10, 1, 2, 2000, 20, 3, 4)}),
        PAUSE: CgroupRow(_sample(PAUSE), Identity(kind="container", runtime="docker", name="k8s_POD_web-1",
                                                  image="pause:3.9", container="POD", **k8s)),
        APP: CgroupRow(
            _sample(APP, cpu_quota_us=50_000, cpu_periods=100, cpu_throttled_periods=7,
                    cpu_throttled_ns=350_000_000, memory_limit_bytes=256 * 2**20, pids_max=100,
                    io_by_device={"8:0": IoCounters(4096, 8192, 1, 2), "254:3": IoCounters(1, 2, 3, 4)},
                    pressure_cpu=Pressure(0.5, 1_500_000_000, 0.1, 500_000_000)),
            Identity(kind="container", runtime="docker", name="k8s_app_web-1", image="shop/web:1.2", container="app",
                     start_time_s=1_699_999_000.0, **k8s),
            ebpf=counters if ebpf else None,
            ebpf_rates=EbpfRates(runq_latency_p50_seconds=2.5e-6, runq_latency_p99_seconds=0.0125) if ebpf else None),
        HOSTILE: CgroupRow(_sample(HOSTILE), Identity(kind="container", runtime="docker", name='evil"\\\nname',
                                                      image="img\x1b[31m")),
        NON_UTF8: CgroupRow(_sample(NON_UTF8), Identity(kind="container", runtime="docker", name=NON_UTF8[8:])),
        "/system.slice/cron.service": CgroupRow(_sample("/system.slice/cron.service"), Identity(kind="service")),
    }
    snap = Snapshot(host=host, cgroups={p: r.sample for p, r in rows.items()}, mode="v1")
    return Frame(snapshot=snap, rows=rows, interval_s=1.0, ebpf_state="ready" if ebpf else "off")


def exposition(frame: Frame, cgroup_filter: CgroupFilter | None = None) -> str:
    frames = SharedFrames(lambda: frame)
    return render(build_families(frames.get(), cgroup_filter or CgroupFilter())).decode("utf-8")


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            assert s.timestamp is None
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def by_id(series: list[tuple[dict[str, str], float]]) -> dict[str, float]:
    return {labels["id"]: value for labels, value in series}


@pytest.fixture(scope="module")
def parsed() -> dict[str, list[tuple[dict[str, str], float]]]:
    return samples(exposition(make_frame(ebpf=True)))


def test_every_container_series_has_the_six_cadvisor_labels(parsed):
    for name, series in parsed.items():
        if not name.startswith("container_"):
            continue
        for labels, _ in series:
            assert {"id", "name", "image", "container", "pod", "namespace"} <= set(labels), name


def test_cpu_usage_is_one_total_series_per_cgroup_in_seconds(parsed):
    series = parsed["container_cpu_usage_seconds_total"]
    assert all(labels["cpu"] == "total" for labels, _ in series)
    ids = [labels["id"] for labels, _ in series]
    assert len(ids) == len(set(ids)) == 8
    assert by_id(series)[APP] == 2.5
    assert by_id(parsed["container_cpu_user_seconds_total"])[APP] == 1.5
    assert "cpu" not in parsed["container_cpu_user_seconds_total"][0][0]


def test_cfs_family_only_with_a_cpu_limit(parsed):
    for name in ("container_cpu_cfs_periods_total", "container_cpu_cfs_throttled_periods_total",
                 "container_cpu_cfs_throttled_seconds_total"):
        assert list(by_id(parsed[name])) == [APP], name
    assert by_id(parsed["container_cpu_cfs_throttled_seconds_total"])[APP] == 0.35
    assert by_id(parsed["container_cpu_cfs_throttled_periods_total"])[APP] == 7
    assert list(by_id(parsed["container_spec_cpu_quota"])) == [APP]
    assert by_id(parsed["container_spec_cpu_quota"])[APP] == 50_000


def test_memory_semantics_and_limits(parsed):
    ws = by_id(parsed["container_memory_working_set_bytes"])
    assert ws[APP] == 70 * 2**20  # usage - inactive_file
    limits = by_id(parsed["container_spec_memory_limit_bytes"])
    assert limits[APP] == 256 * 2**20
    assert limits[POD] == 0  # unlimited
    assert "/" not in limits  # unknown is absent, not 0
    assert by_id(parsed["container_threads_max"])[APP] == 100
    assert by_id(parsed["container_threads_max"])[POD] == 0


def test_pod_and_qos_series_have_empty_image_and_container(parsed):
    series = {labels["id"]: labels for labels, _ in parsed["container_memory_usage_bytes"]}
    for path in (POD, "/kubepods/burstable", "/"):
        assert series[path]["image"] == "" and series[path]["container"] == ""
    assert series[POD]["pod"] == "web-1" and series[POD]["namespace"] == "shop"
    assert series[PAUSE]["container"] == "POD"
    assert series[APP]["image"] == "shop/web:1.2" and series[APP]["container"] == "app"


def test_network_only_on_the_series_owning_the_netns(parsed):
    for name in ("container_network_receive_bytes_total", "container_network_transmit_packets_dropped_total"):
        series = parsed[name]
        assert [labels["id"] for labels, _ in series] == [POD]
        assert series[0][0]["interface"] == "eth0"
    assert parsed["container_network_receive_bytes_total"][0][1] == 1000
    assert parsed["container_network_transmit_errors_total"][0][1] == 3


def test_fs_per_device_named_like_cadvisor(parsed):
    series = parsed["container_fs_reads_bytes_total"]
    devices = {labels["device"]: value for labels, value in series if labels["id"] == APP}
    assert devices == {"/dev/sda": 4096, "/dev/block/254:3": 1}
    writes = {labels["device"]: value for labels, value in parsed["container_fs_writes_total"] if labels["id"] == APP}
    assert writes["/dev/sda"] == 2


def test_psi_start_time_machine(parsed):
    assert by_id(parsed["container_pressure_cpu_waiting_seconds_total"]) == {APP: 1.5}
    assert by_id(parsed["container_pressure_cpu_stalled_seconds_total"]) == {APP: 0.5}
    assert by_id(parsed["container_start_time_seconds"]) == {APP: 1_699_999_000.0}
    assert by_id(parsed["container_last_seen"])[POD] == 1_700_000_000.5
    assert parsed["machine_cpu_cores"] == [({}, 4)]
    assert parsed["machine_memory_bytes"] == [({}, 8 * 2**30)]


def test_hostile_label_values_are_escaped_and_never_break_the_exposition():
    text = exposition(make_frame())
    text.encode("utf-8")  # always valid UTF-8
    parsed = samples(text)
    ids = by_id(parsed["container_memory_usage_bytes"])
    assert HOSTILE in ids  # quotes, backslash and newline round-trip through escaping
    bad = [i for i in ids if i.startswith("/docker/bad")]
    assert bad == ["/docker/bad\ufffd\ufffd"]
    names = {labels["id"]: labels["name"] for labels, _ in parsed["container_memory_usage_bytes"]}
    assert names[HOSTILE] == 'evil"\\\nname'
    # Every sample line is one line: the raw newline never reaches the output unescaped.
    for line in text.splitlines():
        assert line.startswith("#") or re.match(r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? \S+$", line), line


def test_golden_lines_for_one_container():
    text = exposition(make_frame(), compile_filter("^/kubepods/burstable/pod1234/aaaa$", None, False))
    labels = ('id="/kubepods/burstable/pod1234/aaaa",name="k8s_app_web-1",image="shop/web:1.2",container="app",'
              'pod="web-1",namespace="shop"')
    for line in (
        f'container_cpu_usage_seconds_total{{{labels},cpu="total"}} 2.5',
        f"container_memory_working_set_bytes{{{labels}}} 73400320",
        f"container_spec_memory_limit_bytes{{{labels}}} 268435456",
        f"container_cpu_cfs_throttled_periods_total{{{labels}}} 7",
        f'container_fs_reads_bytes_total{{{labels},device="/dev/sda"}} 4096',
        f'ctop_container_info{{{labels},runtime="docker",qos_class="burstable",kind="container"}} 1',
        "machine_cpu_cores 4",
        "ctop_exported_cgroups 1",
    ):
        assert line in text.splitlines(), line
    assert "# TYPE container_cpu_usage_seconds_total counter" in text
    assert "# TYPE container_memory_working_set_bytes gauge" in text


def test_ebpf_families_and_a_real_histogram(parsed):
    buckets = [(labels["le"], value) for labels, value in parsed["ctop_runqueue_latency_seconds_bucket"]
               if labels["id"] == APP]
    # ctop's four buckets per power of two add up to the power-of-two bounds dashboards know: 27 and +Inf
    assert len(buckets) == 28 and [le for le, _ in buckets[:-1]] == [repr(2**k / 1e9) for k in range(10, 37)]
    assert buckets[0] == (repr(RUNQ_BUCKET_UPPER_SECONDS[3]), 8)  # slots 0-3: below 1.024 us
    assert buckets[2][1] == 8
    assert buckets[-2][1] == 8 and buckets[-1] == ("+Inf", 10)  # the open-ended last slot only feeds +Inf
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)  # cumulative
    assert by_id(parsed["ctop_runqueue_latency_seconds_count"]) == {APP: 10}
    assert by_id(parsed["ctop_runqueue_latency_seconds_sum"]) == {APP: 0.25}
    kinds = {labels["kind"]: v for labels, v in parsed["ctop_context_switches_total"]}
    assert kinds == {"voluntary": 11, "involuntary": 4}
    by = {labels["by"]: v for labels, v in parsed["ctop_preemptions_total"]}
    assert by == {"other_cgroup": 3, "host": 1}
    for name, value in (("ctop_forks_total", 5), ("ctop_execs_total", 2), ("ctop_exits_total", 4),
                        ("ctop_oom_kills_total", 1)):
        assert by_id(parsed[name]) == {APP: value}, name
    assert parsed["ctop_ebpf_enabled"] == [({}, 1)]


def test_recent_run_queue_quantiles_over_the_collection_interval():
    frame = make_frame(ebpf=True)
    idle = CgroupRow(  # eBPF on, but no wait in the latest interval
        _sample(PAUSE + "-idle"), Identity(kind="container", runtime="docker", name="idle"),
        ebpf=EbpfCgroupCounters(cgroup_id=8), ebpf_rates=EbpfRates())
    frame = dataclasses.replace(frame, rows={**frame.rows, idle.path: idle})
    parsed = samples(exposition(frame))
    recent = {(labels["id"], q): value for q in ("p50", "p99")
              for labels, value in parsed[f"ctop_runqueue_latency_{q}_seconds"]}
    # the node's own figures of the interval (its 4-per-octave histogram), not re-read from the coarser buckets
    assert {k: v for k, v in recent.items() if k[0] == APP} == {(APP, "p50"): 2.5e-6, (APP, "p99"): 0.0125}
    # a cgroup with eBPF counters but no wait in the interval: NaN (as a summary without observations), so that a
    # reader knows this exporter serves the figure; cgroups without eBPF counters have no series
    idle = [v for (path, _), v in recent.items() if path == PAUSE + "-idle"]
    assert len(idle) == 2 and all(math.isnan(v) for v in idle)
    assert {path for path, _ in recent} == {APP, PAUSE + "-idle"}
    assert parsed["ctop_collection_interval_seconds"] == [({}, 1.0)]


def test_without_ebpf_no_ebpf_series_and_enabled_is_zero():
    parsed = samples(exposition(make_frame(ebpf=False)))
    assert not any(name.startswith(("ctop_runqueue", "ctop_context", "ctop_forks")) for name in parsed)
    assert parsed["ctop_ebpf_enabled"] == [({}, 0)]
    info = {labels["id"]: labels for labels, _ in parsed["ctop_container_info"]}
    assert info[APP]["runtime"] == "docker" and info[APP]["qos_class"] == "burstable"
    assert info["/"]["kind"] == "root"
    (build_labels, value), = parsed["ctop_build_info"]
    assert value == 1 and build_labels["version"]


def test_filters():
    frame = make_frame()
    only = by_id(samples(exposition(frame, compile_filter("^/kubepods", None, False)))["container_threads"])
    assert set(only) == {"/kubepods/burstable", POD, PAUSE, APP}
    without = by_id(samples(exposition(frame, compile_filter(None, "^/docker", False)))["container_threads"])
    assert not any(i.startswith("/docker") for i in without) and POD in without
    containers = by_id(samples(exposition(frame, compile_filter(None, None, True)))["container_threads"])
    assert "/system.slice/cron.service" not in containers and "/kubepods/burstable" not in containers
    assert {"/", POD, APP, PAUSE} <= set(containers)
    with pytest.raises(ValueError, match="not a valid regular expression"):
        compile_filter("(", None, False)


def test_duplicate_ids_after_cleaning_are_exported_once():
    frame = make_frame()
    other = "/docker/bad" + b"\xfa\xfb".decode("utf-8", "surrogateescape")  # cleans to the same text
    rows = dict(frame.rows)
    rows[other] = CgroupRow(_sample(other), Identity(kind="container"))
    ids = [labels["id"] for labels, _ in samples(exposition(Frame(frame.snapshot, rows, 1.0)))["container_threads"]]
    assert len(ids) == len(set(ids))


def test_concurrent_scrapes_share_one_collection():
    calls = []

    def slow_source() -> Frame:
        calls.append(threading.get_ident())
        time.sleep(0.3)
        return make_frame()

    frames = SharedFrames(slow_source, max_age_s=0.5)
    results = []
    threads = [threading.Thread(target=lambda: results.append(frames.get())) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert {r.generation for r in results} == {1}
    assert frames.get().generation == 1  # still fresh: reused
    time.sleep(0.55)
    assert frames.get().generation == 2 and len(calls) == 2


def test_failed_collection_keeps_the_previous_frame_and_is_counted():
    state = {"fail": False}

    def source() -> Frame:
        if state["fail"]:
            raise OSError("cgroupfs vanished")
        return make_frame()

    frames = SharedFrames(source, max_age_s=0.0)
    assert frames.get().health.last_success
    state["fail"] = True
    collected = frames.get()
    assert collected.frame is not None and not collected.health.last_success
    parsed = samples(render(build_families(collected, CgroupFilter())).decode())
    assert parsed["ctop_collection_errors_total"] == [({}, 1)]
    assert parsed["ctop_collection_success"] == [({}, 0)]
    assert "container_memory_usage_bytes" in parsed

    never = SharedFrames(lambda: (_ for _ in ()).throw(OSError("no cgroups")), max_age_s=0.0)
    parsed = samples(render(build_families(never.get(), CgroupFilter())).decode())
    assert "container_memory_usage_bytes" not in parsed and parsed["ctop_collection_success"] == [({}, 0)]


def test_prometheus_client_collector_gives_the_same_samples():
    frame = make_frame(ebpf=True)
    collector = FrameCollector(SharedFrames(lambda: frame, max_age_s=60))
    registry = CollectorRegistry()
    registry.register(collector)
    via_client = samples(generate_latest(registry).decode())
    direct = samples(render(collector.families()[1]).decode())
    assert via_client.keys() == direct.keys()
    for name, series in direct.items():  # (NaN is not equal to itself)
        assert sorted((sorted(lb.items()), v if v == v else "NaN") for lb, v in via_client[name]) == \
            sorted((sorted(lb.items()), v if v == v else "NaN") for lb, v in series), name


def test_promtool_check_metrics_reports_nothing_for_ctop_names():
    promtool = need_binary("promtool")
    frame = make_frame(ebpf=True)
    health = ({"sched:sched_switch": 177.0, "sched:sched_process_fork": 425.0}, {"cgroups": 0.25, "threads": 0.01})
    text = render(build_families(SharedFrames(lambda: frame, bpf_stats=lambda: health).get(),
                                 CgroupFilter())).decode("utf-8")
    names = {fam.name for fam in text_string_to_metric_families(text)}
    # Every ctop_* family is in the linted text, including eBPF cost per event and map fill.
    assert {"ctop_runqueue_latency_seconds", "ctop_runqueue_latency_p99_seconds", "ctop_container_info",
            "ctop_bpf_program_run_seconds_per_event",
            "ctop_bpf_map_fill_ratio", "ctop_collection_duration_seconds", "ctop_ebpf_enabled"} <= names
    result = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=60)
    report = (result.stdout + result.stderr).decode()
    ctop_lines = [line for line in report.splitlines() if "ctop_" in line]
    assert ctop_lines == [], report
    assert "error" not in report.lower(), report


def test_value_formatting():
    from ctop.exporters.families import Family, format_value

    assert [format_value(v) for v in (3, 2.5, True, float("nan"), float("inf"), -float("inf"))] == \
        ["3", "2.5", "1", "NaN", "+Inf", "-Inf"]
    fam = Family("x_total", "counter", "help with \\ and\nnewline")
    for v in (1, 0.1, float("nan"), float("inf"), False):
        fam.add('a="b"', v)
    text = render([fam]).decode()
    assert text.splitlines() == ["# HELP x_total help with \\\\ and\\nnewline", "# TYPE x_total counter",
                                 'x_total{a="b"} 1', 'x_total{a="b"} 0.1', 'x_total{a="b"} NaN',
                                 'x_total{a="b"} +Inf', 'x_total{a="b"} 0']
    assert render([Family("empty", "gauge", "no samples")]) == b""
