"""glassllm layers' attention on the spiking backend: error against the shot-noise bound, ranges.

    python benchmarks/transformers_spiking_layer.py [--tokens 16] [--layers 0,1,2,3]
        [--neurons-per-unit 100000] [--window 50] [--settle auto] [--tau 5] [--tau-syn 2]
        [--dt 1] [--seed 0]

Builds the circuit of each chosen layer of glassllm ``en`` (rotary synapses, shared key/value
weights) on the exact model's layer input for the first ``--tokens`` tokens of a fixed prompt,
runs the spiking backend and prints, per layer: size, wall time, the relative error of the
layer's attention output against the exact model's, the backend's shot-noise bound (the
readout's counting noise alone) and their ratio; and, per population kind, how loose the
a-priori encoding range was: its largest value over the largest rate the run decoded there
(read after the run, for the table only: the backend never sees it).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np

PROMPT = "The little girl looked at the old king and said that she was going home to her mother"


def _kind(name: str) -> str:
    """Population kind for the table: ``A0.L23`` -> ``L23``, ``FO.query@3`` -> ``FO.query``."""
    base = name.split("[")[0].split("@")[0]
    return base.split(".", 1)[1] if base[:1] == "A" and "." in base else base


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--layers", default="0,1,2,3")
    parser.add_argument("--neurons-per-unit", type=int, default=100000)
    parser.add_argument("--window", type=float, default=50.0)
    parser.add_argument("--settle", default="auto", help="ms, or 'auto' (as deep as the circuit needs)")
    parser.add_argument("--tau", type=float, default=5.0)
    parser.add_argument("--tau-syn", type=float, default=2.0)
    parser.add_argument("--dt", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from ctattn.analysis.transformers import encode, forward, load_model
    from ctattn.analysis.transformers.circuit import block_circuit
    from ctattn.circuits.backends import get_backend

    model = load_model("glassllm:en")
    ids = encode(model, PROMPT)[: args.tokens]
    exact = forward(model, ids)
    options = dict(
        neurons_per_unit=args.neurons_per_unit,
        window_ms=args.window,
        settle_ms=None if args.settle == "auto" else float(args.settle),
        tau_ms=args.tau,
        tau_syn_ms=args.tau_syn,
        dt_ms=args.dt,
        seed=args.seed,
    )
    print(f"glassllm en, {len(ids)} tokens; spiking options {options}")
    print(
        "| layer | units | rate-level synapses | coupling | wall s | rel. error | shot-noise bound | ratio |"
    )
    print("|---:|---:|---:|---|---:|---:|---:|---:|")
    looseness = {}
    for layer in [int(x) for x in args.layers.split(",")]:
        circuit, tokens = block_circuit(model.layers[layer].attention, exact.attention_inputs[layer])
        start = time.perf_counter()
        result = get_backend("spiking").run(circuit, tokens, **options)
        wall = time.perf_counter() - start
        Y_ref = exact.attention_outputs[layer]
        err = float(np.linalg.norm(result.Y - Y_ref) / np.linalg.norm(Y_ref))
        bound = result.info["shot_noise_bound"]
        print(
            f"| {layer} | {circuit.n_neurons} | {result.info['n_synapses']} | {result.info['coupling']} | "
            f"{wall:.1f} | {err:.2e} | {bound:.2e} | {err / bound:.1f} |"
        )
        sys.stdout.flush()
        for name, rates in result.window_rates.items():
            top = float(np.max(rates))
            if top > 0:
                looseness.setdefault(_kind(name), []).append(result.info["encoding_range"][name] / top)
    print("\nencoding range / largest decoded rate, per population kind (median over populations):")
    print("| population | range / rate |")
    print("|---|---:|")
    for kind, values in sorted(looseness.items()):
        print(f"| {kind} | {np.median(values):.1f} |")
    print(f"\npeak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
