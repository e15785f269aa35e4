r"""Drive tables of the ``lif`` cells: model-only calibration, inverse look-ups, compartment bounds.

:func:`calibrated_tables` runs (or reads from the cache or the package) the calibration of every
cell type at the run's step (:func:`ctattn.models.lif.calibrate`: one population of the model
alone over an input grid; tables keyed by a SHA-256 of the parameters); :func:`inverse_lut`
samples ``F^{-1}`` (``G^{-1}``) on a uniform grid for Brian2 ``TimedArray`` look-ups;
:func:`compartment_bounds` splits each population's a-priori rate bound into the bounds of its
basal transfer ``f`` and apical gain ``g`` (:mod:`ctattn.circuits.bounds`). Nothing here reads
a circuit's solution, the ideal backend or the reference. The drive itself is documented in
:mod:`.lif_cells`.
"""

from __future__ import annotations

import time

import numpy as np
from ctattn.circuits.backends.spiking.encoding import adapted_rate_bounds
from ctattn.circuits.bounds import _input_bound
from ctattn.circuits.description import Circuit
from ctattn.models.lif import calibrate, get_model
from ctattn.models.spiking import ADAPTATION, adaptive

from ctattn.core.problem import Tokens

__all__ = [
    "GRIDS",
    "TOP_INPUT",
    "CALIBRATION",
    "CELLS_PER_POINT",
    "GAIN_ROW_CELLS",
    "TUFT_SIGMA",
    "TUFT_SHUNT",
    "POOL_EQUILIBRIUM",
    "QUOTIENT_BOUND",
    "adapted_populations",
    "lif_model",
    "calibrated_tables",
    "inverse_lut",
    "compartment_bounds",
]

#: Calibration grids per cell type (input -> axis); they extend below the operating ranges of
#: :data:`ctattn.models.lif.MODELS` down to silence, because a unit's value may be 0. The
#: pyramid's apical axis is 5x finer near the Ca2+ threshold (step 0.01 up to 0.2): the a-priori
#: bounds are loose, so apical values mostly sit in the first tenth of the range, where a 0.1
#: step interpolated across the threshold's toe and over-stated the burst probability there by
#: 10-60% (measured on the model alone: cells at I_a 0.01-0.06 burst 8-23% below such a table).
GRIDS = {
    "relay": {"I": np.round(np.arange(-1.0, 4.0001, 0.05), 6)},
    "interneuron": {"I": np.round(np.arange(-1.0, 4.5001, 0.05), 6)},
    "pyramidal": {
        "I_b": np.round(np.arange(-0.5, 2.0001, 0.05), 6),
        "I_a": np.round(
            np.concatenate([[-0.2, -0.1], np.arange(-0.05, 0.2, 0.01), np.arange(0.2, 1.0001, 0.05)]), 6
        ),
    },
}
#: Input at the top of each type's operating range (pyramid: the basal input; the apical top is
#: the grid's end, where G = 1): relay ~115 Hz, interneuron ~250 Hz, pyramid bursts ~50 Hz.
TOP_INPUT = {"relay": 3.6, "interneuron": 4.0, "pyramidal": 1.9}
#: Calibration run: duration (s) and seed; the seed is fixed (a property of the neuron model,
#: not of a run), so one cached table serves every run at a given dt.
CALIBRATION = dict(duration=2.0, seed=20260)
#: Cells per grid point of each cell type's calibration. The point cells' 1-D tables count
#: 2,000: the readout and the TRN copies run at 0.1-3 Hz (loose a-priori ranges), where 100
#: cells x 2 s counted 20-600 spikes and left each table point 4-22% off, an error every run at
#: that rate repeats (a bias, not noise). The pyramid's apical gain G pools its 51 x 44-point
#: surface over the basal axis.
CELLS_PER_POINT = {"relay": 2000, "interneuron": 2000, "pyramidal": 100}
#: Cells per point of the pyramid's *gain row* (its basal axis at full apical gain), from which
#: its F is taken (:func:`ctattn.models.lif.calibrate`). The L2/3 cells of the standard problem
#: sit at a small basal input (loose a-priori bounds: ``u_b`` 0.05-0.3), where a few cells
#: fire most events: the rank-1 fit of the 100-cell surface put F up to 3.5% high at
#: ``I_b`` 0.10-0.15 (``u_b`` ~0.03-0.04), a bias of every run there. 8,000 cells x 2 s count
#: ~24,000 events per point at ``u_b = 0.03`` (F ~1.5 Hz) and more above; the gain rows of the
#: numpy and Cython calibrations (independent noise) agree within 1.4%.
GAIN_ROW_CELLS = 8000
#: Standard deviation of the pyramids' tuft potential noise [choice] (0.05 in the standalone
#: model): it smooths P(Ca | I_a) near 0, where the circuit's apical values mostly sit (the
#: a-priori bounds are loose), and a toe there is rectified by a fluctuating apical input.
TUFT_SIGMA = 0.01
#: Shunting conductance on a divisive pyramid's tuft per unit value of its pool, in units of the
#: tuft's leak conductance [choice]: ``<va> = I_a / (1 + TUFT_SHUNT I_s)``. At the pool's
#: equilibrium (:data:`POOL_EQUILIBRIUM`) the shunt is 4x the leak; a pool that strays by a
#: fraction ``delta`` from it leaves a quotient error ``delta / (1 + TUFT_SHUNT)`` (5x less than
#: no division at all), and the exact quotient would need an infinite shunt.
TUFT_SHUNT = 4.0
#: The value at which the adaptive threshold holds an area's pool (its gains sum to 1,
#: :data:`ctattn.models.spiking.ADAPTATION`): the divisive tuft's drive is scaled by
#: ``1 + TUFT_SHUNT POOL_EQUILIBRIUM`` so that its burst probability is ``g / I_s`` there.
POOL_EQUILIBRIUM = 1.0
#: Bound of the divisive cells' apical quotient ``g_j / I_s`` (``B_a`` of their burst rate): a
#: gain is at most the pool's sum of which it is a part. Their tuft's drive still encodes the
#: adapted gain up to the adaptation's ceiling (transients), scaled so that the tuft potential
#: is ``h g / I_s`` (at most ``h (1 + TUFT_SHUNT) g / (1 + TUFT_SHUNT g) < 1`` while
#: ``I_s >= g``: the burst probability does not saturate).
QUOTIENT_BOUND = 1.0
#: Samples of the inverse look-up tables.
LUT_SIZE = 4001


