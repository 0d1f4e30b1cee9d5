"""exporters/deploy/Dockerfile built for real and run like daemonset.yaml: a real scrape, eBPF, build figures."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from support.dockerd import IMAGE, cgroup_dir, dockerd, unique  # noqa: F401
from support.env import ctop_command, need_root
from support.exporter_image import base_tarball, plan_from_daemonset
from support.prometheus import free_port

from ctop.ebpf import headers
from ctop.privileges import CAPABILITIES

pytestmark = pytest.mark.system

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCKERFILE = os.path.join(REPO, "exporters", "deploy", "Dockerfile")  # built from a snapshot of the repository
DAEMONSET = os.path.join(REPO, "exporters", "deploy", "daemonset.yaml")
CONTEXT_FILES = ("pyproject.toml", "README.md", ".dockerignore")
CONTEXT_DIRS = ("ctop", "bpf", "exporters")
BUILD_TIMEOUT_S = 1500
READY_TIMEOUT_S = 240
BUSY = "while :; do :; done"


def _suite() -> str:
    """The Debian release of the Dockerfile's default base (``ARG BASE=debian:<suite>-slim``)."""
    with open(DOCKERFILE) as f:
        m = re.search(r"^ARG BASE=debian:([a-z]+)", f.read(), re.M)
    assert m, "the Dockerfile's ARG BASE does not name a debian:<suite> image"
    return m.group(1)


def _version() -> str:
    with open(os.path.join(REPO, "pyproject.toml")) as f:
        m = re.search(r'^version = "([^"]+)"', f.read(), re.M)
    assert m
    return m.group(1)


def _daemonset() -> dict:
    with open(DAEMONSET) as f:
        return next(d for d in yaml.safe_load_all(f) if d and d.get("kind") == "DaemonSet")


