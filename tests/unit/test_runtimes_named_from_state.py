"""Runtimes named from their own state without a daemon: a recorded podman node (pod, infra, member, conmon), the
bbolt reader, rootless podman, LXC, runc, machined machines, namespaced cgroups and crun's inner cgroup."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctop.collector import Collector, CollectorConfig, identity_of
from ctop.model.ebpf import EbpfCgroupCounters, EbpfReading, ExecRecord, OomKill
from ctop.model.frame import Identity as RowIdentity
from ctop.model.sample import UNLIMITED, CgroupSample
from ctop.runtimes import boltdb
from ctop.runtimes.fold import controller_paths, fold_inner, fold_reading, limits_where_set
from ctop.runtimes.identify import identify
from ctop.runtimes.local_state import LocalState, lxc_template, runc_cgroups, runc_meta
from ctop.runtimes.metadata import MetadataService
from ctop.runtimes.namespaced import NamespacedCgroups
from ctop.runtimes.podman_state import read_state, rootless_uid, storage_conf_roots
from ctop.sources.procfs_ns import namespace_init, own_namespaces

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "runtimes")
RECORDED = os.path.join(DATA, "podman-hybrid-recorded")
POD = "f4194bfeee1ed59a3e4d9b307d3d6facfbe6915f8250f1a25ef783b2b4c8b60b"
INFRA = "702f6674b262e610d3ac3219b8728d5c9a20d40f15769e9123ffc424bd792c7c"
MEMBER = "a137f9d1a3637c8fcc16d63e51ff6f98c81bd675f3b197813374728ca11c2fff"
SOLO = "812f7dcec2238003334a7668ce90ae953d8c04e52a347a4d940d86fb9a8de938"
IMAGE = "localhost/ctoph-rt-busybox:probe"
ID = "27d5449bfc9a87c6755784b36016e923af8818c0c536d5695251ef385853731f"


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> MetadataService:
    monkeypatch.delenv("CONTAINERS_STORAGE_CONF", raising=False)
    return MetadataService(host_root=RECORDED, use_docker=False)


def recorded_paths() -> list[str]:
    root = os.path.join(RECORDED, "sys/fs/cgroup/memory")
    return sorted("/" + os.path.relpath(d, root) for d, _, _ in os.walk(root) if d != root)


def test_recorded_podman_pod_members_infra_and_conmon(recorded: MetadataService) -> None:
    rows = {p: identity_of(identify(p), recorded.lookup(p, identify(p))) for p in recorded_paths()}
    pod = rows[f"/libpod_parent/{POD}"]
    assert (pod.kind, pod.runtime, pod.name, pod.pod) == ("pod", "podman", "ctoph-rt-pod1", "ctoph-rt-pod1")
    member = rows[f"/libpod_parent/{POD}/libpod-{MEMBER}"]
    assert (member.kind, member.runtime, member.name, member.image, member.pod, member.pod_uid) == (
        "container", "podman", "ctoph-rt-m1", IMAGE, "ctoph-rt-pod1", POD)
    infra = rows[f"/libpod_parent/{POD}/libpod-{INFRA}"]
    assert (infra.kind, infra.runtime, infra.pod, infra.image) == (
        "container", "podman", "ctoph-rt-pod1", "localhost/podman-pause:4.3.1-0")
    assert recorded.lookup(f"/libpod_parent/{POD}/libpod-{INFRA}", identify(f"/libpod_parent/{POD}/libpod-{INFRA}"))\
        .sandbox  # type: ignore[union-attr]
    solo = rows[f"/libpod_parent/libpod-{SOLO}"]
    assert (solo.kind, solo.runtime, solo.name, solo.pod) == ("container", "podman", "ctoph-rt-solo", "")
    for conmon in (f"/libpod_parent/{POD}/conmon", "/libpod_parent/conmon"):
        assert (rows[conmon].kind, rows[conmon].runtime, rows[conmon].name) == ("cgroup", "podman", "conmon")
    assert rows[f"/libpod_parent/{POD}/conmon"].pod == "ctoph-rt-pod1"
    assert not any(r.runtime == "cri-o" for r in rows.values())  # podman's CRI-O-style annotations notwithstanding


def test_recorded_bolt_state() -> None:
    state = read_state(os.path.join(RECORDED, "var/lib/containers/storage"))
    assert state.pods == {POD: "ctoph-rt-pod1"}
    assert state.infra == {POD: INFRA}
    assert {c.name for c in state.containers.values()} == {"ctoph-rt-m1", "ctoph-rt-solo", "f4194bfeee1e-infra"}
    assert state.containers[MEMBER].pod_id == POD and state.containers[SOLO].pod_id == ""


def test_bolt_reader_refuses_garbage(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "bad.db")
    real = os.path.join(RECORDED, "var/lib/containers/storage/libpod/bolt_state.db")
    with open(real, "rb") as f:
        data = bytearray(f.read())
    with open(path, "wb") as f:
        f.write(b"\0" * 16384)
    assert boltdb.open_bolt(path) is None
    assert boltdb.read_values(path, (b"ctr",), (b"config",)) == {}
    assert boltdb.open_bolt(os.path.join(str(tmp_path), "missing.db")) is None
    for at in range(4096 * 2, len(data), 4096):  # every page but the meta pages scribbled over: no exception
        data[at:at + 64] = b"\xff" * 64
    with open(path, "wb") as f:
        f.write(data)
    read_state(str(tmp_path))  # no state file there: empty
    assert isinstance(boltdb.read_values(path, (b"ctr",), (b"config",)), dict)


def _podman_storage(graph: str, run: str, cid: str, name: str, pod_annotations: bool = False) -> None:
    os.makedirs(os.path.join(graph, "overlay-containers"), exist_ok=True)
    meta = json.dumps({"image-name": "docker.io/library/alpine:3", "name": name})
    with open(os.path.join(graph, "overlay-containers", "containers.json"), "w") as f:
        json.dump([{"id": cid, "names": [name], "metadata": meta, "created": "2026-11-29T10:00:00Z"}], f)
    bundle = os.path.join(run, "overlay-containers", cid, "userdata")
    os.makedirs(bundle)
    ann = {"io.container.manager": "libpod", "io.kubernetes.cri-o.ContainerType": "container"}
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump({"annotations": ann}, f)


def test_rootless_podman_under_the_users_storage(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hand-made in the known shape: user@1000.service/user.slice/libpod-<id>.scope, state under the user's home."""
    monkeypatch.delenv("CONTAINERS_STORAGE_CONF", raising=False)
    host = str(tmp_path)
    _podman_storage(os.path.join(host, "home/1000/.local/share/containers/storage"),
                    os.path.join(host, "run/user/1000/containers"), ID, "rootless-web")
    path = f"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope"
    assert rootless_uid(path) == 1000
    meta = MetadataService(host_root=host, use_docker=False).lookup(path, identify(path))
    assert meta is not None and (meta.runtime, meta.name, meta.image) == (
        "podman", "rootless-web", "docker.io/library/alpine:3")


