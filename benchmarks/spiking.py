"""Benchmark of the spiking backend on the standard problem (a script, not a test).

    .venv/bin/python benchmarks/spiking.py [--seeds 2] [--target cython|standalone] [--threads 1] [--neuron poisson|lif]
        [--variants linear,normalized,softmax] [--scales 0.5,1,2,4] [--neurons 1000,3000,10000,30000]
        [--inhibitory-ratio 0.25] [--readout-ratio 4] [--dt-ms DT] [--window-ms T]
        [--cells-per-layer L5=1000,TRN=1000,HO=4000]

``--neuron lif`` (mask layout): ``neurons_per_unit`` principal cells per unit, and
``inhibitory-ratio`` x as many per Dale interneuron unit, ``readout-ratio`` x as many per
readout unit (the first table uses the first ``--neurons`` value, and ``--cells-per-layer``
overrides by layer); the time of the model-only
calibration (0 when the tables come from the package or the cache) is printed apart.

Prints three markdown tables:

1. accuracy and rates per variant and weight scale (``W_Q, W_K, W_V, W_O`` of the default
   draw multiplied by 0.5, 1, 2, 4): relative error (RMS over seeds), split into bias
   (``||mean_r Y_r - Y_ref||`` less the noise that the mean still carries) and noise (the
   spread of single runs around their mean), the readout's shot-noise bound and the bound
   propagated through every stage, the highest binned rate of any excitatory and any inhibitory
   cell, the saturated fraction, neurons (interneurons included), spikes per decoded value,
   simulation time per run (``run_s``: compilation, calibration and set-up apart) and
   compilation time;
2. error vs neurons per unit (``linear``, scale 1);
3. comparison rows measured elsewhere (Nengo 4.1, quoted from issue 10, not run here).

Standard problem: 4 heads, 8 tokens, d_model 16, d_k = d_v = 4, ``relu``, mask layout,
self-attention, weights and tokens of seed 0; beta = 1/sqrt(d_k) for softmax. Encoding ranges
are a-priori bounds (nothing reads the reference or the ideal backend); the reference is read
here only to score the runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from ctattn.analysis.reference import multihead_attention  # noqa: E402
from ctattn.circuits.backends import get_backend  # noqa: E402
from ctattn.circuits.backends.spiking import DEFAULTS, RATE_CAP_HZ  # noqa: E402
from ctattn.circuits.backends.spiking.options import LIF_DEFAULTS  # noqa: E402
from ctattn.circuits.build import circuit_for  # noqa: E402

from ctattn.core.problem import AttentionSpec, AttentionWeights, random_tokens, random_weights  # noqa: E402

NENGO_ROWS = [
    ("Nengo 4.1, NEF products of spiking LIF ensembles", "461k", "8.5%", "39-96 s (build)"),
    ("Nengo 4.1, NEF products of spiking LIF ensembles", "922k", "6.7%", "39-96 s (build)"),
    ("Nengo 4.1, NEF products of spiking LIF ensembles", "1.84M", "4.1%", "39-96 s (build)"),
]


def standard_problem(variant: str, scale: float):
    W = random_weights(0, n_heads=4, d_model=16, d_k=4, d_v=4)
    arrays = W.arrays()
    for key in ("W_Q", "W_K", "W_V", "W_O"):
        arrays[key] = arrays[key] * scale
    W = AttentionWeights(**arrays)
    T = random_tokens(0, 8, 16)
    spec = AttentionSpec(variant=variant, phi="relu")
    Y_ref = multihead_attention(T.X, **W.arrays(), **spec.reference_kwargs(W))
    return circuit_for(W, T, spec), T, Y_ref


def replicate(circuit, tokens, Y_ref, seeds, **options) -> dict:
    """Runs with ``seeds``; error RMS, bias and noise relative to ``||Y_ref||``."""
    backend = get_backend("spiking")
    runs = [backend.run(circuit, tokens, seed=s, **options) for s in seeds]
    Ys = np.stack([r.Y for r in runs])
    norm = np.linalg.norm(Y_ref)
    errors = [np.linalg.norm(Y - Y_ref) / norm for Y in Ys]
    R = len(Ys)
    noise2 = np.sum((Ys - Ys.mean(axis=0)) ** 2) / max(R - 1, 1) / norm**2  # per single run
    mean_err2 = np.linalg.norm(Ys.mean(axis=0) - Y_ref) ** 2 / norm**2
    bias2 = max(mean_err2 - noise2 / R, 0.0)  # the mean of R runs still carries noise / R
    info = [r.info for r in runs]
    inh = set(info[0]["inhibitory"])
    peak_exc = max(v for i in info for k, v in i["peak_rate_hz"].items() if k not in inh)
    peak_inh = max(v for i in info for k, v in i["peak_rate_hz"].items() if k in inh)
    return dict(
        error=float(np.sqrt(np.mean(np.square(errors)))),
        bias=float(np.sqrt(bias2)),
        noise=float(np.sqrt(noise2)) if R > 1 else float("nan"),
        bound=float(np.sqrt(np.mean([i["shot_noise_bound"] ** 2 for i in info]))),
        propagated=float(np.sqrt(np.mean([i["shot_noise_bound_propagated"] ** 2 for i in info]))),
        peak_exc=peak_exc,
        peak_inh=peak_inh,
        saturated=max(i["saturated_fraction"] for i in info),
        neurons=info[0]["n_neurons"],
        interneurons=info[0]["n_interneurons"],
        spikes_per_output=float(np.mean([i["spikes_per_output"] for i in info])),
        wall=float(np.mean([i["wall_s"] for i in info])),
        run=float(np.mean([i["run_s"] for i in info])),
        compile=float(np.mean([i["compile_s"] for i in info])),
        calibration=float(sum(i.get("calibration_s", 0.0) for i in info)),
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--target", default="cython")
    p.add_argument("--threads", type=int, default=1, help="OpenMP threads (standalone target)")
    p.add_argument("--neuron", default="poisson")
    p.add_argument("--variants", default="linear,normalized,softmax")
    p.add_argument("--scales", default="0.5,1,2,4")
    p.add_argument("--neurons", default="1000,3000,10000,30000")
    p.add_argument("--inhibitory-ratio", type=float, default=0.25)
    p.add_argument("--readout-ratio", type=float, default=4.0)
    p.add_argument("--dt-ms", type=float, default=None)
    p.add_argument("--window-ms", type=float, default=None)
    p.add_argument("--cells-per-layer", default=None, help="lif: e.g. L5=1000,TRN=1000,HO=4000")
    args = p.parse_args(argv)
    seeds = tuple(range(args.seeds))
    options = dict(
        target=args.target,
        threads=args.threads,
        neuron=args.neuron,
        dt_ms=args.dt_ms,
        window_ms=args.window_ms,
    )
    sizes = [int(x) for x in args.neurons.split(",") if x]  # empty: no error-vs-neurons table

    def cells(n: int) -> dict:
        if args.neuron != "lif":
            return dict(neurons_per_unit=n) if n else {}
        return dict(
            neurons_per_unit=n,
            inhibitory_per_unit=max(1, int(round(args.inhibitory_ratio * n))),
            readout_per_unit=max(1, int(round(args.readout_ratio * n))),
        )

    first = cells(sizes[0] if sizes else LIF_DEFAULTS["neurons_per_unit"]) if args.neuron == "lif" else {}
    if args.cells_per_layer:
        layers = dict(item.split("=") for item in args.cells_per_layer.split(","))
        first["cells_per_layer"] = {k: int(v) for k, v in layers.items()}
    print(
        f"# spiking benchmark ({platform.machine()}, {os.cpu_count()} cores, target {args.target}, "
        f"{args.threads} thread(s))"
    )
    per_unit = first or dict(neurons_per_unit=DEFAULTS["neurons_per_unit"])
    dt_ms = args.dt_ms or (LIF_DEFAULTS if args.neuron == "lif" else DEFAULTS)["dt_ms"]
    print(
        f"\nneuron model {args.neuron}, cells per unit {per_unit}, dt {dt_ms:g} ms, "
        f"window {args.window_ms or DEFAULTS['window_ms']:g} ms, caps {RATE_CAP_HZ['excitatory']:g} Hz "
        f"(excitatory) / {RATE_CAP_HZ['inhibitory']:g} Hz (inhibitory), {len(seeds)} seeds\n"
    )
    print(
        "| variant | W scale | error (RMS) | bias | noise | shot-noise bound (readout / propagated) | "
        "peak exc. (Hz) | peak inh. (Hz) | saturated | neurons (interneurons) | spikes / value | "
        "run (s) | compile (s) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for variant in args.variants.split(","):
        for scale in (float(s) for s in args.scales.split(",")):
            circuit, T, Y_ref = standard_problem(variant, scale)
            r = replicate(circuit, T, Y_ref, seeds, **options, **first)
            if r["calibration"] > 0:
                print(f"(lif calibration run before this row: {r['calibration']:.1f} s)", flush=True)
            print(
                f"| {variant} | x{scale:g} | {100 * r['error']:.2f}% | {100 * r['bias']:.2f}% | "
                f"{100 * r['noise']:.2f}% | {100 * r['bound']:.2f}% / {100 * r['propagated']:.2f}% | "
                f"{r['peak_exc']:.0f} | {r['peak_inh']:.0f} | {100 * r['saturated']:.3f}% | "
                f"{r['neurons'] / 1e6:.2f}M ({r['interneurons'] / 1e6:.2f}M) | {r['spikes_per_output']:.3g} | "
                f"{r['run']:.1f} | {r['compile']:.1f} |",
                flush=True,
            )
    if sizes:
        print(
            "\n| neurons / unit | neurons | error (RMS) | bias | noise | shot-noise bound (readout / propagated) | run (s) | compile (s) |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    circuit, T, Y_ref = standard_problem("linear", 1.0)
    for n in sizes:
        r = replicate(circuit, T, Y_ref, seeds, **cells(n), **options)
        print(
            f"| {n} | {r['neurons'] / 1e6:.2f}M | {100 * r['error']:.2f}% | {100 * r['bias']:.2f}% | "
            f"{100 * r['noise']:.2f}% | {100 * r['bound']:.2f}% / {100 * r['propagated']:.2f}% | {r['run']:.1f} | "
            f"{r['compile']:.1f} |",
            flush=True,
        )
    print("\nMeasured elsewhere (not run by this script; quoted from issue 10):\n")
    print("| model | neurons | error | time |")
    print("|---|---:|---:|---:|")
    for row in NENGO_ROWS:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
