"""A sweep's description: a base run, axes of values, and the tasks they expand into.

A sweep config (TOML) holds a ``[run]`` table (any ``ctattn run`` config key), an ``[axes]``
table mapping keys to lists of values, and optionally ``mode`` (``"grid"``, the default: every
combination; ``"zip"``: the i-th values of every axis together) and ``replicates`` (R, default 1),
at the top level or in a ``[sweep]`` table. Besides the run keys, an axis (or ``[run]``) may name
``lesion`` (a lesion target of :mod:`ctattn.analysis.lesions`, or ``"none"``) and ``lesion_area``.

Seeds. A point's master seed is ``[run].seed`` or its ``seed`` axis value, used exactly as
``ctattn run --seed`` uses it. With ``replicates = R > 1`` replicate r runs with the child seed
``SeedSequence(master).spawn(R)[r]`` (its first 32-bit word), so a task's numbers depend on its
own coordinates only, never on the number of workers or the order in which tasks finish; each
task can be repeated alone with ``ctattn run --seed <its seed>``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from dataclasses import dataclass, field

import numpy as np

from ctattn.config import validate_config
from ctattn.core.problem import InputError

__all__ = ["SweepSpec", "Task", "SWEEP_KEYS", "load_sweep", "sweep_from_dict", "child_seed"]

# keys a sweep task understands beyond the run config
SWEEP_KEYS = ("lesion", "lesion_area")
_TOP_KEYS = {"run", "axes", "sweep", "mode", "replicates"}


@dataclass(frozen=True)
class Task:
    """One run of the sweep: its id, coordinates on the axes, replicate and full config."""

    task_id: str
    coords: dict
    replicate: int
    config: dict  # validated run config (every key) plus the sweep keys

    def to_dict(self) -> dict:
        return dict(task_id=self.task_id, coords=self.coords, replicate=self.replicate, config=self.config)


@dataclass(frozen=True)
class SweepSpec:
    """Validated sweep: ``base`` run config, ``axes`` (key -> validated values), mode, replicates."""

    base: dict
    axes: dict
    mode: str = "grid"
    replicates: int = 1
    tasks: list = field(default_factory=list)

    @property
    def dims(self) -> tuple[str, ...]:
        return (*self.axes, "replicate") if self.mode == "grid" else ("point", "replicate")

    def to_dict(self) -> dict:
        return dict(base=self.base, axes=self.axes, mode=self.mode, replicates=self.replicates)

    def fingerprint(self) -> str:
        """A hash of what the sweep computes (for --resume to refuse a changed sweep)."""
        text = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def child_seed(master: int, replicate: int, replicates: int) -> int:
    """The seed of replicate ``replicate`` of ``replicates`` (the master seed itself when R = 1)."""
    if replicates == 1:
        return int(master)
    child = np.random.SeedSequence(int(master)).spawn(replicates)[replicate]
    return int(child.generate_state(1, dtype=np.uint32)[0])


def _validate_run(raw: dict, source: str) -> dict:
    """A run config (every key) plus the sweep keys ``lesion`` and ``lesion_area``."""
    raw = dict(raw)
    extra = {k: raw.pop(k, None) for k in SWEEP_KEYS}
    values = validate_config(raw, source=source)
    lesion, area = extra["lesion"], extra["lesion_area"]
    if lesion is not None and not isinstance(lesion, str):
        raise InputError(f'{source}: lesion: expected a target name (e.g. "L23") or "none", got {lesion!r}')
    if area is not None and (isinstance(area, bool) or not isinstance(area, (int, str))):
        raise InputError(f"{source}: lesion_area: expected an area number or name, got {area!r}")
    for key in ("weights", "inputs"):  # workers may run elsewhere: never a relative path
        if values[key]:
            values[key] = os.path.abspath(values[key])
    values.update(lesion=lesion, lesion_area=area)
    return values


def sweep_from_dict(obj: dict, source: str = "sweep") -> SweepSpec:
    """Validate a sweep table (as read from TOML) and expand its tasks."""
    unknown = sorted(set(obj) - _TOP_KEYS)
    if unknown:
        raise InputError(f"{source}: unknown table(s) or key(s) {unknown}; allowed: {sorted(_TOP_KEYS)}")
    options = dict(obj.get("sweep") or {})
    bad = sorted(set(options) - {"mode", "replicates"})
    if bad:
        raise InputError(f"{source}: [sweep]: unknown key(s) {bad}; allowed: ['mode', 'replicates']")
    mode = obj.get("mode", options.get("mode", "grid"))
    replicates = obj.get("replicates", options.get("replicates", 1))
    if mode not in ("grid", "zip"):
        raise InputError(f'{source}: mode: expected "grid" or "zip", got {mode!r}')
    if isinstance(replicates, bool) or not isinstance(replicates, int) or replicates < 1:
        raise InputError(f"{source}: replicates: expected a positive integer, got {replicates!r}")
    base_raw = obj.get("run") or {}
    if not isinstance(base_raw, dict):
        raise InputError(f"{source}: [run] must be a table of run config keys")
    base = _validate_run(base_raw, f"{source} [run]")
    axes_raw = obj.get("axes")
    if not isinstance(axes_raw, dict) or not axes_raw:
        raise InputError(f"{source}: [axes] must map at least one key to a list of values")
    axes = {}
    for key, values in axes_raw.items():
        if key in ("replicate", "point"):
            raise InputError(f"{source}: axes.{key}: reserved name (a dimension of the results)")
        if not isinstance(values, list) or not values:
            raise InputError(f"{source}: axes.{key}: expected a non-empty list of values")
        checked = []
        for v in values:
            if v is None:
                raise InputError(f"{source}: axes.{key}: values must be set")
            checked.append(_validate_run({**base_raw, key: v}, f"{source} axes.{key}")[key])
        if len({json.dumps(v) for v in checked}) != len(checked):
            raise InputError(f"{source}: axes.{key}: a value is listed twice ({values})")
        axes[key] = checked
    if mode == "zip" and len({len(v) for v in axes.values()}) > 1:
        raise InputError(
            f'{source}: mode = "zip" needs axes of equal length; got '
            + ", ".join(f"{k}: {len(v)}" for k, v in axes.items())
        )
    keys = list(axes)
    points = itertools.product(*axes.values()) if mode == "grid" else zip(*axes.values())
    tasks = []
    for point in points:
        coords = dict(zip(keys, point))
        raw = {**base_raw, **{k: v for k, v in coords.items()}}
        for r in range(replicates):
            config = _validate_run(raw, source)
            config["seed"] = child_seed(config["seed"], r, replicates)
            tasks.append(Task(f"t{len(tasks):05d}", coords, r, config))
    return SweepSpec(base=base, axes=axes, mode=mode, replicates=replicates, tasks=tasks)


def load_sweep(path) -> SweepSpec:
    """Read and validate a sweep config file (TOML)."""
    path = os.fspath(path)
    if not path.endswith(".toml"):
        raise InputError(f"sweep: expected a TOML file, got {path}")
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise InputError(f"sweep: file not found: {path}") from None
    except OSError as exc:
        raise InputError(f"sweep: cannot read {path} ({exc.strerror})") from None
    from ctattn.config import tomllib

    try:
        obj = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"sweep: {path} is not valid TOML ({exc})") from None
    return sweep_from_dict(obj, source=path)
