r"""The shot-noise bound propagated through every stage of the circuit (linear noise approximation).

Counting ``N_u`` spikes of a unit ``u`` (``n_u`` cells at ``rho_u`` Hz per unit value) over the
counting phase ``T`` estimates its value ``r_u`` with the Poisson variance

    var_u = r_u / c_u,        c_u = n_u rho_u T              (counts per unit value)

and the same fluctuation of ``u``'s time-averaged rate reaches every cell downstream: its
filtered synaptic current (the filters keep the integral) moves that cell's intensity, whose
own count adds its own Poisson variance, and so on to the readout. To first order (the delta
method) the decoded output ``y_{i,d} = r_ON(d) - r_OFF(d)`` of query window ``i`` has

    Var(y_{i,d}) = sum_u (d y_{i,d} / d r_u)^2 var_u

where ``d y / d r_u`` is the *total* derivative through the circuit, obtained by one backward
(adjoint) pass over the populations in reverse order: ``lambda_readout = +-1`` and, for every
projection ``W`` from ``u`` onto site ``x`` of ``v``, ``lambda_u += W^T (lambda_v dL_v/dI_x)``,
with ``dL_v/dI_x`` the slope of ``v``'s cell law (:mod:`ctattn.models.neurons`) at the input
the run itself decoded (``I_x = sum W r_pre`` from the window's measured rates: nothing reads the
reference or the ideal backend). Exponential gains (and under ``lif`` every gain of a divisive area)
carry the area's adaptive threshold ``m`` (:data:`ctattn.models.spiking.ADAPTATION`), taken at
its equilibrium ``log sum_j g_j`` over the area's gain cells; its own fluctuation is left out,
since ``m`` divides numerator and divisor alike.

Scope: the bound counts Poisson counting noise only (regular relays count none; for ``lif``
cells, whose counts are not exactly Poisson, it is an estimate: on the standard problem it came
within 4% of the spread between seeds, ``benchmarks/spiking.py``); it does not
follow noise into the key-value memory while it is written (memory cells contribute their own
counting noise in the readout window), nor the second-order (curvature) bias of the nonlinear
laws. ``shot_noise_bound`` in ``info`` stays the readout's own floor; this module gives
``shot_noise_bound_propagated`` and each population's share of the propagated variance.
"""

from __future__ import annotations

import numpy as np
from ctattn.circuits.description import Circuit
from ctattn.models.spiking import adaptive

__all__ = ["propagated_standard_errors"]

#: Relative step of the central differences of the cell laws.
_H = 1e-6


def _inputs(circuit: Circuit, rates: dict, pop) -> dict[str, np.ndarray]:
    """``I_x = sum_q W_q r_pre`` per site of ``pop``, from the decoded rates (clipped at 0)."""
    out = {site: np.zeros(pop.shape) for site in ("basal", "apical", "shunt")}
    for q in circuit.inputs_to(pop.name):
        pre = circuit.population(q.pre)
        out[q.target] += q.apply(rates[pre.name].reshape(pre.shape), pop.n_columns).reshape(pop.shape)
    return out


def _thresholds(circuit: Circuit, inputs: dict, adapted: frozenset) -> dict[str, float]:
    """Equilibrium adaptive threshold ``m = log sum_j g(I_a,j + b_a,j)`` per area, over the
    ``adapted`` gain cells that report to the area's pool (``log sum_j exp(slope x_j)`` for
    exponential gains, computed stably)."""
    reporters = circuit.pool_reporters()
    logs: dict[str, list[np.ndarray]] = {}
    for pop in circuit.populations:
        if pop.name in reporters and pop.name in adapted and pop.name in inputs:
            b = 0.0 if pop.bias_apical is None else pop.bias_apical
            x = inputs[pop.name]["apical"] + b
            if adaptive(pop.model):
                log_g = pop.model.gain.slope * x
            else:
                with np.errstate(divide="ignore"):
                    log_g = np.log(np.maximum(pop.model.gain(x), 0.0))
            logs.setdefault(pop.area, []).append(np.ravel(log_g))
    out = {}
    for area, xs in logs.items():
        x = np.concatenate(xs)
        top = x.max()
        if np.isfinite(top):
            out[area] = float(top + np.log(np.exp(x - top).sum()))
    return out


