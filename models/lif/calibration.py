r"""Transfer look-up tables of a ``lif`` cell type, from a calibration run of the model alone.

``calibrate(model, grid)`` runs one population per grid point (constant inputs, Brian2) and
reduces the measured readout rates ``R`` to monotone look-up tables, by the model's law:

* ``1d``       R(x) = F(x);                         inverse F^{-1}(r)
* ``product``  R(I_b, I_a) ~ F(I_b) G(I_a)          (max G = 1); inverse in I_b at a given
               I_a: F^{-1}(r / G(I_a)). With a *gain row* (``gain_row_cells``), F is the rate
               at the grid's top apical input, measured with that many cells per point, and
               G_j = sum_i R_ij / sum_i F_i (the surface pooled over I_b), both rescaled so
               that max G = 1 (the product F G is unchanged by it); without, the
               rank-1 SVD of the surface. At a small basal input a few cells fire most of
               the events, so a surface point of 100 cells holds a frozen draw error of several
               percent, which the SVD passes on to F; in the gain row every event is a burst,
               and it can afford many cells (one row, not a surface).
* ``quotient`` R(I, g) ~ F(q), q = I / (1 + g)       (rates averaged per q); inverse F^{-1}(r)

Tables are piecewise linear (``np.interp``) on the calibrated abscissa, made non-decreasing
(a running maximum) so the inverse exists. Nothing here reads a circuit, its solution or a
reference: the table depends only on the neuron model, the grid and the calibration settings.

Results are cached as ``.npz`` in ``$CTATTN_CACHE`` (or ``~/.cache/ctattn/lif``) under the
SHA-256 of the model's parameters (:func:`parameter_hash`) and the calibration settings; a
file is written to a temporary name and renamed, so a crash never leaves half a table. Tables
shipped with the package (``models/lif/tables/``, same file names) are read when the cache has
none: a fresh machine needs no calibration run for the spiking backend's settings.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass

import numpy as np

from .cells import DRAW_SCHEME, LifModel
from .simulate import simulate_grid

__all__ = ["TransferTable", "calibrate", "parameter_hash", "cache_dir"]


#: Tables shipped with the package (``scripts/lif_tables.py``), read when the cache has none
#: under the same key; a model or setting that changed has another key and is recalibrated.
SHIPPED_TABLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tables")


def parameter_hash(model: LifModel) -> str:
    """SHA-256 (hex) of everything that defines the cell's dynamics."""
    blob = json.dumps(model.describe(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def cache_dir() -> str:
    return os.environ.get("CTATTN_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "ctattn", "lif")


def _monotone(x):
    return np.maximum.accumulate(np.asarray(x, float))


@dataclass(frozen=True)
class TransferTable:
    """Calibrated transfer of one cell type. ``axis``/``F``: the 1-D table (input, or quotient
    for ``quotient``); ``axis_a``/``G``: the apical gain table (``product`` only); ``rates``:
    the raw measured surface on the grid (shape of the grid axes)."""

    law: str
    key: str
    axis: np.ndarray
    F: np.ndarray
    axis_a: np.ndarray | None
    G: np.ndarray | None
    rates: np.ndarray
    grid_axes: tuple

    def transfer(self, x, a=None):
        """Predicted readout rate (Hz): F(x) [1d], F(x) G(a) [product], F(x / (1 + a)) [quotient]."""
        x = np.asarray(x, float)
        if self.law == "1d":
            return np.interp(x, self.axis, self.F)
        if self.law == "product":
            return np.interp(x, self.axis, self.F) * np.interp(a, self.axis_a, self.G)
        return np.interp(x / (1.0 + np.asarray(a, float)), self.axis, self.F)

    def inverse(self, r, a=None):
        """The input that gives rate ``r``: x [1d], I_b at apical ``a`` [product], the quotient q."""
        r = np.asarray(r, float)
        if self.law == "product":
            r = r / np.maximum(np.interp(a, self.axis_a, self.G), 1e-12)
        # a flat stretch (running maximum) maps to its left end; outside the table: clipped
        F, idx = np.unique(self.F, return_index=True)
        return np.interp(r, F, self.axis[idx])

    def save(self, path):
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".npz.tmp")
        os.close(fd)
        arrays = {"law": np.array(self.law), "key": np.array(self.key), "axis": self.axis, "F": self.F}
        arrays.update(rates=self.rates, n_axes=np.array(len(self.grid_axes)))
        for k, ax in enumerate(self.grid_axes):
            arrays[f"grid_{k}"] = ax
        if self.G is not None:
            arrays.update(axis_a=self.axis_a, G=self.G)
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path):
        with np.load(path) as z:
            axes = tuple(z[f"grid_{k}"] for k in range(int(z["n_axes"])))
            has_g = "G" in z.files
            return cls(
                law=str(z["law"]),
                key=str(z["key"]),
                axis=z["axis"],
                F=z["F"],
                axis_a=z["axis_a"] if has_g else None,
                G=z["G"] if has_g else None,
                rates=z["rates"],
                grid_axes=axes,
            )


def table_from_rates(law: str, key: str, axes: tuple, R: np.ndarray, gain_row=None) -> TransferTable:
    """Reduce a measured rate surface ``R`` (shape of ``axes``) to the model law's tables;
    ``gain_row`` (``product`` only): the rates along ``axes[0]`` at the top apical input."""
    axes = tuple(np.asarray(a, float) for a in axes)
    if law == "1d":
        return TransferTable(law, key, axes[0], _monotone(R), None, None, R, axes)
    if law == "product" and gain_row is not None:
        F = np.asarray(gain_row, float)
        if F.shape != axes[0].shape or not np.all(np.isfinite(F)) or F.sum() <= 0:
            raise ValueError(f"gain_row: expected {axes[0].size} finite rates, not all 0, got {F!r}")
        G = R.sum(axis=0) / F.sum()
        scale = max(np.abs(G).max(), 1e-300)
        return TransferTable(law, key, axes[0], _monotone(F * scale), axes[1], _monotone(G / scale), R, axes)
    if law == "product":
        U, s, Vt = np.linalg.svd(R)
        F, G = U[:, 0] * s[0], Vt[0]
        if G.sum() < 0:  # the SVD's sign is arbitrary
            F, G = -F, -G
        scale = np.abs(G).max()
        F, G = F * scale, G / scale
        return TransferTable(law, key, axes[0], _monotone(F), axes[1], _monotone(G), R, axes)
    if law == "quotient":
        Xg, Ag = np.meshgrid(axes[0], axes[1], indexing="ij")
        q = np.round((Xg / (1.0 + Ag)).ravel(), 9)
        qu, inv = np.unique(q, return_inverse=True)
        Fq = np.bincount(inv, R.ravel()) / np.bincount(inv)
        return TransferTable(law, key, qu, _monotone(Fq), None, None, R, axes)
    raise ValueError(f"unknown law {law!r}")


def calibrate(
    model: LifModel,
    input_grid: dict,
    *,
    n_per: int = 100,
    duration: float = 1.0,
    seed: int = 0,
    dt: float = 1e-4,
    target: str = "numpy",
    use_cache: bool = True,
    gain_row_cells: int | None = None,
) -> TransferTable:
    """Calibration run of ``model`` over ``input_grid`` (input name -> 1-D axis; the full
    Cartesian grid is simulated) and its look-up table, from the disk cache when present.
    ``gain_row_cells`` (``product`` law): also run the gain row (the first input's axis at
    the second's top value) with that many cells per point, and take F from it.

    ``seed`` seeds the calibration run itself (derive it from the master seed with
    ``ctattn.core.seeding.seed_for``); it is part of the cache key.
    """
    if set(input_grid) != set(model.inputs):
        raise ValueError(f"input_grid must give exactly the inputs {model.inputs} of {model.name}")
    axes = tuple(np.asarray(input_grid[k], float).ravel() for k in model.inputs)
    settings = {
        "model": parameter_hash(model),
        "heterogeneity": DRAW_SCHEME,
        "axes": [a.tolist() for a in axes],
        "n_per": int(n_per),
        "duration": float(duration),
        "seed": int(seed),
        "dt": float(dt),
        "law": model.law,
        "target": target,  # Brian2's noise stream differs between code-generation targets
    }
    if model.law == "product" and gain_row_cells:
        settings["gain_row_cells"] = int(gain_row_cells)
        settings["reduction"] = "F: gain row at the top apical input; G: surface pooled over the basal axis"
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode("utf-8")).hexdigest()
    path = os.path.join(cache_dir(), f"{model.name}-{key[:32]}.npz")
    shipped = os.path.join(SHIPPED_TABLES, os.path.basename(path))
    if use_cache and not os.path.exists(path) and os.path.exists(shipped):
        path = shipped  # a table shipped with the package, under the same key
    if use_cache and os.path.exists(path):
        try:
            table = TransferTable.load(path)
        except (OSError, ValueError, KeyError):
            table = None  # unreadable cache file: recalibrate and overwrite it
        if table is not None and table.key == key:
            return table
    mesh = np.meshgrid(*axes, indexing="ij")
    grid = {k: m.ravel() for k, m in zip(model.inputs, mesh)}
    run = simulate_grid(model, grid, n_per, duration, np.random.default_rng(seed), dt=dt, target=target)
    R = run.rates().reshape(mesh[0].shape)
    gain_row = None
    if "gain_row_cells" in settings:
        rng = np.random.default_rng([seed, 1])  # its own stream: the surface is unchanged by it
        row = {model.inputs[0]: axes[0], model.inputs[1]: np.full(len(axes[0]), axes[1].max())}
        gain_row = simulate_grid(model, row, int(gain_row_cells), duration, rng, dt=dt, target=target).rates()
    table = table_from_rates(model.law, key, axes, R, gain_row)
    if use_cache:
        path = os.path.join(cache_dir(), os.path.basename(path))
        os.makedirs(cache_dir(), exist_ok=True)
        table.save(path)
    return table
