"""Comparison figures: the circuit's attention maps, head outputs and block output beside the reference.

* ``attention_maps`` (mask layout): ``a_ij`` decoded from each area's own populations beside the
  reference's, and their difference;
* ``output_scatter``: circuit against reference for ``y`` and every head's ``u^h``;
* ``output_maps``: ``Y``, ``Y_ref`` and ``Y - Y_ref`` as heat maps;
* ``write_run_figures``: every figure a run supports.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ctattn.analysis.decoding import decode_attention, decode_head_outputs
from ctattn.analysis.figures.activity import raster, rate_traces
from ctattn.analysis.figures.common import MAX_HEADS, reference_trace
from ctattn.analysis.plotting import pyplot, save

__all__ = ["attention_maps", "output_scatter", "output_maps", "write_run_figures"]


# -- attention maps -------------------------------------------------------------------------
def attention_maps(run, path) -> Path | None:
    """Decoded ``a_ij`` per area beside the reference's, with the error (mask layout only)."""
    if run.circuit.info.get("layout") != "mask":
        return None  # the KV-memory layout never forms a_ij (paper v3)
    plt = pyplot()
    A = decode_attention(run.circuit, run.result.window_rates)
    A_ref = reference_trace(run).A
    H = min(A.shape[0], MAX_HEADS)
    fig, axes = plt.subplots(H, 3, figsize=(11, 0.7 + 2.7 * H), squeeze=False)
    err_lim = float(np.max(np.abs(A[:H] - A_ref[:H]))) or 1e-12
    for h in range(H):
        lim = float(max(np.max(np.abs(A_ref[h])), 1e-12))
        cmap, vmin = ("RdBu_r", -lim) if A_ref[h].min() < 0 else ("viridis", 0.0)
        for c, (data, name) in enumerate(((A[h], "circuit (decoded)"), (A_ref[h], "reference"))):
            ax = axes[h, c]
            im = ax.imshow(data, cmap=cmap, vmin=vmin, vmax=lim, aspect="auto")
            ax.set_title(f"A{h} (head {h}): {name}")
            fig.colorbar(im, ax=ax, label="a_ij")
        ax = axes[h, 2]
        im = ax.imshow(A[h] - A_ref[h], cmap="RdBu_r", vmin=-err_lim, vmax=err_lim, aspect="auto")
        rel = np.linalg.norm(A[h] - A_ref[h]) / max(np.linalg.norm(A_ref[h]), 1e-300)
        ax.set_title(f"A{h}: circuit - reference (rel. {rel:.1e})")
        fig.colorbar(im, ax=ax, label="error of a_ij", format="%.1e" if err_lim < 1e-2 else None)
        for ax in axes[h]:
            ax.set_xlabel("key/value token j (column)")
            ax.set_ylabel("query token i")
    source = {
        "linear": "L2/3 score s_ij",
        "normalized": "L5 gain cell / pool",
        "softmax": "L5 gain cell / pool",
    }
    fig.suptitle(
        f"{run.spec.variant} attention, {run.backend} backend: a_ij read from the "
        f"{source[run.spec.variant]} vs the transformer's"
    )
    fig.tight_layout()
    return save(fig, path)


# -- output scatter -------------------------------------------------------------------------
def identity_scatter(ax, ref, got, colors, labels):
    lim = float(np.nanmax(np.abs(np.r_[ref.ravel(), got.ravel()]))) * 1.08 or 1.0
    ax.plot([-lim, lim], [-lim, lim], color="0.6", lw=1, label="identity", zorder=0)
    for k in range(ref.shape[1]):
        ax.scatter(ref[:, k], got[:, k], s=14, color=colors[k], label=labels[k])
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")


