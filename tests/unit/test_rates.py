"""Two snapshots of a recorded tree give the expected rates; no rate across a recreated cgroup or a reset."""

from __future__ import annotations

import dataclasses

from support.trees import copy_tree

from ctop.collector import Collector, CollectorConfig, build_frame
from ctop.model.sample import IoCounters

CTR = ("/kubepods.slice/kubepods-pod0f1e2d3c_4b5a_6978_8a9b_0c1d2e3f4a5b.slice/"
       "cri-containerd-5f0c9a2d7e3b41c6a8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d.scope")


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def two_snapshots(tmp_path):
    cgroup_root, proc_root = copy_tree("v2-k8s-systemd", str(tmp_path / "tree"))
    collector = Collector(CollectorConfig(cgroup_root=cgroup_root, proc_root=proc_root))
    first = collector.snapshot()
    ctr = cgroup_root + CTR
    # Two seconds later: 4 CPUs ran 2 s each (800 ticks at USER_HZ=100) and the container used 0.5 s of CPU,
    # was throttled in 5 of 10 new periods, read 1 MiB and wrote 2 MiB.
    _write(ctr + "/cpu.stat", "usage_usec 990500000\nuser_usec 742875000\nsystem_usec 247625000\n"
                              "nr_periods 510\nnr_throttled 130\nthrottled_usec 2600000\n")
    _write(ctr + "/io.stat", "8:0 rbytes=5144576 wbytes=10289152 rios=1100 wios=2300\n"
                             "253:0 rbytes=1024 wbytes=0 rios=1 wios=0\n")
    stat_path = ctr + "/memory.stat"  # 300 major faults more
    with open(stat_path) as f:
        stat = f.read()
    _write(stat_path, stat.replace("pgmajfault 99\n", "pgmajfault 399\n"))
    _write(proc_root + "/stat", "cpu  10400 0 5200 80200 100 0 50 0 0 0\n" + "".join(
        f"cpu{i} 2500 0 1250 20000 25 0 12 0 0 0\n" for i in range(4)))
    second = collector.snapshot()
    second = dataclasses.replace(second, host=dataclasses.replace(
        second.host, monotonic_s=first.host.monotonic_s + 2.0),
        read_at={path: at + 2.0 for path, at in first.read_at.items()})  # each cgroup read 2 s after the first time
    return first, second


def test_rates_from_two_snapshots(tmp_path) -> None:
    first, second = two_snapshots(tmp_path)
    row = build_frame(second, first).rows[CTR]
    # docker stats: 0.5 s / (800 ticks = 8 s of host CPU) × 4 CPUs × 100 = 25 %.
    assert abs(row.cpu_percent - 25.0) < 1e-6
    assert row.cpu_limit_cores == 0.5
    assert abs(row.cpu_limit_percent - 50.0) < 1e-6
    assert abs(row.throttled_percent - 50.0) < 1e-6
    assert abs(row.io_read_bytes_per_s - (1 << 20) / 2) < 1e-6
    assert abs(row.io_write_bytes_per_s - (2 << 20) / 2) < 1e-6
    assert abs(row.io_read_ops_per_s - 50.0) < 1e-6 and abs(row.io_write_ops_per_s - 150.0) < 1e-6
    assert abs(row.memory_limit_percent - 190 / 256 * 100) < 1e-6
    assert abs(row.memory_major_faults_per_s - 150.0) < 1e-6
    # Unchanged cgroups: 0 % CPU, not "no data".
    assert build_frame(second, first).rows["/system.slice/kubelet.service"].cpu_percent == 0.0


def test_a_cgroup_read_late_gets_its_rates_over_its_own_interval(tmp_path) -> None:
    """The reader was held back for a second between the host's figures and this container's (a busy node): its
    CPU, IO and fault rates go by the 3 s between its own two reads, not the host's 2 s."""
    first, second = two_snapshots(tmp_path)
    assert set(first.read_at) == set(first.cgroups)  # every cgroup's read is timed
    late = dataclasses.replace(second, read_at={**second.read_at, CTR: second.read_at[CTR] + 1.0})
    row = build_frame(late, first).rows[CTR]
    # 0.5 s of CPU over 3 s: the host's 8 s of CPU time over 2 s, taken over 3 s (12 s) × 4 CPUs × 100.
    assert abs(row.cpu_percent - 0.5 / 12 * 4 * 100) < 1e-6
    assert abs(row.io_read_bytes_per_s - (1 << 20) / 3) < 1e-6
    assert abs(row.memory_major_faults_per_s - 100.0) < 1e-6
    on_time = build_frame(second, first).rows["/system.slice/kubelet.service"]
    assert on_time.cpu_percent == 0.0  # the others as before


