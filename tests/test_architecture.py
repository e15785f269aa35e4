"""The package's shape: one ``ctattn`` namespace, layers that import one way, lint-clean sources.

* ``scripts/check_layers.py`` runs the import-linter contracts of ``pyproject.toml`` (application
  -> analysis -> circuits -> models -> core; no circuit or neuron model imports the reference),
  ``ruff check`` and ``ruff format --check``.
* The sdist and the wheel built from it install ``ctattn.models``, ``ctattn.circuits`` and
  ``ctattn.analysis`` and no top-level ``models``, ``circuits`` or ``analysis``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_layer_contracts_and_ruff():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "check_layers.py")], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]


@pytest.fixture(scope="module")
def wheel_from_sdist(tmp_path_factory):
    """Build the sdist, then a wheel from the unpacked sdist (so the sdist must be complete)."""
    out = tmp_path_factory.mktemp("dist")
    code = "import sys; from setuptools import build_meta as b; print(b.build_sdist(sys.argv[1]))"
    sdist = subprocess.run(
        [sys.executable, "-c", code, str(out)], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()[-1]
    with tarfile.open(out / sdist) as tar:
        tar.extractall(out / "src", filter="data")
    (src,) = (out / "src").iterdir()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            ".",
        ],
        cwd=src,
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("ctattn-*.whl")
    return wheel


def test_wheel_holds_one_namespace(wheel_from_sdist):
    names = zipfile.ZipFile(wheel_from_sdist).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert tops == {"ctattn"}, tops
    for pkg in ("models", "circuits", "analysis", "circuits/backends", "analysis/figures", "core"):
        assert f"ctattn/{pkg}/__init__.py" in names, pkg


def test_installed_wheel_imports_subpackages_not_top_level(wheel_from_sdist, tmp_path):
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(site),
            str(wheel_from_sdist),
        ],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    ok = subprocess.run(
        [
            sys.executable,
            "-c",
            "import ctattn.models, ctattn.circuits, ctattn.analysis; print(ctattn.models.__file__)",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert Path(ok.stdout.strip()).is_relative_to(site)
    for name in ("models", "circuits", "analysis"):
        bad = subprocess.run(
            [sys.executable, "-c", f"import {name}"], cwd=tmp_path, env=env, capture_output=True
        )
        assert bad.returncode != 0, name
