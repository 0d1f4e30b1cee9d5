"""The real `ctop` in tmux: one filter language for / and -b --filter with real containers; settings survive a
restart; a broken settings file is one sentence; `ctop inspect` finds a real container by a part of its name."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

import pytest
from support.cgroups import TestCgroup
from support.dockerd import IMAGE, PrivateDockerd, dockerd, unique  # noqa: F401
from support.env import need_root
from support.tmux import Tmux, tmux_session

from ctop.ui.columns import COLUMNS_BY_KEY, DEFAULT_COLUMNS

pytestmark = pytest.mark.system


@pytest.fixture
def config_home() -> Iterator[str]:
    """A private XDG_CONFIG_HOME, removed afterwards."""
    path = tempfile.mkdtemp(prefix="ctop-xdg-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def listed_names(screen: str, candidates: list[str]) -> set[str]:
    """Which of ``candidates`` have a row on the screen (the body lines, not the status line)."""
    body = screen.splitlines()[1:-2]
    return {c for c in candidates if any(line.split() and line.split()[0] == c for line in body)}


def quit_ctop(t: Tmux) -> None:
    t.send("q")
    t.wait_for(lambda s: t.dead(), 5, "ctop to exit")
    assert t.exit_status() == 0


def test_the_same_filter_text_selects_the_same_containers_after_slash_and_in_batch(
        ctop: str, dockerd: PrivateDockerd, config_home: str) -> None:  # noqa: F811
    need_root()
    tag = unique("flt")
    other_image = f"ctop-other-{tag}:test"
    dockerd.run("tag", IMAGE, other_image)
    names = [f"{tag}-a", f"{tag}-b", f"{tag}-c"]
    images = [IMAGE, IMAGE, other_image]
    cids = [dockerd.out("run", "-d", "--name", n, i, "sleep", "300") for n, i in zip(names, images)]
    text = f"image=ctop-busybox name={tag}"
    try:
        batch = subprocess.run([ctop, "-b", "--json", "-n", "1", "-d", "0.5", "--docker-socket", dockerd.socket,
                                "--filter", text], capture_output=True, text=True, timeout=60, check=True)
        in_batch = {r["name"] for r in json.loads(batch.stdout)}
        assert in_batch == {names[0], names[1]}, batch.stdout
        env = {"XDG_CONFIG_HOME": config_home}
        with tmux_session([ctop, "--docker-socket", dockerd.socket], 200, 40, env) as t:
            t.wait_for(lambda s: s.startswith("NAME"), 10, "the first screen")
            t.send("/")
            t.type(text)
            t.send("Enter")
            screen = t.wait_for(lambda s: f"filter '{text}'" in s and "2 rows" in s, 10, "the filtered list")
            assert listed_names(screen, names) == in_batch
            t.send("5")  # the same rows in the all-cgroups view
            screen = t.wait_for(lambda s: "All cgroups" in s and "2 rows" in s, 5, "all cgroups")
            assert listed_names(screen, names) == in_batch
            quit_ctop(t)
        # A --filter on the command line reaches the interactive view, in the all-cgroups view too.
        with tmux_session([ctop, "--docker-socket", dockerd.socket, "--config", os.path.join(config_home, "x.ini"),
                           "--filter", f"id={cids[2][:16]}"], 200, 40) as t:
            t.wait_for(lambda s: s.startswith("NAME") and "1 rows" in s and names[2] in s, 10, "the --filter row")
            t.send("5")
            screen = t.wait_for(lambda s: "All cgroups" in s and "1 rows" in s, 5, "all cgroups, filtered")
            assert listed_names(screen, names) == {names[2]}
            quit_ctop(t)
    finally:
        dockerd.run("rm", "-f", *cids, check=False)
        dockerd.run("rmi", other_image, check=False)


def test_columns_sort_view_and_filter_survive_a_restart(ctop: str, test_cgroup: TestCgroup,
                                                        config_home: str) -> None:
    need_root()
    name = test_cgroup.path.lstrip("/")
    exec_column = COLUMNS_BY_KEY["execs_per_s"]
    downs = list(COLUMNS_BY_KEY.values()).index(exec_column)  # the chooser opens on its title line
    env = {"XDG_CONFIG_HOME": config_home}
    with tmux_session([ctop], 200, 40, env) as t:
        t.wait_for(lambda s: s.startswith("NAME"), 10, "the first screen")
        assert "EXEC/s" not in t.lines()[0] and exec_column not in DEFAULT_COLUMNS
        t.send("5", "M", "c")
        t.wait_text("Columns: space ticks", 5)
        t.send(*["Down"] * downs, "Space")
        t.wait_text("[X] EXEC/s", 5)
        t.send("Escape")  # alone: urwid reads Escape and a key soon after as one Alt+key
        t.wait_for(lambda s: "Columns: space ticks" not in s, 5, "the chooser to close")
        t.send("/")
        t.type(name)
        t.send("Enter")
        t.wait_for(lambda s: "All cgroups" in s and "sort MEM▼" in s and f"filter '{name}'" in s
                   and "EXEC/s" in s.splitlines()[0] and "1 rows" in s, 10, "the changed settings")
        quit_ctop(t)
    with open(os.path.join(config_home, "ctop", "config.ini")) as f:
        saved = f.read()
    print(saved)
    assert "view = cgroups" in saved and f"filter = {name}" in saved and "execs_per_s" in saved
    with tmux_session([ctop], 200, 40, env) as t:
        screen = t.wait_for(lambda s: s.startswith("NAME") and "1 rows" in s, 10, "the first screen again")
        status = screen.splitlines()[-1]
        assert "All cgroups" in status and "sort MEM▼" in status and f"filter '{name}'" in status
        assert "EXEC/s" in screen.splitlines()[0] and test_cgroup.path in screen
        quit_ctop(t)


def test_a_broken_settings_file_is_one_sentence_and_ctop_starts_with_defaults(ctop: str, config_home: str) -> None:
    need_root()
    bad = os.path.join(config_home, "bad.ini")
    with open(bad, "w") as f:
        f.write("columns = cpu_percent\n[list\n")
    with tmux_session([ctop, "--config", bad], 200, 40) as t:
        screen = t.wait_for(lambda s: s.startswith("NAME") and "cannot be parsed" in s, 10, "the sentence")
        assert "Containers" in screen.splitlines()[-1] and "Traceback" not in screen
        t.send("5")
        t.wait_text("All cgroups", 5)
        quit_ctop(t)
    with open(bad) as f:
        assert f.read() == "columns = cpu_percent\n[list\n"  # left as it was


def test_inspect_finds_a_real_container_by_a_part_of_its_name(ctop: str, dockerd: PrivateDockerd) -> None:  # noqa: F811
    need_root()
    tag = unique("sre")
    names = [f"{tag}-idle-42", f"{tag}-idle-7"]
    cids = [dockerd.out("run", "-d", "--name", n, IMAGE, "sleep", "300") for n in names]
    try:
        part = names[0][len(tag) - 8:]  # the end of the unique tag, then -idle-42
        res = subprocess.run([ctop, "inspect", part, "--json", "--docker-socket", dockerd.socket],
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        report = json.loads(res.stdout)
        assert report["metadata"]["name"] == names[0] and report["identity"]["container_id"] == cids[0]
        res = subprocess.run([ctop, "inspect", tag, "--docker-socket", dockerd.socket],
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 1 and "Traceback" not in res.stderr
        assert res.stderr.count("\n") == 1 and f"'{tag}' matches 2 containers: " in res.stderr
        assert all(f"{n} ({c[:12]})" in res.stderr for n, c in zip(names, cids))
        res = subprocess.run([ctop, "inspect", dockerd.cgroup_path(cids[1]), "--docker-socket", dockerd.socket],
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0 and f"Container  {names[1]}  (docker)" in res.stdout, res.stderr
    finally:
        dockerd.run("rm", "-f", *cids, check=False)
