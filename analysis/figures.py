"""Figures of one run, written as PNG files (matplotlib, non-interactive).

``write_run_figures(run, folder)`` writes every figure that the run's backend can support
and returns their paths. Each figure has labelled axes with units and a legend or colour bar.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["write_run_figures", "output_scatter", "output_maps"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def output_scatter(run, path: Path) -> Path:
    """Circuit output ``y_i,d`` against the reference's, one colour per output dimension."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    Y, R = run.Y, run.Y_ref
    lim = float(np.nanmax(np.abs(np.r_[Y.ravel(), R.ravel()]))) * 1.05 or 1.0
    ax.plot([-lim, lim], [-lim, lim], color="0.6", lw=1, label="identity")
    colors = plt.cm.viridis(np.linspace(0, 1, Y.shape[1]))
    for d in range(Y.shape[1]):
        ax.scatter(R[:, d], Y[:, d], s=14, color=colors[d], label=f"d={d}" if Y.shape[1] <= 8 else None)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_xlabel("reference output y_ref (a.u.)")
    ax.set_ylabel(f"circuit output y, {run.backend} backend (a.u.)")
    ax.set_title(f"{run.spec.variant} attention: rel. error {run.rel_error:.2e}")
    ax.legend(loc="upper left", fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def output_maps(run, path: Path) -> Path:
    """Heat maps of ``Y``, ``Y_ref`` and ``Y - Y_ref`` (tokens x output dimensions)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    vmax = float(np.nanmax(np.abs(run.Y_ref))) or 1.0
    err = run.Y - run.Y_ref
    for ax, data, title, lim in zip(
        axes, (run.Y, run.Y_ref, err), ("circuit Y", "reference Y_ref", "error Y - Y_ref"),
        (vmax, vmax, float(np.nanmax(np.abs(err))) or 1.0),
    ):
        im = ax.imshow(data, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
        ax.set_xlabel("output dimension d")
        ax.set_ylabel("token i")
        ax.set_title(title)
        fig.colorbar(im, ax=ax, label="value (a.u.)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_run_figures(run, folder) -> list[Path]:
    """Write the figures of ``run`` into ``folder``; returns the paths written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return [output_scatter(run, folder / "scatter.png"), output_maps(run, folder / "outputs.png")]
