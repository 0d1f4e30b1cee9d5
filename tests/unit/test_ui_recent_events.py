"""The view's recent events per workload: kept while the workload has a row and for ABSENT_KEPT_S after, so a
restarting container keeps its history, while thousands of churned containers do not pile up in memory."""

from __future__ import annotations

from ctop.model.events import Event
from ctop.model.frame import CgroupRow, Identity
from ctop.model.sample import CgroupSample
from ctop.model.workload import workload_key
from ctop.ui.replay import ABSENT_KEPT_S, ABSENT_WORKLOADS_KEPT, EVENTS_PER_WORKLOAD, RecentEvents


def container(name: str) -> CgroupRow:
    path = f"/docker/{name}-id"
    return CgroupRow(sample=CgroupSample(path=path, inode=1),
                     identity=Identity(kind="container", runtime="docker", name=name))


def key(row: CgroupRow) -> str:
    return workload_key(row.identity, row.sample.path)


def test_a_stopped_workload_keeps_its_events_for_a_while_then_they_go() -> None:
    web, batch = container("web"), container("batch")
    recent = RecentEvents()
    recent.add([Event(0.0, "start", key(web)), Event(0.0, "start", key(batch))], {key(web), key(batch)}, 0.0)
    recent.add([Event(10.0, "stop", key(batch))], {key(web)}, 10.0)  # batch has no row from now on
    recent.add([], {key(web)}, 10.0 + ABSENT_KEPT_S)
    assert [e.type for e in recent.for_row(batch)] == ["start", "stop"]  # still there for a restart
    recent.add([], {key(web)}, 11.0 + ABSENT_KEPT_S)
    assert recent.for_row(batch) == []
    assert [e.type for e in recent.for_row(web)] == ["start"]  # a present workload keeps old events


def test_a_workload_that_comes_back_in_time_keeps_its_history() -> None:
    web = container("web")
    recent = RecentEvents()
    recent.add([Event(0.0, "start", key(web))], {key(web)}, 0.0)
    recent.add([Event(5.0, "stop", key(web))], set(), 5.0)
    recent.add([Event(300.0, "restart", key(web))], {key(web)}, 300.0)  # a crash loop's back-off
    recent.add([], set(), 400.0)
    recent.add([], set(), 399.0 + ABSENT_KEPT_S)  # absent since 400: the time before it came back does not count
    assert [e.type for e in recent.for_row(web)] == ["start", "stop", "restart"]


def test_churned_workloads_do_not_accumulate() -> None:
    recent = RecentEvents()
    for i in range(3000):
        row = container(f"churn-{i}")
        recent.add([Event(float(i), "start", key(row)), Event(i + 0.5, "stop", key(row))], set(), float(i))
    kept = [i for i in range(3000) if recent.for_row(container(f"churn-{i}"))]
    assert kept == list(range(3000 - ABSENT_WORKLOADS_KEPT, 3000))  # the latest gone, well within ABSENT_KEPT_S


def test_a_workload_with_a_row_is_never_pushed_out_by_churn() -> None:
    web = container("web")
    recent = RecentEvents()
    recent.add([Event(0.0, "start", key(web))], {key(web)}, 0.0)
    for i in range(2 * ABSENT_WORKLOADS_KEPT):
        row = container(f"churn-{i}")
        recent.add([Event(i + 1.0, "start", key(row)), Event(i + 1.5, "stop", key(row))], {key(web)}, i + 1.0)
    assert [e.type for e in recent.for_row(web)] == ["start"]


def test_a_noisy_workload_keeps_only_its_latest_events() -> None:
    web = container("web")
    recent = RecentEvents()
    recent.add([Event(float(i), "limit_change", key(web)) for i in range(EVENTS_PER_WORKLOAD + 10)], {key(web)}, 0.0)
    kept = recent.for_row(web)
    assert len(kept) == EVENTS_PER_WORKLOAD and kept[0].time == 10.0 and kept[-1].time == EVENTS_PER_WORKLOAD + 9.0
