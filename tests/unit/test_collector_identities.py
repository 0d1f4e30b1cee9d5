"""The collector keeps each cgroup's Identity from one refresh to the next only while its path and what the runtime
says about it stay the same: a renamed container, or a path that went and came back with another container, is named
afresh."""

from __future__ import annotations

from support.trees import tree

from ctop.collector import Collector, CollectorConfig
from ctop.model.sample import CgroupSample, HostSample, Snapshot
from ctop.runtimes.identify import Identity as PathIdentity
from ctop.runtimes.meta import ContainerMeta

ID = "ab" * 32
PATH = f"/docker/{ID}"


class Runtime:
    """A metadata service that says what the test tells it to."""

    def __init__(self) -> None:
        self.meta: ContainerMeta | None = None

    def lookup(self, path: str, identity: PathIdentity) -> ContainerMeta | None:
        return self.meta if path == PATH and identity.container_id == ID else None

    def notices(self) -> list[object]:
        return []


def snapshot(paths: list[str], t: float) -> Snapshot:
    host = HostSample(monotonic_s=t, wall_time_s=1.7e9 + t, cpu_time_ns=0, online_cpus=2, memory_total_bytes=2**30)
    return Snapshot(host=host, cgroups={p: CgroupSample(path=p, inode=i + 1) for i, p in enumerate(paths)}, mode="v1")


def collector() -> tuple[Collector, Runtime]:
    cgroup_root, proc_root = tree("v1-k8s-cgroupfs")
    made = Collector(CollectorConfig(cgroup_root=cgroup_root, proc_root=proc_root, containers=False, ebpf=False,
                                     history_dir=None))
    runtime = Runtime()
    made.metadata = runtime  # type: ignore[assignment]
    return made, runtime


def test_a_renamed_container_is_named_afresh() -> None:
    made, runtime = collector()
    runtime.meta = ContainerMeta(runtime="docker", container_id=ID, name="web", image="nginx:1", labels={"a": "1"})
    first = made.enrich(snapshot(["/", "/docker", PATH], 1.0)).identities[PATH]
    assert (first.name, first.image, first.labels) == ("web", "nginx:1", {"a": "1"})
    again = made.enrich(snapshot(["/", "/docker", PATH], 2.0)).identities[PATH]
    assert again is first  # nothing changed: the same Identity
    runtime.meta = ContainerMeta(runtime="docker", container_id=ID, name="web-renamed", image="nginx:1",
                                 labels={"a": "1"})
    renamed = made.enrich(snapshot(["/", "/docker", PATH], 3.0)).identities[PATH]
    assert renamed.name == "web-renamed"
    runtime.meta = ContainerMeta(runtime="docker", container_id=ID, name="web-renamed", image="nginx:1",
                                 labels={"a": "2"})
    assert made.enrich(snapshot(["/", "/docker", PATH], 4.0)).identities[PATH].labels == {"a": "2"}


def test_a_path_that_comes_back_with_another_container_is_named_afresh() -> None:
    made, runtime = collector()
    runtime.meta = ContainerMeta(runtime="docker", container_id=ID, name="first", image="app:1")
    assert made.enrich(snapshot(["/", "/docker", PATH], 1.0)).identities[PATH].name == "first"
    runtime.meta = None
    assert PATH not in made.enrich(snapshot(["/", "/docker"], 2.0)).identities
    runtime.meta = ContainerMeta(runtime="docker", container_id=ID, name="second", image="app:2")
    back = made.enrich(snapshot(["/", "/docker", PATH], 3.0)).identities[PATH]
    assert (back.name, back.image) == ("second", "app:2")
    runtime.meta = None  # the runtime forgot it (removed again): the path's own name, not the container's
    gone = made.enrich(snapshot(["/", "/docker", PATH], 4.0)).identities[PATH]
    assert (gone.name, gone.image) != ("second", "app:2")
    assert made._named.keys() == {"/docker", PATH}  # only the latest refresh's cgroups are kept