def output_scatter(run, path) -> Path:
    """Circuit against reference: block output per dimension, then each head's ``u^h`` from L5."""
    plt = pyplot()
    Y, R = run.Y, run.Y_ref
    U = decode_head_outputs(run.circuit, run.result.window_rates)
    U_ref = reference_trace(run).U
    H = min(U.shape[0], MAX_HEADS)
    n_panels = 2 + H
    ncols = n_panels if n_panels <= 4 else 3
    nrows = int(np.ceil(n_panels / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.5 * nrows + 0.4), squeeze=False)
    D = Y.shape[1]
    few = D <= 8
    colors = plt.cm.viridis(np.linspace(0, 0.9 if few else 1.0, D))
    ax = axes[0, 0]
    identity_scatter(ax, R, Y, colors, [f"d={d}" if few else None for d in range(D)])
    ax.set_xlabel("reference y_i,d (a.u.)")
    ax.set_ylabel("circuit y_i,d, HO thalamus (a.u.)")
    ax.set_title(f"block output: rel. error {run.rel_error:.1e}")
    ax.legend(loc="upper left", fontsize=7, ncol=2)
    if not few:
        import matplotlib as mpl

        mappable = mpl.cm.ScalarMappable(norm=mpl.colors.Normalize(0, D - 1), cmap=mpl.colormaps["viridis"])
        fig.colorbar(mappable, ax=ax, label="output dimension d", shrink=0.8)
    d_v = U.shape[2]
    head_colors = plt.cm.plasma(np.linspace(0, 0.8, d_v))
    for h in range(H):
        ax = axes.flat[1 + h]
        identity_scatter(
            ax, U_ref[h], U[h], head_colors, [f"n={k}" if d_v <= 8 else None for k in range(d_v)]
        )
        rel = np.linalg.norm(U[h] - U_ref[h]) / max(np.linalg.norm(U_ref[h]), 1e-300)
        ax.set_xlabel(f"reference u^{h}_i,n (a.u.)")
        ax.set_ylabel(f"circuit u^{h}_i,n, L5 of A{h} (a.u.)")
        ax.set_title(f"head {h}: rel. error {rel:.1e}")
        ax.legend(loc="upper left", fontsize=7)
    ax = axes.flat[1 + H]
    err = (Y - R).ravel()
    rms = float(np.sqrt(np.nanmean(err**2)))
    ax.hist(err[np.isfinite(err)], bins=min(40, max(8, err.size // 8)), color="0.5")
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("error y_i,d - y_ref,i,d (a.u.)")
    ax.set_ylabel("number of outputs")
    ax.set_title(f"output errors: rms {rms:.2g} (a.u.)")
    for ax in axes.flat[n_panels:]:
        ax.axis("off")
    bound = run.result.info.get("shot_noise_bound")
    note = f"; shot-noise bound {bound:.1e}" if bound is not None and np.isfinite(bound) else ""
    more = f" (first {H} of {U.shape[0]} heads)" if U.shape[0] > H else ""
    fig.suptitle(f"{run.spec.variant} attention, {run.backend} backend vs the matrix reference{more}{note}")
    fig.tight_layout()
    return save(fig, path)


def output_maps(run, path) -> Path:
    """Heat maps of ``Y``, ``Y_ref`` and ``Y - Y_ref`` (tokens x output dimensions)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    vmax = float(np.nanmax(np.abs(run.Y_ref))) or 1.0
    err = run.Y - run.Y_ref
    for ax, data, title, lim in zip(
        axes,
        (run.Y, run.Y_ref, err),
        ("circuit Y (HO thalamus)", "reference Y_ref", "error Y - Y_ref"),
        (vmax, vmax, float(np.nanmax(np.abs(err))) or 1e-12),
    ):
        im = ax.imshow(data, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
        ax.set_xlabel("output dimension d")
        ax.set_ylabel("token i")
        ax.set_title(title)
        fig.colorbar(im, ax=ax, label="value (a.u.)")
    fig.suptitle(f"{run.spec.variant} attention, {run.backend} backend: rel. error {run.rel_error:.1e}")
    fig.tight_layout()
    return save(fig, path)


def write_run_figures(run, folder) -> list[Path]:
    """Write every figure ``run`` supports into ``folder``; returns the paths written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    if run.result.spikes:
        paths.append(raster(run.circuit, run.result, folder / "raster.png"))
    paths.append(rate_traces(run, folder / "traces.png"))
    attention = attention_maps(run, folder / "attention.png")
    if attention is not None:
        paths.append(attention)
    paths.append(output_scatter(run, folder / "scatter.png"))
    paths.append(output_maps(run, folder / "outputs.png"))
    return paths
