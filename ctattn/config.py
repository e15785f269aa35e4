"""Run configuration: one flat table of keys, from TOML, a saved manifest, or the command line.

Every key is one row of :data:`KEYS` (type, default, bounds, choices, which backends take it);
validation is read off that table, so adding a key is adding a row. Unknown keys, values of
the wrong type (``seed = 1.5``, ``causal = "yes"``, ``beta = true``), values out of bounds and
options that the chosen backend (or neuron model) does not take are rejected with the key's
name. ``cells_per_layer`` is a table layer -> cells per unit (TOML ``{L5 = 550, "L2/3" = 300}``,
or the command line's ``"L5=550,L2/3=300"``). Durations may
be written with units as strings (``"20 ms"``, ``"0.3 s"``); plain numbers are milliseconds. A
run's ``manifest.json`` holds its full configuration under ``"config"``, so ``ctattn run
--config DIR/manifest.json`` repeats it.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from dataclasses import dataclass

from ctattn.circuits.description import LAYERS
from ctattn.core.feature_maps import FEATURE_MAPS
from ctattn.core.problem import InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "KEYS",
    "Key",
    "DEFAULTS",
    "DURATION_KEYS",
    "BACKEND_OPTION_KEYS",
    "load_config",
    "validate_config",
    "parse_duration_ms",
    "parse_cells_per_layer",
    "CELL_LAYERS",
    "RunConfig",
]

_ALL = ("ideal", "rate", "spiking")
_BRIAN2 = ("rate", "spiking")
# A size above this is refused before anything is allocated; the resource estimate
# (:mod:`ctattn.resources`) refuses far smaller circuits that would not fit.
MAX_SIZE = 10**7
#: Longest duration accepted for any one phase (ms): 1000 s of simulated time per token.
MAX_DURATION_MS = 1e6
#: Most cells per unit of any population (``neurons_per_unit`` and its lif siblings).
MAX_CELLS_PER_UNIT = 100_000
#: Layers of the circuits' populations (:data:`ctattn.circuits.description.LAYERS`), the keys
#: of ``cells_per_layer``.
CELL_LAYERS = LAYERS


@dataclass(frozen=True)
class Key:
    """One configuration key: ``kind`` (``str int float bool duration path cells``), default
    (``None``: the backend's or the problem's default applies), inclusive bounds, allowed
    values, the backends that take it (a key a backend does not take is an error) and, for the
    spiking backend, the neuron models that take it (``None``: all)."""

    kind: str
    default: object = None
    lo: float | None = None
    hi: float | None = None
    choices: tuple | None = None
    backends: tuple = _ALL
    help: str = ""
    neurons: tuple | None = None


KEYS: dict[str, Key] = {
    "backend": Key("str", "ideal", choices=_ALL),
    "variant": Key("str", "linear", choices=("linear", "normalized", "softmax")),
    "layout": Key("str", "mask", choices=("mask", "memory")),
    "phi": Key("str", "relu", choices=tuple(FEATURE_MAPS)),
    "beta": Key("float", None, lo=0.0, hi=1e300),
    "causal": Key("bool", False),
    "heads": Key("int", 4, lo=1, hi=MAX_SIZE),
    "tokens": Key("int", 8, lo=1, hi=MAX_SIZE),
    "kv_tokens": Key("int", None, lo=1, hi=MAX_SIZE),
    "d_model": Key("int", 16, lo=1, hi=MAX_SIZE),
    "d_k": Key("int", 4, lo=1, hi=MAX_SIZE),
    "d_v": Key("int", 4, lo=1, hi=MAX_SIZE),
    "biases": Key("bool", False),
    "seed": Key("int", 0, lo=0, hi=2**63 - 1),
    "weights": Key("path", None),
    "inputs": Key("path", None),
    # backend options
    "neurons_per_unit": Key("int", None, lo=1, hi=MAX_CELLS_PER_UNIT, backends=("spiking",)),
    "window_ms": Key("duration", None, hi=MAX_DURATION_MS, backends=("spiking",)),
    "settle_ms": Key("duration", None, hi=MAX_DURATION_MS, backends=_BRIAN2),
    "write_ms": Key("duration", None, hi=MAX_DURATION_MS, backends=_BRIAN2),
    "tau_ms": Key("duration", None, hi=MAX_DURATION_MS, backends=_BRIAN2),
    "dt_ms": Key("duration", None, hi=MAX_DURATION_MS, backends=_BRIAN2),
    "target": Key("str", None, choices=("numpy", "cython", "standalone"), backends=_BRIAN2),
    # OpenMP threads of the C++ standalone build (the other targets run on one core)
    "threads": Key("int", None, lo=1, hi=256, backends=("spiking",)),
    # multiplies the scale of the random weights W_Q, W_K, W_V, W_O (not of biases or weight files)
    "weight_scale": Key("float", 1.0, lo=1e-300, hi=1e300),
    "neuron": Key("str", None, choices=("poisson", "lif"), backends=("spiking",)),
    # lif: cells per unit of the inhibitory (Dale, pool) and of the readout populations, and
    # per layer (overriding both and neurons_per_unit)
    "inhibitory_per_unit": Key(
        "int", None, lo=1, hi=MAX_CELLS_PER_UNIT, backends=("spiking",), neurons=("lif",)
    ),
    "readout_per_unit": Key(
        "int", None, lo=1, hi=MAX_CELLS_PER_UNIT, backends=("spiking",), neurons=("lif",)
    ),
    "cells_per_layer": Key("cells", None, backends=("spiking",), neurons=("lif",)),
    "allow_saturation": Key("bool", None, backends=("spiking",)),
}
#: Targets per backend (the rate backend has no C++ standalone build).
TARGETS = {"rate": ("numpy", "cython"), "spiking": ("numpy", "cython", "standalone")}
#: Integration step of each Brian2 backend when ``dt_ms`` is not set (ms).
DEFAULT_DT_MS = {"rate": 1.0, "spiking": 0.2}

# Kept for callers that read (type, default) pairs.
DEFAULTS: dict[str, tuple[str, object]] = {k: (key.kind, key.default) for k, key in KEYS.items()}
DURATION_KEYS = tuple(k for k, key in KEYS.items() if key.kind == "duration")
BACKEND_OPTION_KEYS = tuple(k for k, key in KEYS.items() if key.backends != _ALL)

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


def parse_cells_per_layer(name: str, value) -> dict[str, int]:
    """``{layer: cells}`` from a table or from ``"L5=550,HO=3000"``; layers of
    :data:`CELL_LAYERS`, counts whole numbers from 1 to :data:`MAX_CELLS_PER_UNIT`."""
    example = "(e.g. L5=550,TRN=550,HO=3000)"
    if isinstance(value, str):
        items = [item.strip() for item in value.split(",") if item.strip()]
        pairs = []
        for item in items:
            layer, sep, count = (part.strip() for part in item.partition("="))
            if not sep or not layer:
                raise InputError(f"{name}: cannot read {item!r} as LAYER=CELLS {example}")
            try:
                pairs.append((layer, int(count)))
            except ValueError:
                raise InputError(
                    f"{name}: {layer} = {count!r} is not a whole number of cells per unit"
                ) from None
    elif isinstance(value, dict):
        pairs = list(value.items())
    else:
        raise InputError(f"{name}: expected a table layer -> cells per unit {example}, got {value!r}")
    if not pairs:
        raise InputError(f"{name}: no layer given; write LAYER=CELLS pairs {example}")
    out: dict[str, int] = {}
    for layer, count in pairs:
        if layer not in CELL_LAYERS:
            raise InputError(f"{name}: unknown layer {layer!r}; layers: {list(CELL_LAYERS)}")
        if layer in out:
            raise InputError(f"{name}: layer {layer!r} given twice")
        if isinstance(count, bool) or not isinstance(count, int):
            raise InputError(f"{name}: {layer} = {count!r} is not a whole number of cells per unit")
        if not 1 <= count <= MAX_CELLS_PER_UNIT:
            raise InputError(
                f"{name}: {layer} = {count} cells per unit; must be from 1 to {MAX_CELLS_PER_UNIT:,}"
            )
        out[layer] = count
    return {layer: out[layer] for layer in CELL_LAYERS if layer in out}


def _check_value(name: str, key: Key, value):
    """One value against its row of :data:`KEYS`; returns it in canonical form."""
    if key.kind == "cells":
        return parse_cells_per_layer(name, value)
    if key.kind == "duration":
        value = parse_duration_ms(name, value)
    elif key.kind == "bool":
        if not isinstance(value, bool):
            raise InputError(f"{name}: expected true or false, got {value!r}")
    elif key.kind == "int":
        # A float (1.5, or 2.0 read from text) is refused rather than truncated.
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{name}: expected an integer, got {value!r}")
    elif key.kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"{name}: expected a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise InputError(f"{name}: expected a finite number, got {value!r}")
    elif key.kind in ("str", "path"):
        if not isinstance(value, str):
            raise InputError(f"{name}: expected a string, got {value!r}")
        if key.kind == "path" and (not value or "\0" in value):
            raise InputError(f"{name}: expected a file path, got {value!r}")
    if key.choices is not None and value not in key.choices:
        raise InputError(f"{name}: unknown {value!r}; choose one of {list(key.choices)}")
    if key.lo is not None and value < key.lo:
        raise InputError(f"{name}: must be at least {key.lo:g}, got {value!r}")
    if key.hi is not None and value > key.hi:
        unit = " ms" if key.kind == "duration" else ""
        raise InputError(f"{name}: must be at most {key.hi:g}{unit}, got {value!r}")
    return value


def check_backend_options(values: dict) -> None:
    """Options that the chosen backend does not take, targets it cannot build, phases shorter
    than the integration step: all refused with the key's name."""
    backend = values["backend"]
    for name, key in KEYS.items():
        if values.get(name) is not None and backend not in key.backends:
            takers = " and ".join(key.backends)
            raise InputError(f"{name}: the {backend} backend does not take this option (only {takers})")
        neuron = values.get("neuron") or "poisson"
        if (
            values.get(name) is not None
            and backend == "spiking"
            and key.neurons
            and neuron not in key.neurons
        ):
            raise InputError(
                f"{name}: only the {' and '.join(key.neurons)} neuron model takes this option, "
                f"not {neuron} (add --neuron {key.neurons[0]})"
            )
    if backend in TARGETS and values.get("target") is not None and values["target"] not in TARGETS[backend]:
        raise InputError(
            f"target: the {backend} backend runs on {list(TARGETS[backend])}, not {values['target']!r}"
        )
    if values.get("threads") is not None and values.get("target") != "standalone":
        raise InputError(
            "threads: OpenMP threads are for the standalone target only (add --target standalone)"
        )
    if backend in DEFAULT_DT_MS:
        dt = values.get("dt_ms") or DEFAULT_DT_MS[backend]
        for name in ("settle_ms", "window_ms", "write_ms", "tau_ms"):
            if values.get(name) is not None and values[name] < dt:
                raise InputError(f"{name}: {values[name]:g} ms is shorter than the step dt = {dt:g} ms")


