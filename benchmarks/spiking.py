"""Benchmark of the spiking backend on the standard problem (a script, not a test).

    .venv/bin/python benchmarks/spiking.py [--quick] [--seeds 2] [--targets numpy,cython,standalone]
                                           [--variants linear,normalized,softmax] [--only-variants]

Prints three markdown tables:

1. accuracy: relative error vs neurons per unit and counting window, next to the readout's
   shot-noise bound (RMS over seeds), with the ratio of the two; the error should fall like
   ``1 / sqrt(n T)`` and stay within 2x the bound;
2. cost: wall time (compilation excluded and listed apart), simulation time, realtime factor
   (wall seconds per simulated second), neuron and synapse counts for the Brian2 numpy,
   Cython and C++ standalone targets at the default settings;
3. variants: ``linear``, ``normalized`` and ``softmax`` (beta = 1/sqrt(d_k)) at 40 and 80
   neurons per unit: relative error (RMS over seeds) at the default 200 ms window and at 4x
   that window, their ratio (the convergence check: ~2 at the counting limit), the shot-noise
   bound, the settling phase the backend chose and the wall time per run.

Standard problem: 4 heads, 8 tokens, d_model 16, d_k = d_v = 4, ``relu``, ``linear``, mask
layout, self-attention, weights and tokens of seed 0. The accuracy grid runs on the Cython
target (compiled once per window length, then cached by Brian2); timings depend on the
machine and on whatever else runs on it.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from ctattn.analysis.metrics import relative_error  # noqa: E402
from ctattn.analysis.reference import multihead_attention  # noqa: E402
from ctattn.circuits.backends import get_backend  # noqa: E402
from ctattn.circuits.backends.spiking import DEFAULTS  # noqa: E402
from ctattn.circuits.build import circuit_for  # noqa: E402

from ctattn.core.problem import AttentionSpec, random_tokens, random_weights  # noqa: E402


def standard_problem(variant: str = "linear"):
    W = random_weights(0, n_heads=4, d_model=16, d_k=4, d_v=4)
    T = random_tokens(0, 8, 16)
    spec = AttentionSpec(variant=variant, phi="relu")
    Y_ref = multihead_attention(T.X, **W.arrays(), **spec.reference_kwargs(W))
    return circuit_for(W, T, spec), T, Y_ref


def accuracy_table(circuit, tokens, Y_ref, neurons, windows, seeds, target) -> list[str]:
    backend = get_backend("spiking")
    rows = [
        f"| neurons/unit | window (ms) | rel. error (RMS, {len(seeds)} seeds) | shot-noise bound | error / bound |",
        "|---:|---:|---:|---:|---:|",
    ]
    for n in neurons:
        for window in windows:
            errors, bounds = [], []
            for seed in seeds:
                result = backend.run(
                    circuit, tokens, neurons_per_unit=n, window_ms=window, seed=seed, target=target
                )
                errors.append(relative_error(result.Y, Y_ref))
                bounds.append(result.info["shot_noise_bound"])
            error = float(np.sqrt(np.mean(np.square(errors))))
            bound = float(np.sqrt(np.mean(np.square(bounds))))
            rows.append(
                f"| {n} | {window:g} | {100 * error:.2f} % | {100 * bound:.2f} % | {error / bound:.2f} |"
            )
            print(rows[-1], file=sys.stderr, flush=True)
    return rows


def cost_table(circuit, tokens, Y_ref, targets) -> list[str]:
    backend = get_backend("spiking")
    rows = [
        "| target | wall (s) | compile (s) | simulated (s) | realtime factor | rel. error | neurons "
        "| synapses (modelled) | synapses (simulated) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for target in targets:
        options = dict(target=target, seed=0)
        with tempfile.TemporaryDirectory(prefix="ctattn_bench_") as folder:
            if target == "standalone":
                options["standalone_dir"] = folder
            result = backend.run(circuit, tokens, **options)
        info = result.info
        error = relative_error(result.Y, Y_ref)
        rows.append(
            f"| {target} | {info['wall_s']:.1f} | {info['compile_s']:.1f} | {info['sim_time_s']:.2f} | "
            f"{info['realtime_factor']:.2f} | {100 * error:.2f} % | {info['n_neurons']:,} | "
            f"{info['n_synapses']:,} | {info['n_synapses_simulated']:,} |"
        )
        print(rows[-1], file=sys.stderr, flush=True)
    return rows


def variant_table(variants, neurons, seeds, target, long_window: bool = True) -> list[str]:
    """Accuracy of each attention variant on the standard problem, with the convergence check."""
    backend = get_backend("spiking")
    window = DEFAULTS["window_ms"]
    rows = [
        f"| variant | neurons/unit | rel. error, T = {window:g} ms (RMS, {len(seeds)} seeds) | "
        f"rel. error, 4T | ratio T / 4T | shot-noise bound | settle (ms) | wall s per run (T) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for variant in variants:
        circuit, tokens, Y_ref = standard_problem(variant)
        for n in neurons:
            errors, long_errors, bounds, walls, settle = [], [], [], [], None
            for seed in seeds:
                result = backend.run(circuit, tokens, neurons_per_unit=n, seed=seed, target=target)
                errors.append(relative_error(result.Y, Y_ref))
                bounds.append(result.info["shot_noise_bound"])
                walls.append(result.info["wall_s"])
                settle = result.info["settle_ms"]
                if long_window:
                    long = backend.run(
                        circuit, tokens, neurons_per_unit=n, seed=seed, target=target, window_ms=4 * window
                    )
                    long_errors.append(relative_error(long.Y, Y_ref))
            rms = float(np.sqrt(np.mean(np.square(errors))))
            if long_errors:
                rms_long = float(np.sqrt(np.mean(np.square(long_errors))))
                long_cells = f"{100 * rms_long:.2f} % | {rms / rms_long:.2f}"
            else:
                long_cells = "- | -"
            rows.append(
                f"| {variant} | {n} | {100 * rms:.2f} % (max {100 * max(errors):.2f} %) | {long_cells} | "
                f"{100 * float(np.sqrt(np.mean(np.square(bounds)))):.2f} % | {settle:g} | "
                f"{float(np.median(walls)):.1f} |"
            )
            print(rows[-1], file=sys.stderr, flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller grid (n 10, 40; windows 50, 200 ms)")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per grid cell (default 2)")
    parser.add_argument(
        "--targets", default="numpy,cython,standalone", help="targets timed (comma-separated)"
    )
    parser.add_argument(
        "--grid-target", default="cython", help="target of the accuracy grid (default cython)"
    )
    parser.add_argument(
        "--variants",
        default="linear,normalized,softmax",
        help="attention variants of the variants table (comma-separated)",
    )
    parser.add_argument("--only-variants", action="store_true", help="print only the variants table")
    args = parser.parse_args(argv)
    seeds = range(args.seeds)
    variants = [v for v in args.variants.split(",") if v]
    if args.only_variants:
        print("### Attention variants (standard problem, Cython target)\n")
        print(
            "\n".join(
                variant_table(
                    variants,
                    (40,) if args.quick else (40, 80),
                    seeds,
                    args.grid_target,
                    long_window=not args.quick,
                )
            )
        )
        return 0
    neurons = (10, 40) if args.quick else (10, 20, 40, 80)
    windows = (50.0, 200.0) if args.quick else (50.0, 200.0, 800.0)
    circuit, tokens, Y_ref = standard_problem()
    started = time.perf_counter()
    print(
        "## Spiking backend, standard problem (4 heads, 8 tokens, d_model 16, d_k = d_v = 4, relu, linear)\n"
    )
    d = DEFAULTS
    print(
        f"Defaults: {d['neurons_per_unit']} neurons per unit, window {d['window_ms']:g} ms after "
        f"{d['settle_ms']:g} ms settling, tau_syn {d['tau_syn_ms']:g} ms, tau_m {d['tau_ms']:g} ms, "
        f"dt {d['dt_ms']:g} ms. Machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores.\n"
    )
    print(f"### Accuracy ({args.grid_target} target)\n")
    print("\n".join(accuracy_table(circuit, tokens, Y_ref, neurons, windows, seeds, args.grid_target)))
    print("\n### Cost at the default settings (seed 0)\n")
    print("\n".join(cost_table(circuit, tokens, Y_ref, [t for t in args.targets.split(",") if t])))
    print(f"\n### Attention variants ({args.grid_target} target)\n")
    print(
        "\n".join(
            variant_table(
                variants,
                (40,) if args.quick else (40, 80),
                seeds,
                args.grid_target,
                long_window=not args.quick,
            )
        )
    )
    print(f"\n(benchmark took {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
