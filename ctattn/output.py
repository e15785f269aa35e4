"""Saving results: all-or-nothing output folders and a manifest that lets a run be repeated.

**Output safety.** ``--out`` must be a folder or absent (:func:`check_out_dir`, called before a
run starts): a regular file, a device node or a folder that is not a previous ctattn result is
refused, as is a folder that holds an input file or the working folder's ancestors; the nearest
existing parent must be writable. A previous result is recognised by its ``manifest.json``
(a ctattn manifest whose ``files`` list covers everything in the folder); only such a folder is
ever replaced. ``with atomic_output(DIR) as tmp:`` writes into a temporary sibling folder and
swaps it into place (same filesystem, renames only, signals held off during the swap) only when
the block finishes; on any error or interrupt the temporary folder is removed and ``DIR`` is
untouched.

**Manifest.** ``manifest(...)`` records the full configuration, the master seed, the versions
of Python and every dependency, and the SHA-256 of every input file (:func:`file_digests`), so
that re-running it after an input changed can be refused.

**Strict JSON.** :func:`to_jsonable` turns numpy values into plain ones and non-finite numbers
into ``null``; :func:`dumps` and :func:`write_json` never write bare ``NaN``/``Infinity``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import platform
import shutil
import signal
import stat
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np

from ctattn.core.problem import InputError

__all__ = [
    "atomic_output",
    "check_out_dir",
    "check_out_file",
    "is_ctattn_result",
    "manifest",
    "versions",
    "write_json",
    "dumps",
    "to_jsonable",
    "file_sha256",
    "file_digests",
]

#: Files ctattn writes into an output folder (figures are ``*.png``).
RESULT_FILES = ("manifest.json", "result.npz", "curves.npz", "weights.npz")


def to_jsonable(value):
    """Convert numpy scalars and arrays (and nested containers) to plain JSON types; NaN and
    infinities become ``None`` (JSON has no such numbers)."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def dumps(obj, **kwargs) -> str:
    """Strict JSON text of ``obj`` (non-finite numbers as ``null``)."""
    return json.dumps(to_jsonable(obj), allow_nan=False, **kwargs)


def write_json(path: str | os.PathLike, obj) -> None:
    with open(path, "w") as fh:
        fh.write(dumps(obj, indent=2, sort_keys=False))
        fh.write("\n")


# -- input files ----------------------------------------------------------------------------
def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digests(config: dict, keys=("weights", "inputs")) -> dict:
    """``{key: {"path": ..., "sha256": ...}}`` for every input file named in ``config``."""
    out = {}
    for key in keys:
        path = config.get(key)
        if path and os.path.isfile(path):
            out[key] = dict(path=os.path.abspath(path), sha256=file_sha256(path))
    return out


# -- output folders --------------------------------------------------------------------------
def _load_manifest(folder: Path):
    try:
        data = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) and "command" in data and "versions" in data else None


def is_ctattn_result(folder: Path) -> bool:
    """A folder holding a ctattn manifest and nothing but the files a ctattn command writes."""
    data = _load_manifest(folder)
    if data is None:
        return False
    listed = set(data.get("files") or []) | {"manifest.json"}
    for entry in folder.iterdir():
        if not entry.is_file() or entry.is_symlink():
            return False
        if entry.name not in listed and entry.name not in RESULT_FILES and not entry.name.endswith(".png"):
            return False
    return True


def _resolved(path) -> Path:
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path) or "\0" in os.fspath(path):
        raise InputError(f"--out: expected a folder path, got {path!r}")
    return Path(os.path.abspath(os.path.realpath(os.fspath(path))))


def _check_parent(final: Path) -> None:
    parent = final.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"--out: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"--out: cannot write into {parent} (permission denied)")


def check_out_dir(path, inputs=()) -> Path:
    """Resolve ``--out`` and refuse anything that is not a folder ctattn may (re)place.

    ``inputs``: paths of the run's input files (weights, inputs, config, targets); a folder
    that holds any of them is never replaced."""
    final = _resolved(path)
    if final == Path(final.anchor) or final == Path.home() or final in Path.cwd().resolve().parents:
        raise InputError(f"--out: {path} is {final}; choose a new folder for the results")
    for item in inputs:
        if item and _resolved(item).is_relative_to(final):
            raise InputError(f"--out: {path} holds the input file {item}; choose another folder")
    if final.is_symlink() or (final.exists() and not final.is_dir()):
        kind = "a file" if final.is_file() else "not a folder"
        raise InputError(f"--out: {path} exists and is {kind}; --out must be a folder or absent")
    if final.exists():
        if final == Path.cwd().resolve():
            raise InputError(f"--out: {path} is the working folder; choose a new folder for the results")
        if any(final.iterdir()) and not is_ctattn_result(final):
            raise InputError(
                f"--out: {path} exists and is not a previous ctattn result (a folder with a "
                "ctattn manifest.json and only its files); choose a new folder"
            )
        if not os.access(final, os.W_OK | os.X_OK):
            raise InputError(f"--out: cannot write into {path} (permission denied)")
    _check_parent(final)
    return final


def check_out_file(path, inputs=(), *, recognise=None) -> Path:
    """Like :func:`check_out_dir` for a single output file: it may exist only as a regular file
    that ``recognise(path)`` accepts as a previous output, and never as an input."""
    final = _resolved(path)
    for item in inputs:
        if item and _resolved(item) == final:
            raise InputError(f"--out: {path} is an input file; choose another file name")
    if final.exists() or final.is_symlink():
        if final.is_dir():
            raise InputError(f"--out: {path} is a folder; this command writes one file")
        if not stat.S_ISREG(os.stat(final).st_mode) or final.is_symlink():
            raise InputError(f"--out: {path} exists and is not a regular file")
        if recognise is None or not recognise(final):
            raise InputError(f"--out: {path} exists and is not a previous output of this command")
    _check_parent(final)
    return final


@contextlib.contextmanager
def held_signals():
    """Hold SIGINT and SIGTERM until the block ends (they are delivered afterwards)."""
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, inputs=()):
    """Yield a temporary folder that becomes ``path`` when the block completes.

    ``path`` is checked first (:func:`check_out_dir`); the folder's ``manifest.json``, if the
    block wrote one, gets the list of files written, by which a later run recognises it."""
    final = check_out_dir(path, inputs)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp.", dir=final.parent))
    old = None
    try:
        yield tmp
        if (tmp / "manifest.json").exists():
            data = json.loads((tmp / "manifest.json").read_text())
            data["files"] = sorted(p.name for p in tmp.iterdir())
            write_json(tmp / "manifest.json", data)
        os.chmod(tmp, 0o777 & ~_umask())
        with held_signals():
            check_out_dir(final, inputs)  # nothing replaced it meanwhile
            if final.exists():
                old = final.with_name(f".{final.name}.old.{os.getpid()}")
                final.rename(old)
            tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not final.exists():
            old.rename(final)
            old = None
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def versions() -> dict[str, str]:
    """Versions of Python, ctattn and its dependencies."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in ("ctattn", "brian2", "numpy", "matplotlib", "cython"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def manifest(command: str, config: dict, seed: int, **extra) -> dict:
    """A manifest: ``command``, full ``config`` (enough to repeat the run), ``seed``, versions,
    and the SHA-256 of the input files the config names (``input_sha256``)."""
    return to_jsonable(
        dict(
            command=command,
            config=config,
            seed=seed,
            versions=versions(),
            input_sha256=file_digests(config),
            created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            argv=sys.argv,
            **extra,
        )
    )
