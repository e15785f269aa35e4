"""Decoding: rates and block outputs from spike counts, and their Poisson standard errors.

``_decode`` turns the cumulative counts of a run into rates per token window and the decoded
readout ``y_hat = r_hat_ON - r_hat_OFF``; ``_readout_standard_errors`` and ``_shot_noise_bound``
give the counting noise of that readout, and :func:`poisson_standard_errors` the same from a
finished result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from ctattn.circuits.backends.result import SimulationResult
from ctattn.circuits.description import Circuit

if TYPE_CHECKING:
    from ctattn.circuits.backends.spiking.network import _Simulation


def _decode(circuit: Circuit, sim: _Simulation, counts):
    """Rates per window (counted over the window's last phase: the counting phase where the
    output is read, the write phase in windows that only write) and the decoded readout."""
    dt = sim.timing.dt
    window_rates = {p.name: [] for p in circuit.populations}
    step = 0
    for phases in sim.phases:
        step += sum(s for _, s in phases)
        last = phases[-1][1]
        end, begin = step // sim.grid, (step - last) // sim.grid
        for plan, cumulative in zip(sim.groups, counts):
            c = cumulative[end] - cumulative[begin]
            for pop in plan.members:
                scale = sim.n_of[pop.name] * sim.rho[pop.name] * last * dt
                window_rates[pop.name].append(c[plan.slice(pop.name)].reshape(pop.shape) / scale)
    window_rates = {k: np.array(v) for k, v in window_rates.items()}
    readout = circuit.population(circuit.readout)
    Y = np.full((circuit.info["n_tokens"], readout.signed_dims), np.nan)
    for k, w in enumerate(circuit.schedule):
        if w.readout:
            Y[w.query] = readout.decode(window_rates[readout.name][k])[0]
    return Y, window_rates


def _readout_standard_errors(circuit: Circuit, window_rates: dict, counts_per_rate) -> np.ndarray:
    """``sqrt(N_ON / c_ON^2 + N_OFF / c_OFF^2)`` per output, from rates ``r = N / c`` with
    ``c = n rho T`` counts per unit value (per readout cell: ``rho`` may differ between cells)."""
    readout = circuit.population(circuit.readout)
    d = readout.signed_dims
    c = np.broadcast_to(np.asarray(counts_per_rate, float).ravel(), (2 * d,))
    se = np.full((circuit.info["n_tokens"], d), np.nan)
    for k, w in enumerate(circuit.schedule):
        if w.readout:
            r = window_rates[readout.name][k][0]
            se[w.query] = np.sqrt(r[:d] / c[:d] + r[d : 2 * d] / c[d : 2 * d])
    return se


def _shot_noise_bound(se: np.ndarray, Y: np.ndarray) -> float:
    norm = np.linalg.norm(Y)
    return float(np.linalg.norm(se) / norm) if norm > 0 else float("nan")


def poisson_standard_errors(circuit: Circuit, result: SimulationResult) -> np.ndarray:
    """Per-output standard error of ``result.Y`` that Poisson counting in the readout alone
    predicts, ``sqrt(N_ON + N_OFF) / (n rho T)``, from the measured counts ``N``: a floor
    under the run-to-run spread (upstream stages add their own noise)."""
    info = result.info
    rho = np.asarray(info["readout_rho_hz"], float)
    counts_per_rate = info["neurons_per_unit"] * rho * info["window_ms"] * 1e-3
    return _readout_standard_errors(circuit, result.window_rates, counts_per_rate)
