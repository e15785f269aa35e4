"""Accuracy and speed of the ideal and rate backends on the standard problem.

Standard problem: 4 heads, 8 tokens, d_model 16, d_k = d_v = 4, relu (softmax: beta =
1/sqrt(d_k)). For each variant x layout x causal, prints the relative error against the
matrix reference and the median wall time over ``--repeats`` runs (rate: Brian2 numpy target,
default settle 300 ms = 30 tau, dt 1 ms).

    .venv/bin/python benchmarks/backends.py [--repeats 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

from ctattn.api import simulate
from ctattn.core.problem import random_tokens, random_weights

CASES = [
    ("linear", "mask", False),
    ("linear", "mask", True),
    ("linear", "memory", False),
    ("linear", "memory", True),
    ("normalized", "mask", False),
    ("normalized", "mask", True),
    ("softmax", "mask", False),
    ("softmax", "mask", True),
]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    W = random_weights(args.seed, 4, 16, 4, 4)
    T = random_tokens(args.seed, 8, 16)
    print(
        f"# standard problem: H=4, N=8, D=16, d_k=d_v=4, relu; {platform.processor() or platform.machine()}, "
        f"median of {args.repeats} runs"
    )
    print(
        "| variant | layout | causal | backend | rel. error | max abs error | neurons | synapses | wall s (median) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for variant, layout, causal in CASES:
        for backend in ("ideal", "rate"):
            walls, run = [], None
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                run = simulate(W, T, backend=backend, variant=variant, layout=layout, causal=causal)
                walls.append(time.perf_counter() - t0)
            print(
                f"| {variant} | {layout} | {causal} | {backend} | {run.rel_error:.1e} | {run.max_abs_error:.1e} "
                f"| {run.circuit.n_neurons} | {run.circuit.n_synapses} | {statistics.median(walls):.3f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