def lif_model(kind: str):
    """The cell type's model: :data:`ctattn.models.lif.MODELS`, with the pyramid's tuft noise
    :data:`TUFT_SIGMA` (the backend's choice)."""
    model = get_model(kind)
    return model.with_constants(sigma_a=TUFT_SIGMA) if kind == "pyramidal" else model


def calibrated_tables(dt: float, target: str) -> tuple[dict, float]:
    """Per cell type, its :class:`~ctattn.models.lif.TransferTable` at step ``dt`` (cached), and
    the seconds spent (0 when every table came from the cache)."""
    t0 = time.perf_counter()
    tables = {}
    for name, grid in GRIDS.items():
        row = {"gain_row_cells": GAIN_ROW_CELLS} if name == "pyramidal" else {}
        tables[name] = calibrate(
            lif_model(name), grid, dt=dt, target=target, n_per=CELLS_PER_POINT[name], **row, **CALIBRATION
        )
    return tables, time.perf_counter() - t0


def adapted_populations(circuit: Circuit) -> frozenset[str]:
    """Populations whose apical gain carries their area's adaptive threshold ``m`` under
    ``lif``: the exponential gains (as with ``poisson``) and every gain of an area whose pool
    divides (the gain cells that report to the pool, and the divisive deep cells). The common
    factor ``exp(-m)`` cancels in ``g_j / sum_j' g_j'``; it holds the pool at
    :data:`POOL_EQUILIBRIUM`, where the tuft shunt divides (:data:`TUFT_SHUNT`)."""
    reporters = set(circuit.pool_reporters())
    return frozenset(
        p.name
        for p in circuit.populations
        if p.model.gain is not None and (adaptive(p.model) or p.model.divisive or p.name in reporters)
    )


def compartment_bounds(circuit: Circuit, tokens: Tokens) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per non-relay population, the a-priori bounds ``(B_b, B_a)`` of ``f(I_b + b_b)`` and
    ``g(I_a + b_a)`` (``B_a = 1`` without an apical compartment; the adaptation's ceiling for
    the adapted gains of :func:`adapted_populations`); the rate bounds downstream are those of
    :func:`ctattn.circuits.bounds.rate_bounds` with the same ceilings."""
    adapted = adapted_populations(circuit)
    ceiling = ADAPTATION["ceiling"]
    bounds = adapted_rate_bounds(circuit, tokens, adapted)
    out = {}
    for pop in circuit.populations:
        if pop.model.kind == "relay":
            out[pop.name] = (bounds[pop.name], np.ones(pop.shape))
            continue
        b_b = 0.0 if pop.bias_basal is None else pop.bias_basal
        b_a = 0.0 if pop.bias_apical is None else pop.bias_apical
        B_b = np.maximum(pop.model.transfer(_input_bound(circuit, pop, bounds, "basal") + b_b), 0.0)
        B_a = np.ones(pop.shape)
        if pop.model.divisive and pop.name in adapted:
            # the quotient g / I_s: a gain is at most the pool's sum of which it is a part
            B_a = np.full(pop.shape, QUOTIENT_BOUND)
        elif pop.name in adapted:
            B_a = np.full(pop.shape, ceiling)
        elif pop.model.gain is not None:
            B_a = np.maximum(pop.model.gain(_input_bound(circuit, pop, bounds, "apical") + b_a), 0.0)
        if pop.silenced:
            B_b = np.zeros(pop.shape)
        out[pop.name] = (B_b, B_a)
    return out


def inverse_lut(
    axis: np.ndarray, values: np.ndarray, top: float, geometric: bool = True
) -> tuple[np.ndarray, float]:
    """``x(y)`` sampled at ``LUT_SIZE`` points of ``y`` in ``[0, top]``, and the sample step.

    ``geometric`` (f-I curves): between table points the rate is interpolated geometrically
    (linear in ``log y``): a noisy cell's f-I curve rises exponentially in its toe, where a
    straight chord over-states the rate between points (by ~2% at the toe's 1.5x per grid
    step), and it is nearly linear higher up, where the two interpolations agree. Below the
    first non-zero point, linearly to silence. The apical gain ``G``, linear from its
    threshold, is interpolated linearly (``geometric=False``)."""
    values = np.maximum.accumulate(values)
    # rate 0 maps to the largest input still silent in the calibration, not to the grid's start
    first = max(int(np.searchsorted(values, 0.0, side="right")) - 1, 0)
    v, idx = np.unique(values[first:], return_index=True)
    idx = idx + first
    v[0] = 0.0
    x = axis[idx]
    y = np.linspace(0.0, top, LUT_SIZE)
    out = np.interp(y, v, x)
    if geometric and len(v) > 2:
        upper = y >= v[1]
        out[upper] = np.interp(np.log(y[upper]), np.log(v[1:]), x[1:])
    return out, top / (LUT_SIZE - 1)