def _snapshot(dst: str) -> str:
    """The build context as of now (the tree may change under a long test): what .dockerignore lets through."""
    for name in CONTEXT_FILES:
        shutil.copy2(os.path.join(REPO, name), os.path.join(dst, name))
    for name in CONTEXT_DIRS:
        shutil.copytree(os.path.join(REPO, name), os.path.join(dst, name),
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dst


def _build(daemon, context: str, base: str, tag: str) -> tuple[float, list[str]]:  # type: ignore[no-untyped-def]
    """``docker build`` with the classic builder (no buildx needed): seconds, and the steps not taken from cache."""
    cmd = [shutil.which("docker") or "docker", "-H", "unix://" + daemon.socket, "build", "--network=host",
           "--build-arg", f"BASE={base}", "-f", os.path.join(context, "exporters", "deploy", "Dockerfile"),
           "-t", tag, context]
    started = time.monotonic()
    res = subprocess.run(cmd, capture_output=True, timeout=BUILD_TIMEOUT_S, check=False,
                         env={**os.environ, "DOCKER_BUILDKIT": "0"})
    elapsed = time.monotonic() - started
    output = res.stdout.decode("utf-8", "replace")
    assert res.returncode == 0, (output + res.stderr.decode("utf-8", "replace"))[-4000:]
    steps = re.split(r"^Step \d+/\d+ : ", output, flags=re.M)[1:]
    built = [step.splitlines()[0][:80] for step in steps if "Running in " in step or "---> Using cache" not in step]
    return elapsed, [b for b in built if not b.startswith(("FROM ", "ARG "))]


def _held_capabilities(pid: int) -> set[str]:
    with open(f"/proc/{pid}/status") as f:
        bounding = int(re.search(r"^CapBnd:\s*([0-9a-f]+)", f.read(), re.M).group(1), 16)  # type: ignore[union-attr]
    return {name.removeprefix("CAP_") for name, bit in CAPABILITIES.items() if bounding >> bit & 1}


def _samples(text: str, sample: str, /, **labels: str) -> list[float]:
    """Values of the samples called ``sample`` (e.g. ``x_total``, ``x_count``) whose labels include ``labels``."""
    return [s.value for fam in text_string_to_metric_families(text) for s in fam.samples
            if s.name == sample and set(labels.items()) <= set(s.labels.items())]


def _scrape(port: int, path: str = "/metrics") -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as resp:
        return resp.read().decode("utf-8")


def _peak_memory_bytes(pid: int) -> int | None:
    """Peak memory of the cgroup holding ``pid`` (v1 max_usage_in_bytes or v2 memory.peak), None if unknown."""
    for name in ("memory.max_usage_in_bytes", "memory.peak"):
        try:
            with open(os.path.join(cgroup_dir(pid, "memory"), name)) as f:
                return int(f.read())
        except (OSError, LookupError, ValueError):
            continue
    return None


def test_exporter_image_builds_and_serves_containers_and_ebpf_like_the_daemonset(dockerd):  # noqa: F811
    need_root()
    suite = _suite()
    images_before = set(dockerd.out("images", "-aq", "--no-trunc").split())
    tag = unique("ctop-exporter-image")
    base, image = f"{tag}:base", f"{tag}:test"
    busy, exporter = unique("ctop-image-busy"), unique("ctop-image-exporter")
    figures: dict[str, str] = {}
    context = history = ""
    try:
        # A Debian base made here (no registry is reachable), cached by suite under /var/cache/ctop-tests.
        tarball = base_tarball(suite)
        figures["base"] = (f"debootstrap {tarball.made_s:.0f} s from {tarball.mirror}" if tarball.made_s
                           else f"cached {os.path.basename(tarball.path)}")
        started = time.monotonic()
        with open(tarball.path, "rb") as f:
            dockerd.run("import", "-", base, input=f.read(), timeout=300)
        figures["import"] = f"{time.monotonic() - started:.1f} s"

        context = _snapshot(tempfile.mkdtemp(prefix="ctop-image-context-"))
        cold, _ = _build(dockerd, context, base, image)
        cold_id = dockerd.out("image", "inspect", "-f", "{{.Id}}", image)
        warm, rebuilt = _build(dockerd, context, base, image)
        assert not rebuilt and dockerd.out("image", "inspect", "-f", "{{.Id}}", image) == cold_id, rebuilt
        figures["build"] = f"cold {cold:.0f} s, warm {warm:.1f} s"
        info = dockerd.inspect(image)
        figures["size"] = f"{info['Size'] / 1e6:.0f} MB"

        daemonset = _daemonset()
        (container,) = daemonset["spec"]["template"]["spec"]["containers"]
        config = info["Config"]
        assert config["Entrypoint"] == ["ctop"] and config["Cmd"] == ["exporter"], config
        assert f"{container['ports'][0]['containerPort']}/tcp" in config["ExposedPorts"], config
        assert config["Labels"]["org.opencontainers.image.version"] == _version(), config["Labels"]
        assert container["image"] == f"ctop-exporter:{_version()}", "the DaemonSet names another image version"
        assert not config.get("User"), "the image must start as root to load eBPF (--user drops it)"
        # Non-root friendly: any user can run it on a read-only root file system.
        as_nobody = dockerd.out("run", "--rm", "--user=65534:65534", "--read-only", "--network=none", image,
                                "--version")
        assert as_nobody.endswith(_version()), as_nobody

        cid = dockerd.out("run", "-d", "--name", busy, "--cpus", "0.2", IMAGE, "sh", "-c", BUSY)
        # The node is expected to have tracefs mounted (systemd does it at boot); this machine does not at boot.
        headers.ensure_tracefs()
        port = free_port()
        wanted = set(container["securityContext"]["capabilities"]["add"])
        unusable = {cap: "not in this machine's bounding set" for cap in wanted - _held_capabilities(dockerd.pid or 0)}
        history = tempfile.mkdtemp(prefix="ctop-image-history-")  # the node's /var/lib/ctop (DirectoryOrCreate)
        os.chmod(history, 0o755)  # as Kubernetes creates it: the dropped user reaches the store inside
        host_paths = {"/var/run/docker.sock": dockerd.socket,
                      "/run/containerd": os.path.join(dockerd.exec_root, "containerd"), "/var/lib/ctop": history}
        for _ in range(4):
            plan = plan_from_daemonset(daemonset, host_paths, f"127.0.0.1:{port}", unusable)
            started = time.monotonic()
            res = dockerd.run("run", "-d", "--name", exporter, *plan.flags, image, *plan.args, check=False)
            unknown = re.search(rb'unknown capability: "CAP_(\w+)"', res.stderr)
            if res.returncode == 0 or not unknown:
                break
            unusable[unknown.group(1).decode()] = "unknown to this dockerd"
            dockerd.run("rm", "-f", exporter, check=False)
        assert res.returncode == 0, res.stderr.decode(errors="replace")
        # Without them eBPF could not load (the kernel needs CAP_BPF+CAP_PERFMON or CAP_SYS_ADMIN): the run below
        # proves the manifest's set, of which this is a subset, is enough.
        figures["capabilities"] = ",".join(plan.capabilities)
        figures["left out"] = "; ".join(f"{k}: {v}" for k, v in sorted(plan.left_out.items())) or "nothing"

        first_http = None
        text = ""
        deadline = started + READY_TIMEOUT_S
        while True:
            state = dockerd.inspect(exporter)["State"]
            assert state["Running"], (state, dockerd.run("logs", exporter, check=False).stderr[-3000:])
            try:
                text = _scrape(port)
                first_http = first_http or time.monotonic() - started
            except OSError:
                text = ""
            if _samples(text, "ctop_ebpf_enabled") == [1] and _samples(
                    text, "ctop_runqueue_latency_seconds_count", id=f"/docker/{cid}"):
                break
            assert time.monotonic() < deadline, ("no eBPF series in time", text[-2000:],
                                                 dockerd.run("logs", exporter, check=False).stderr[-3000:])
            time.sleep(0.3)
        ready = time.monotonic() - started
        figures["first scrape"] = f"{first_http:.1f} s, with eBPF and the container {ready:.1f} s"
        logs = dockerd.run("logs", exporter).stderr.decode(errors="replace")

        # The exporter dropped to the manifest's --user with CAP_SYS_PTRACE only.
        pid = dockerd.inspect(exporter)["State"]["Pid"]
        with open(f"/proc/{pid}/status") as f:
            status = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
        if any(a.startswith("--user=") for a in plan.args):
            assert status["Uid"].split()[0] != "0" and "running as user" in logs, (status, logs)
            assert int(status["CapEff"], 16) == 1 << CAPABILITIES["CAP_SYS_PTRACE"], status
            assert status["NoNewPrivs"] == "1", status

        # A real container of this dockerd: CPU that advances, its run-queue latency histogram, its name.
        time.sleep(2.5)
        second = _scrape(port)
        for family in ("container_cpu_usage_seconds_total", "ctop_runqueue_latency_seconds_count",
                       "ctop_context_switches_total"):
            before = sum(_samples(text, family, id=f"/docker/{cid}"))
            after = sum(_samples(second, family, id=f"/docker/{cid}"))
            assert after > before, (family, before, after)
        if os.stat(dockerd.socket).st_gid != 0:  # the socket's group is joined by --user; root-only otherwise
            assert _samples(second, "container_cpu_usage_seconds_total", id=f"/docker/{cid}", name=busy), logs
        assert _scrape(port, "/healthz")
        assert sum(_samples(second, "ctop_collection_errors_total")) == 0
        # The flight recorder of the DaemonSet wrote the node's store, as the user it dropped to.
        segments = [f for f in os.listdir(os.path.join(history, "history")) if f.endswith(".ctr")]
        assert segments and "paused" not in logs, logs
        replay = subprocess.run([ctop_command(), "replay", "-b", "--dir", os.path.join(history, "history"), "--from",
                                 "1m", "--to", "now", "--json", "--filter", f"id={cid}"], capture_output=True,
                                text=True, timeout=60)
        assert replay.returncode == 0 and f"/docker/{cid}" in replay.stdout, replay.stderr

        peak = _peak_memory_bytes(pid)
        limit = container["resources"]["limits"]["memory"]
        figures["memory"] = (f"peak {peak / 2**20:.0f} MiB" if peak else "peak unknown") + f" (limit {limit})"
        assert not dockerd.inspect(exporter)["State"]["OOMKilled"]
        print("\nexporter image: " + "; ".join(f"{k}: {v}" for k, v in figures.items()))
    finally:
        if context:
            shutil.rmtree(context, ignore_errors=True)
        if history:
            shutil.rmtree(history, ignore_errors=True)
        for name in (exporter, busy):
            dockerd.run("rm", "-f", name, check=False, timeout=60)
        dockerd.run("rmi", "-f", image, base, check=False, timeout=120)
        # Intermediate images of the build stages that no tag holds any more.
        leftover = set(dockerd.run("images", "-aq", "--no-trunc", check=False).stdout.decode().split())
        if leftover - images_before:
            dockerd.run("rmi", "-f", *sorted(leftover - images_before), check=False, timeout=120)

