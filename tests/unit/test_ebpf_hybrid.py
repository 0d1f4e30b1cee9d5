"""Hybrid hosts: a task of the cgroup2 root is counted under its v1 cpu cgroup (a tagged id); rows the programs do
not cover have no eBPF data rather than zeros."""

from __future__ import annotations

import dataclasses
import os

from unit.test_ebpf_layout import header_text
from unit.test_history_replay import live_frame

from ctop.collector import build_frame
from ctop.ebpf import hybrid
from ctop.ebpf.layout import parse_header
from ctop.ebpf.maps import add_counters
from ctop.model.ebpf import EbpfCgroupCounters, EbpfReading
from ctop.sources.cgroupfs_layout import CgroupLayout

V1 = hybrid.V1Tracking(hierarchy_id=4, root="/v1cpu", root_id=1)
PROC_CGROUP = "12:memory:/only-memory\n4:cpu,cpuacct:{v1}\n1:name=systemd:/x\n0::{v2}\n"


def key(v2: str, v1: str, inodes: dict[str, int]) -> tuple[int, int] | None:
    cache: dict[str, int | None] = dict(inodes)
    paths = hybrid.cgroup_paths(PROC_CGROUP.format(v1=v1, v2=v2))
    return hybrid.thread_key(paths, 0, "/unified", 1, V1, cache)


def test_the_tag_is_the_headers() -> None:
    tag = parse_header(header_text()).defines["V1_TAG"]
    assert hybrid.v1_tag() == tag and tag == 1 << 62


def test_a_task_only_in_a_v1_cgroup_is_keyed_by_its_tagged_v1_id() -> None:
    assert key("/", "/ctoph-bpf-x", {"/v1cpu/ctoph-bpf-x": 77}) == (hybrid.v1_tag() | 77, 77)


def test_a_task_in_a_cgroup2_cgroup_keeps_its_cgroup2_id_and_remembers_its_v1_one() -> None:
    inodes = {"/unified/docker/abc": 500, "/v1cpu/docker/abc": 900}
    assert key("/docker/abc", "/docker/abc", inodes) == (500, 900)


def test_a_host_task_is_the_root_and_a_gone_cgroup_is_none() -> None:
    assert key("/", "/", {}) == (1, 1)
    assert key("/gone", "/", {"/unified/gone": None}) is None  # type: ignore[dict-item]


def test_pure_hosts_have_no_v1_side() -> None:
    paths = hybrid.cgroup_paths("0::/a\n")
    assert hybrid.thread_key(paths, 0, "/unified", 1, None, {"/unified/a": 5}) == (5, 0)
    assert hybrid.cflags(None) == []
    assert hybrid.cflags(V1) == ["-DV1_HIERARCHY=4", "-DV1_ROOT_ID=1"]


def test_v1_tracking_only_on_hybrid_hosts() -> None:
    root = os.path.dirname(__file__)  # any directory: its inode stands for the cpu mount
    hybrid_layout = CgroupLayout(mode="hybrid", root="/", unified="/u", controllers={"cpu": root})
    tracking = hybrid.v1_tracking(hybrid_layout, {"cpu": 3})
    assert tracking == hybrid.V1Tracking(3, root, os.stat(root).st_ino)
    assert hybrid.v1_tracking(CgroupLayout(mode="v1", root="/", controllers={"cpu": root}), {"cpu": 3}) is None
    assert hybrid.v1_tracking(CgroupLayout(mode="v2", root="/", unified="/"), {}) is None


class Leaf:
    def __init__(self, cgroup_id: int, v1_id: int) -> None:
        self.cgroup_id, self.v1_id, self.slot, self.last = cgroup_id, v1_id, 3, 99


def test_a_thread_learnt_before_seeding_gets_its_v1_key_and_keeps_its_baseline() -> None:
    table = {7: Leaf(1, 0), 8: Leaf(500, 0), 9: Leaf(1, 40)}
    tagged = hybrid.v1_tag() | 77
    assert hybrid.complete_learnt(table, 7, tagged, 77, 1)
    assert (table[7].cgroup_id, table[7].v1_id, table[7].slot, table[7].last) == (tagged, 77, 0, 99)
    assert not hybrid.complete_learnt(table, 8, tagged, 77, 1)  # in a cgroup2 cgroup: stays
    assert not hybrid.complete_learnt(table, 9, tagged, 77, 1)  # a program saw its v1 move: stays
    assert not hybrid.complete_learnt(table, 10, tagged, 77, 1)  # gone meanwhile


def test_counters_of_two_ids_of_one_path_add_up() -> None:
    a = EbpfCgroupCounters(cgroup_id=5, runq_buckets=(1,) + (0,) * (len(EbpfCgroupCounters().runq_buckets) - 1),
                           runq_count=1, runq_max_seconds=0.5, execs=3)
    b = EbpfCgroupCounters(cgroup_id=9, runq_buckets=a.runq_buckets, runq_count=2, runq_max_seconds=0.2, execs=4)
    total = add_counters(a, b)
    assert (total.cgroup_id, total.runq_count, total.runq_max_seconds, total.execs) == (5, 3, 0.5, 7)
    assert total.runq_buckets[0] == 2


def test_a_row_the_programs_do_not_cover_has_no_ebpf_rates() -> None:
    _, (snapshot, enrichment) = live_frame(1, None)
    _, (snapshot2, enrichment2) = live_frame(2, (snapshot, enrichment))
    assert enrichment2.ebpf is not None and enrichment.ebpf is not None
    paths = list(snapshot2.cgroups)
    covered = frozenset(p for p in paths if p != paths[-1])
    new = dataclasses.replace(enrichment2, ebpf=dataclasses.replace(enrichment2.ebpf, covered=covered))
    built = build_frame(snapshot2, snapshot, new, enrichment)
    assert built.rows[paths[-1]].ebpf_rates is None
    covered_rates = built.rows[paths[0]].ebpf_rates
    assert covered_rates is not None and covered_rates.execs_per_s == 0.0  # covered, no event: zero
    assert EbpfReading(monotonic_time=0, by_cgroup={}, unattributed=EbpfCgroupCounters()).covers("/any")
