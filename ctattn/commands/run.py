"""``ctattn run``: simulate one circuit and compare it with the matrix reference.

Keys come from ``--config FILE`` (TOML, or a run's ``manifest.json``), then command-line
flags override them. ``--json`` prints one JSON object (strict JSON); ``--out DIR`` writes
``result.npz`` (``Y``, ``Y_ref``, inputs and weights) and ``manifest.json`` (full config, seed,
versions, SHA-256 of the input files), all or nothing, after checking before the run that
``DIR`` may be written (:func:`ctattn.output.check_out_dir`). Every run is first sized
(:mod:`ctattn.resources`); ``--dry-run`` prints that estimate and stops. Re-running a manifest
whose input files changed is refused unless ``--force``.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

from ctattn.config import RunConfig, load_config, validate_config
from ctattn.core.problem import InputError
from ctattn.output import atomic_output, check_out_dir, dumps, file_sha256, manifest, write_json

__all__ = [
    "register",
    "add_problem_arguments",
    "config_from_args",
    "execute",
    "write_run",
    "input_files",
    "run_estimate",
]

# flag -> config key
_FLAGS = {
    "backend": "backend",
    "variant": "variant",
    "layout": "layout",
    "phi": "phi",
    "beta": "beta",
    "heads": "heads",
    "tokens": "tokens",
    "kv_tokens": "kv_tokens",
    "d_model": "d_model",
    "d_k": "d_k",
    "d_v": "d_v",
    "weights": "weights",
    "inputs": "inputs",
    "seed": "seed",
    "weight_scale": "weight_scale",
    "causal": "causal",
    "biases": "biases",
    "neurons_per_unit": "neurons_per_unit",
    "window": "window_ms",
    "settle": "settle_ms",
    "target": "target",
    "threads": "threads",
    "neuron": "neuron",
    "allow_saturation": "allow_saturation",
    "inhibitory_per_unit": "inhibitory_per_unit",
    "readout_per_unit": "readout_per_unit",
    "cells_per_layer": "cells_per_layer",
}


def add_problem_arguments(p) -> None:
    """The flags shared by commands that set up an attention problem (run, lesion, ...)."""
    p.add_argument("--config", metavar="FILE", help="TOML config or a run's manifest.json")
    p.add_argument("--backend", choices=["ideal", "rate", "spiking"], default=None)
    p.add_argument("--variant", choices=["linear", "normalized", "softmax"], default=None)
    p.add_argument("--layout", choices=["mask", "memory"], default=None)
    p.add_argument("--phi", default=None, help="feature map: relu, softplus, elu1")
    p.add_argument(
        "--beta", type=float, default=None, help="softmax inverse temperature (default 1/sqrt(d_k))"
    )
    p.add_argument("--heads", type=int, default=None, metavar="H")
    p.add_argument("--tokens", type=int, default=None, metavar="N")
    p.add_argument(
        "--kv-tokens",
        type=int,
        default=None,
        metavar="M",
        help="draw a second sequence of M key/value tokens (cross-attention)",
    )
    p.add_argument("--d-model", type=int, default=None, metavar="D")
    p.add_argument("--d-k", type=int, default=None, metavar="K")
    p.add_argument("--d-v", type=int, default=None, metavar="V")
    p.add_argument("--causal", action="store_const", const=True, default=None)
    p.add_argument(
        "--biases",
        action="store_const",
        const=True,
        default=None,
        help="draw random biases b_Q, b_K, b_V, b_O",
    )
    p.add_argument("--weights", metavar="W.npz", default=None)
    p.add_argument("--inputs", metavar="X.npz", default=None)
    p.add_argument("--seed", type=int, default=None, metavar="S")
    p.add_argument(
        "--weight-scale",
        type=float,
        default=None,
        metavar="G",
        help="multiply the scale of the random W_Q, W_K, W_V, W_O by G (default 1)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="run a manifest even if its input files changed since it was written",
    )
    p.add_argument(
        "--neurons-per-unit", type=int, default=None, metavar="n", help="spiking neurons per rate unit"
    )
    p.add_argument(
        "--window", type=float, default=None, metavar="T_ms", help="spiking readout window per token (ms)"
    )
    p.add_argument("--settle", type=float, default=None, metavar="T_ms", help="settling time per token (ms)")
    p.add_argument(
        "--target",
        choices=["numpy", "cython", "standalone"],
        default=None,
        help="Brian2 code-generation target",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="OpenMP threads of the standalone target (default 1; same spikes for a seed at a given N)",
    )
    p.add_argument(
        "--neuron",
        choices=["poisson", "lif"],
        default=None,
        help="spiking neuron model (poisson: linear-nonlinear-Poisson units whose rate is the cell law, "
        "the default; lif: threshold integrate-and-fire cells, mask layout)",
    )
    p.add_argument(
        "--inhibitory-per-unit",
        type=int,
        default=None,
        metavar="N",
        help="lif: cells per Dale interneuron (PV, SOM, TRN) unit (default 25)",
    )
    p.add_argument(
        "--readout-per-unit",
        type=int,
        default=None,
        metavar="N",
        help="lif: cells per readout (HO) unit (default 400)",
    )
    p.add_argument(
        "--cells-per-layer",
        default=None,
        metavar="L5=550,TRN=550,HO=3000",
        help="lif: cells per unit by layer (FO, L2/3, L5, HO, PV, SOM, TRN), overriding the counts above",
    )
    p.add_argument(
        "--allow-saturation",
        action="store_const",
        const=True,
        default=None,
        help="spiking: run on when more than 0.1%% of neuron-steps exceed their rate cap (else exit 2)",
    )


def register(sub) -> None:
    p = sub.add_parser(
        "run",
        help="simulate a circuit and compare it with the matrix reference",
        description=__doc__.splitlines()[0],
    )
    add_problem_arguments(p)
    p.add_argument("--out", metavar="DIR", default=None, help="write result.npz and manifest.json here")
    p.add_argument("--plots", action="store_true", help="with --out: also write the run's figures")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument(
        "--spikes",
        action="store_true",
        help="spiking, with --out: record every population's spikes (spikes.npz)",
    )
    p.add_argument(
        "--nwb", metavar="FILE.nwb", default=None, help="spiking: write spikes, rates and windows as NWB"
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the circuit's size and the run's memory and time estimate",
    )
    p.set_defaults(func=_main)


def config_from_args(args) -> RunConfig:
    """The validated configuration of ``--config`` and the flags; a manifest's recorded input
    digests are checked against the files (refused on a change unless ``--force``)."""
    config = getattr(args, "config", None)
    raw = dict(load_config(config)) if config else {}
    explicit = set() if (config or "").endswith(".json") else set(raw)
    for flag, key in _FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            raw[key] = value
            explicit.add(key)
    values = validate_config(raw, source=config or "config")
    if config and config.endswith(".json"):
        _check_digests(config, values, explicit, force=getattr(args, "force", False))
    for key in ("weights", "inputs"):
        if values[key]:
            values[key] = os.path.abspath(values[key])
    return RunConfig(values, frozenset(explicit))


def _check_digests(path: str, values: dict, explicit: set, *, force: bool) -> None:
    try:
        recorded = json.loads(open(path, "rb").read()).get("input_sha256") or {}
    except (OSError, ValueError):
        recorded = {}
    if not isinstance(recorded, dict):
        raise InputError(f"config: {path} has a malformed 'input_sha256' table")
    for key in ("weights", "inputs"):
        entry = recorded.get(key)
        if key in explicit or not values[key] or not isinstance(entry, dict):
            continue
        if not os.path.isfile(values[key]):
            continue  # the loader reports the missing file
        now = file_sha256(values[key])
        if now != entry.get("sha256") and not force:
            raise InputError(
                f"{key}: {values[key]} changed since the manifest was written (sha256 {now[:12]}... "
                f"vs recorded {str(entry.get('sha256'))[:12]}...); pass --force to run it anyway"
            )


def input_files(args, cfg: RunConfig | None = None) -> list[str]:
    """Every input file of a command, which an output may never replace."""
    files = [getattr(args, "config", None)]
    if cfg is not None:
        files += [cfg["weights"], cfg["inputs"]]
    files += [getattr(args, name, None) for name in ("weights", "inputs", "targets")]
    return [f for f in files if f]


def run_estimate(cfg: RunConfig, weights=None, tokens=None):
    """The :class:`~ctattn.resources.Estimate` of ``cfg``'s run (sizes from the problem when
    it is loaded, else from the configuration)."""
    from ctattn.api import problem_dims
    from ctattn.resources import estimate

    if weights is not None:
        dims = problem_dims(weights, tokens)
    else:
        dims = {k: cfg[k] for k in ("heads", "tokens", "kv_tokens", "d_model", "d_k", "d_v")}
    return estimate(
        cfg["backend"], dims, variant=cfg["variant"], layout=cfg["layout"], options=cfg.backend_options()
    )


# Interval at which time courses are recorded for figures (recording never changes the numbers).
FIGURE_TRACE_DT_MS = 5.0


def execute(cfg: RunConfig, *, progress: bool | None = None, record: bool = False, spikes: bool = False):
    """Build the problem from ``cfg`` and simulate it (returns an :class:`~ctattn.api.Run`).

    ``record=True`` also records what the figures need: rate traces (rate and spiking
    backends) and every population's spikes (spiking backend); ``spikes=True`` only the spikes.
    """
    from ctattn.api import problem_dims, problem_from_config, simulate, spec_options

    weights, tokens = problem_from_config(cfg.values, cfg.explicit)
    options = cfg.backend_options()
    if record and cfg["backend"] in ("rate", "spiking"):
        options["trace_dt_ms"] = FIGURE_TRACE_DT_MS
    if (record or spikes) and cfg["backend"] == "spiking":
        options["record_spikes"] = True
    if cfg["backend"] in ("rate", "spiking") and progress is not None:
        options["progress"] = progress
    # The manifest records the sizes of the problem that ran (those of the files, if any).
    config = {**cfg.values, **problem_dims(weights, tokens)}
    return simulate(
        weights,
        tokens,
        backend=cfg["backend"],
        **spec_options(cfg.values),
        config=config,
        **options,
    )


def write_run(
    run, out_dir: str, *, plots: bool = False, command: str = "run", spikes: bool = False, inputs=()
) -> None:
    """Write ``result.npz`` and ``manifest.json`` (and figures) to ``out_dir``, all or nothing."""
    with atomic_output(out_dir, inputs) as tmp:
        arrays = dict(Y=run.Y, Y_ref=run.Y_ref, X=run.tokens.X, **run.weights.arrays())
        if run.tokens.X_kv is not None:
            arrays["X_kv"] = run.tokens.X_kv
        if run.weights.beta is not None:
            arrays["beta"] = np.asarray(run.weights.beta)
        np.savez(tmp / "result.npz", **arrays)
        write_json(
            tmp / "manifest.json",
            manifest(command, run.config, run.config.get("seed"), summary=run.summary()),
        )
        if spikes and run.result.spikes:  # every population's spikes, for ctattn export --nwb
            from ctattn.analysis.nwb import neurons_per_unit, save_spikes

            save_spikes(tmp / "spikes.npz", run.result.spikes, neurons_per_unit(run.circuit, run.result.info))
        if plots:
            from ctattn.analysis.figures import write_run_figures

            write_run_figures(run, tmp)


def print_summary(summary: dict, stream=None) -> None:
    stream = stream or sys.stdout
    keys = [
        "backend",
        "variant",
        "layout",
        "phi",
        "causal",
        "cross",
        "n_heads",
        "n_tokens",
        "d_model",
        "rel_error",
        "max_abs_error",
        "shot_noise_bound",
        "n_neurons",
        "n_synapses",
        "wall_s",
    ]
    width = max(len(k) for k in keys)
    for k in keys:
        if k in summary and summary[k] is not None:
            v = summary[k]
            text = (
                f"{v:.3e}"
                if isinstance(v, float) and k.endswith(("error", "bound"))
                else (f"{v:.3f}" if isinstance(v, float) else str(v))
            )
            print(f"  {k:<{width}}  {text}", file=stream)


def _dry_run(cfg: RunConfig, args) -> int:
    """Print the estimate without drawing, building or running anything (files are read for
    their sizes)."""
    from ctattn.api import problem_from_config
    from ctattn.resources import available_memory_bytes

    if args.out:
        check_out_dir(args.out, input_files(args, cfg))
    weights = tokens = None
    if cfg["weights"] or cfg["inputs"]:
        weights, tokens = problem_from_config(cfg.values, cfg.explicit)
    est = run_estimate(cfg, weights, tokens)
    fits = est.memory_bytes <= available_memory_bytes()
    if args.json:
        print(dumps(dict(est.as_dict(), memory_available_bytes=available_memory_bytes(), fits=fits)))
    else:
        neuron = f" ({est.neuron} neurons)" if est.neuron else ""
        print(
            f"ctattn run --dry-run: {cfg['backend']} backend{neuron}, {cfg['variant']}, {cfg['layout']} layout"
        )
        print(f"  {est.describe()}")
        if est.cells_per_unit:
            print("  cells per unit: " + ", ".join(f"{k} {v:,}" for k, v in est.cells_per_unit.items()))
        print(f"  simulated time {est.simulated_s:.4g} s; {'fits' if fits else 'does NOT fit'} in memory")
    return 0


def _main(args) -> int:
    if args.plots and not args.out:
        raise InputError("--plots: needs --out DIR to write the figures into")
    if args.spikes and not args.out:
        raise InputError("--spikes: needs --out DIR to save the spikes into")
    cfg = config_from_args(args)
    if args.dry_run:
        return _dry_run(cfg, args)
    want_spikes = bool(args.nwb or args.spikes)
    if args.nwb and not args.nwb.endswith(".nwb"):  # checked before a long run, not after
        raise InputError(f"--nwb: the file name must end in .nwb, got {args.nwb}")
    if want_spikes and cfg["backend"] != "spiking":
        raise InputError(f"{'--nwb' if args.nwb else '--spikes'}: only the spiking backend records spikes")
    if args.out:
        check_out_dir(args.out, input_files(args, cfg))  # before the run, not after it
    # progress goes to stderr (a line every ~30 s when it is not a terminal), never to stdout
    run = execute(cfg, progress=True, record=args.plots, spikes=want_spikes)
    summary = run.summary()
    if args.out:
        write_run(run, args.out, plots=args.plots, spikes=want_spikes, inputs=input_files(args, cfg))
        summary["out"] = os.path.abspath(args.out)
    if args.nwb:
        from ctattn.commands.export import write_run_nwb

        write_run_nwb(run, args.nwb)
        summary["nwb"] = os.path.abspath(args.nwb)
    if args.json:
        print(dumps(summary))
    else:
        print(f"ctattn run: {cfg['backend']} backend vs the matrix reference")
        print_summary(summary)
        if args.out:
            print(f"  wrote {args.out}/result.npz, manifest.json")
    return 0
