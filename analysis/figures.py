r"""Figures: what the circuit does, side by side with the transformer it is meant to compute.

Run figures (``write_run_figures(run, folder)`` writes every one the run supports):

* ``raster.png`` (spiking backend): spike rasters grouped thalamus (first order) -> area
  (= head) -> layer (L2/3, L5) -> population -> higher-order thalamus, one row per rate unit,
  token windows marked;
* ``traces.png``: mean rate of every population over the token sequence, and the block
  output ``y_i(t)`` decoded from the higher-order relay against the reference's ``y_i``;
* ``attention.png`` (mask layout): the attention weights ``a_ij`` decoded from each area's own
  populations (:mod:`analysis.decoding`) beside the reference's, and their difference;
* ``scatter.png``: circuit against reference, for the block output ``y`` (one colour per
  output dimension) and for every head's output ``u^h`` read from its L5 cells;
* ``outputs.png``: ``Y``, ``Y_ref`` and ``Y - Y_ref`` as heat maps.

Experiment figures: :func:`error_scaling` (output error against neurons per unit and counting
window, with the shot-noise slope ``-1/2``) and :func:`lesion_figure` (the five lesion
predictions of MODEL.md section 5, :mod:`analysis.experiments`).

Every figure has labelled axes with units ("a.u." for the description's dimensionless rates;
seconds, Hz, ms) and a legend or colour bar.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from analysis.decoding import decode_attention, decode_head_outputs, query_windows
from analysis.plotting import area_label, ordered_populations, population_label, pyplot, save
from analysis.reference import multihead_attention

__all__ = [
    "write_run_figures",
    "raster",
    "rate_traces",
    "attention_maps",
    "output_scatter",
    "output_maps",
    "error_scaling",
    "lesion_figure",
    "window_edges",
    "RUN_FIGURES",
    "FIGURE_NAMES",
    "load_figure_config",
    "make_figure",
    "default_config_path",
]

RUN_FIGURES = ("raster", "traces", "attention", "scatter", "outputs")
_MAX_HEADS = 4  # heads shown in per-head panels (the rest are summarised in the title)


def _reference_trace(run):
    return multihead_attention(
        run.tokens.X,
        **run.weights.arrays(),
        X_kv=run.tokens.X_kv,
        trace=True,
        **run.spec.reference_kwargs(run.weights),
    )


# -- time axis ------------------------------------------------------------------------------
def window_edges(circuit, info: dict) -> list[tuple[float, float, float]]:
    """Per presentation window ``(start_s, count_start_s, end_s)``; ``count_start`` is where the
    output is read (spiking: its counting phase; rate: the end). ``[]`` when the backend has
    no time axis (ideal)."""
    backend = info.get("backend")
    if backend == "spiking":
        from circuits.backends.spiking import SpikingTiming

        timing = SpikingTiming(
            settle=info["settle_ms"] * 1e-3,
            window=info["window_ms"] * 1e-3,
            write=(info.get("write_ms") or info["window_ms"]) * 1e-3,
            tau_m=info["tau_ms"] * 1e-3,
            tau_syn=info["tau_syn_ms"] * 1e-3,
            dt=info["dt_ms"] * 1e-3,
        )
        edges, t = [], 0.0
        for phases in timing.phases(circuit):
            durations = [s * timing.dt for _, s in phases]
            count = durations[-1] if phases[-1][0] == "count" else 0.0
            end = t + sum(durations)
            edges.append((t, end - count, end))
            t = end
        return edges
    if backend == "rate":
        window = info["window_ms"] * 1e-3
        return [(k * window, (k + 1) * window, (k + 1) * window) for k in range(info["n_windows"])]
    return []


def _window_labels(circuit) -> list[str]:
    labels = []
    for w in circuit.schedule:
        if w.readout:
            labels.append(f"x{w.query}")
        elif w.write is not None:
            labels.append(f"w{w.write}")
        else:
            labels.append("")
    return labels


def _mark_windows(ax, circuit, edges, top_labels: bool = True) -> None:
    """Shade the read-out (counting) phase of every window and label it with its token."""
    for start, count, end in edges:
        ax.axvline(start, color="0.75", lw=0.6, zorder=0)
        if count < end:
            ax.axvspan(count, end, color="0.93", zorder=-1, lw=0)
    if top_labels and edges:
        labels = _window_labels(circuit)
        sec = ax.secondary_xaxis("top")
        sec.set_xticks([(s + e) / 2 for s, _, e in edges])
        sec.set_xticklabels(labels)
        sec.tick_params(length=0)
        writes = any(label.startswith("w") for label in labels)
        sec.set_xlabel(
            "token presented (x_i: query i" + ("; w_j: writing x_j into memory)" if writes else ")")
        )


# -- raster ---------------------------------------------------------------------------------
def raster(circuit, result, path, *, max_rows: int = 24, title: str | None = None) -> Path:
    """Spike raster of ``result.spikes``: one row per rate unit (its first neuron), at most
    ``max_rows`` units per population, grouped thalamus -> area -> layer -> population."""
    if not result.spikes:
        raise ValueError("raster: the result has no spikes (run the spiking backend)")
    plt = pyplot()
    n = int(result.info.get("neurons_per_unit", 1))
    pops = [p for p in ordered_populations(circuit) if p.name in result.spikes]
    rows_per = {p.name: min(p.size, max_rows) for p in pops}
    total = sum(rows_per.values())
    fig, ax = plt.subplots(figsize=(11, 1.6 + 0.045 * total + 0.18 * len(pops)))
    y0, ticks, tick_labels = 0, [], []
    area_colors = {}
    palette = plt.cm.tab10.colors
    for p in pops:
        rows = rows_per[p.name]
        units = np.unique(np.linspace(0, p.size - 1, rows).round().astype(int))
        times, index = result.spikes[p.name]
        unit = np.asarray(index) // n
        first = (np.asarray(index) % n) == 0  # one neuron per unit: a readable row
        row_of = {u: k for k, u in enumerate(units)}
        keep = first & np.isin(unit, units)
        ys = y0 + np.array([row_of[u] for u in unit[keep]], dtype=float)
        key = p.area if p.region == "cortex" else p.layer
        color = area_colors.setdefault(key, palette[len(area_colors) % len(palette)])
        ax.scatter(np.asarray(times)[keep], ys, s=2.0, marker="|", color=color, linewidths=0.8)
        if p.silenced:
            ax.text(
                0.005,
                y0 + len(units) / 2,
                "silenced",
                transform=ax.get_yaxis_transform(),
                fontsize=8,
                va="center",
                color="0.3",
            )
        ax.axhline(y0 - 0.5, color="0.6", lw=0.5)
        ticks.append(y0 + (len(units) - 1) / 2)
        tick_labels.append(f"{population_label(p)} ({len(units)}/{p.size})")
        y0 += len(units)
    from matplotlib.lines import Line2D

    names = {"FO": "first-order thalamus", "HO": "higher-order thalamus"}
    handles = [
        Line2D([], [], color=c, marker="|", ls="", markersize=9, mew=2, label=names.get(k, area_label(k)))
        for k, c in area_colors.items()
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, title="spikes of")
    edges = window_edges(circuit, result.info)
    _mark_windows(ax, circuit, edges)
    ax.set_yticks(ticks)
    ax.set_yticklabels(tick_labels)
    ax.set_ylim(y0 - 0.5, -0.5)
    ax.set_xlim(0, edges[-1][2] if edges else None)
    ax.set_xlabel("time (s)  [grey: counting phase, where the output is read]")
    ax.set_ylabel("population (rate units shown / all)")
    rec = "" if len(pops) == len(circuit.populations) else " (readout only: record_spikes was off)"
    ax.set_title(title or f"Spike raster, {n} neurons per unit; one neuron per unit shown{rec}")
    fig.tight_layout()
    return save(fig, path)


# -- rate traces ----------------------------------------------------------------------------
def _binned_traces(circuit, result, bin_s: float = 0.02):
    n = int(result.info.get("neurons_per_unit", 1))
    rates = result.info.get("rate_hz", {})
    end = result.info.get("sim_time_s") or max(float(np.max(t)) for t, _ in result.spikes.values() if len(t))
    bins = np.arange(0.0, end + bin_s, bin_s)
    out = {}
    for p in circuit.populations:
        if p.name not in result.spikes:
            continue
        t, i = result.spikes[p.name]
        counts = np.zeros((len(bins) - 1, p.size))
        idx = np.asarray(i) // n
        h, _, _ = np.histogram2d(np.asarray(t), idx, bins=[bins, np.arange(p.size + 1)])
        counts += h
        out[p.name] = (
            bins[:-1] + bin_s / 2,
            (counts / (n * bin_s * rates.get(p.layer, 1.0))).reshape((-1,) + p.shape),
        )
    return out


def _traces(circuit, result):
    """``({population: (t, rates (n_t, columns, units))}, timed)``; ``timed`` is False when only
    the steady state at the end of each window is known (then ``t`` is the window index)."""
    if result.traces:
        return result.traces, True
    if result.spikes and len(result.spikes) == len(circuit.populations):
        return _binned_traces(circuit, result), True
    k = np.arange(len(circuit.schedule), dtype=float)
    return {name: (k, r) for name, r in result.window_rates.items()}, False


def _settled_range(t, y, edges, values_ref) -> tuple[float, float] | None:
    """y-limits covering the last fifth of every window (settled) and the reference."""
    keep = np.zeros(len(t), dtype=bool)
    for start, _, end in edges:
        keep |= (t >= end - 0.2 * (end - start)) & (t <= end)
    if not keep.any():
        return None
    vals = np.concatenate([y[keep].ravel(), np.ravel(values_ref)])
    lo, hi = float(np.nanmin(vals)), float(np.nanmax(vals))
    pad = 0.25 * (hi - lo or 1.0)
    return lo - pad, hi + pad


def rate_traces(run, path) -> Path:
    """Population rates over the token sequence, and ``y_i(t)`` against the reference's ``y_i``.

    With traces (rate backend with ``trace_dt_ms``, spiking backend with spikes of every
    population or traces) the x axis is time; otherwise each window's steady state is drawn
    as a step over that window.
    """
    plt = pyplot()
    circuit, result = run.circuit, run.result
    traces, timed = _traces(circuit, result)
    n_windows = len(circuit.schedule)
    edges = window_edges(circuit, result.info) if timed else [(k, k + 1.0, k + 1.0) for k in range(n_windows)]
    pops = ordered_populations(circuit)
    areas = []
    for p in pops:
        if p.region == "cortex" and p.area not in areas:
            areas.append(p.area)
    shown = areas[:_MAX_HEADS]
    rows = ["FO"] + shown + ["HO"]
    fig, axes = plt.subplots(len(rows), 1, figsize=(11, 1.25 + 1.35 * len(rows)), sharex=True)

    def plot(ax, t, y, **kw):
        if timed:
            ax.plot(t, y, **kw)
        else:
            ax.stairs(y, np.arange(len(y) + 1.0), baseline=None, **kw)

    for ax, row in zip(axes, rows):
        if row == "HO":
            continue
        members = [p for p in pops if (p.layer == "FO" if row == "FO" else p.area == row)]
        for p in members:
            if p.name in traces:
                t, r = traces[p.name]
                plot(
                    ax,
                    t,
                    r.reshape(len(t), -1).mean(axis=1),
                    lw=1.1,
                    label=population_label(p).replace(f"{row} ", ""),
                )
        ax.set_ylabel("mean rate (a.u.)")
        ax.set_title(
            "first-order thalamus (relays)" if row == "FO" else area_label(row), loc="left", fontsize=9
        )
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax = axes[-1]
    ho = circuit.population(circuit.readout)
    dims = list(range(min(ho.signed_dims, 4)))
    colors = plt.cm.viridis(np.linspace(0, 0.85, len(dims)))
    windows, queries = query_windows(circuit)
    clipped = ""
    if ho.name in traces:
        t, r = traces[ho.name]
        y = ho.decode(r)[:, 0]
        for d, c in zip(dims, colors):
            plot(ax, t, y[:, d], lw=1.1, color=c, label=f"circuit y_d, d={d}")
        if timed:
            limits = _settled_range(t, y[:, dims], [edges[k] for k in windows], run.Y_ref[queries][:, dims])
            if limits and (np.nanmin(y[:, dims]) < limits[0] or np.nanmax(y[:, dims]) > limits[1]):
                ax.set_ylim(*limits)
                clipped = "; axis clipped to the settled range"
    xs = [0.5 * (edges[k][1] + edges[k][2]) if timed else k + 0.5 for k in windows]
    for d, c in zip(dims, colors):
        ax.scatter(
            xs,
            run.Y_ref[queries, d],
            marker="_",
            s=160,
            linewidths=2.2,
            color=c,
            label="reference y_i,d" if d == 0 else None,
            zorder=5,
        )
    ax.set_ylabel("output y (a.u.)")
    ax.set_title(
        f"higher-order thalamus: block output y_i = ON - OFF (bars: reference{clipped})",
        loc="left",
        fontsize=9,
    )
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    for a in axes:
        _mark_windows(a, circuit, edges, top_labels=a is axes[0])
    ax.set_xlabel("time (s)" if timed else "presentation window (steady state at its end)")
    extra = f" ({len(areas) - len(shown)} more areas not shown)" if len(areas) > len(shown) else ""
    fig.suptitle(f"Rates over the token sequence, {run.backend} backend{extra}")
    fig.tight_layout()
    return save(fig, path)


# -- attention maps -------------------------------------------------------------------------
def attention_maps(run, path) -> Path | None:
    """Decoded ``a_ij`` per area beside the reference's, with the error (mask layout only)."""
    if run.circuit.info.get("layout") != "mask":
        return None  # the KV-memory layout never forms a_ij (paper v3)
    plt = pyplot()
    A = decode_attention(run.circuit, run.result.window_rates)
    A_ref = _reference_trace(run).A
    H = min(A.shape[0], _MAX_HEADS)
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
def _identity_scatter(ax, ref, got, colors, labels):
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
    U_ref = _reference_trace(run).U
    H = min(U.shape[0], _MAX_HEADS)
    n_panels = 2 + H
    ncols = n_panels if n_panels <= 4 else 3
    nrows = int(np.ceil(n_panels / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.5 * nrows + 0.4), squeeze=False)
    D = Y.shape[1]
    few = D <= 8
    colors = plt.cm.viridis(np.linspace(0, 0.9 if few else 1.0, D))
    ax = axes[0, 0]
    _identity_scatter(ax, R, Y, colors, [f"d={d}" if few else None for d in range(D)])
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
        _identity_scatter(
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
    _identity_scatter(ax, run.Y_predicted, run.Y, ["C1"] * run.Y.shape[1], [None] * run.Y.shape[1])
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


# -- figures from configuration files -------------------------------------------------------
FIGURE_NAMES = ("raster", "traces", "attention", "scatter", "outputs", "scaling", "lesions")
_COMMON_KEYS = ("name", "out")
_FIGURE_KEYS = {
    "raster": ("title", "max_rows"),
    "scaling": ("title", "neurons_per_unit", "window_ms"),
    "lesions": ("title", "predictions", "problem_seed"),
}
# The lesion experiments fix their own problems (analysis.experiments.PROBLEM); only the
# backend and its options come from [run].
_LESION_RUN_KEYS = (
    "backend",
    "seed",
    "neurons_per_unit",
    "window_ms",
    "settle_ms",
    "write_ms",
    "tau_ms",
    "dt_ms",
    "target",
)


def default_config_path(name: str) -> Path:
    """``configs/figures/NAME.toml`` of this source tree."""
    return Path(__file__).resolve().parents[1] / "configs" / "figures" / f"{name}.toml"


def _check_list(key, value, kind, source):
    from ctattn.config import parse_duration_ms
    from ctattn.problem import InputError

    if not isinstance(value, list) or not value:
        raise InputError(f"{source}: figure.{key}: expected a non-empty list, got {value!r}")
    if kind == "duration":
        return [parse_duration_ms(f"figure.{key}", v) for v in value]
    out = []
    for v in value:
        if kind is int and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise InputError(f"{source}: figure.{key}: expected positive integers, got {v!r}")
        if kind is str and not isinstance(v, str):
            raise InputError(f"{source}: figure.{key}: expected names, got {v!r}")
        out.append(v)
    return out


def load_figure_config(name: str, path=None):
    """``(figure settings, RunConfig)`` of figure ``name`` from a TOML file.

    The file has a ``[figure]`` table (``name``, ``out``, ``title`` and the figure's own
    keys) and a ``[run]`` table (the keys of ``ctattn run``, durations as ``"20 ms"``).
    Unknown keys are rejected with their name.
    """
    import tomllib

    from ctattn.config import RunConfig, validate_config
    from ctattn.problem import InputError

    if name not in FIGURE_NAMES:
        raise InputError(f"figure: unknown {name!r}; choose one of {list(FIGURE_NAMES)}")
    path = Path(path) if path is not None else default_config_path(name)
    source = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"config: file not found: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"config: {path} is not valid TOML ({exc})") from None
    unknown = sorted(set(data) - {"figure", "run"})
    if unknown:
        raise InputError(
            f"{source}: unknown table(s) or key(s) {unknown}; a figure config has [figure] and [run]"
        )
    figure = dict(data.get("figure", {}))
    allowed = _COMMON_KEYS + _FIGURE_KEYS.get(name, ())
    unknown = sorted(set(figure) - set(allowed))
    if unknown:
        raise InputError(
            f"{source}: unknown key(s) {['figure.' + k for k in unknown]} for figure {name!r}; "
            f"allowed: {list(allowed)}"
        )
    if figure.get("name", name) != name:
        raise InputError(f"{source}: figure.name is {figure['name']!r}, not {name!r}")
    for key in ("out", "title"):
        if key in figure and not isinstance(figure[key], str):
            raise InputError(f"{source}: figure.{key}: expected a string, got {figure[key]!r}")
    if "neurons_per_unit" in figure:
        figure["neurons_per_unit"] = _check_list("neurons_per_unit", figure["neurons_per_unit"], int, source)
    if "window_ms" in figure:
        figure["window_ms"] = _check_list("window_ms", figure["window_ms"], "duration", source)
    if "predictions" in figure:
        from analysis.experiments import PREDICTIONS

        figure["predictions"] = _check_list("predictions", figure["predictions"], str, source)
        bad = sorted(set(figure["predictions"]) - set(PREDICTIONS))
        if bad:
            raise InputError(f"{source}: figure.predictions: unknown {bad}; choose from {list(PREDICTIONS)}")
    for key in ("max_rows", "problem_seed"):
        v = figure.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise InputError(f"{source}: figure.{key}: expected a non-negative integer, got {v!r}")
    raw = data.get("run", {})
    if not isinstance(raw, dict):
        raise InputError(f"{source}: [run] must be a table")
    if name == "lesions":
        extra = sorted(set(raw) - set(_LESION_RUN_KEYS))
        if extra:
            raise InputError(
                f"{source}: key(s) {['run.' + k for k in extra]} do not apply to the lesion figure, "
                f"whose problems are fixed; allowed: {list(_LESION_RUN_KEYS)}"
            )
    return figure, RunConfig(validate_config(raw, source=f"{source} [run]"))


def make_figure(name: str, config=None, out=None, *, progress=None) -> tuple[Path, dict]:
    """Draw figure ``name`` from its config file (default :func:`default_config_path`).

    Returns the PNG's path (``out``, else ``figure.out``, else ``figures/NAME.png``) and a
    summary of the numbers behind it.
    """
    figure, cfg = load_figure_config(name, config)
    out = Path(out or figure.get("out") or f"figures/{name}.png")
    if name == "lesions":
        from analysis.experiments import PREDICTIONS, run_prediction

        options = {k: v for k, v in cfg.backend_options().items()}
        keys = figure.get("predictions", list(PREDICTIONS))
        results = {}
        for key in keys:
            results[key] = run_prediction(
                key, cfg["backend"], problem_seed=figure.get("problem_seed", 0), **options
            )
            if progress:
                progress(f"{key}: done")
        return lesion_figure(results, out, title=figure.get("title")), {
            k: r.summary() for k, r in results.items()
        }
    if name == "scaling":
        from analysis.experiments import sweep_errors

        records = sweep_errors(
            cfg,
            figure.get("neurons_per_unit", [10, 20, 40]),
            figure.get("window_ms", [100.0, 200.0]),
            progress=(
                lambda r: progress(
                    f"n={r['neurons_per_unit']} T={r['window_ms']:g} ms: rel. error {r['rel_error']:.3f}"
                )
            )
            if progress
            else None,
        )
        return error_scaling(records, out, title=figure.get("title")), dict(records=records)
    from ctattn.api import problem_from_config, simulate

    weights, tokens = problem_from_config(cfg.values)
    options = cfg.backend_options()
    if cfg["backend"] == "spiking":
        options["record_spikes"] = name == "raster"
        if name == "traces":
            options["trace_dt_ms"] = 2.0
    elif cfg["backend"] == "rate" and name == "traces":
        options["trace_dt_ms"] = 5.0
    run = simulate(
        weights,
        tokens,
        backend=cfg["backend"],
        variant=cfg["variant"],
        layout=cfg["layout"],
        phi=cfg["phi"],
        beta=cfg["beta"],
        causal=cfg["causal"],
        config=cfg.values,
        **options,
    )
    if name == "raster":
        path = raster(
            run.circuit, run.result, out, max_rows=figure.get("max_rows", 24), title=figure.get("title")
        )
    else:
        draw = {
            "traces": rate_traces,
            "attention": attention_maps,
            "scatter": output_scatter,
            "outputs": output_maps,
        }
        path = draw[name](run, out)
        if path is None:
            from ctattn.problem import InputError

            raise InputError(
                f"figure {name!r}: the {cfg['layout']} layout has no attention map; use layout 'mask'"
            )
    return path, run.summary()
