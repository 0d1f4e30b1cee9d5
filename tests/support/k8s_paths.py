"""Kubelet-shaped cgroup paths for tests and benchmarks: pods of both cgroup drivers, a pause and an app container."""

from __future__ import annotations

QOS = ("burstable", "besteffort", "guaranteed")


def kubernetes_paths(count: int, offset: int = 0) -> list[str]:
    """``count`` distinct paths: pod cgroups and their containers, systemd driver for odd pods, cgroupfs for even.

    Pods are numbered from ``offset``, so two calls with far apart offsets give disjoint sets (churn).
    """
    paths: list[str] = []
    pod = offset
    while len(paths) < count:
        uid = f"{pod:08x}-1b2d-4e5f-8a9b-{pod:012x}"
        qos = QOS[pod % 3]
        if pod % 2:
            parent = "/kubepods.slice" if qos == "guaranteed" else f"/kubepods.slice/kubepods-{qos}.slice"
            prefix = "kubepods" if qos == "guaranteed" else f"kubepods-{qos}"
            pod_path = f"{parent}/{prefix}-pod{uid.replace('-', '_')}.slice"
            children = [f"{pod_path}/cri-containerd-{pod:032x}{c:032x}.scope" for c in range(2)]
        else:
            pod_path = f"/kubepods/pod{uid}" if qos == "guaranteed" else f"/kubepods/{qos}/pod{uid}"
            children = [f"{pod_path}/{pod:032x}{c:032x}" for c in range(2)]
        paths.extend([pod_path, *children])
        pod += 1
    return paths[:count]
