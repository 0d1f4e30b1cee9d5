"""The built wheel carries everything ctop loads at run time (BPF sources, dashboard, rules, manifests)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

pytestmark = pytest.mark.system
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_wheel_contains_runtime_files(tmp_path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), REPO], check=True, timeout=300, capture_output=True)
    wheels = [f for f in os.listdir(tmp_path) if f.endswith(".whl")]
    assert len(wheels) == 1 and wheels[0].startswith("ctop_node-")
    names = set(zipfile.ZipFile(tmp_path / wheels[0]).namelist())
    for source in os.listdir(os.path.join(REPO, "bpf")):
        if source.endswith((".c", ".h")):
            assert f"ctop/bpf/{source}" in names
    for asset in ("grafana-dashboard.json", "rules.yml", "prometheus.yml", "ctop-exporter.service"):
        assert f"ctop/exporters/{asset}" in names
    assert any(n.startswith("ctop/exporters/deploy/") for n in names)
    assert not any(n.startswith(("bpf/", "exporters/", "tests/")) for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "ctop = ctop.cli:main" in zipfile.ZipFile(tmp_path / wheels[0]).read(entry_points).decode()
