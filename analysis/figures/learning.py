"""Learning figure: loss per step, and the local rules' cosine to the exact gradient."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_learning_curves"]


def plot_learning_curves(results: dict, path) -> None:
    """Loss (log scale) per step for each labelled result, and the local rules' cosine to the
    exact gradient; written as a PNG to ``path`` (matplotlib's object API: no global state)."""
    from matplotlib.figure import Figure

    with_cosine = any("cosine" in r.curves for r in results.values())
    fig = Figure(figsize=(9.5 if with_cosine else 5.5, 4.0), layout="constrained")
    axes = fig.subplots(1, 2 if with_cosine else 1, squeeze=False)[0]
    for label, r in results.items():
        loss = r.curves["loss"]
        axes[0].semilogy(np.arange(loss.size), loss, label=label)
    zero = {r.info.get("zero_output_loss") for r in results.values()} - {None}
    if len(zero) == 1:
        axes[0].axhline(zero.pop(), color="0.6", ls=":", lw=1, label="zero output")
    axes[0].set_xlabel("step (exact: one gradient step; local: one online pass)")
    axes[0].set_ylabel("loss E (mean over sequences)")
    axes[0].set_title("learning curve, E = 1/2 sum_i ||t_i - y_i||^2")
    axes[0].legend(fontsize="small")
    if with_cosine:
        for label, r in results.items():
            if "cosine" in r.curves:
                cos = r.curves["cosine"]
                steps = np.flatnonzero(np.isfinite(cos))
                axes[1].plot(steps, cos[steps], ".-", ms=3, label=label)
        axes[1].set_ylim(-1.05, 1.05)
        axes[1].axhline(0, color="0.6", lw=0.8)
        axes[1].set_xlabel("step (online pass)")
        axes[1].set_ylabel("cosine(local updates, exact gradient)")
        axes[1].set_title("local rule vs exact gradient")
        axes[1].legend(fontsize="small")
    fig.savefig(path, dpi=120)
