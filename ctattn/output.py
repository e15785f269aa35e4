"""Saving results: all-or-nothing output folders and a manifest that lets a run be repeated.

``with atomic_output(DIR) as tmp:`` writes into a temporary sibling folder and moves it into
place only if the block finishes; on an error nothing appears at ``DIR`` (an existing ``DIR``
is replaced only on success). ``manifest(...)`` records the full configuration, the master
seed and the versions of Python and every dependency.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np

__all__ = ["atomic_output", "manifest", "versions", "write_json", "to_jsonable"]


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike):
    """Yield a temporary folder that becomes ``path`` when the block completes."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        old = final.with_name(f".{final.name}.old.{os.getpid()}")
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(final)


def versions() -> dict[str, str]:
    """Versions of Python, ctattn and its dependencies."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in ("ctattn", "brian2", "numpy", "matplotlib", "cython"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def to_jsonable(value):
    """Convert numpy scalars and arrays (and nested containers) to plain JSON types."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def manifest(command: str, config: dict, seed: int, **extra) -> dict:
    """A manifest: ``command``, full ``config`` (enough to repeat the run), ``seed``, versions."""
    return to_jsonable(
        dict(
            command=command,
            config=config,
            seed=seed,
            versions=versions(),
            created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            argv=sys.argv,
            **extra,
        )
    )


def write_json(path: str | os.PathLike, obj) -> None:
    with open(path, "w") as fh:
        json.dump(to_jsonable(obj), fh, indent=2, sort_keys=False)
        fh.write("\n")
