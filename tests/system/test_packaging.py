"""The built wheel (what the exporter image installs) carries everything ctop loads at run time, and runs as built."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.system
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ASSETS = ("grafana-dashboard.json", "rules.yml", "prometheus.yml", "ctop-exporter.service")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built as exporters/deploy/Dockerfile builds it, from a copy of the same files (the checkout is
    left without build/ or egg-info litter)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(REPO, name), src / name)
    for name in ("ctop", "bpf", "exporters"):
        shutil.copytree(os.path.join(REPO, name), src / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp / "dist"), str(src)], check=True, timeout=300, capture_output=True)
    wheels = list((tmp / "dist").glob("*.whl"))
    assert len(wheels) == 1 and wheels[0].name.startswith("ctop_node-")
    return wheels[0]


def test_wheel_contains_runtime_files(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for source in os.listdir(os.path.join(REPO, "bpf")):
        if source.endswith((".c", ".h")):
            assert f"ctop/bpf/{source}" in names
    for asset in ASSETS:
        assert f"ctop/exporters/{asset}" in names
    assert any(n.startswith("ctop/exporters/deploy/") for n in names)
    assert not any(n.startswith(("bpf/", "exporters/", "tests/")) for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "ctop = ctop.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    requires = [line for line in zipfile.ZipFile(wheel).read(metadata).decode().splitlines()
                if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert not any("psutil" in line for line in requires), requires


def test_the_installed_wheel_loads_its_own_bpf_sources_and_assets(wheel: Path, tmp_path: Path) -> None:
    """Unpacked as pip installs it, ahead of this checkout on the path: ctop finds the copies inside the wheel."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = (
        "import importlib.resources, os, sys\n"
        "import ctop, ctop.exporters\n"
        "from ctop.ebpf import loader\n"
        "text = loader.program_text()\n"
        "assert all(f'#line 1 \"{n}\"' in text for n in loader.PROGRAM_FILES)\n"
        "print(ctop.__file__, ctop.exporters.__file__, loader.program_dir(),\n"
        "      importlib.resources.files('ctop.exporters') / 'grafana-dashboard.json')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, "-c", probe], cwd=str(tmp_path), env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    where = out.stdout.split()
    assert len(where) == 4 and all(os.path.realpath(p).startswith(str(site) + os.sep) for p in where), where
    assert os.path.isfile(where[3])
