"""The host row: the root minus the top-level containers and pods, in the Containers view only."""

from __future__ import annotations

from ctop.collector import Enrichment, build_frame
from ctop.model.ebpf import RUNQ_SLOTS, EbpfCgroupCounters, EbpfReading
from ctop.model.fields import CPU_PERCENT
from ctop.model.filters import parse_filter_text
from ctop.model.frame import Identity
from ctop.model.host import HOST_PATH, add_counters, host_sample, top_level_workloads
from ctop.model.sample import CgroupSample, HostSample, IoCounters, Snapshot
from ctop.ui.table import VIEWS_BY_KEY, select

GIB = 2**30
IDENTITIES = {
    "/": Identity(kind="root"),
    "/docker": Identity(kind="cgroup"),
    "/docker/a": Identity(kind="container", name="a"),
    "/docker/b": Identity(kind="container", name="b"),
    "/docker/b/inner": Identity(kind="container", name="inner"),  # nested: already counted in b
    "/kubepods": Identity(kind="qos"),
    "/kubepods/pod1": Identity(kind="pod", name="pod1"),
    "/kubepods/pod1/c1": Identity(kind="container", name="c1"),
    "/system.slice": Identity(kind="slice", name="system.slice"),
}


def sample(path: str, cpu_s: float, mem: int, inode: int = 1, io: int = 0) -> CgroupSample:
    return CgroupSample(path=path, inode=inode, cpu_usage_ns=int(cpu_s * 1e9), memory_usage_bytes=mem,
                        memory_inactive_file_bytes=mem // 4, memory_pgmajfault_hierarchy=int(cpu_s),
                        io_total=IoCounters(read_bytes=io, write_bytes=2 * io), threads=2)


def snapshot(at_s: float, cgroups: list[CgroupSample]) -> Snapshot:
    host = HostSample(monotonic_s=at_s, wall_time_s=1000 + at_s, cpu_time_ns=int(at_s * 2e9), online_cpus=2,
                      memory_total_bytes=16 * GIB)
    return Snapshot(host=host, cgroups={s.path: s for s in cgroups}, mode="v2")


def test_top_level_workloads_are_the_outermost_containers_and_pods() -> None:
    assert top_level_workloads(IDENTITIES) == ["/docker/a", "/docker/b", "/kubepods/pod1"]
    assert top_level_workloads({"/": Identity(kind="root")}) == []


def test_the_host_is_the_root_minus_the_workloads_in_cpu_memory_io_and_threads() -> None:
    before = snapshot(0, [sample("/", 100, 8 * GIB, io=1000), sample("/docker/a", 10, GIB, io=100),
                          sample("/docker", 0, 0), sample("/kubepods", 0, 0),
                          sample("/docker/b", 20, GIB), sample("/docker/b/inner", 5, GIB),
                          sample("/kubepods/pod1", 30, 2 * GIB, io=300), sample("/system.slice", 1, GIB)])
    after = snapshot(1, [sample("/", 101.5, 8 * GIB, io=2000), sample("/docker/a", 10.5, GIB, io=150),
                         sample("/docker", 0, 0), sample("/kubepods", 0, 0),
                         sample("/docker/b", 20.5, GIB), sample("/docker/b/inner", 5.4, GIB),
                         sample("/kubepods/pod1", 30.25, 2 * GIB, io=400), sample("/system.slice", 1.2, GIB)])
    frame = build_frame(after, before, Enrichment(identities=IDENTITIES), Enrichment(identities=IDENTITIES))
    host = frame.host
    assert host is not None and host.path == HOST_PATH and host.identity.name == "host"
    assert host.sample.memory_usage_bytes == 4 * GIB  # 8 GiB minus a, b and pod1 (inner is inside b)
    assert host.sample.working_set_bytes == 3 * GIB
    # 1.5 s of CPU on the root in 1 s, of which 1.25 s in workloads: 25 % (100 % = one CPU).
    assert host.cpu_percent is not None and abs(host.cpu_percent - 25.0) < 1e-6
    assert host.io_read_bytes_per_s == 1000 - 50 - 100 and host.io_write_bytes_per_s == 2 * 850
    # 16 threads in the tree (2 per cgroup) minus 4 in b + inner, 2 in a, 2 in pod1
    assert host.tasks_recursive == 8
    assert host.memory_limit_percent is None and host.cpu_limit_cores is None  # the host has no limit
    assert "/" in frame.rows and HOST_PATH not in frame.rows  # a row of its own, not a cgroup