def test_storage_conf_roots(tmp_path: object) -> None:
    conf = os.path.join(str(tmp_path), "storage.conf")
    with open(conf, "w") as f:
        f.write('# comment\n[storage]\ndriver = "overlay"\ngraphroot = "/srv/graph"  # trailing\n'
                '[storage.options]\nrunroot = "/not/this"\n')
    found = storage_conf_roots(conf)
    assert found is not None and (found.graph, found.run) == ("/srv/graph", "/run/containers/storage")
    assert storage_conf_roots(os.path.join(str(tmp_path), "absent.conf")) is None


def test_lxc_machines_and_runc_state(tmp_path: object) -> None:
    host = str(tmp_path)
    os.makedirs(os.path.join(host, "var/lib/lxc/web"))
    with open(os.path.join(host, "var/lib/lxc/web/config"), "w") as f:
        f.write("# Template used to create this container: /usr/share/lxc/templates/lxc-busybox\nlxc.uts.name = web\n")
    os.makedirs(os.path.join(host, "run/systemd/machines"))
    with open(os.path.join(host, "run/systemd/machines/box"), "w") as f:
        f.write("NAME=box\nSCOPE=machine-box.scope\nSERVICE=systemd-nspawn\nROOT=/var/lib/machines/box\n"
                "CLASS=container\nLEADER=4242\n")
    state = {"id": "job1", "init_process_pid": 777, "created": "2026-11-29T10:42:01.136869938Z",
             "cgroup_paths": {"": "/sys/fs/cgroup/unified/jobs/job1", "cpu": "/sys/fs/cgroup/cpu/jobs/job1",
                              "cpu,cpuacct": "/sys/fs/cgroup/cpu,cpuacct/jobs/job1"},
             "config": {"labels": ["bundle=/srv/job1"], "cgroups": {"path": "/jobs/job1"}}}
    os.makedirs(os.path.join(host, "run/runc/job1"))
    with open(os.path.join(host, "run/runc/job1/state.json"), "w") as f:
        json.dump(state, f)
    local = LocalState(host)
    lxc = local.lookup("/lxc.payload.web", identify("/lxc.payload.web"))
    assert lxc is not None and (lxc.runtime, lxc.name, lxc.image) == ("lxc", "web", "busybox")
    box = local.lookup("/machine.slice/machine-box.scope", identify("/machine.slice/machine-box.scope"))
    assert box is not None and (box.runtime, box.name, box.image, box.pid) == (
        "nspawn", "box", "/var/lib/machines/box", 4242)
    vm_path = "/machine.slice/machine-qemu\\x2d1\\x2ddebian12.scope"
    vm = local.lookup(vm_path, identify(vm_path))
    assert vm is not None and (vm.runtime, vm.name) == ("libvirt", "debian12")
    job = local.lookup("/jobs/job1", identify("/jobs/job1"))
    assert job is not None and (job.runtime, job.name, job.pid, job.labels["bundle"]) == (
        "runc", "job1", 777, "/srv/job1")
    assert local.lookup("/jobs/other", identify("/jobs/other")) is None
    assert runc_cgroups({"cgroup_paths": {"": "/sys/fs/cgroup/a/b"}}) == {"/a/b"}  # pure v2
    assert runc_meta("x", {"init_process_pid": "junk"}).pid is None
    assert lxc_template("lxc.uts.name = x\n") == ""


