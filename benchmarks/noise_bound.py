"""Does the propagated shot-noise bound predict the spiking output's spread? (a script, not a test)

    .venv/bin/python benchmarks/noise_bound.py [--seeds 6] [--neurons 300] [--variants linear,normalized,softmax]

For each variant, runs ``--seeds`` seeded replicates of one small problem (2 heads, 4 tokens,
d_model 6, d_k = d_v = 3, relu; weights and tokens of seed 0) at few neurons per unit, so that
noise dominates, and prints one markdown table: the measured spread of one run around the
replicates' mean (relative to the output), the readout's own counting bound
(``info["shot_noise_bound"]``), the bound propagated through every stage
(``info["shot_noise_bound_propagated"]``, :mod:`ctattn.circuits.backends.spiking.noise`), their
ratio, the three populations with the largest share of the propagated variance, and the error of
the replicates' mean from the reference (read here only to score).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from ctattn.analysis.reference import multihead_attention  # noqa: E402
from ctattn.circuits.backends import get_backend  # noqa: E402
from ctattn.circuits.build import circuit_for  # noqa: E402

from ctattn.core.problem import AttentionSpec, random_tokens, random_weights  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--neurons", type=int, default=300, help="neurons per unit")
    ap.add_argument("--variants", default="linear,normalized,softmax")
    ap.add_argument("--target", default="numpy")
    args = ap.parse_args(argv)
    weights, tokens = random_weights(0, 2, 6, 3, 3), random_tokens(0, 4, 6)
    print(
        f"# {args.seeds} seeds, {args.neurons} neurons per unit, 2 heads, 4 tokens, d_model 6, d_k = d_v = 3"
    )
    print(
        "| variant | measured spread | readout bound | propagated bound | spread / propagated | largest shares | error of the mean | wall / run (s) |"
    )
    print("|---|---:|---:|---:|---:|---|---:|---:|")
    for variant in args.variants.split(","):
        spec = AttentionSpec(variant=variant)
        circuit = circuit_for(weights, tokens, spec)
        Y_ref = multihead_attention(tokens.X, **weights.arrays(), **spec.reference_kwargs(weights))
        t0 = time.perf_counter()
        runs = [
            get_backend("spiking").run(
                circuit, tokens, seed=s, neurons_per_unit=args.neurons, target=args.target
            )
            for s in range(args.seeds)
        ]
        wall = (time.perf_counter() - t0) / args.seeds
        Y = np.array([r.Y for r in runs])
        mean = Y.mean(axis=0)
        spread = np.sqrt(((Y - mean) ** 2).sum() / (args.seeds - 1)) / np.linalg.norm(mean)
        readout = np.median([r.info["shot_noise_bound"] for r in runs])
        propagated = np.median([r.info["shot_noise_bound_propagated"] for r in runs])
        shares = runs[0].info["shot_noise_shares"]
        top = ", ".join(f"{k} {100 * v:.0f}%" for k, v in sorted(shares.items(), key=lambda kv: -kv[1])[:3])
        error = np.linalg.norm(mean - Y_ref) / np.linalg.norm(Y_ref)
        print(
            f"| {variant} | {100 * spread:.2f}% | {100 * readout:.2f}% | {100 * propagated:.2f}% | "
            f"{spread / propagated:.2f} | {top} | {100 * error:.2f}% | {wall:.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
