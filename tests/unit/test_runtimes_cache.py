"""The file-metadata cache of MetadataService forgets containers whose entries expired (no growth under churn)."""

from __future__ import annotations

import time

from ctop.runtimes.identify import identify
from ctop.runtimes.metadata import NEGATIVE_TTL_S, PODS_KEPT, MetadataService


def test_expired_entries_of_churned_containers_are_dropped(tmp_path) -> None:
    svc = MetadataService(host_root=str(tmp_path), use_docker=False)
    paths = [f"/kubepods/besteffort/pod0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b/{i:064x}" for i in range(500)]
    for path in paths:
        assert svc.lookup(path, identify(path)) is None  # nothing on disk: a negative entry each
    assert len(svc._cache) == 500
    time.sleep(NEGATIVE_TTL_S + 0.2)
    last = "/kubepods/besteffort/pod0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b/" + "f" * 64
    assert svc.lookup(last, identify(last)) is None
    assert list(svc._cache) == ["f" * 64]


def test_pod_names_of_churned_pods_are_bounded(tmp_path) -> None:
    svc = MetadataService(host_root=str(tmp_path), use_docker=False)
    for i in range(PODS_KEPT + 10):
        svc._remember_pod(f"uid-{i}", ("ns", f"pod-{i}"))
    assert len(svc._pods) <= PODS_KEPT
    assert svc._pods[f"uid-{PODS_KEPT + 9}"] == ("ns", f"pod-{PODS_KEPT + 9}")  # the newest is kept
    assert "uid-0" not in svc._pods
    svc._remember_pod("uid-0", ("ns", "pod-0"))  # seen again: kept as new
    assert list(svc._pods)[-1] == "uid-0"