def test_the_reader_times_each_cgroups_counter_in_reading_order(tmp_path, monkeypatch) -> None:
    cgroup_root, proc_root = copy_tree("v2-k8s-systemd", str(tmp_path / "tree"))
    collector = Collector(CollectorConfig(cgroup_root=cgroup_root, proc_root=proc_root))
    ticks = iter(range(10_000))
    monkeypatch.setattr("ctop.sources.cgroupfs.time.monotonic", lambda: float(next(ticks)))
    snapshot = collector.snapshot()
    times = list(snapshot.read_at.values())
    assert set(snapshot.read_at) == set(snapshot.cgroups)
    assert times == sorted(set(times)) and len(times) == len(snapshot.cgroups)  # the clock read before each one


def test_first_frame_has_no_rates(tmp_path) -> None:
    first, _ = two_snapshots(tmp_path)
    row = build_frame(first, None).rows[CTR]
    assert row.cpu_percent is None and row.throttled_percent is None and row.io_read_bytes_per_s is None
    assert row.cpu_limit_cores == 0.5  # limits need no previous sample


def test_no_rate_across_a_recreated_cgroup(tmp_path) -> None:
    first, second = two_snapshots(tmp_path)
    recreated = dataclasses.replace(second.cgroups[CTR], inode=second.cgroups[CTR].inode + 1)
    second = dataclasses.replace(second, cgroups={**second.cgroups, CTR: recreated})
    row = build_frame(second, first).rows[CTR]
    assert row.cpu_percent is None and row.io_write_bytes_per_s is None and row.throttled_percent is None


def test_no_rate_across_a_counter_reset(tmp_path) -> None:
    first, second = two_snapshots(tmp_path)
    reset = dataclasses.replace(second.cgroups[CTR], cpu_usage_ns=1, io_total=IoCounters(0, 0, 0, 0))
    second = dataclasses.replace(second, cgroups={**second.cgroups, CTR: reset})
    row = build_frame(second, first).rows[CTR]
    assert row.cpu_percent is None and row.io_read_bytes_per_s is None


def test_tasks_recursive_sums_the_subtree(tmp_path) -> None:
    first, _ = two_snapshots(tmp_path)
    rows = build_frame(first, None).rows
    pod = CTR.rsplit("/", 1)[0]
    assert rows[CTR].tasks_recursive == 5
    assert rows[pod].tasks_recursive == 5
    assert rows["/system.slice"].tasks_recursive == 30 + 20  # containerd, kubelet; broken has no cgroup.threads


def test_a_sample_kept_from_the_previous_refresh_derives_as_a_copy_would() -> None:
    """The reader hands an idle cgroup's previous sample over again (the same object): its rows are those of two
    equal samples read apart, whatever the interval, the limits and the counters known."""
    from ctop.model.derive import derive_row
    from ctop.model.sample import CgroupSample, HostSample

    def host(t: float, cpu: int) -> HostSample:
        return HostSample(monotonic_s=t, wall_time_s=t, cpu_time_ns=cpu, online_cpus=2, memory_total_bytes=2**30)

    samples = [
        CgroupSample(path="/a", inode=3, cpu_usage_ns=10, io_total=IoCounters(1, 2, 3, 4), memory_pgmajfault=5,
                     cpu_quota_us=50000, cpu_period_us=100000, cpu_periods=7, cpu_throttled_periods=2),
        CgroupSample(path="/b", inode=4, io_total=IoCounters(), cpu_quota_us=-1),
        CgroupSample(path="/c", inode=5),
    ]
    for sample in samples:
        for then, now in ((host(1.0, 100), host(2.0, 300)), (host(1.0, 100), host(1.0, 100)),
                          (host(2.0, 100), host(1.0, 300))):
            kept = derive_row(sample, sample, now, then)
            copy = dataclasses.replace(sample, io_total=sample.io_total and dataclasses.replace(sample.io_total))
            copied = derive_row(sample, copy, now, then)
            assert repr(kept) == repr(copied)
