"""The ctop that is imported and run is this checkout (setup.sh's editable install), mapped as the wheel installs it."""

from __future__ import annotations

import importlib
import importlib.resources
import os
import subprocess
import sys

import pytest
from support.env import ctop_command

from ctop.ebpf import loader

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _project() -> dict[str, object]:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        project: dict[str, object] = tomllib.load(f)
    return project


def _package_dirs() -> dict[str, str]:
    """Every installed package and the checkout directory it comes from (pyproject's packages and package-dir)."""
    setuptools = _project()["tool"]["setuptools"]  # type: ignore[index]
    mapping: dict[str, str] = setuptools["package-dir"]
    out = {}
    for package in setuptools["packages"]:
        base = max((p for p in mapping if package == p or package.startswith(p + ".")), key=len)
        rest = package[len(base):].lstrip(".").replace(".", os.sep)
        out[package] = os.path.join(REPO, mapping[base], rest)
    return out


def _here(module: object) -> str:
    return os.path.dirname(os.path.realpath(module.__file__))  # type: ignore[attr-defined]


def test_the_three_top_level_packages_are_this_checkout() -> None:
    for package, directory in (("ctop", "ctop"), ("ctop.exporters", "exporters"), ("ctop.bpf", "bpf")):
        assert _here(importlib.import_module(package)) == os.path.join(REPO, directory), package


def test_every_module_imports_by_its_installed_name_from_the_checkout() -> None:
    dirs = _package_dirs()
    assert {"ctop", "ctop.bpf", "ctop.exporters"} <= set(dirs)
    listed = {os.path.realpath(d) for d in dirs.values()}
    for package, directory in dirs.items():
        assert _here(importlib.import_module(package)) == os.path.realpath(directory), package
        for name in sorted(os.listdir(directory)):
            if name.endswith(".py") and name != "__init__.py":
                module = importlib.import_module(f"{package}.{name[:-3]}")
                assert os.path.realpath(module.__file__ or "") == os.path.realpath(os.path.join(directory, name))
            elif os.path.isfile(os.path.join(directory, name, "__init__.py")):
                # a sub-package missing from pyproject's list would be left out of the wheel
                assert os.path.realpath(os.path.join(directory, name)) in listed, f"{package}.{name} not packaged"


def test_bpf_sources_are_found_as_package_resources_in_the_checkout() -> None:
    bpf = os.path.join(REPO, "bpf")
    resources = importlib.resources.files("ctop.bpf")
    assert os.path.realpath(str(resources)) == os.path.realpath(bpf)
    sources = sorted(n for n in os.listdir(bpf) if n.endswith((".c", ".h")))
    assert set(loader.PROGRAM_FILES) <= set(sources) and "ctop.h" in sources
    for name in sources:
        with open(os.path.join(bpf, name), "rb") as f:
            assert (resources / name).read_bytes() == f.read()
    assert os.path.realpath(loader.program_dir()) == os.path.realpath(bpf)
    text = loader.program_text()
    assert all(f'#line 1 "{name}"' in text for name in loader.PROGRAM_FILES)


def test_exporter_assets_are_found_as_package_resources_in_the_checkout() -> None:
    resources = importlib.resources.files("ctop.exporters")
    for asset in ("grafana-dashboard.json", "rules.yml", "prometheus.yml", "ctop-exporter.service"):
        assert os.path.realpath(str(resources / asset)) == os.path.realpath(os.path.join(REPO, "exporters", asset))
        assert (resources / asset).is_file()


def test_the_ctop_command_beside_pytest_runs_this_checkout(tmp_path: object) -> None:
    command = ctop_command()
    assert os.path.realpath(command) == os.path.realpath(os.path.join(sys.prefix, "bin", "ctop"))
    with open(command) as f:
        interpreter = f.readline()[2:].strip()
    assert os.path.realpath(interpreter) == os.path.realpath(sys.executable)
    probe = "import ctop, ctop.bpf, ctop.exporters, ctop.cli; print(ctop.__file__, ctop.bpf.__file__, " \
            "ctop.exporters.__file__, ctop.cli.__file__)"
    # From another directory, as /usr/local/bin/ctop runs: the checkout must come from the install, not the cwd.
    out = subprocess.run([interpreter, "-c", probe], cwd=str(tmp_path), capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    assert [os.path.dirname(os.path.realpath(p)) for p in out] == [
        os.path.join(REPO, "ctop"), os.path.join(REPO, "bpf"), os.path.join(REPO, "exporters"),
        os.path.join(REPO, "ctop")]
    version = subprocess.run([command, "--version"], cwd=str(tmp_path), capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.strip()
