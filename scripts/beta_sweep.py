r"""Figure: the neuromodulatory gain ``beta`` sharpens the circuit's attention (figures/beta_entropy.png).

For the standard problem (4 heads, 8 tokens, d_model 16, d_k = d_v = 4, seed 0) and each
``beta``, the circuit (``softmax``, mask layout) is simulated and its attention weights are
read from its own populations (gain cell of column ``j`` over the area's inhibitory pool,
:func:`ctattn.analysis.decoding.decode_attention`). The left panel plots the mean entropy of those
weights against ``beta`` next to the matrix reference's curve,

    H(beta) = mean_i [ -sum_j a_ij log a_ij ],   dH/dbeta = -beta Var_a(s) <= 0,

from ``log n_i`` (uniform attention, ``beta -> 0``) to 0 (argmax attention, ``beta -> inf``).
The right panels show head 0's attention map, from the circuit, at three values of ``beta``.

Settling: a rate window starts from rest, where every gain is ``exp(0) = 1``; that transient
must decay below ``Z_i >= exp(beta max_j s_ij)``, so the settle time is set to
``tau (30 + beta max |s|)`` for each ``beta`` (``s`` the raw scores ``q.k``).

    .venv/bin/python scripts/beta_sweep.py [--backend rate] [--out figures/beta_entropy.png]
    .venv/bin/python scripts/beta_sweep.py --backend spiking --neurons-per-unit 80 --out beta_spiking.png

With ``--backend spiking`` the weights are decoded from spike counts of the gain cells and
pools (Cython target), so the circuit's points scatter around the curve by counting noise.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a plain script from a checkout
    sys.path.insert(0, str(ROOT))

from ctattn.analysis.attention_limits import mean_entropy, softmax_entropy_curve  # noqa: E402
from ctattn.analysis.decoding import decode_attention  # noqa: E402
from ctattn.analysis.reference import multihead_attention  # noqa: E402

from ctattn.api import simulate  # noqa: E402
from ctattn.core.problem import random_tokens, random_weights  # noqa: E402

BETAS = (0.0, 0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
MAP_BETAS = (0.0, 1.0, 16.0)
TAU_MS = 10.0


def sweep(backend: str, betas, *, causal: bool, seed: int = 0, **options) -> dict:
    """Circuit and reference entropies (and head-0 maps) for each beta on the standard problem."""
    W = random_weights(seed, 4, 16, 4, 4)
    T = random_tokens(seed, 8, 16)
    S = multihead_attention(T.X, **W.arrays(), variant="softmax", beta=1.0, causal=causal, trace=True).S
    s_max = float(np.abs(S[np.isfinite(S)]).max())
    rows = []
    for beta in betas:
        opts = dict(options)
        if backend == "rate" and "settle_ms" not in opts:
            opts["settle_ms"] = TAU_MS * math.ceil(30 + beta * s_max)
        run = simulate(W, T, backend=backend, variant="softmax", beta=float(beta), causal=causal, **opts)
        A = decode_attention(run.circuit, run.result.window_rates)
        rows.append(
            dict(
                beta=float(beta),
                entropy=mean_entropy(A),
                rel_error=run.rel_error,
                A0=A[0],
                settle_ms=opts.get("settle_ms"),
            )
        )
    return dict(rows=rows, scores=S, n_kv=T.n_kv)


def plot(results: dict, backend: str, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(13, 4.2), layout="constrained")
    grid = fig.add_gridspec(1, 1 + len(MAP_BETAS), width_ratios=[2.2] + [1] * len(MAP_BETAS))
    ax = fig.add_subplot(grid[0, 0])
    dense = np.r_[0.0, np.geomspace(0.02, 40, 200)]
    for (label, causal), color in zip((("non-causal", False), ("causal", True)), ("C0", "C3")):
        res = results[causal]
        ax.plot(
            dense,
            softmax_entropy_curve(res["scores"], dense, causal),
            color=color,
            lw=1.5,
            label=f"reference, {label}",
        )
        ax.plot(
            [r["beta"] for r in res["rows"]],
            [r["entropy"] for r in res["rows"]],
            "o",
            color=color,
            mfc="none",
            ms=8,
            label=f"circuit ({backend}), {label}",
        )
    n_kv = results[False]["n_kv"]
    ax.axhline(np.log(n_kv), color="0.5", ls="--", lw=1)
    ax.text(0.03, np.log(n_kv) + 0.03, f"uniform (beta -> 0): log {n_kv}", fontsize=8, color="0.3")
    ax.axhline(0.0, color="0.5", ls=":", lw=1)
    ax.text(0.03, 0.03, "argmax (beta -> inf): 0", fontsize=8, color="0.3")
    ax.set_xscale("symlog", linthresh=0.1)
    ax.set_xlim(0, 40)
    ax.set_xlabel("neuromodulatory gain beta (inverse temperature, 1/score units)")
    ax.set_ylabel("mean attention entropy (nats)")
    ax.set_title("softmax attention: entropy of the circuit's weights")
    ax.legend(fontsize=8, loc="center left")
    maps = {r["beta"]: r["A0"] for r in results[False]["rows"]}
    map_axes = []
    for k, beta in enumerate(MAP_BETAS):
        axm = fig.add_subplot(grid[0, 1 + k])
        map_axes.append(axm)
        im = axm.imshow(maps[beta], vmin=0, vmax=1, cmap="magma")
        axm.set_title(f"head 0, beta = {beta:g}", fontsize=9)
        axm.set_xlabel("key/value token j (column)")
        if k == 0:
            axm.set_ylabel("query token i")
    fig.colorbar(im, ax=map_axes, shrink=0.7, label="a_ij, read from the circuit (L5g / pool)")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=["ideal", "rate", "spiking"], default="rate")
    ap.add_argument("--out", default=str(ROOT / "figures" / "beta_entropy.png"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--neurons-per-unit", type=int, default=None, help="spiking only (default: the backend's)"
    )
    args = ap.parse_args(argv)
    options = {}
    if args.backend == "spiking":
        options = dict(target="cython", seed=args.seed)
        if args.neurons_per_unit:
            options["neurons_per_unit"] = args.neurons_per_unit
    betas = sorted(set(BETAS) | set(MAP_BETAS))
    results = {
        causal: sweep(args.backend, betas, causal=causal, seed=args.seed, **options)
        for causal in (False, True)
    }
    print(f"| causal | beta | entropy, circuit ({args.backend}) | entropy, reference | rel. error of Y |")
    print("|---|---|---|---|---|")
    for causal, res in results.items():
        ref = softmax_entropy_curve(res["scores"], [r["beta"] for r in res["rows"]], causal)
        for r, h_ref in zip(res["rows"], ref):
            print(f"| {causal} | {r['beta']:g} | {r['entropy']:.6f} | {h_ref:.6f} | {r['rel_error']:.1e} |")
    print(f"wrote {plot(results, args.backend, Path(args.out))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
