"""Run configuration: one flat table of keys, from TOML, a saved manifest, or the command line.

Every key has a type and a default (:data:`DEFAULTS`); unknown keys are rejected with their
name. Durations may be written with units as strings (``"20 ms"``, ``"0.3 s"``); plain
numbers are milliseconds. A run's ``manifest.json`` holds its full configuration under
``"config"``, so ``ctattn run --config DIR/manifest.json`` repeats it.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass

from ctattn.core.problem import InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["DEFAULTS", "DURATION_KEYS", "load_config", "validate_config", "parse_duration_ms", "RunConfig"]

# key: (type, default). None default = "not set" (the backend's or the problem's default applies).
DEFAULTS: dict[str, tuple[type | tuple, object]] = {
    "backend": (str, "ideal"),
    "variant": (str, "linear"),
    "layout": (str, "mask"),
    "phi": (str, "relu"),
    "beta": (float, None),
    "causal": (bool, False),
    "heads": (int, 4),
    "tokens": (int, 8),
    "kv_tokens": (int, None),
    "d_model": (int, 16),
    "d_k": (int, 4),
    "d_v": (int, 4),
    "biases": (bool, False),
    "seed": (int, 0),
    "weights": (str, None),
    "inputs": (str, None),
    # backend options
    "neurons_per_unit": (int, None),
    "window_ms": ("duration", None),
    "settle_ms": ("duration", None),
    "write_ms": ("duration", None),
    "tau_ms": ("duration", None),
    "dt_ms": ("duration", None),
    "target": (str, None),
    "neuron": (str, None),
    "allow_saturation": (bool, None),
}
DURATION_KEYS = tuple(k for k, (t, _) in DEFAULTS.items() if t == "duration")
BACKEND_OPTION_KEYS = ("neurons_per_unit", "window_ms", "settle_ms", "write_ms", "tau_ms", "dt_ms", "target")
SPIKING_OPTION_KEYS = ("neuron", "allow_saturation")  # spiking backend only

_UNITS_MS = {"ms": 1.0, "s": 1e3, "second": 1e3, "seconds": 1e3, "us": 1e-3, "µs": 1e-3, "msecond": 1.0}


def parse_duration_ms(name: str, value) -> float:
    """A duration in milliseconds from ``20``, ``20.0``, ``"20 ms"`` or ``"0.02 s"``; must be > 0."""
    if isinstance(value, bool):
        raise InputError(f"{name}: expected a duration, got {value!r}")
    if isinstance(value, (int, float)):
        ms = float(value)
    elif isinstance(value, str):
        m = re.fullmatch(r"\s*([-+0-9.eE]+)\s*([a-zµ]*)\s*", value)
        if not m or (m.group(2) and m.group(2) not in _UNITS_MS):
            raise InputError(f'{name}: cannot read {value!r} as a duration (write e.g. "20 ms" or "0.3 s")')
        try:
            ms = float(m.group(1)) * _UNITS_MS.get(m.group(2) or "ms", 1.0)
        except ValueError:
            raise InputError(f"{name}: cannot read {value!r} as a duration") from None
    else:
        raise InputError(f"{name}: expected a duration, got {type(value).__name__}")
    if not (ms > 0 and ms < float("inf")):
        raise InputError(f"{name}: must be a positive duration, got {value!r}")
    return ms


def validate_config(raw: dict, source: str = "config") -> dict:
    """Check keys and types; returns a new dict with every key of :data:`DEFAULTS`."""
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        raise InputError(f"{source}: unknown key(s) {unknown}; allowed: {sorted(DEFAULTS)}")
    out = {k: default for k, (_, default) in DEFAULTS.items()}
    for key, value in raw.items():
        kind = DEFAULTS[key][0]
        if value is None:
            out[key] = None
        elif kind == "duration":
            out[key] = parse_duration_ms(key, value)
        elif kind is bool:
            if not isinstance(value, bool):
                raise InputError(f"{key}: expected true or false, got {value!r}")
            out[key] = value
        elif kind is int:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
                raise InputError(f"{key}: expected an integer, got {value!r}")
            if key != "seed" and value < 1:
                raise InputError(f"{key}: must be at least 1, got {value!r}")
            if key == "seed" and value < 0:
                raise InputError(f"seed: must be non-negative, got {value!r}")
            out[key] = int(value)
        elif kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InputError(f"{key}: expected a number, got {value!r}")
            out[key] = float(value)
        else:
            if not isinstance(value, str):
                raise InputError(f"{key}: expected a string, got {value!r}")
            out[key] = value
    return out


def load_config(path: str | os.PathLike) -> dict:
    """Raw keys from a TOML file or from a run's ``manifest.json`` (its ``"config"`` table)."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise InputError(f"config: file not found: {path}") from None
    except OSError as exc:
        raise InputError(f"config: cannot read {path} ({exc.strerror})") from None
    if path.endswith(".json"):
        try:
            obj = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"config: {path} is not valid JSON ({exc})") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("config"), dict):
            raise InputError(f"config: {path} has no 'config' table (is it a ctattn manifest?)")
        return obj["config"]
    try:
        obj = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"config: {path} is not valid TOML ({exc})") from None
    # Accept either a flat table or everything under [run].
    if set(obj) == {"run"} and isinstance(obj["run"], dict):
        obj = obj["run"]
    return obj


@dataclass(frozen=True)
class RunConfig:
    """Validated configuration; ``values`` has every key of :data:`DEFAULTS`."""

    values: dict

    def __getitem__(self, key):
        return self.values[key]

    def backend_options(self) -> dict:
        opts = {k: self.values[k] for k in BACKEND_OPTION_KEYS if self.values[k] is not None}
        if self.values["backend"] == "spiking":
            opts["seed"] = self.values["seed"]
            opts.update({k: self.values[k] for k in SPIKING_OPTION_KEYS if self.values[k] is not None})
        return opts
