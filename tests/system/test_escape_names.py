"""Kubernetes labels holding terminal escape sequences, on a real container of a private dockerd: the interactive
view shows them inert, the exporter escapes them, ``ctop -b`` prints no raw control byte.

Docker restricts container names, not labels: dockershim-era pods carry their pod name, namespace and container
name as ``io.kubernetes.*`` labels, which ctop shows as names.
"""

from __future__ import annotations

import subprocess
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.dockerd import IMAGE, PrivateDockerd, cgroup_of, dockerd, kubelet_pod_parent, pod_cgroup_path, unique  # noqa: F401
from support.env import ctop_command, need_binary, need_root
from support.prometheus import running_exporter
from support.tmux import tmux_session

from ctop.model.safe_text import inert

pytestmark = pytest.mark.system

CLEAR, TITLE_PREFIX, C1_CSI = "\x1b[2J", "\x1b]0;", "\x9b"


def raw_controls(text: str, keep: str = "\n") -> set[str]:
    return {ch for ch in text if ch not in keep and inert(ch) != ch}


@pytest.fixture
def evil_pod(dockerd: PrivateDockerd) -> dict[str, str]:  # noqa: F811
    """A pod-shaped container whose pod, namespace and container labels hold escape sequences."""
    need_root()
    tag = uuid.uuid4().hex[:6]
    marker = f"owned{tag}"
    labels = {
        "pod": f"ev{tag}{CLEAR}{TITLE_PREFIX}{marker}\x07x",
        "namespace": f"ns{tag}\r{C1_CSI}31m",
        "container": f"c{tag}" + "L" * 2000,
    }
    uid = str(uuid.uuid4())
    parent = kubelet_pod_parent(dockerd, "besteffort", uid)  # a .slice under the systemd cgroup driver
    dockerd.cgroup_parents.append(pod_cgroup_path(parent))
    cid = dockerd.out("run", "-d", "--name", unique("evil"), f"--cgroup-parent={parent}",
                      "--label", f"io.kubernetes.pod.name={labels['pod']}",
                      "--label", f"io.kubernetes.pod.namespace={labels['namespace']}",
                      "--label", f"io.kubernetes.pod.uid={uid}",
                      "--label", f"io.kubernetes.container.name={labels['container']}",
                      "--label", "io.kubernetes.docker.type=container",
                      IMAGE, "sh", "-c", "while :; do sleep 0.05; done")
    path = cgroup_of(dockerd.inspect(cid)["State"]["Pid"], "memory")
    try:
        yield {"cid": cid, "path": path, "tag": tag, "marker": marker, **labels}
    finally:
        dockerd.run("rm", "-f", cid, check=False)


def test_interactive_view_shows_escape_sequences_inert(evil_pod: dict[str, str], dockerd: PrivateDockerd) -> None:  # noqa: F811
    tag, marker = evil_pod["tag"], evil_pod["marker"]
    with tmux_session([ctop_command(), "--docker-socket", dockerd.socket, "--no-ebpf"], 200, 40) as t:
        title_before = t.pane("#{pane_title}")
        t.wait_for(lambda s: s.startswith("NAME"), 10, "the first screen")
        t.send("5", "/")
        t.type(tag)
        t.send("Enter")
        # The sequences arrive on screen as visible "?": had ESC [ 2 J reached the terminal, tmux would have
        # consumed it and no "[2J" text would show; the title sequence would have renamed the pane.
        screen = t.wait_for(lambda s: f"ev{tag}?[2J?]0;{marker}?x" in s, 15, "the pod name with visible ?")
        assert f"ns{tag}??31m" in screen
        assert screen.startswith("NAME") and "All cgroups" in screen  # not cleared: header and footer remain
        assert t.pane("#{pane_title}") == title_before and marker not in t.pane("#{pane_title}")
        escaped = t.screen(escapes=True)
        assert CLEAR not in escaped and TITLE_PREFIX not in escaped
        t.send("Enter")  # the detail view shows every label
        screen = t.wait_text("Processes", 10)  # the detail view
        assert f"?]0;{marker}?" in screen and marker not in t.pane("#{pane_title}")
        t.send("q", "q")
        t.wait_for(lambda s: t.dead(), 10, "ctop to exit")


def test_exporter_escapes_the_label_values(evil_pod: dict[str, str], dockerd: PrivateDockerd) -> None:  # noqa: F811
    tag, marker = evil_pod["tag"], evil_pod["marker"]
    with running_exporter("--no-ebpf", f"--docker.socket={dockerd.socket}") as exp:
        text = ""
        for _ in range(20):
            text = exp.scrape()
            if f"ev{tag}" in text:
                break
        assert f"ev{tag}" in text, exp.log()[-2000:]
    assert raw_controls(text) == set(), sorted(raw_controls(text))
    ours = [s for fam in text_string_to_metric_families(text) for s in fam.samples
            if s.labels.get("id") == evil_pod["path"]]
    assert ours
    labels = ours[0].labels
    assert labels["pod"] == f"ev{tag}?[2J?]0;{marker}?x"
    assert labels["namespace"] == f"ns{tag}??31m"
    assert labels["container"].startswith(f"c{tag}LLL") and len(labels["container"]) == 512  # bounded
    lint = subprocess.run([need_binary("promtool"), "check", "metrics"], input=text.encode(), capture_output=True,
                          timeout=60)
    report = (lint.stdout + lint.stderr).decode()
    # promtool's style hints about other families are not this test's business; errors about parsing are.
    assert "error" not in report.lower() and f"ev{tag}" not in report, report[-2000:]


def test_batch_text_has_no_raw_escape(evil_pod: dict[str, str], dockerd: PrivateDockerd) -> None:  # noqa: F811
    tag = evil_pod["tag"]
    for fmt in ([], ["--csv"], ["--json"]):
        out = subprocess.run([ctop_command(), "-b", "-n", "1", "-d", "0.5", "--no-ebpf", "--docker-socket",
                              dockerd.socket, "--filter", f"pod={tag}", *fmt], capture_output=True, timeout=60)
        assert out.returncode == 0, out.stderr.decode(errors="replace")
        assert b"\x1b" not in out.stdout and b"\x07" not in out.stdout and b"\r" not in out.stdout
        assert "\x9b".encode() not in out.stdout
        text = out.stdout.decode("utf-8")  # valid UTF-8
        assert evil_pod["cid"] in text, text[:500]  # the row is there (its cgroup path holds the id)
        if fmt:  # CSV and JSON carry the pod name: inert in CSV, escaped in JSON
            assert f"ev{tag}?[2J?]0;" in text or f"ev{tag}\\u001b[2J\\u001b]0;" in text, text[:500]
        assert raw_controls(text) == set()
