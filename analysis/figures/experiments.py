"""Experiment figures: output error against neurons and window, and the lesion predictions.

* ``error_scaling``: relative output error against neurons per unit and counting window, with the
  shot-noise slope ``-1/2``;
* ``lesion_figure``: the five lesion predictions of MODEL.md section 5
  (:mod:`ctattn.analysis.experiments`), circuit beside the attention maths' prediction.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ctattn.analysis.figures.comparison import identity_scatter
from ctattn.analysis.plotting import pyplot, save

__all__ = ["error_scaling", "lesion_figure"]


# -- error scaling --------------------------------------------------------------------------
def error_scaling(records: list[dict], path, *, title: str | None = None) -> Path:
    """Relative output error against neurons per unit ``n`` and counting window ``T``.

    ``records``: dicts with ``neurons_per_unit``, ``window_ms``, ``rel_error`` and optionally
    ``shot_noise_bound``. Left: error against ``n``, one line per ``T``. Right: error against
    ``n T`` with a fitted power law and the shot-noise slope ``-1/2`` (error ~ 1/sqrt(n rho T)).
    """
    if not records:
        raise ValueError("error_scaling: no records")
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    windows = sorted({r["window_ms"] for r in records})
    colors = plt.cm.viridis(np.linspace(0, 0.85, len(windows)))
    for T, c in zip(windows, colors):
        rs = sorted((r for r in records if r["window_ms"] == T), key=lambda r: r["neurons_per_unit"])
        n = [r["neurons_per_unit"] for r in rs]
        left.plot(n, [r["rel_error"] for r in rs], "o-", color=c, label=f"T = {T:g} ms")
        if all(r.get("shot_noise_bound") is not None for r in rs):
            left.plot(n, [r["shot_noise_bound"] for r in rs], ":", color=c)
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("neurons per rate unit n")
    left.set_ylabel("relative error ||Y - Y_ref|| / ||Y_ref||")
    left.set_title("error vs population size (dotted: readout shot-noise bound)")
    left.legend()
    nT = np.array([r["neurons_per_unit"] * r["window_ms"] * 1e-3 for r in records])
    err = np.array([r["rel_error"] for r in records])
    for T, c in zip(windows, colors):
        sel = np.array([r["window_ms"] == T for r in records])
        right.scatter(nT[sel], err[sel], color=c, label=f"T = {T:g} ms", zorder=3)
    ok = (nT > 0) & (err > 0)
    if ok.sum() >= 2:
        slope, intercept = np.polyfit(np.log(nT[ok]), np.log(err[ok]), 1)
        x = np.geomspace(nT[ok].min(), nT[ok].max(), 50)
        right.plot(x, np.exp(intercept) * x**slope, color="C3", label=f"fit: slope {slope:.2f}")
        x0 = np.exp(np.mean(np.log(nT[ok])))
        y0 = np.exp(np.mean(np.log(err[ok])))
        right.plot(x, y0 * (x / x0) ** -0.5, "--", color="0.4", label="slope -1/2 (shot noise)")
    right.set_xscale("log")
    right.set_yscale("log")
    from matplotlib.ticker import FuncFormatter

    plain = FuncFormatter(lambda v, _: f"{v:g}")
    sparse = FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "125" else "")  # 2, 5 x 10^k only
    for ax in (left, right):
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(plain)
            axis.set_minor_formatter(sparse)
    right.set_xlabel("neurons per unit x counting window, n T (neuron s)")
    right.set_ylabel("relative error")
    right.set_title("error vs n T")
    right.legend()
    fig.suptitle(title or "Spiking backend: output error shrinks like 1/sqrt(n T)")
    fig.tight_layout()
    return save(fig, path)


# -- lesions --------------------------------------------------------------------------------
def _pct(x: float) -> str:
    return f"{100 * x:.0f}%" if x >= 0.01 else f"{100 * x:.1g}%"


def _bars(ax, labels, circuit_values, predicted_values, ylabel):
    x = np.arange(len(labels))
    ax.bar(x, circuit_values, color="C0", width=0.6, label="circuit")
    ax.scatter(
        x, predicted_values, marker="_", s=500, linewidths=2.5, color="C3", zorder=4, label="maths prediction"
    )
    ax.set_xticks(x)
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel(ylabel)


def _panel_p1(ax, res):
    h, d = res.measures["area"], res.data
    i = np.arange(d["U_intact"].shape[0])
    n = 0
    ax.plot(i, d["U_reference"][:, n], "k_", ms=16, mew=2, label="reference (intact)")
    ax.plot(
        i,
        d["U_intact"][:, n],
        "o-",
        color="C0",
        label=f"intact circuit (query dep. {res.measures['query_dependence_intact']:.2f})",
    )
    ax.plot(
        i,
        d[f"U {res.measures['lesion']}"][:, n],
        "s-",
        color="C1",
        label=f"L2/3 silenced (query dep. {res.measures['query_dependence_lesioned']:.2g})",
    )
    ax.plot(i, d["U_predicted"][:, n], "--", color="C3", lw=1, label="prediction: mean of the values")
    ax.set_xlabel("query token i")
    ax.set_ylabel(f"head output u_i,{n} of A{h}, from L5 (a.u.)")
    ax.set_xticks(i)
    ax.set_title(f"P1  L2/3 silenced (A{h}), softmax:\nL5 output no longer depends on the query", fontsize=9)
    ax.legend(fontsize=7, loc="best")


def _panel_p2(ax, res):
    h, d = res.measures["area"], res.data
    i = np.arange(len(d["L5_rate_intact"]))
    ax.plot(i, d["L5_rate_intact"], "o-", color="C0", label="intact")
    ax.plot(i, d[f"L5_rate apical (A{h})"], "s-", color="C1", label="apical input cut")
    ax.plot(i, d[f"L5_rate L23 (A{h})"], "^-", color="C2", label="L2/3 silenced (contrast)")
    ax.axhline(
        res.measures["driven_response"], color="C3", ls="--", lw=1, label="driven response [±v_j]+ at gain 1"
    )
    ax.set_xlabel("query token i")
    ax.set_ylabel(f"mean L5 rate of A{h} (a.u.)")
    ax.set_xticks(i)
    q = res.measures
    ax.set_title(
        f"P2  apical (L1) input cut (A{h}), linear: attention gone\n"
        f"(query dep. {q['query_dependence_intact']:.2f} -> {q['query_dependence_lesioned']:.2g}), "
        "driven response kept",
        fontsize=9,
    )
    ax.legend(fontsize=7, loc="best")


def _panel_p3(ax, res):
    single, cumulative = res.measures["single"], res.measures["cumulative"]
    labels = single + cumulative[1:]
    got = [res.lesions[k].measures["change_vs_intact"] for k in labels]
    pred = [res.lesions[k].measures["predicted_change"] for k in labels]
    names = [k.replace("area ", "").strip("()") for k in labels]
    _bars(ax, names, got, pred, "relative change of y, ||ΔY|| / ||Y||")
    ax.axvline(len(single) - 0.5, color="0.6", lw=0.8, ls=":")
    ax.set_xlabel("silenced area(s): one at a time  |  together")
    ax.set_title(
        f"P3  one area silenced: its head's term lost\n(terms add up: additivity error "
        f"{res.measures['additivity_error']:.1e})",
        fontsize=9,
    )
    ax.set_ylim(0, max(max(got), max(pred)) * 1.3)
    ax.legend(fontsize=7, loc="upper left", ncol=2)


def _panel_p4(ax, res):
    run = res.lesions["HO"]
    labels = ["block output y\n(HO thalamus)", "head outputs u\n(L5 of every area)"]
    got = [run.measures["change_vs_intact"], res.measures["head_outputs_change"]]
    _bars(ax, labels, got, [1.0, 0.0], "relative change vs intact")
    ax.set_xlabel("output read from")
    ax.set_ylim(0, 1.25)
    ax.set_title(
        "P4  higher-order thalamus silenced:\nblock output gone "
        f"(max |y| = {res.measures['max_abs_output']:.2g}), cortex unchanged",
        fontsize=9,
    )
    ax.legend(fontsize=7, loc="upper right")


def _panel_p5(ax, res):
    labels = list(res.lesions)
    kinds = [
        ("self_change", "B self-attention term"),
        ("cross_change", "B cross-attention term (reads A)"),
        ("change_vs_intact", "block output y"),
    ]
    x = np.arange(len(labels))
    width = 0.26
    for k, (key, name) in enumerate(kinds):
        vals = [res.lesions[lab].measures[key] for lab in labels]
        ax.bar(x + (k - 1) * width, vals, width, label=name, color=f"C{k}")
    pred = {"L23 (A)": (0.0, 1.0), "L23 (B)": (1.0, 0.0)}
    for j, lab in enumerate(labels):
        for k, v in enumerate(pred.get(lab, ())):
            ax.scatter(
                x[j] + (k - 1) * width,
                v,
                marker="_",
                s=250,
                linewidths=2.5,
                color="C3",
                zorder=4,
                label="maths prediction" if j == 0 and k == 0 else None,
            )
    ax.set_xticks(x)
    ax.set_xticklabels([f"L2/3 of area {lab[-2]} silenced" for lab in labels], fontsize=8)
    ax.set_xlabel("lesion (composite circuit)")
    ax.set_ylabel("relative change vs intact")
    ax.set_ylim(0, 1.35)
    ax.set_title(
        "P5  area B reads area A's L2/3 memory:\nA's L2/3 silenced removes only B's cross-attention",
        fontsize=9,
    )
    ax.legend(fontsize=7, loc="upper center", ncol=2)


def _panel_pool(ax, res):
    area = res.measures["area"]
    run = res.lesions[res.measures["lesion"]]
    identity_scatter(ax, run.Y_predicted, run.Y, ["C1"] * run.Y.shape[1], [None] * run.Y.shape[1])
    ax.scatter(
        res.Y_ref.ravel(), res.Y_intact.ravel(), s=10, color="C0", label="intact vs normalised reference"
    )
    ax.scatter([], [], s=14, color="C1", label="pool removed vs unnormalised prediction")
    ax.set_xlabel("reference / prediction y_i,d (a.u.)")
    ax.set_ylabel("circuit y_i,d (a.u.)")
    m = run.measures
    ax.set_title(
        f"pool removed (A{area}), normalized attention:\nA{area} becomes unnormalised "
        f"(change {_pct(m['change_vs_intact'])}, vs prediction {m['error_vs_predicted']:.1e})",
        fontsize=9,
    )
    ax.legend(fontsize=7, loc="upper left")


_PANELS = {
    "P1": _panel_p1,
    "P2": _panel_p2,
    "P3": _panel_p3,
    "P4": _panel_p4,
    "P5": _panel_p5,
    "pool": _panel_pool,
}


def lesion_figure(results: dict, path, *, title: str | None = None) -> Path:
    """The lesion predictions (``{key: PredictionResult}``), one panel each, 2 x 3 grid."""
    plt = pyplot()
    keys = [k for k in _PANELS if k in results]
    ncols = min(3, len(keys))
    nrows = int(np.ceil(len(keys) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 4.3 * nrows + 0.5), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        _PANELS[key](ax, results[key])
    for ax in axes.flat[len(keys) :]:
        ax.axis("off")
    backend = next(iter(results.values())).backend
    fig.suptitle(
        title
        or f"Lesion predictions (MODEL.md section 5), {backend} backend; "
        "red bars: what the attention maths predicts"
    )
    fig.tight_layout()
    return save(fig, path)