def _fake_proc(root: str, pid: int, ns: dict[str, int], nspid: list[int]) -> None:
    os.makedirs(os.path.join(root, str(pid), "ns"))
    for t, inode in ns.items():
        os.symlink(f"{t.split('_')[0]}:[{inode}]", os.path.join(root, str(pid), "ns", t))
    with open(os.path.join(root, str(pid), "status"), "w") as f:
        f.write("Name:\tx\nNSpid:\t" + "\t".join(map(str, nspid)) + "\n")


def test_namespaced_cgroups_are_containers(tmp_path: object) -> None:
    proc = str(tmp_path)
    host = {"pid": 100, "pid_for_children": 100, "net": 200}
    _fake_proc(proc, 2, host, [2])
    _fake_proc(proc, 500, {"pid": 100, "pid_for_children": 101, "net": 201}, [500])  # unshare itself
    _fake_proc(proc, 501, {"pid": 101, "pid_for_children": 101, "net": 201}, [501, 1])  # the init inside
    _fake_proc(proc, 600, host, [600])  # a plain process of the host
    assert own_namespaces(500, {"pid": 100, "net": 200}, proc) == ("pid", "net")
    assert own_namespaces(600, {"pid": 100, "net": 200}, proc) == ()
    assert namespace_init([500, 501], proc) == 501 and namespace_init([600], proc) is None
    samples = {p: CgroupSample(path=p, inode=1, first_pid=pid) for p, pid in
               (("/hand/made", 500), ("/plain", 600), ("/system.slice/x.service", 500))}
    identities = {"/hand/made": RowIdentity(), "/plain": RowIdentity(),
                  "/system.slice/x.service": RowIdentity(kind="service", runtime="systemd")}
    found = NamespacedCgroups(proc).classify(identities, samples)
    assert (found["/hand/made"].kind, found["/hand/made"].runtime, found["/hand/made"].name) == (
        "container", "unshare", "made")
    assert found["/plain"] == RowIdentity() and found["/system.slice/x.service"].kind == "service"


def _sample(path: str, **kw: object) -> CgroupSample:
    return dataclasses.replace(CgroupSample(path=path, inode=1), **kw)  # type: ignore[arg-type]


