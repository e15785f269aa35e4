"""``lif`` on small problems of three seeds (a script, not a test): the figures behind the sanity
gate of ``tests/test_spiking_lif.py::test_lif_divisive_variants_on_a_small_problem``.

    .venv/bin/python benchmarks/lif_small_problems.py [--variants normalized,softmax] [--target cython]

Problem seed ``s`` (2 heads, 4 tokens, d_model 8, d_k = d_v = 4, relu) run with master seed
``s``, 100 / 25 / 400 cells per principal / interneuron / readout unit. Prints the relative
error and slope against the reference (read here only to score), the readout's shot-noise bound,
the wall time and the range of the pools' decoded values (the adaptive threshold holds them near
1).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from ctattn.analysis.reference import multihead_attention  # noqa: E402
from ctattn.circuits.backends import get_backend  # noqa: E402
from ctattn.circuits.build import circuit_for  # noqa: E402

from ctattn.core.problem import AttentionSpec, random_tokens, random_weights  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", default="normalized,softmax")
    p.add_argument("--target", default="cython")
    args = p.parse_args(argv)
    print(
        "| variant | seed | error | slope | readout bound | wall s | pools |\n|---|---:|---:|---:|---:|---:|---|"
    )
    for variant in args.variants.split(","):
        for seed in (0, 1, 2):
            W = random_weights(seed, n_heads=2, d_model=8, d_k=4, d_v=4)
            T = random_tokens(seed, 4, 8)
            spec = AttentionSpec(variant=variant, phi="relu")
            Y = multihead_attention(T.X, **W.arrays(), **spec.reference_kwargs(W))
            r = get_backend("spiking").run(
                circuit_for(W, T, spec), T, seed=seed, neuron="lif", target=args.target,
                neurons_per_unit=100, inhibitory_per_unit=25, readout_per_unit=400,
            )  # fmt: skip
            err = np.linalg.norm(r.Y - Y) / np.linalg.norm(Y)
            slope = np.sum(r.Y * Y) / np.sum(Y * Y)
            pools = np.concatenate([np.ravel(v) for k, v in r.window_rates.items() if k.endswith("pool")])
            span = f"{pools.min():.2f}-{pools.max():.2f}" if pools.size else "-"
            print(
                f"| {variant} | {seed} | {100 * err:.1f}% | {slope:.3f} | {100 * r.info['shot_noise_bound']:.1f}% "
                f"| {r.info['wall_s']:.0f} | {span} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
