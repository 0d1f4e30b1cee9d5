"""The real ``ctop -b --json`` against real Docker containers on a private dockerd: names, limits, network,
agreement with ``docker stats``, pod rows with QoS classes, and --filter."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import urllib.request
import uuid

import pytest
from support.dockerd import IMAGE, PrivateDockerd, dockerd, kubelet_pod_parent, pod_cgroup_path, unique  # noqa: F401
from support.env import ctop_command, need_root

pytestmark = pytest.mark.system


def ctop_json(d: PrivateDockerd, *args: str, iterations: int = 2, delay: float = 1.0) -> list[list[dict]]:
    out = subprocess.run([ctop_command(), "-b", "--json", "-n", str(iterations), "-d", str(delay), "--no-ebpf",
                          "--docker-socket", d.socket, *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def by_container(rows: list[dict]) -> dict[str, dict]:
    return {r["container_id"]: r for r in rows if r["container_id"]}


def test_web_container_row(dockerd: PrivateDockerd) -> None:  # noqa: F811
    need_root()
    name = unique("web")
    cid = dockerd.out("run", "-d", "--name", name, "--network", dockerd.network, "--memory=128m", "--cpus=0.2",
                      IMAGE, "httpd", "-f", "-p", "80", "-h", "/www")
    try:
        ip = dockerd.inspect(cid)["NetworkSettings"]["Networks"][dockerd.network]["IPAddress"]
        stop = threading.Event()

        def fetch() -> None:
            while not stop.is_set():
                try:
                    with urllib.request.urlopen(f"http://{ip}/index.html", timeout=2) as resp:
                        resp.read()
                except OSError:
                    pass
                time.sleep(0.05)

        fetcher = threading.Thread(target=fetch)
        fetcher.start()
        try:
            frames = ctop_json(dockerd, iterations=2)
        finally:
            stop.set()
            fetcher.join()
        row = by_container(frames[-1])[cid]
        assert (row["name"], row["image"], row["runtime"], row["kind"]) == (name, IMAGE, "docker", "container")
        assert row["memory_limit_bytes"] == 128 << 20
        assert row["cpu_limit_cores"] == 0.2
        assert row["net_rx_bytes_per_s"] > 0 and row["net_tx_bytes_per_s"] > 0
    finally:
        dockerd.run("rm", "-f", cid)


def _percent(text: str) -> float:
    return float(text.strip().rstrip("%"))


def _bytes(text: str) -> float:
    match = re.match(r"([\d.]+)\s*([KMGT]?i?B)", text.strip())
    assert match, text
    scale = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "kB": 1e3, "MB": 1e6, "GB": 1e9}
    return float(match.group(1)) * scale[match.group(2)]


def test_busy_container_agrees_with_docker_stats(dockerd: PrivateDockerd) -> None:  # noqa: F811
    need_root()
    cid = dockerd.out("run", "-d", "--name", unique("busy"), "--cpus=0.5", IMAGE, "sh", "-c",
                      "while :; do :; done")
    try:
        time.sleep(2)
        stats: dict[str, str] = {}

        def docker_stats() -> None:
            # A daemon that has not sampled the container twice yet (a slow, emulated guest) answers 0 %: ask again.
            for _ in range(5):
                stats.update(json.loads(dockerd.out("stats", "--no-stream", "--format", "{{json .}}", cid)))
                if _percent(stats["CPUPerc"]) > 0:
                    return

        t = threading.Thread(target=docker_stats)
        t.start()
        frames = ctop_json(dockerd, iterations=2)
        t.join()
        row = by_container(frames[-1])[cid]
        docker_cpu = _percent(stats["CPUPerc"])
        docker_mem = _bytes(stats["MemUsage"].split("/")[0])
        assert abs(row["cpu_percent"] - docker_cpu) <= 5, (row["cpu_percent"], docker_cpu)
        assert abs(row["memory_working_set_bytes"] - docker_mem) <= 0.10 * docker_mem, (
            row["memory_working_set_bytes"], docker_mem)
    finally:
        dockerd.run("rm", "-f", cid)


def test_pod_rows_qos_and_filter(dockerd: PrivateDockerd) -> None:  # noqa: F811
    need_root()
    uid = str(uuid.uuid4())
    pod, ns = unique("pod"), "team-" + uuid.uuid4().hex[:4]
    parent = kubelet_pod_parent(dockerd, "burstable", uid)  # a .slice under the systemd cgroup driver
    dockerd.cgroup_parents.append(pod_cgroup_path(parent))
    started = []
    for container, kind in (("POD", "podsandbox"), ("app", "container")):
        labels = {"io.kubernetes.pod.name": pod, "io.kubernetes.pod.namespace": ns, "io.kubernetes.pod.uid": uid,
                  "io.kubernetes.container.name": container, "io.kubernetes.docker.type": kind}
        label_args = [a for k, v in labels.items() for a in ("--label", f"{k}={v}")]
        started.append(dockerd.out("run", "-d", "--name", f"k8s_{container}_{pod}_{ns}_{uid}_0",
                                   f"--cgroup-parent={parent}", *label_args, IMAGE, "sleep", "300"))
    try:
        rows = ctop_json(dockerd, "--filter", f"pod={pod}", iterations=1, delay=0.5)[-1]
        containers = by_container(rows)
        assert set(containers) == set(started)
        for row in containers.values():
            assert (row["pod"], row["namespace"], row["qos_class"]) == (pod, ns, "burstable")
        assert {r["container"] for r in containers.values()} == {"POD", "app"}
        pod_rows = [r for r in rows if r["kind"] == "pod"]
        assert len(pod_rows) == 1 and pod_rows[0]["id"] == pod_cgroup_path(parent)
        assert pod_rows[0]["qos_class"] == "burstable"
        assert pod_rows[0]["pids"] == sum(r["pids"] for r in containers.values())
        besteffort_only = ctop_json(dockerd, "--filter", f"pod={pod}", "--filter", "qos=besteffort",
                                    iterations=1, delay=0.5)[-1]
        assert besteffort_only == []
    finally:
        for cid in started:
            dockerd.run("rm", "-f", cid)


def test_compose_project_and_service_are_fields_and_filters(dockerd: PrivateDockerd) -> None:  # noqa: F811
    need_root()
    project = unique("shop").replace("-", "")
    ids = {}
    for service in ("web", "db"):
        ids[service] = dockerd.out("run", "-d", "--name", unique(service), "--label",
                                   f"com.docker.compose.project={project}", "--label",
                                   f"com.docker.compose.service={service}", IMAGE, "sleep", "60")
    plain = dockerd.out("run", "-d", "--name", unique("plain"), IMAGE, "sleep", "60")
    try:
        rows = ctop_json(dockerd, "--filter", f"project={project}", iterations=1, delay=0.5)[-1]
        got = {r["container_id"]: (r["compose_project"], r["compose_service"]) for r in rows}
        assert got == {ids["web"]: (project, "web"), ids["db"]: (project, "db")}
        rows = ctop_json(dockerd, "--filter", f"project={project} service=db", iterations=1, delay=0.5)[-1]
        assert [r["container_id"] for r in rows] == [ids["db"]]
        rows = ctop_json(dockerd, "--filter", f"id={plain}", iterations=1, delay=0.5)[-1]
        assert [(r["compose_project"], r["compose_service"]) for r in rows] == [("", "")]
    finally:
        for cid in (*ids.values(), plain):
            dockerd.run("rm", "-f", cid, check=False)