def test_crun_inner_cgroup_folds_into_the_scope() -> None:
    """Pure v2 with systemd (hand-made in the known shape): libpod-<id>.scope/container holds the processes."""
    scope, inner = f"/machine.slice/libpod-{ID}.scope", f"/machine.slice/libpod-{ID}.scope/container"
    samples = {scope: _sample(scope, memory_limit_bytes=UNLIMITED, cpu_quota_us=UNLIMITED, cpu_period_us=100000,
                              cpu_periods=50, cpu_throttled_periods=0, cpu_throttled_ns=0, processes=0, threads=0,
                              memory_oom_kills=2, memory_failcnt=None),
               inner: _sample(inner, memory_limit_bytes=64 << 20, cpu_quota_us=30000, cpu_period_us=50000,
                              cpu_periods=40, cpu_throttled_periods=30, cpu_throttled_ns=9000, first_pid=4242,
                              processes=1, threads=3, memory_oom_kills=1, memory_failcnt=7)}
    folded, into = fold_inner(samples)
    assert into == {inner: scope} and inner not in folded and folded is not samples
    row = folded[scope]
    assert (row.memory_limit_bytes, row.cpu_quota_us, row.cpu_period_us) == (64 << 20, 30000, 50000)
    assert row.first_pid == 4242
    # the quota is the inner cgroup's, and so is the throttling; tasks add up; subtree-or-own counters: the larger
    assert (row.cpu_periods, row.cpu_throttled_periods, row.cpu_throttled_ns) == (40, 30, 9000)
    assert (row.processes, row.threads, row.memory_oom_kills, row.memory_failcnt) == (1, 3, 2, 7)
    # The scope's own limit wins where it has one (with its own throttling); nothing to fold outside a container.
    own = {scope: _sample(scope, memory_limit_bytes=32 << 20, cpu_quota_us=20000, cpu_throttled_periods=5),
           inner: samples[inner]}
    mine = fold_inner(own)[0][scope]
    assert (mine.memory_limit_bytes, mine.cpu_quota_us, mine.cpu_throttled_periods) == (32 << 20, 20000, 5)
    other = {"/a": _sample("/a"), "/a/container": samples[inner]}
    assert fold_inner(other) == (other, {}) and fold_inner(other)[0] is other
    # Without the scope (it vanished between the reads) the inner cgroup stays, a plain cgroup.
    alone = {inner: samples[inner]}
    assert fold_inner(alone) == (alone, {})
    assert identity_of(identify(inner), None).kind == "cgroup"


def test_folded_ebpf_counters_are_the_containers() -> None:
    """The tasks of crun's inner cgroup are counted as its container's: counters, culprits, OOM kills, execs."""
    scope, inner = f"/machine.slice/libpod-{ID}.scope", f"/machine.slice/libpod-{ID}.scope/container"
    other_scope = f"/machine.slice/libpod-{'b' * 64}.scope"
    other_inner = other_scope + "/container"
    buckets = tuple(range(len(EbpfCgroupCounters().runq_buckets)))
    counters = EbpfCgroupCounters(cgroup_id=77, runq_buckets=buckets, runq_sum_seconds=0.5, runq_count=9,
                                  runq_max_seconds=0.2, nvcsw=1, nivcsw=2, preempted_by_others=3,
                                  preempted_by_host=4, forks=5, execs=6, exits=7, oom_kills=8,
                                  preempted_by=(("/", 4), (other_inner, 3)))
    victim = EbpfCgroupCounters(cgroup_id=78, preempted_by=((inner, 2), (scope, 1)))
    reading = EbpfReading(
        monotonic_time=1.0, by_cgroup={inner: counters, other_inner: victim, "/x": EbpfCgroupCounters()},
        unattributed=EbpfCgroupCounters(), oom_kills=(OomKill(inner, 10, "a", 1.0), OomKill(None, 11, "b", 2.0)),
        execs={inner: (ExecRecord(10, 1, "sh", "/bin/sh", 5.0),)}, new_cgroups=(scope, inner),
        removed_cgroups=(inner,), covered=frozenset({inner, other_inner, "/x"}))
    into = {inner: scope, other_inner: other_scope}
    out = fold_reading(reading, into)
    assert set(out.by_cgroup) == {scope, other_scope, "/x"}
    assert out.by_cgroup[scope] == dataclasses.replace(counters, preempted_by=(("/", 4), (other_scope, 3)))
    assert out.by_cgroup[other_scope].preempted_by == ((scope, 3),)  # the inner and the scope are one culprit
    assert [k.cgroup for k in out.oom_kills] == [scope, None]
    assert set(out.execs) == {scope} and out.new_cgroups == (scope,) and out.removed_cgroups == ()
    assert out.covers(scope) and out.covers("/x") and not out.covers("/y")
    assert fold_reading(reading, {}) is reading
    # Counters of the scope itself (a task left there) and of the inner cgroup add up, field by field.
    both = fold_reading(dataclasses.replace(reading, by_cgroup={scope: counters, inner: counters}), into)
    added = both.by_cgroup[scope]
    for f in dataclasses.fields(EbpfCgroupCounters):
        mine = getattr(counters, f.name)
        if f.name == "runq_buckets":
            assert added.runq_buckets == tuple(2 * b for b in buckets)
        elif f.name == "runq_max_seconds" or f.name == "cgroup_id":
            assert getattr(added, f.name) == mine
        elif f.name == "preempted_by":
            assert added.preempted_by == (("/", 8), (other_scope, 6))
        else:
            assert getattr(added, f.name) == 2 * mine, f.name