def _slopes(pop, inputs: dict[str, np.ndarray], m: float, adapted: bool) -> dict[str, np.ndarray]:
    """``dL/dI_x`` of ``pop``'s law at ``inputs`` (central differences), per site; ``adapted``:
    its gain carries the area's factor ``exp(-m)``."""
    b_b = 0.0 if pop.bias_basal is None else pop.bias_basal
    b_a = 0.0 if pop.bias_apical is None else pop.bias_apical
    shift = np.exp(-m) if adapted else 1.0

    def law(inp):
        return pop.model.rate(inp["basal"], inp["apical"], inp["shunt"], b_b, b_a) * shift

    out = {}
    for site in pop.model.compartments:
        h = _H * np.maximum(1.0, np.abs(inputs[site]))
        up, down = dict(inputs), dict(inputs)
        up[site], down[site] = inputs[site] + h, inputs[site] - h
        if site == "shunt":  # the divisor is a rate sum, never negative: one-sided near 0
            down[site] = np.maximum(inputs[site] - h, 0.0)
            out[site] = (law(up) - law(down)) / (up[site] - down[site])
        else:
            out[site] = (law(up) - law(down)) / (2 * h)
    return out


def _window_variances(
    circuit: Circuit, rates: dict, counts_per_rate: dict, noiseless: set, adapted: frozenset
):
    """Per output dimension of one readout window: the propagated variance, and each
    population's part of it."""
    readout = circuit.population(circuit.readout)
    d = readout.signed_dims
    order = circuit.order()
    inputs = {p.name: _inputs(circuit, rates, p) for p in order if p.model.kind not in ("relay", "memory")}
    m = _thresholds(circuit, inputs, adapted)
    adj = {p.name: np.zeros(p.shape + (d,)) for p in order}
    adj[readout.name][0, np.arange(d), np.arange(d)] = 1.0
    adj[readout.name][0, d + np.arange(d), np.arange(d)] = -1.0
    for pop in reversed(order):
        if pop.model.kind in ("relay", "memory") or not adj[pop.name].any():
            continue
        slope = _slopes(pop, inputs[pop.name], m.get(pop.area, 0.0), pop.name in adapted)
        for q in circuit.inputs_to(pop.name):
            pre = circuit.population(q.pre)
            g = adj[pop.name] * slope[q.target][..., None]
            for a, b, W in q.column_weights(pre.n_columns, pop.n_columns):
                adj[pre.name][a] += W.T @ g[b]
    parts = {}
    for pop in order:
        if pop.name in noiseless:
            continue
        var = np.maximum(rates[pop.name], 0.0) / counts_per_rate[pop.name]
        parts[pop.name] = np.einsum("cud,cu->d", adj[pop.name] ** 2, var)
    return sum(parts.values()), parts


def propagated_standard_errors(
    circuit: Circuit, window_rates: dict, counts_per_rate: dict, noiseless=(), adapted=None
) -> tuple[np.ndarray, dict[str, float]]:
    """Standard error of every output ``(n_tokens, d)`` under counting noise in every stage,
    and each population's share of the summed variance.

    ``window_rates[pop]``: decoded rates ``(windows, columns, units)``; ``counts_per_rate[pop]``:
    ``n rho T`` (broadcastable to the population's shape); ``noiseless``: populations that count
    no Poisson noise (regular relays); ``adapted``: populations whose gain carries their area's
    adaptive factor ``exp(-m)`` (default: the exponential gains, as under ``poisson``).
    """
    readout = circuit.population(circuit.readout)
    se = np.full((circuit.info["n_tokens"], readout.signed_dims), np.nan)
    totals: dict[str, float] = {}
    noiseless = set(noiseless)
    if adapted is None:
        adapted = [p.name for p in circuit.populations if p.model.gain is not None and adaptive(p.model)]
    adapted = frozenset(adapted)
    for k, w in enumerate(circuit.schedule):
        if not w.readout:
            continue
        rates = {p.name: np.asarray(window_rates[p.name][k], float) for p in circuit.populations}
        var, parts = _window_variances(circuit, rates, counts_per_rate, noiseless, adapted)
        se[w.query] = np.sqrt(var)
        for name, v in parts.items():
            totals[name] = totals.get(name, 0.0) + float(v.sum())
    whole = sum(totals.values())
    shares = {name: (v / whole if whole > 0 else 0.0) for name, v in totals.items()}
    return se, shares
