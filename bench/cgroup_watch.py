"""Benchmark: finding new and removed cgroups each refresh, inotify events against one stat per known cgroup.

Builds cgroup_refresh's Kubernetes-shaped tree (~1000 cgroups) and follows every hierarchy of this host with two
TreeWatches, one reading inotify events and one stat'ing each known cgroup, asked in turn (interleaved blocks, same
tree, same load). Process CPU per refresh of all hierarchies, on an unchanged tree and with one pod (4 cgroups)
made and one removed before each refresh; both watches' answers are checked equal to a full walk.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from cgroup_refresh import build_tree  # noqa: E402
from support.cgroups import hierarchy_roots, host_layout, make_cgroup, remove_tree  # noqa: E402

from ctop.sources.cgroupfs import walk_cgroups  # noqa: E402
from ctop.sources.cgroupwatch import TreeWatch  # noqa: E402


def _cpu_ms_per_refresh(watches: list[TreeWatch], refreshes: int, between=lambda i: None) -> float:
    spent = 0.0
    for i in range(refreshes):
        between(i)
        start = time.process_time()
        for watch in watches:
            watch.paths()
        spent += time.process_time() - start
    return spent / refreshes * 1000


def run(pods: int = 250, blocks: int = 7, refreshes: int = 20) -> dict[str, object]:
    prefix = f"/ctoph-watch-bench-{uuid.uuid4().hex[:8]}"
    layout = host_layout()
    roots = hierarchy_roots(layout)
    procs = []
    try:
        count, procs = build_tree(prefix, pods)
        modes = {"inotify": [TreeWatch(r) for r in roots], "stat": [TreeWatch(r, notify=False) for r in roots]}
        for watches in modes.values():
            for watch in watches:
                watch.paths()
        if not all(w.notifying for w in modes["inotify"]):
            raise RuntimeError("inotify is unavailable here: nothing to compare")
        churn_at = [0]

        def churn(i: int) -> None:  # one pod in, the oldest churned one out: what a busy node does
            churn_at[0] += 1
            pod = make_cgroup(layout, f"{prefix}/churn{churn_at[0]}")
            for c in range(3):
                pod.child(f"c{c}")
            if churn_at[0] > 1:
                remove_tree(layout, f"{prefix}/churn{churn_at[0] - 1}")

        figures: dict[str, dict[str, list[float]]] = {m: {"unchanged": [], "churn": []} for m in modes}
        for _ in range(blocks):
            for mode, watches in modes.items():
                figures[mode]["unchanged"].append(_cpu_ms_per_refresh(watches, refreshes))
            for mode, watches in modes.items():
                figures[mode]["churn"].append(_cpu_ms_per_refresh(watches, refreshes, churn))
        for mode, watches in modes.items():
            for root, watch in zip(roots, watches):
                walked = {p: i[root] for p, i in walk_cgroups([root]).items()}
                if watch.paths() != walked:
                    raise RuntimeError(f"the {mode} watch of {root} disagrees with a full walk")
        for watches in modes.values():
            for watch in watches:
                watch.close()
    finally:
        for p in procs:
            p.kill()
            p.wait()
        remove_tree(layout, prefix)
    out: dict[str, object] = {"cgroups_built": count, "hierarchies": len(roots)}
    for case in ("unchanged", "churn"):
        ino = statistics.median(figures["inotify"][case])
        st = statistics.median(figures["stat"][case])
        out[case] = {"inotify_cpu_ms_per_refresh": round(ino, 3), "stat_cpu_ms_per_refresh": round(st, 3),
                     "ratio_inotify_to_stat": round(ino / st, 4) if st > 0 else None}
    out["method"] = (f"every hierarchy's TreeWatch.paths() once per refresh, process CPU, {refreshes} refreshes per "
                     f"block, median of {blocks} interleaved blocks; churn: one pod of 4 cgroups made and one removed "
                     "before each refresh")
    out["load_average"] = os.getloadavg()
    return out


if __name__ == "__main__":
    print(run())
