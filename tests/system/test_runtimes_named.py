"""Real runtimes without daemons, named from their own state: podman (a pod, its infra and a member, a compose-labelled
container), LXC, plain runc, and a hand-made unshare container (v1 only, v1 plus unified), in ctop -b --json,
ctop inspect and the TUI (root)."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
from support.cgroups import host_layout
from support.dockerd import cgroup_of
from support.env import need, patience
from support.runtimes import lxc_container, podman, runc_container, unique, unshare_container
from support.tmux import tmux_session

pytestmark = pytest.mark.system


def rows(ctop: str, env: dict[str, str] | None = None, *args: str) -> dict[str, dict]:
    """One refresh of ``ctop -b --json`` (no eBPF) as path -> row."""
    out = subprocess.run([ctop, "-b", "--json", "-n", "1", "-d", "0.2", "--no-ebpf", *args], capture_output=True,
                         timeout=120, env=env, check=True).stdout
    return {r["id"]: r for r in json.loads(out.splitlines()[0])}


def inspect(ctop: str, what: str, env: dict[str, str] | None = None) -> dict:
    result = subprocess.run([ctop, "inspect", what, "--json"], capture_output=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


def nspid(pid: int) -> list[int]:
    with open(f"/proc/{pid}/status") as f:
        line = next(x for x in f if x.startswith("NSpid:"))
    return [int(v) for v in line.split()[1:]]


def named(table: dict[str, dict], name: str, kind: str = "container") -> dict:
    found = [r for r in table.values() if r["name"] == name and r["kind"] == kind]
    assert len(found) == 1, (name, kind, [(r["id"], r["kind"]) for r in table.values() if r["name"] == name])
    return found[0]


def test_podman_pod_members_infra_conmon_and_compose(ctop: str) -> None:
    with podman() as p:
        pod = unique("pod")
        p.run("pod", "create", "--name", pod, "--network", "none")
        member = unique("member")
        p.run("run", "-d", "--pod", pod, "--name", member, "--memory", "64m", "--cpus", "0.3", p.image,
              "sleep", "600")
        solo = unique("solo")
        p.run("run", "-d", "--network", "none", "--name", solo, "--label", "com.docker.compose.project=shop",
              "--label", "com.docker.compose.service=web", p.image, "sleep", "600")
        pod_id = p.out("pod", "inspect", pod, "--format", "{{.Id}}")
        infra_id = p.out("pod", "inspect", pod, "--format", "{{.InfraContainerID}}")
        member_id = p.out("inspect", member, "--format", "{{.Id}}")
        table = rows(ctop, p.env)

        m = named(table, member)
        assert (m["runtime"], m["image"], m["pod"], m["container_id"]) == ("podman", p.image, pod, member_id)
        assert m["memory_limit_bytes"] == 64 * 1024 * 1024 and m["cpu_limit_cores"] == pytest.approx(0.3)
        pod_row = named(table, pod, "pod")
        # the pod's own cgroup: /libpod_parent/<id> under cgroupfs, machine.slice/machine-libpod_pod_<id>.slice
        # under systemd
        pod_cgroup = "/" + p.out("pod", "inspect", pod, "--format", "{{.CgroupPath}}").lstrip("/")
        assert pod_id in pod_cgroup
        assert (pod_row["runtime"], pod_row["id"]) == ("podman", pod_cgroup)
        infra = [r for r in table.values() if r["container_id"] == infra_id]
        assert len(infra) == 1 and (infra[0]["runtime"], infra[0]["pod"], infra[0]["kind"]) == ("podman", pod,
                                                                                                   "container")
        s = named(table, solo)
        assert (s["runtime"], s["compose_project"], s["compose_service"], s["pod"]) == ("podman", "shop", "web", "")
        # conmon runs in a cgroup of its own where podman makes one (/libpod_parent/conmon under cgroupfs on hybrid
        # hosts; under systemd it stays in the caller's): never a container row.
        conmon_pid = int(p.out("inspect", member, "--format", "{{.State.ConmonPid}}"))
        conmon_cgroup = cgroup_of(conmon_pid)  # the memory hierarchy's on v1, the unified one on v2
        conmons = [r for r in table.values() if r["id"].endswith("/conmon")]
        if conmon_cgroup.endswith("/conmon"):
            assert conmon_cgroup in table and table[conmon_cgroup] in conmons
        assert all(r["kind"] == "cgroup" and r["runtime"] == "podman" for r in conmons)
        assert table.get(conmon_cgroup, {}).get("kind") != "container", (conmon_cgroup, table.get(conmon_cgroup))
        assert not any(r["kind"] == "container" and r["runtime"] == "cri-o" for r in table.values())

        podman_only = rows(ctop, p.env, "--filter", "runtime=podman")
        assert {member, solo} <= {r["name"] for r in podman_only.values()}

        report = inspect(ctop, member, p.env)
        assert (report["metadata"]["runtime"], report["metadata"]["pod"]) == ("podman", pod)
        assert nspid(report["main_pid"])[-1] == 1  # the container's own init, not conmon
        assert report["namespaces"]["pid"]["shared_with_host"] is False


def test_podman_container_row_carries_its_tasks_ebpf_figures(ctop: str) -> None:
    """The eBPF figures of a podman container's tasks are its row's, also where crun runs them in a `container`
    cgroup inside the scope (systemd hosts): one row, with its execs and context switches."""
    with podman() as p:
        name = unique("busy")
        p.run("run", "-d", "--network", "none", "--name", name, p.image, "sh", "-c", "while :; do sleep 0.05; done")
        cid = p.out("inspect", name, "--format", "{{.Id}}")
        out = subprocess.run([ctop, "-b", "--json", "-n", "2", "-d", "2", "--ebpf-wait", f"{patience(60):g}"],
                             capture_output=True, timeout=patience(120) + 60, env=p.env, check=True).stdout
        table = {r["id"]: r for r in json.loads(out.splitlines()[-1])}
        mine = [r for r in table.values() if r["container_id"] == cid]
        assert [r["kind"] for r in mine] == ["container"], [(r["id"], r["kind"]) for r in mine]
        row = mine[0]
        assert row["name"] == name and row["processes"] >= 1
        assert row["execs_per_s"] > 0 and row["ctx_switches_voluntary_per_s"] > 0, row


def test_lxc_busybox_container(ctop: str) -> None:
    with lxc_container() as name:
        table = rows(ctop)
        row = named(table, name)
        assert (row["runtime"], row["image"], row["id"]) == ("lxc", "busybox", f"/lxc.payload.{name}")
        monitor = table.get(f"/lxc.monitor.{name}")
        assert monitor is not None and monitor["kind"] == "cgroup" and monitor["runtime"] == "lxc"
        report = inspect(ctop, name)
        assert report["metadata"]["runtime"] == "lxc" and report["cgroup"] == f"/lxc.payload.{name}"
        assert nspid(report["main_pid"])[-1] == 1


def test_plain_runc_by_its_state(ctop: str) -> None:
    with runc_container() as (cid, pid):
        row = named(rows(ctop), cid)
        assert (row["runtime"], row["id"], row["image"], row["pod"]) == ("runc", "/" + cid, "", "")
        report = inspect(ctop, cid)
        assert report["metadata"]["runtime"] == "runc" and report["main_pid"] == pid


SHAPES = {"v1-only": ("hybrid", "v1"), "v1-and-unified": ("hybrid",), "unified": ("v2",)}


def _dirs(shape: str) -> list[str]:
    """Hierarchies for the hand-made container: cpu, cpuacct and memory (not pids) for the v1 shapes, plus the
    unified one; the unified one alone on a pure v2 host. A shape this host does not have is skipped."""
    layout = host_layout()
    if layout.mode not in SHAPES[shape]:
        pytest.skip(f"a {shape} cgroup is not made on a {layout.mode} host")
    if shape == "unified":
        return [str(layout.unified)]
    # realpath: pure v1 links cpu and cpuacct to one co-mounted cpu,cpuacct hierarchy, made once.
    dirs = sorted({os.path.realpath(layout.controllers[c]) for c in ("cpu", "cpuacct", "memory")
                   if c in layout.controllers})
    need(dirs, "cgroup v1 cpu and memory hierarchies")
    return dirs + ([str(layout.unified)] if shape == "v1-and-unified" else [])


@pytest.mark.parametrize("shape", list(SHAPES))
def test_hand_made_unshare_container(ctop: str, shape: str) -> None:
    with unshare_container(_dirs(shape)) as made:
        assert made.proc is not None
        init = _wait_init(made.proc.pid)
        row = rows(ctop)[made.path]
        assert (row["kind"], row["runtime"], row["name"], row["image"], row["pod"]) == (
            "container", "unshare", made.name, "", "")
        assert row["compose_project"] == ""
        if shape != "unified":
            assert row["pids"] is None  # not in the pids hierarchy: no data, not 0
        for what in (made.path, made.dirs[0], made.name):
            report = inspect(ctop, what)
            assert report["cgroup"] == made.path
            assert report["main_pid"] == init  # pid 1 of the new pid namespace, not unshare itself
            assert report["namespaces"]["pid"]["shared_with_host"] is False
            assert report["namespaces"]["net"]["shared_with_host"] is False
        assert report["metadata"]["runtime"] == "unshare"


def test_hand_made_container_in_the_containers_view(ctop: str) -> None:
    shape = "unified" if host_layout().mode == "v2" else "v1-only"
    with unshare_container(_dirs(shape)) as made, tmux_session([ctop, "-d", "0.5"], 200, 40) as t:
        t.wait_text(made.name, timeout=30)
        assert "Containers" in t.screen()


def _wait_init(unshare_pid: int) -> int:
    """The host pid of the process that is pid 1 in the namespace ``unshare --fork --pid`` made."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{unshare_pid}/task/{unshare_pid}/children") as f:
                children = [int(c) for c in f.read().split()]
        except OSError:
            children = []
        for child in children:
            if os.path.exists(f"/proc/{child}") and nspid(child)[-1] == 1:
                return child
        time.sleep(0.05)
    raise AssertionError("unshare made no pid namespace init")
