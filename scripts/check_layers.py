"""Check the layer contract, ruff lint and ruff format; exit 0 only if all three pass.

import-linter reads a package from its folder, but ``ctattn.models``, ``ctattn.circuits`` and
``ctattn.analysis`` live at the repository root (setuptools' package-dir mapping), so the check
runs on a temporary copy laid out as installed: ``ctattn/`` with the three folders inside it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAPPED = ("models", "circuits", "analysis")  # installed as ctattn.<name>
BIN = Path(sys.executable).parent


def installed_layout(dest: Path) -> Path:
    """Copy the sources to ``dest/ctattn`` as they are laid out once installed."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "ctattn", dest / "ctattn", ignore=ignore)
    for name in MAPPED:
        shutil.copytree(ROOT / name, dest / "ctattn" / name, ignore=ignore)
    return dest


def main() -> int:
    failed = []
    with tempfile.TemporaryDirectory(prefix="ctattn-layers-") as tmp:
        installed_layout(Path(tmp))
        env = {**os.environ, "PYTHONPATH": tmp}
        cmd = [str(BIN / "lint-imports"), str(ROOT / "pyproject.toml"), "--no-cache"]
        if subprocess.run(cmd, cwd=tmp, env=env).returncode:
            failed.append("import-linter")
    paths = ["ctattn", *MAPPED, "tests", "benchmarks", "scripts"]
    for name, cmd in (
        ("ruff check", [str(BIN / "ruff"), "check", *paths]),
        ("ruff format --check", [str(BIN / "ruff"), "format", "--check", *paths]),
    ):
        if subprocess.run(cmd, cwd=ROOT).returncode:
            failed.append(name)
    if failed:
        print(f"check_layers: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    print("check_layers: import contracts, ruff check and ruff format all pass")
    return 0


if __name__ == "__main__":
    sys.exit(main())
