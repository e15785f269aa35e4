"""``ctattn run``: simulate one circuit and compare it with the matrix reference.

Keys come from ``--config FILE`` (TOML, or a run's ``manifest.json``), then command-line
flags override them. ``--json`` prints one JSON object; ``--out DIR`` writes ``result.npz``
(``Y``, ``Y_ref``, inputs and weights) and ``manifest.json`` (full config, seed, versions),
all or nothing.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

from ctattn.config import RunConfig, load_config, validate_config
from ctattn.core.problem import InputError
from ctattn.output import atomic_output, manifest, to_jsonable, write_json

__all__ = ["register", "add_problem_arguments", "config_from_args", "execute", "write_run"]

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
    "causal": "causal",
    "biases": "biases",
    "neurons_per_unit": "neurons_per_unit",
    "window": "window_ms",
    "settle": "settle_ms",
    "target": "target",
    "neuron": "neuron",
    "allow_saturation": "allow_saturation",
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
        "--neuron",
        choices=["poisson"],
        default=None,
        help="spiking neuron model (poisson: linear-nonlinear-Poisson units whose rate is the cell law)",
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
    p.set_defaults(func=_main)


def config_from_args(args) -> RunConfig:
    raw = dict(load_config(args.config)) if getattr(args, "config", None) else {}
    for flag, key in _FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            raw[key] = value
    values = validate_config(raw, source=args.config or "config")
    for key in ("weights", "inputs"):
        if values[key]:
            values[key] = os.path.abspath(values[key])
    return RunConfig(values)


# Interval at which time courses are recorded for figures (recording never changes the numbers).
FIGURE_TRACE_DT_MS = 5.0


def execute(cfg: RunConfig, *, progress: bool | None = None, record: bool = False):
    """Build the problem from ``cfg`` and simulate it (returns an :class:`~ctattn.api.Run`).

    ``record=True`` also records what the figures need: rate traces (rate and spiking
    backends) and every population's spikes (spiking backend).
    """
    from ctattn.api import problem_from_config, simulate

    weights, tokens = problem_from_config(cfg.values)
    options = cfg.backend_options()
    if record and cfg["backend"] in ("rate", "spiking"):
        options["trace_dt_ms"] = FIGURE_TRACE_DT_MS
    if record and cfg["backend"] == "spiking":
        options["record_spikes"] = True
    if cfg["backend"] == "spiking" and progress is not None:
        options["progress"] = progress
    elif cfg["backend"] != "spiking":
        stray = sorted(k for k in ("neurons_per_unit", "window_ms") if k in options)
        if stray:
            raise InputError(f"{', '.join(stray)}: only the spiking backend takes this option")
    return simulate(
        weights,
        tokens,
        backend=cfg["backend"],
        variant=cfg["variant"],
        layout=cfg["layout"],
        phi=cfg["phi"],
        beta=cfg["beta"],
        causal=cfg["causal"],
        config=cfg.values,
        **options,
    )


def write_run(run, out_dir: str, *, plots: bool = False, command: str = "run") -> None:
    """Write ``result.npz`` and ``manifest.json`` (and figures) to ``out_dir``, all or nothing."""
    with atomic_output(out_dir) as tmp:
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


def _main(args) -> int:
    if args.plots and not args.out:
        raise InputError("--plots: needs --out DIR to write the figures into")
    cfg = config_from_args(args)
    run = execute(cfg, progress=not args.json or sys.stderr.isatty(), record=args.plots)
    summary = run.summary()
    if args.out:
        write_run(run, args.out, plots=args.plots)
        summary["out"] = os.path.abspath(args.out)
    if args.json:
        print(json.dumps(to_jsonable(summary)))
    else:
        print(f"ctattn run: {cfg['backend']} backend vs the matrix reference")
        print_summary(summary)
        if args.out:
            print(f"  wrote {args.out}/result.npz, manifest.json")
    return 0
