"""Before and after: ctop at an earlier commit, ctop of this tree and systemd-cgtop side by side, CPU per refresh.

Usage (root): .venv/bin/python bench/refresh_ab.py COMMIT [PODS ...] [--rounds N]

The earlier commit is exported with `git archive` into a temporary directory and run from there (PYTHONPATH, from a
neutral working directory so that neither tree shadows the other). The three processes run at the same time over one
`cgroup_refresh.build_tree` tree (4 cgroups per pod), each for 30 refreshes at -d 1, and each one's CPU per refresh is
taken as `cgroup_refresh.per_refresh_pair` takes it; the figures are medians over the rounds, the ratios those of
the medians to systemd-cgtop's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TREE = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TREE, "tests"))

import cgroup_refresh  # noqa: E402
from support.cgroups import host_layout, remove_tree  # noqa: E402

CTOP_MAIN = "from ctop.cli import main; main()"


def export(commit: str, dest: str) -> None:
    """The tree of ``commit`` in ``dest``."""
    archive = subprocess.run(["git", "-C", TREE, "archive", commit], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)


def one_round(trees: dict[str, str], refreshes: int) -> dict[str, float]:
    """Every ctop tree and systemd-cgtop at once: CPU ms per refresh of each."""
    tools: dict[str, cgroup_refresh.Refreshes] = {}
    try:
        for name, tree in trees.items():
            os.environ["PYTHONPATH"] = tree
            tools[name] = cgroup_refresh.ctop_refreshes([sys.executable, "-c", CTOP_MAIN], refreshes)
        os.environ.pop("PYTHONPATH", None)
        tools["systemd-cgtop"] = cgroup_refresh.cgtop_refreshes(
            shutil.which("systemd-cgtop") or "/usr/bin/systemd-cgtop", refreshes)
        for tool in tools.values():
            tool.wait()
        return {name: tool.per_refresh(cgroup_refresh.WARMUP_REFRESHES) * 1000 for name, tool in tools.items()}
    finally:
        os.environ.pop("PYTHONPATH", None)
        for tool in tools.values():
            if tool.proc.poll() is None:
                tool.proc.kill()
                tool.proc.wait()


def measure(commit: str, pods: int, rounds: int) -> dict[str, object]:
    """``rounds`` side-by-side rounds over one tree of ``pods`` pods."""
    prefix = f"/ctoph-ab-{os.getpid()}-{pods}"
    layout = host_layout()
    procs: list[subprocess.Popen] = []
    base = tempfile.mkdtemp(prefix="ctoph-ab-")
    cwd = os.getcwd()
    try:
        export(commit, base)
        count, procs = cgroup_refresh.build_tree(prefix, pods)
        time.sleep(1)
        neutral = os.path.join(base, "cwd")
        os.mkdir(neutral)
        os.chdir(neutral)  # `python -c` puts the working directory first on sys.path: no ctop tree there
        trees = {commit: base, "this tree": TREE}
        refreshes = cgroup_refresh.WARMUP_REFRESHES + cgroup_refresh.WINDOW_REFRESHES + 1
        runs = [one_round(trees, refreshes) for _ in range(rounds)]
    finally:
        os.chdir(cwd)
        for p in procs:
            p.kill()
            p.wait()
        remove_tree(layout, prefix)
        shutil.rmtree(base, ignore_errors=True)
    medians = {name: statistics.median(run[name] for run in runs) for name in runs[0]}
    cgtop = medians["systemd-cgtop"]
    return {
        "cgroups_built": count,
        "cpu_ms_per_refresh": {name: round(v, 2) for name, v in medians.items()},
        "ratio_to_systemd_cgtop": {name: round(v / cgtop, 3) for name, v in medians.items() if cgtop > 0},
        "rounds": [{name: round(v, 2) for name, v in run.items()} for run in runs],
        "load_average": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("commit", help="the earlier commit (anything git archive takes)")
    parser.add_argument("pods", nargs="*", type=int, default=[25, 250], help="tree sizes in pods (default 25 250)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))  # the finally clauses clean up
    print(json.dumps({f"{pods * 4 + 4}_cgroups": measure(args.commit, pods, args.rounds) for pods in args.pods},
                     indent=2))


if __name__ == "__main__":
    main()