def test_v1_limits_read_where_the_processes_are() -> None:
    """Pure v1 (hand-made): the scope's memory and cpu directories hold no limit; /proc/<pid>/cgroup says where."""
    scope = f"/machine.slice/libpod-{ID}.scope"
    elsewhere = f"/machine.slice/libpod-{ID}.scope/container"
    samples = {scope: _sample(scope, first_pid=4242)}
    limits = {elsewhere: _sample(elsewhere, memory_limit_bytes=64 << 20, cpu_quota_us=30000, cpu_period_us=100000)}
    out = limits_where_set(samples, limits.get, "/proc",
                           paths_of=lambda pid, root: {"memory": elsewhere, "cpu": elsewhere, "pids": scope})
    assert (out[scope].memory_limit_bytes, out[scope].cpu_quota_us, out[scope].cpu_period_us) == (
        64 << 20, 30000, 100000)
    assert limits_where_set(samples, limits.get, "/proc", paths_of=lambda pid, root: {}) is samples
    # A cgroup outside the container's own (the root, a parent slice) does not give the container its limits.
    outside = {"/machine.slice": _sample("/machine.slice", memory_limit_bytes=1 << 30)}
    assert limits_where_set(samples, outside.get, "/proc",
                            paths_of=lambda pid, root: {"memory": "/machine.slice"}) is samples


def test_controller_paths(tmp_path: object) -> None:
    os.makedirs(os.path.join(str(tmp_path), "7"))
    with open(os.path.join(str(tmp_path), "7", "cgroup"), "w") as f:
        f.write("4:memory:/a/b\n2:cpu,cpuacct:/a\n0::/u\n")
    assert controller_paths(7, str(tmp_path)) == {"memory": "/a/b", "cpu": "/a", "cpuacct": "/a", "": "/u"}


def test_collector_folds_a_recorded_v2_tree(tmp_path: object) -> None:
    """The hand-written podman-v2 tree with limits on crun's inner cgroup: one container row carrying them."""
    import shutil

    root = os.path.join(str(tmp_path), "cgroup")
    shutil.copytree(os.path.join(DATA, "podman-v2", "sys/fs/cgroup"), root)
    web = "3333333333333333" + "c0ffee00" * 6
    inner = os.path.join(root, f"machine.slice/libpod-{web}.scope/container")
    for name, value in (("memory.max", "67108864\n"), ("cpu.max", "30000 100000\n")):
        with open(os.path.join(inner, name), "w") as f:
            f.write(value)
    collector = Collector(CollectorConfig(cgroup_root=root, proc_root=str(tmp_path), containers=False, ebpf=False,
                                          events=False, history_dir=None))
    frame = collector.collect()
    scope = frame.rows[f"/machine.slice/libpod-{web}.scope"]
    assert scope.identity.kind == "container" and scope.sample.memory_limit_bytes == 64 << 20
    assert scope.sample.cpu_quota_us == 30000
    assert f"/machine.slice/libpod-{web}.scope/container" not in frame.rows  # folded into the scope's row
    containers = [r for r in frame.rows.values() if r.identity.kind == "container" and web in r.sample.path]
    assert len(containers) == 1


def test_pids_is_no_data_outside_the_pids_hierarchy() -> None:
    from ctop.model.fields import pids
    from ctop.model.frame import CgroupRow

    outside = CgroupRow(sample=_sample("/v1/only", threads=None, pids_current=None), tasks_recursive=0)
    assert pids(outside) is None
    counted = CgroupRow(sample=_sample("/v2/no/pids/controller", threads=3), tasks_recursive=5)
    assert pids(counted) == 5
    assert pids(CgroupRow(sample=_sample("/x", pids_current=7, threads=None))) == 7


HAND = os.path.join(DATA, "machines-lxc-rootless-v2")
HPOD = "9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0"
HCID = "abcdefabcdef0123456789abcdef0123456789abcdef0123456789abcdef0123"
HINFRA = "1234567890ab1234567890ab1234567890ab1234567890ab1234567890ab1234"
HROOTLESS = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"


