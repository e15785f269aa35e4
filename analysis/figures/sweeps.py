r"""Sweep figure: the output error against neurons per unit and counting window, with 95 %
confidence bands across seeds.

For every point of the sweep, the relative errors of its seeds and replicates (the samples
along the ``seed`` and ``replicate`` dimensions) give a mean and a Student-t interval::

    mean +- t_{0.975, m-1} s / sqrt(m)        (m samples, s their standard deviation)

Lines: one per counting window (``window_ms``) against neurons per unit (log-log); any other
axis gets its own panel. Dotted: the mean shot-noise bound (spiking backend), the error Poisson
counting in the readout alone predicts. Takes an xarray Dataset
(:mod:`ctattn.sweeps.results`), duck-typed (no xarray import here).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from ctattn.analysis.plotting import pyplot
from ctattn.analysis.statistics import t_quantile

__all__ = ["mean_and_ci", "sweep_error_figure", "SAMPLE_DIMS"]

SAMPLE_DIMS = ("seed", "replicate")  # the dimensions a band is taken across


def mean_and_ci(values, level: float = 0.95) -> tuple[float, float]:
    """Mean of the finite ``values`` and the half-width of its ``level`` t interval (NaN if < 2)."""
    x = np.asarray(values, float).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), float("nan")
    if x.size == 1:
        return float(x[0]), float("nan")
    half = t_quantile(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    return float(x.mean()), float(half)


def sweep_error_figure(ds, x: str = "neurons_per_unit", line: str = "window_ms", variable: str = "rel_error"):
    """The figure (matplotlib ``Figure``) of ``variable`` against ``x``, one line per ``line``."""
    plt = pyplot()
    err = ds[variable]
    if x not in err.dims:
        raise ValueError(f"sweep figure: the sweep has no {x!r} axis (axes: {list(err.dims)})")
    sample = [d for d in err.dims if d in SAMPLE_DIMS]
    lines = line if line in err.dims else None
    panel_dims = [d for d in err.dims if d not in (*sample, x) and d != lines]
    panels = list(itertools.product(*[range(err.sizes[d]) for d in panel_dims])) or [()]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels) + 0.6, 3.6), squeeze=False)
    xs = np.asarray(err[x].values, float)
    bound = ds["shot_noise_bound"] if "shot_noise_bound" in ds else None
    colors = plt.get_cmap("viridis")
    n_lines = err.sizes[lines] if lines else 1
    for ax, where in zip(axes[0], panels):
        sel = dict(zip(panel_dims, where))
        for k in range(n_lines):
            pick = {**sel, **({lines: k} if lines else {})}
            one = err.isel(pick)
            stats = np.array([mean_and_ci(one.isel({x: i}).values) for i in range(len(xs))])
            color = colors(k / max(n_lines - 1, 1) * 0.85)
            value = err[lines].values[k] if lines else None
            label = (
                variable
                if not lines
                else (f"window {float(value):g} ms" if lines == "window_ms" else f"{lines} = {value}")
            )
            ax.plot(xs, stats[:, 0], "o-", color=color, label=label)
            lo, hi = stats[:, 0] - stats[:, 1], stats[:, 0] + stats[:, 1]
            if np.isfinite(stats[:, 1]).any():
                ax.fill_between(xs, np.maximum(lo, stats[:, 0] * 1e-3), hi, color=color, alpha=0.25, lw=0)
            if bound is not None and np.isfinite(np.asarray(bound.isel(pick).values, float)).any():
                b = [
                    np.nanmean(np.asarray(bound.isel(pick).isel({x: i}).values, float))
                    for i in range(len(xs))
                ]
                ax.plot(xs, b, ":", color=color)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(xs, [f"{v:g}" for v in xs])
        ax.xaxis.set_minor_locator(plt.NullLocator())
        ax.set_xlabel(x.replace("_", " "))
        ax.set_ylabel("relative error ||Y - Y_ref|| / ||Y_ref||")
        title = ", ".join(f"{d} = {err[d].values[i]}" for d, i in sel.items())
        m = int(np.prod([err.sizes[d] for d in sample])) if sample else 1
        ax.set_title(
            (title + "\n" if title else "") + f"mean and 95 % CI over {m} seeds; dotted: shot-noise bound"
        )
        ax.legend(frameon=False)
    fig.tight_layout()
    return fig
