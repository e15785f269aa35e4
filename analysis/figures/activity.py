"""Activity figures: spike rasters and population rate traces over the token sequence.

* ``raster``: spike rasters grouped thalamus (first order) -> area (= head) -> layer -> population
  -> higher-order thalamus, token windows marked;
* ``rate_traces``: mean rate of every population, and the block output ``y_i(t)`` decoded from the
  higher-order relay against the reference's ``y_i``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ctattn.analysis.decoding import query_windows
from ctattn.analysis.figures.common import MAX_HEADS
from ctattn.analysis.plotting import area_label, ordered_populations, population_label, pyplot, save

__all__ = ["raster", "rate_traces", "window_edges", "mark_windows"]


# -- time axis ------------------------------------------------------------------------------
def window_edges(circuit, info: dict) -> list[tuple[float, float, float]]:
    """Per presentation window ``(start_s, count_start_s, end_s)``; ``count_start`` is where the
    output is read (spiking: its counting phase; rate: the end). ``[]`` when the backend has
    no time axis (ideal)."""
    backend = info.get("backend")
    if backend == "spiking":
        from ctattn.circuits.backends.spiking import SpikingTiming

        timing = SpikingTiming.from_ms(info)
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


def mark_windows(ax, circuit, edges, top_labels: bool = True) -> None:
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
    mark_windows(ax, circuit, edges)
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
    shown = areas[:MAX_HEADS]
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
        mark_windows(a, circuit, edges, top_labels=a is axes[0])
    ax.set_xlabel("time (s)" if timed else "presentation window (steady state at its end)")
    extra = f" ({len(areas) - len(shown)} more areas not shown)" if len(areas) > len(shown) else ""
    fig.suptitle(f"Rates over the token sequence, {run.backend} backend{extra}")
    fig.tight_layout()
    return save(fig, path)