def validate_config(raw: dict, source: str = "config") -> dict:
    """Check keys, types, bounds and backend options; returns a new dict with every key of
    :data:`KEYS`."""
    if not isinstance(raw, dict):
        raise InputError(f"{source}: expected a table of keys, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise InputError(f"{source}: unknown key(s) {unknown}; allowed: {sorted(KEYS)}")
    out = {k: key.default for k, key in KEYS.items()}
    for name, value in raw.items():
        out[name] = None if value is None else _check_value(name, KEYS[name], value)
    for name in ("backend", "variant", "layout", "phi", "causal", "biases", "seed"):
        if out[name] is None:  # a manifest may write null for a key that always has a value
            out[name] = KEYS[name].default
    check_backend_options(out)
    return out


def load_config(path: str | os.PathLike) -> dict:
    """Raw keys from a TOML file or from a run's ``manifest.json`` (its ``"config"`` table)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise InputError(f"config: {path} is a folder, not a TOML file or manifest.json")
    try:
        with open(path, "rb") as fh:
            data = fh.read(10_000_001)
    except FileNotFoundError:
        raise InputError(f"config: file not found: {path}") from None
    except OSError as exc:
        raise InputError(f"config: cannot read {path} ({exc.strerror})") from None
    if len(data) > 10_000_000:
        raise InputError(f"config: {path} is larger than 10 MB; not a configuration file")
    if path.endswith(".json"):
        try:
            obj = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(f"config: {path} is not valid JSON ({reason})") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("config"), dict):
            raise InputError(f"config: {path} has no 'config' table (is it a ctattn manifest?)")
        return obj["config"]
    try:
        obj = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"config: {path} is not valid TOML ({reason})") from None
    # Accept either a flat table or everything under [run].
    if set(obj) == {"run"} and isinstance(obj["run"], dict):
        obj = obj["run"]
    return obj


@dataclass(frozen=True)
class RunConfig:
    """Validated configuration; ``values`` has every key of :data:`KEYS`; ``explicit`` names
    the keys the user set (flags, a TOML file), which must agree with the weights and inputs
    files."""

    values: dict
    explicit: frozenset = frozenset()

    def __getitem__(self, key):
        return self.values[key]

    def backend_options(self) -> dict:
        opts = {k: self.values[k] for k in BACKEND_OPTION_KEYS if self.values.get(k) is not None}
        if self.values["backend"] == "spiking":
            opts["seed"] = self.values["seed"]
        return opts
