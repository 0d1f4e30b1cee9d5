"""Compose projects as group rows: their containers added up, a view of their own, a level of the tree."""

from __future__ import annotations

from ctop.collector import Enrichment, build_frame
from ctop.model.fields import CPU_PERCENT
from ctop.model.filters import parse_filter_text
from ctop.model.frame import Identity
from ctop.model.groups import compose_path, compose_projects
from ctop.model.sample import CgroupSample, HostSample, Snapshot
from ctop.ui.table import VIEWS_BY_KEY, select

MIB = 2**20
IDENTITIES = {
    "/": Identity(kind="root"),
    "/docker/w": Identity(kind="container", name="shop-web-1", compose_project="shop", compose_service="web"),
    "/docker/d": Identity(kind="container", name="shop-db-1", compose_project="shop", compose_service="db"),
    "/docker/x": Identity(kind="container", name="blog-app-1", compose_project="blog", compose_service="app"),
    "/docker/p": Identity(kind="container", name="plain"),
}


def sample(path: str, cpu_s: float, mem: int, limit: int | None = None) -> CgroupSample:
    return CgroupSample(path=path, inode=1, cpu_usage_ns=int(cpu_s * 1e9), memory_usage_bytes=mem,
                        memory_inactive_file_bytes=0, memory_limit_bytes=limit, threads=3)


def frames():  # type: ignore[no-untyped-def]
    def snap(at: float, k: float) -> Snapshot:
        host = HostSample(monotonic_s=at, wall_time_s=at, cpu_time_ns=int(at * 2e9), online_cpus=2,
                          memory_total_bytes=None)
        cgroups = [sample("/", 100 * k, 1000 * MIB), sample("/docker/w", 1 * k, 64 * MIB, 128 * MIB),
                   sample("/docker/d", 2 * k, 32 * MIB, 64 * MIB), sample("/docker/x", 3 * k, 16 * MIB),
                   sample("/docker/p", 4 * k, 8 * MIB)]
        return Snapshot(host=host, cgroups={s.path: s for s in cgroups}, mode="v2")
    e = Enrichment(identities=IDENTITIES)
    return build_frame(snap(2, 2), snap(1, 1), e, e)


def test_a_project_row_adds_up_its_containers_and_limits_only_when_all_have_one() -> None:
    frame = frames()
    shop, blog = frame.groups[compose_path("shop")], frame.groups[compose_path("blog")]
    assert set(frame.groups) == {compose_path("shop"), compose_path("blog")}  # the plain container is in none
    assert shop.identity.kind == "compose" and shop.identity.name == "shop"
    assert shop.cpu_percent is not None and abs(shop.cpu_percent - 300.0) < 1e-6  # 1 + 2 s of CPU in 1 s
    assert shop.sample.memory_usage_bytes == 96 * MIB and shop.sample.memory_limit_bytes == 192 * MIB
    assert shop.sample.threads == 6
    assert blog.sample.memory_limit_bytes is None  # its container has no limit: the project has none
    assert not set(frame.groups) & set(frame.rows)  # not cgroups: batch output and the recorder never see them
    assert compose_projects({}) == {}
    assert compose_path("a/b") == "/~compose/a_b"


def paths(view: str, text: str = "", tree: bool = False) -> list[str]:
    rows = select(frames(), VIEWS_BY_KEY[view], parse_filter_text(text), CPU_PERCENT.sort_key, True, tree)
    return [r.path for r in rows]


def test_the_compose_view_lists_projects_and_the_tree_puts_containers_under_them() -> None:
    assert paths("compose") == [compose_path("shop"), compose_path("blog")]  # by CPU, busiest first
    assert paths("compose", "name=blog") == [compose_path("blog")]
    assert compose_path("shop") not in paths("containers") and compose_path("shop") not in paths("cgroups")
    rows = select(frames(), VIEWS_BY_KEY["containers"], parse_filter_text(""), CPU_PERCENT.sort_key, True, True)
    placed = {r.path: (r.parent, r.context) for r in rows}
    assert placed["/docker/w"] == (compose_path("shop"), False)
    assert placed["/docker/d"] == (compose_path("shop"), False)
    assert placed["/docker/x"] == (compose_path("blog"), False)
    assert placed[compose_path("shop")] == (None, True)  # shown as context above its containers
    assert placed["/docker/p"][0] is None
