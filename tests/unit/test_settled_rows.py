"""A row kept from the previous refresh (build_frame's ``settled``) is exactly the row derived afresh, whatever
changed between refreshes; and an idle cgroup's row is the same object refresh after refresh."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from ctop.collector import Enrichment, build_frame
from ctop.model.ebpf import EbpfCgroupCounters, EbpfReading
from ctop.model.frame import Frame, Identity, NetCounters
from ctop.model.sample import CgroupSample, HostSample, Snapshot
from ctop.model.window import Throttling

PATHS = ("/", "/kubepods", "/kubepods/pod1", "/kubepods/pod1/ctr", "/docker/abc")
# Mostly idle, as on a node: rows are kept only after two refreshes with the same sample.
SAMPLE_CHANGES = st.sampled_from(["same"] * 6 + ["equal copy", "cpu moved", "recreated", "limit set"])
INPUT_CHANGES = st.sampled_from(["same", "equal copy", "changed", "gone"])
STEP = st.fixed_dictionaries({
    "samples": st.tuples(*[SAMPLE_CHANGES] * len(PATHS)),
    "identity": st.sampled_from(["same"] * 3 + ["renamed"]),
    "net": INPUT_CHANGES, "ebpf": st.sampled_from(["same", "equal copy", "changed", "gone", "off"]),
    "throttling": INPUT_CHANGES,
    "host_cpu_ns": st.sampled_from([0, 1, 10**9, 10**9]), "interval_s": st.sampled_from([0.0, 1.0, 2.5, 1.0]),
})


class World:
    """The inputs of one refresh, changed step by step as a hypothesis draws it."""

    def __init__(self) -> None:
        self.t, self.host_cpu = 100.0, 10**12
        self.samples = {p: CgroupSample(path=p, inode=i + 10, cpu_usage_ns=10**9, cpu_quota_us=50000,
                                        cpu_period_us=100000, cpu_periods=10, cpu_throttled_periods=2,
                                        memory_usage_bytes=2**20, memory_limit_bytes=2**24, threads=3)
                        for i, p in enumerate(PATHS)}
        self.identities = {p: Identity(kind="container", name=p) for p in PATHS}
        self.net: dict[str, dict[str, NetCounters]] = {"/docker/abc": {"eth0": NetCounters(rx_bytes=5)}}
        self.ebpf: dict[str, EbpfCgroupCounters] | None = {"/kubepods/pod1/ctr": EbpfCgroupCounters(cgroup_id=7,
                                                                                                    nvcsw=4)}
        self.throttling = {"/kubepods/pod1/ctr": Throttling(percent=20.0, seconds_per_s=0.1, window_s=10.0)}

    def step(self, change: dict) -> None:  # type: ignore[type-arg]
        self.t += change["interval_s"]
        self.host_cpu += change["host_cpu_ns"]
        for path, what in zip(PATHS, change["samples"], strict=True):
            s = self.samples[path]
            if what == "equal copy":
                self.samples[path] = dataclasses.replace(s)
            elif what == "cpu moved":
                self.samples[path] = dataclasses.replace(s, cpu_usage_ns=(s.cpu_usage_ns or 0) + 10**7)
            elif what == "recreated":
                self.samples[path] = dataclasses.replace(s, inode=s.inode + 100)
            elif what == "limit set":
                self.samples[path] = dataclasses.replace(s, memory_limit_bytes=(s.memory_limit_bytes or 0) * 2)
        if change["identity"] == "renamed":
            self.identities = {**self.identities, "/docker/abc": Identity(kind="container", name=f"web-{self.t}")}
        self.net = _changed(self.net, change["net"], lambda v: {"eth0": NetCounters(rx_bytes=v["eth0"].rx_bytes + 1)},
                            {"/docker/abc": {"eth0": NetCounters(rx_bytes=5)}})
        if change["ebpf"] == "off":
            self.ebpf = None
        else:
            self.ebpf = _changed(self.ebpf or {}, change["ebpf"],
                                 lambda v: dataclasses.replace(v, nvcsw=v.nvcsw + 1),
                                 {"/kubepods/pod1/ctr": EbpfCgroupCounters(cgroup_id=7, nvcsw=4)})
        self.throttling = _changed(self.throttling, change["throttling"],
                                   lambda v: dataclasses.replace(v, percent=(v.percent or 0) + 1),
                                   {"/kubepods/pod1/ctr": Throttling(percent=20.0, seconds_per_s=0.1, window_s=10.0)})

    def inputs(self) -> tuple[Snapshot, Enrichment, dict[str, Throttling]]:
        host = HostSample(monotonic_s=self.t, wall_time_s=1.7e9 + self.t, cpu_time_ns=self.host_cpu, online_cpus=2,
                          memory_total_bytes=2**30)
        snapshot = Snapshot(host=host, cgroups=dict(self.samples), mode="v2")
        reading = None if self.ebpf is None else EbpfReading(
            monotonic_time=self.t, by_cgroup=dict(self.ebpf), unattributed=EbpfCgroupCounters())
        return snapshot, Enrichment(identities=dict(self.identities), net=dict(self.net), ebpf=reading), \
            dict(self.throttling)


def _changed(values: dict, how: str, change, initial: dict) -> dict:  # type: ignore[no-untyped-def, type-arg]
    if how == "equal copy":
        return {k: dataclasses.replace(v) if dataclasses.is_dataclass(v) else dict(v) for k, v in values.items()}
    if how == "changed":
        return {k: change(v) for k, v in values.items()} if values else dict(initial)
    if how == "gone":
        return {}
    return values


@settings(max_examples=500, deadline=None)
@given(steps=st.lists(STEP, min_size=1, max_size=8))
def test_a_kept_row_equals_the_row_derived_afresh(steps) -> None:  # type: ignore[no-untyped-def]
    world = World()
    previous: tuple[Snapshot, Enrichment] | None = None
    kept_frame: Frame | None = None
    for change in [None, *steps]:
        if change is not None:
            world.step(change)
        snapshot, enrichment, throttling = world.inputs()
        before, before_enrichment = previous if previous is not None else (None, None)
        settled = {p: kept_frame.rows[p] for p in kept_frame.settled} if kept_frame is not None else None
        kept = build_frame(snapshot, before, enrichment, before_enrichment, throttling, settled=settled)
        fresh = build_frame(snapshot, before, enrichment, before_enrichment, throttling)
        assert kept.rows == fresh.rows
        assert kept.settled == fresh.settled
        previous, kept_frame = (snapshot, enrichment), kept


def test_an_idle_cgroups_row_is_the_same_object_while_nothing_changes() -> None:
    world = World()
    frames: list[Frame] = []
    previous = None
    for _ in range(4):
        world.step({"samples": ("same",) * len(PATHS), "identity": "same", "net": "equal copy", "ebpf": "equal copy",
                    "throttling": "equal copy", "host_cpu_ns": 10**9, "interval_s": 1.0})
        snapshot, enrichment, throttling = world.inputs()
        settled = {p: frames[-1].rows[p] for p in frames[-1].settled} if frames else None
        frames.append(build_frame(snapshot, previous[0] if previous else None, enrichment,
                                  previous[1] if previous else None, throttling, settled=settled))
        previous = (snapshot, enrichment)
    # The first frame has no rates, the second derives the settled rows, the third and fourth keep them.
    assert frames[1].settled == set(PATHS)
    for path in PATHS:
        assert frames[3].rows[path] is frames[2].rows[path] is frames[1].rows[path]
        assert frames[3].rows[path].cpu_percent == 0.0
    assert frames[3].rows["/kubepods/pod1/ctr"].throttled_percent_avg == 20.0