def test_hand_made_v2_machines_lxc_podman_pod_and_rootless(monkeypatch: pytest.MonkeyPatch) -> None:
    """nspawn, libvirt, LXC, a podman pod under systemd (SQLite state, crun's inner cgroups) and rootless podman."""
    monkeypatch.delenv("CONTAINERS_STORAGE_CONF", raising=False)
    service = MetadataService(host_root=HAND, use_docker=False)
    root = os.path.join(HAND, "sys/fs/cgroup")
    paths = sorted("/" + os.path.relpath(d, root) for d, _, _ in os.walk(root) if d != root)
    rows = {p: identity_of(identify(p), service.lookup(p, identify(p))) for p in paths}
    containers = {p: r for p, r in rows.items() if r.kind == "container"}
    pod_slice = f"/machine.slice/machine-libpod_pod_{HPOD}.slice"
    assert set(containers) == {
        "/machine.slice/machine-box.scope", "/machine.slice/machine-qemu\\x2d1\\x2ddebian12.scope", "/lxc.payload.web",
        f"{pod_slice}/libpod-{HCID}.scope", f"{pod_slice}/libpod-{HINFRA}.scope",
        f"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{HROOTLESS}.scope"}
    box = containers["/machine.slice/machine-box.scope"]
    assert (box.runtime, box.name, box.image) == ("nspawn", "box", "/var/lib/machines/box")
    vm = containers["/machine.slice/machine-qemu\\x2d1\\x2ddebian12.scope"]
    assert (vm.runtime, vm.name) == ("libvirt", "debian12")
    web = containers["/lxc.payload.web"]
    assert (web.runtime, web.name, web.image) == ("lxc", "web", "busybox")
    api = containers[f"{pod_slice}/libpod-{HCID}.scope"]
    assert (api.runtime, api.name, api.image, api.pod, api.compose_project, api.compose_service) == (
        "podman", "shop-api", "docker.io/library/nginx:1.25", "shop", "shop", "api")
    assert containers[f"{pod_slice}/libpod-{HINFRA}.scope"].pod == "shop"
    assert (rows[pod_slice].kind, rows[pod_slice].name, rows[pod_slice].runtime) == ("pod", "shop", "podman")
    conmon = rows[f"{pod_slice}/libpod-conmon-{HCID}.scope"]
    assert (conmon.kind, conmon.name, conmon.pod) == ("scope", "conmon", "shop")
    rootless = containers[f"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{HROOTLESS}.scope"]
    assert (rootless.runtime, rootless.name, rootless.image) == (
        "podman", "rootless-web", "docker.io/library/alpine:3.19")
    # The machines' and LXC's inner cgroups and crun's inner cgroups are plain cgroups of their container.
    for inner in ("/machine.slice/machine-box.scope/payload", "/lxc.payload.web/init.scope",
                  f"{pod_slice}/libpod-{HCID}.scope/container", "/lxc.monitor.web"):
        assert rows[inner].kind == "cgroup", inner


def test_hand_made_v2_pod_scope_carries_the_inner_limits(tmp_path: object) -> None:
    collector = Collector(CollectorConfig(cgroup_root=os.path.join(HAND, "sys/fs/cgroup"), proc_root=str(tmp_path),
                                          containers=False, ebpf=False, events=False, history_dir=None))
    row = collector.collect().rows[f"/machine.slice/machine-libpod_pod_{HPOD}.slice/libpod-{HCID}.scope"]
    assert (row.sample.memory_limit_bytes, row.sample.cpu_quota_us, row.cpu_limit_cores) == (64 << 20, 30000, 0.3)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.binary(min_size=0, max_size=12000), page=st.sampled_from([0, 1, 2, 3]))
def test_bolt_reader_never_raises(tmp_path: object, garbage: bytes, page: int) -> None:
    """A real database with any bytes written over one of its pages (a commit landing mid-read): {} or values."""
    real = os.path.join(RECORDED, "var/lib/containers/storage/libpod/bolt_state.db")
    with open(real, "rb") as f:
        data = bytearray(f.read())
    data[page * 4096:page * 4096 + len(garbage)] = garbage[:4096]
    path = os.path.join(str(tmp_path), "fuzz.db")
    with open(path, "wb") as f:
        f.write(bytes(data[:max(len(garbage), 8192)]) if page == 3 else data)
    values = boltdb.read_values(path, (b"ctr",), (b"config",))
    assert isinstance(values, dict)


@given(text=st.text(max_size=300))
def test_storage_table_never_raises(text: str) -> None:
    from ctop.runtimes.podman_state import storage_table

    assert isinstance(storage_table(text), dict)