def test_a_container_that_came_or_went_does_not_move_usage_in_or_out_of_the_host() -> None:
    before = snapshot(0, [sample("/", 100, 8 * GIB), sample("/docker/a", 10, GIB),
                          sample("/docker/old", 50, GIB)])
    after = snapshot(1, [sample("/", 101, 8 * GIB), sample("/docker/a", 0.5, GIB, inode=2),
                         sample("/docker/new", 0.25, GIB)])
    ids = {**IDENTITIES, "/docker/old": Identity(kind="container"), "/docker/new": Identity(kind="container")}
    host = build_frame(after, before, Enrichment(identities=ids), Enrichment(identities=ids)).host
    # a was recreated (new inode): its 0.5 s count from zero; new started from zero; old went: its 50 s stay
    # in the root and in the host's earlier sample alike. 1 s - 0.5 - 0.25 = 0.25 s in 1 s on 2 CPUs.
    assert host is not None and host.cpu_percent is not None and abs(host.cpu_percent - 25.0) < 1e-6
    skewed = snapshot(2, [sample("/", 101.1, 8 * GIB), sample("/docker/a", 0.9, GIB, inode=2),
                          sample("/docker/new", 0.25, GIB)])
    host = build_frame(skewed, after, Enrichment(identities=ids), Enrichment(identities=ids)).host
    assert host is not None and host.cpu_percent == 0.0  # read skew: 0.1 - 0.4 clamps at 0, never negative
    then = host_sample(before.cgroups, ["/docker/a", "/docker/new"], same_as=after.cgroups)
    assert then is not None and then.cpu_usage_ns == 100 * 10**9  # a's old inode and new's absence: nothing off
    assert host_sample({}, ["/docker/a"]) is None


def test_no_containers_no_host_row_and_the_exporter_never_gets_one() -> None:
    only_root = snapshot(0, [sample("/", 1, GIB), sample("/system.slice", 1, GIB)])
    assert build_frame(only_root, None, Enrichment(identities=IDENTITIES)).host is None
    with_one = snapshot(0, [sample("/", 1, GIB), sample("/docker/a", 1, GIB)])
    assert build_frame(with_one, None, Enrichment(identities=IDENTITIES), derive=False).host is None
    first = build_frame(with_one, None, Enrichment(identities=IDENTITIES)).host
    assert first is not None and first.cpu_percent is None  # no rate before a second refresh


def counters(cid: int, execs: int, culprit: tuple[tuple[str, int], ...] = ()) -> EbpfCgroupCounters:
    buckets = [0] * RUNQ_SLOTS
    buckets[3] = execs
    return EbpfCgroupCounters(cgroup_id=cid, execs=execs, runq_buckets=tuple(buckets), runq_count=execs,
                              preempted_by=culprit)


def reading(at_s: float, by_cgroup: dict[str, EbpfCgroupCounters]) -> EbpfReading:
    return EbpfReading(monotonic_time=at_s, by_cgroup=by_cgroup, unattributed=EbpfCgroupCounters())


def test_host_ebpf_adds_up_every_cgroup_outside_the_workloads() -> None:
    before = snapshot(0, [sample("/", 1, GIB), sample("/docker/a", 1, GIB)])
    after = snapshot(2, [sample("/", 2, GIB), sample("/docker/a", 1, GIB)])
    old = reading(0, {"/": counters(1, 10), "/system.slice": counters(5, 4, (("/docker/a", 3),)),
                      "/docker/a": counters(2, 100), "/gone": counters(9, 50)})
    new = reading(2, {"/": counters(1, 30), "/system.slice": counters(5, 8, (("/docker/a", 9),)),
                      "/docker/a": counters(2, 500), "/recreated": counters(7, 6)})
    ids = dict(IDENTITIES)
    host = build_frame(after, before, Enrichment(identities=ids, ebpf=new), Enrichment(identities=ids, ebpf=old)).host
    assert host is not None and host.ebpf is not None and host.ebpf_rates is not None
    assert host.ebpf.execs == 30 + 8 + 6  # the container's 500 are not the host's
    # (20 + 4 + 6 new) execs in 2 s: "/recreated" counts from zero, "/gone" is no negative delta
    assert host.ebpf_rates.execs_per_s == 15.0
    assert host.ebpf_rates.top_preemptor == "a"  # who preempted the host's tasks, by workload name
    merged = add_counters(counters(1, 1, (("x", 1),)), counters(2, 2, (("y", 5), ("x", 1))))
    assert merged.cgroup_id == 0 and merged.preempted_by == (("y", 5), ("x", 2)) and merged.runq_count == 3


def test_the_host_row_is_listed_in_the_containers_view_only_and_obeys_the_filter() -> None:
    frame = build_frame(snapshot(0, [sample("/", 1, GIB), sample("/docker/a", 1, GIB)]), None,
                        Enrichment(identities=IDENTITIES))
    key, desc = CPU_PERCENT.sort_key, True

    def names(view: str, text: str = "", tree: bool = False) -> list[str]:
        rows = select(frame, VIEWS_BY_KEY[view], parse_filter_text(text), key, desc, tree)
        return sorted(r.path for r in rows)

    assert names("containers") == ["/docker/a", HOST_PATH]
    assert names("containers", tree=True) == ["/docker/a", HOST_PATH]
    assert names("containers", "name=host") == [HOST_PATH]
    assert names("containers", "name=a") == ["/docker/a"]
    assert HOST_PATH not in names("cgroups") and HOST_PATH not in names("pods")
    assert frame.row(HOST_PATH) is frame.host and frame.row("/docker/a") is frame.rows["/docker/a"]
