"""``ctattn show DIR``: a saved run's manifest (command, configuration, versions), its comparison
with the reference recomputed from ``result.npz``, and its figures."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ctattn.core.problem import InputError, load_npz
from ctattn.output import dumps

__all__ = ["register", "show", "format_value"]


def register(sub) -> None:
    p = sub.add_parser(
        "show",
        help="print a saved run's manifest and comparison",
        description="Print a saved run's manifest and its comparison with the reference.",
    )
    p.add_argument("dir", metavar="DIR", help="an output folder of ctattn run / lesion / demo / sweep")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=_show_main)


def format_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.3e}" if (value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e4)) else f"{value:.4g}"
    return str(value)


_MANIFEST_FIELDS = dict(
    command=str, created=str, argv=list, versions=dict, config=dict, summary=dict, lesion=dict
)


def _read_manifest(folder: Path) -> dict:
    path = folder / "manifest.json"
    if path.is_dir() or (path.exists() and not path.is_file()):
        raise InputError(f"show: {path} is not a file")
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise InputError(f"show: {folder} has no manifest.json (is it a ctattn output folder?)") from None
    except OSError as exc:
        raise InputError(f"show: cannot read {path} ({exc.strerror})") from None
    except (ValueError, RecursionError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"show: {path} is not valid JSON ({reason})") from None
    if not isinstance(data, dict):
        raise InputError(f"show: {path} is not a ctattn manifest (expected a JSON object)")
    for key, kind in _MANIFEST_FIELDS.items():
        if data.get(key) is not None and not isinstance(data[key], kind):
            raise InputError(
                f"show: {path}: '{key}' must be a {kind.__name__}, got {type(data[key]).__name__}"
            )
    if not isinstance(data.get("command"), str):
        raise InputError(f"show: {path} is not a ctattn manifest (no 'command')")
    return {k: v for k, v in data.items() if v is not None}


def _real(name: str, arrays: dict, npz: Path) -> np.ndarray:
    arr = arrays[name]
    if arr.dtype.kind not in "iuf":
        raise InputError(f"show: {npz}: {name} is not a real numeric array (dtype {arr.dtype})")
    return arr.astype(float)


def show(folder) -> dict:
    """The manifest of ``folder`` plus ``recomputed`` numbers from its ``result.npz``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"show: no folder {folder}")
    data = _read_manifest(folder)
    recomputed = {}
    npz = folder / "result.npz"
    if npz.exists():
        from ctattn.analysis.metrics import max_abs_error, relative_error

        arrays = load_npz(npz, "show: result.npz")
        pairs = [("Y", "Y_ref"), ("Y_lesioned", "Y_intact"), ("Y_lesioned", "Y_ref")]
        for a, b in pairs:
            if a in arrays and b in arrays and _real(a, arrays, npz).shape != _real(b, arrays, npz).shape:
                raise InputError(
                    f"show: {npz}: {a} {arrays[a].shape} and {b} {arrays[b].shape} differ in shape"
                )
        if "Y" in arrays and "Y_ref" in arrays:
            Y, Y_ref = _real("Y", arrays, npz), _real("Y_ref", arrays, npz)
            recomputed = dict(rel_error=relative_error(Y, Y_ref), max_abs_error=max_abs_error(Y, Y_ref))
        if "Y_lesioned" in arrays and "Y_intact" in arrays and "Y_ref" in arrays:
            from ctattn.analysis.lesions import relative_change

            Y_les = _real("Y_lesioned", arrays, npz)
            recomputed.update(
                change_vs_intact=relative_change(Y_les, _real("Y_intact", arrays, npz)),
                change_vs_reference=relative_change(Y_les, _real("Y_ref", arrays, npz)),
            )
    figures = sorted(p.name for p in folder.glob("*.png"))
    return dict(manifest=data, recomputed=recomputed, figures=figures, folder=str(folder.resolve()))


def _show_main(args) -> int:
    if (Path(args.dir) / "sweep.json").exists():  # a sweep folder (ctattn sweep)
        from ctattn.commands.sweep import _show_sweep

        return _show_sweep(args.dir, args.json)
    out = show(args.dir)
    if args.json:
        print(dumps(out))
        return 0
    m = out["manifest"]
    print(f"ctattn {m.get('command', '?')} output in {out['folder']}")
    print(f"  created  {m.get('created', '?')}")
    if m.get("argv"):
        print(f"  argv     {' '.join(str(a) for a in m['argv'])}")
    v = m.get("versions", {})
    print(
        "  versions "
        + ", ".join(f"{k} {v[k]}" for k in ("python", "ctattn", "brian2", "numpy", "matplotlib") if k in v)
    )
    print("configuration (keys that are set):")
    for key, value in (m.get("config") or {}).items():
        if value is not None:
            print(f"  {key:<17} {format_value(value)}")
    if m.get("lesion"):
        print("lesion:")
        for key, value in m["lesion"].items():
            print(f"  {key:<17} {value}")
    summary = m.get("summary") or {}
    if summary:
        print("comparison (from the manifest):")
        _print_table(summary)
    if out["recomputed"]:
        print("recomputed from result.npz:")
        _print_table(out["recomputed"])
    print("figures: " + (", ".join(out["figures"]) if out["figures"] else "none (run with --plots)"))
    print(
        f"repeat:   ctattn {m.get('command', 'run') if m.get('command') in ('run', 'lesion') else 'run'} "
        f"--config {os.path.join(args.dir, 'manifest.json')}"
    )
    return 0


def _print_table(values: dict, indent: str = "  ") -> None:
    flat = {k: v for k, v in values.items() if not isinstance(v, (dict, list))}
    width = max((len(k) for k in flat), default=0)
    for k, v in flat.items():
        if v is not None:
            print(f"{indent}{k:<{width}}  {format_value(v)}")
    for k, v in values.items():
        if isinstance(v, dict):
            print(f"{indent}{k}:")
            _print_table(v, indent + "  ")
