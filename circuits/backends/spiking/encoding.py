r"""Encoding ranges: the value each cell carries at its rate cap, fixed before the run.

A cell of population ``p`` fires at ``rho_u r_u`` Hz per neuron for the value (rate of the
description) ``r_u``, with ``rho_u = cap_p / R_u``: ``R_u`` is its encoding range, the value at
which it reaches the cap of its type (:data:`~.options.RATE_CAP_HZ`; Nengo's radius). ``R_u`` is
the a-priori bound of :func:`ctattn.circuits.bounds.rate_bounds` (weights, biases and the
inputs' largest values propagated through the wiring), or set by the user per population
(``encoding_ranges={name: R}``). It never comes from the circuit's solution: no rate or spiking
code path reads the ideal backend, the reference or ``Y_ref``.

With the a-priori bound, no intensity can exceed its cap. A user-set range can be too small:
intensities above the cap are clipped and counted (``saturated_fraction``), and a run where
more than :data:`~.options.SATURATION_LIMIT` of the neuron-steps saturate is refused.
"""

from __future__ import annotations

import numpy as np
from ctattn.circuits.bounds import rate_bounds
from ctattn.circuits.description import Circuit
from ctattn.models.spiking import ADAPTATION, adaptive

from ctattn.core.problem import InputError, Tokens

__all__ = ["adapted_rate_bounds", "encoding_ranges", "rate_scales_hz"]


def adapted_rate_bounds(circuit: Circuit, tokens: Tokens, adapted) -> dict[str, np.ndarray]:
    """:func:`ctattn.circuits.bounds.rate_bounds` with the adaptive threshold's ceiling on the
    apical gains of the ``adapted`` populations. The threshold is the log-sum of an area's gain
    cells (those that report to a pool): it holds the sum of their gains over the area's
    columns, so what converges from them is bounded by the largest column's contribution."""
    ceiling = {name: ADAPTATION["ceiling"] for name in adapted}
    return rate_bounds(circuit, tokens, gain_ceiling=ceiling, gain_sum_ceiling=circuit.pool_reporters())


def encoding_ranges(circuit: Circuit, tokens: Tokens, user: dict | None) -> dict[str, np.ndarray]:
    """Per population, ``R_u`` ``(n_columns, n_units)``: the value at the rate cap."""
    user = dict(user or {})
    unknown = sorted(set(user) - {p.name for p in circuit.populations})
    if unknown:
        raise InputError(
            f"encoding_ranges: no population {unknown}; the circuit has {sorted(p.name for p in circuit.populations)}"
        )
    bounds = adapted_rate_bounds(circuit, tokens, [p.name for p in circuit.populations if adaptive(p.model)])
    out = {}
    for pop in circuit.populations:
        r = np.full(pop.shape, user[pop.name]) if pop.name in user else bounds[pop.name]
        if not np.all(np.isfinite(r)):
            raise InputError(
                f"encoding_ranges: {pop.name} has no finite a-priori bound; set encoding_ranges[{pop.name!r}]"
            )
        out[pop.name] = r
    return out


def rate_scales_hz(ranges: dict[str, np.ndarray], caps: dict[str, float], headroom: float) -> dict:
    """``rho_u = headroom cap / R_u`` (Hz per neuron at unit value; ``cap`` where ``R_u = 0``):
    the a-priori largest value sits at ``headroom`` of the cap, the rest absorbs the shot noise
    of the inputs' spike trains."""
    out = {}
    for name, r in ranges.items():
        top = headroom * caps[name]
        out[name] = np.where(r > 0, top / np.where(r > 0, r, 1.0), top)
    return out
