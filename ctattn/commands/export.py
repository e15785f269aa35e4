"""``ctattn export RUNDIR --nwb FILE.nwb``: a saved spiking run as Neurodata Without Borders.

``RUNDIR`` is the output of ``ctattn run --backend spiking --out RUNDIR --spikes`` (or with
``--nwb``): its ``manifest.json``, ``result.npz`` (weights and tokens, from which the circuit
description is rebuilt exactly) and ``spikes.npz``. The file's layout:
:mod:`ctattn.analysis.nwb`. It is written to a temporary file and renamed: whole or absent.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ctattn.core.problem import InputError

__all__ = ["register", "write_run_nwb", "export_run_dir"]


def register(sub) -> None:
    p = sub.add_parser("export", help="write a saved spiking run as NWB", description=__doc__.splitlines()[0])
    p.add_argument("dir", metavar="RUNDIR", help="output folder of ctattn run --backend spiking --spikes")
    p.add_argument("--nwb", metavar="FILE.nwb", required=True, help="the NWB file to write")
    p.set_defaults(func=_main)


def _write_atomic(path, write) -> None:
    path = Path(path)
    if path.suffix != ".nwb":
        raise InputError(f"--nwb: the file name must end in .nwb, got {path}")
    if path.is_dir():
        raise InputError(f"--nwb: {path} is a folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.nwb")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_run_nwb(run, path) -> None:
    """Write a finished spiking run (:class:`ctattn.api.Run`, every population's spikes) as NWB."""
    from ctattn.analysis.nwb import neurons_per_unit, write_nwb
    from ctattn.output import manifest

    if run.backend != "spiking" or not run.result.spikes:
        raise InputError("--nwb: only a spiking run has spikes to export")
    info = run.result.info
    meta = manifest("run", run.config, run.config.get("seed"), summary=run.summary())
    n_of = neurons_per_unit(run.circuit, info)
    _write_atomic(path, lambda tmp: write_nwb(tmp, run.circuit, run.result.spikes, n_of, info, meta))


def export_run_dir(folder, path) -> None:
    """Rebuild a saved run's circuit from its weights and tokens and write its spikes as NWB."""
    from ctattn.analysis.nwb import load_spikes, write_nwb
    from ctattn.circuits.build import circuit_for
    from ctattn.core.problem import AttentionSpec, AttentionWeights, Tokens

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"export: no folder {folder}")
    try:
        meta = json.loads((folder / "manifest.json").read_text())
    except FileNotFoundError:
        raise InputError(f"export: {folder} has no manifest.json (is it a ctattn run folder?)") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"export: {folder}/manifest.json is not valid JSON ({exc})") from None
    cfg = meta.get("config") or {}
    if meta.get("command") != "run" or cfg.get("backend") != "spiking":
        raise InputError(f"export: {folder} is not a spiking run of ctattn run")
    if not (folder / "spikes.npz").exists():
        raise InputError(
            f"export: {folder} has no spikes.npz; run it with --backend spiking --out DIR --spikes (or --nwb)"
        )
    with np.load(folder / "result.npz") as r:
        arrays = {k: r[k] for k in r.files}
    keys = [k for k in AttentionWeights.KEYS if k in arrays]
    weights = AttentionWeights(**{k: arrays[k] for k in keys})
    tokens = Tokens(X=arrays["X"], X_kv=arrays.get("X_kv"))
    beta = float(arrays["beta"]) if "beta" in arrays else cfg.get("beta")
    spec = AttentionSpec(
        variant=cfg["variant"], phi=cfg["phi"], beta=beta, causal=cfg["causal"], layout=cfg["layout"]
    )
    circuit = circuit_for(weights, tokens, spec)
    info = meta.get("summary") or {}
    if info.get("dale", True):  # the spiking backend ran the circuit with Dale's-law interneurons
        from ctattn.circuits.dale import apply_dale

        circuit = apply_dale(circuit)
    spikes, n_of = load_spikes(folder / "spikes.npz")
    _write_atomic(path, lambda tmp: write_nwb(tmp, circuit, spikes, n_of, info, meta))


def _main(args) -> int:
    export_run_dir(args.dir, args.nwb)
    print(f"ctattn export: wrote {args.nwb}")
    return 0
