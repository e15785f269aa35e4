"""``ctattn show DIR``: a saved run's manifest (command, configuration, versions), its comparison
with the reference recomputed from ``result.npz``, and its figures."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ctattn.core.problem import InputError
from ctattn.output import to_jsonable

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


def show(folder) -> dict:
    """The manifest of ``folder`` plus ``recomputed`` numbers from its ``result.npz``."""
    folder = Path(folder)
    path = folder / "manifest.json"
    if not folder.is_dir():
        raise InputError(f"show: no folder {folder}")
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"show: {folder} has no manifest.json (is it a ctattn output folder?)") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"show: {path} is not valid JSON ({exc})") from None
    recomputed = {}
    npz = folder / "result.npz"
    if npz.exists():
        from ctattn.analysis.metrics import max_abs_error, relative_error

        with np.load(npz) as r:
            if "Y" in r.files and "Y_ref" in r.files:
                recomputed = dict(
                    rel_error=relative_error(r["Y"], r["Y_ref"]),
                    max_abs_error=max_abs_error(r["Y"], r["Y_ref"]),
                )
            if "Y_lesioned" in r.files:
                from ctattn.analysis.lesions import relative_change

                recomputed.update(
                    change_vs_intact=relative_change(r["Y_lesioned"], r["Y_intact"]),
                    change_vs_reference=relative_change(r["Y_lesioned"], r["Y_ref"]),
                )
    figures = sorted(p.name for p in folder.glob("*.png"))
    return dict(manifest=data, recomputed=recomputed, figures=figures, folder=str(folder.resolve()))


def _show_main(args) -> int:
    if (Path(args.dir) / "sweep.json").exists():  # a sweep folder (ctattn sweep)
        from ctattn.commands.sweep import _show_sweep

        return _show_sweep(args.dir, args.json)
    out = show(args.dir)
    if args.json:
        print(json.dumps(to_jsonable(out)))
        return 0
    m = out["manifest"]
    print(f"ctattn {m.get('command', '?')} output in {out['folder']}")
    print(f"  created  {m.get('created', '?')}")
    if m.get("argv"):
        print(f"  argv     {' '.join(m['argv'])}")
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
