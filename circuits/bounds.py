r"""A-priori rate bounds: the largest rate each cell can reach, from the wiring and the inputs.

Before a spiking run, each population's encoding range (value per Hz, like Nengo's radius) is
fixed from an upper bound ``R_u`` of every cell's rate that holds for *any* steady state of the
circuit on the given inputs, propagated through the wiring in its order:

* first-order relays: ``R_u = max_i [drive_i]_u``, the largest value the cell carries over the
  presentation (the inputs ``x_i`` and the presence cell, 1);
* every other cell: rates are ``>= 0`` and every transfer ``f, g`` is non-decreasing, so with
  ``W_+ = max(W, 0)`` its inputs are at most ``I_x <= sum W_+ R_pre + b_x`` and its rate at most
  ``f(I_b^max) g(I_a^max)`` (a product of bounds);
* divisive cells (``normalized``, ``softmax``): their gain is one of the terms of the divisor
  that the pool sums (MODEL.md section 3: ``g(s_ij) / sum_j' g(s_ij')``), so the ratio is at
  most 1 and ``R = f(I_b^max)`` (a structural bound, checked by :func:`_divisor_holds_gain`;
  times :data:`DIVISIVE_TRANSIENT` for the lag of the divisor in a dynamic circuit);
* memory cells: each write adds at most ``f g``, so ``R <= n_writes f(I_b^max) g(I_a^max)``;
* what *converges* from cells normalised over their area's columns (divisive cells whose one
  pool sums the gains of all their columns: ``r_j = F_j g_j / sum_j' g_j'``; or gains that a
  mechanism of the simulator holds in sum, ``gain_sum_ceiling``): ``sum_j W_j r_j`` is a convex
  combination (times the ceiling or transient factor) of the columns' ``W_j F_j``, so at most the
  largest column's ``W_+ R_j``, not the sum over columns. For the readout of attention this is
  ``|y_i| <= max_j |W_O v_j|`` instead of ``sum_j``: ``N`` times tighter for ``N`` tokens.

For ``W_Q`` this is ``|q_d| <= sum_d' |W_Q[h,d,d']| max_i |x_i,d'| + |b_Q[h,d]|``. Nothing
here reads the solution of the circuit, the ideal backend or the reference: only weights,
biases and the inputs' largest values.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from ctattn.circuits.description import Circuit, Population
from ctattn.circuits.stimulus import relay_drive

from ctattn.core.problem import Tokens

__all__ = ["rate_bounds", "DIVISIVE_TRANSIENT"]

#: The ratio ``g / sum g`` is at most 1 in a steady state, but with dynamics the numerator
#: reaches a divisive cell two synaptic stages before the divisor (through the gain cells and
#: the pool), so at a token change the ratio overshoots for a few tens of ms. [choice] The
#: bound of a divisive cell allows a factor 2 for that transient (the backends' saturation
#: count checks it at every step).
DIVISIVE_TRANSIENT = 2.0


def _input_bound(
    circuit: Circuit, pop: Population, bounds: dict, target: str, summed: frozenset = frozenset()
) -> np.ndarray:
    total = np.zeros(pop.shape)
    for q in circuit.inputs_to(pop.name, target):
        excitatory = replace(q, weight=np.maximum(q.weight, 0.0))
        pre = circuit.population(q.pre)
        if q.columns == "converge" and (q.pre in summed or _normalized_over_columns(circuit, pre)):
            # sum_j W_j r_j with r_j = F_j g_j and sum_j g_j <= 1 (divisive cells: g_j / sum g;
            # gains whose sum a mechanism holds, ``gain_sum_ceiling``): at most the largest
            # column's W_j R_j, R_j the bound of column j (with its ceiling or transient factor)
            R = bounds[q.pre]
            per_column = [
                excitatory.apply(np.where(np.arange(pre.n_columns)[:, None] == j, R, 0.0), 1)
                for j in range(pre.n_columns)
            ]
            total = total + np.max(per_column, axis=0)
        else:
            total = total + excitatory.apply(bounds[q.pre], pop.n_columns)
    return total


def _normalized_over_columns(circuit: Circuit, pop: Population) -> bool:
    """True when ``pop``'s divisor is the sum of its gains over all its columns: every shunt
    comes from a one-column pool that the gain cells of all of ``pop``'s columns converge onto
    (:func:`_divisor_holds_gain`). Then ``sum_j g_j / sum_j' g_j' = 1`` over the columns."""
    if not (pop.model.divisive and _divisor_holds_gain(circuit, pop)):
        return False
    for q in circuit.inputs_to(pop.name, "shunt"):
        pool = circuit.population(q.pre)
        reporters = [r for r in circuit.inputs_to(q.pre) if r.target == "basal"]
        if pool.n_columns != 1 or any(
            r.columns != "converge" or circuit.population(r.pre).n_columns != pop.n_columns for r in reporters
        ):
            return False
    return True


def _divisor_holds_gain(circuit: Circuit, pop: Population) -> bool:
    """True when every shunt onto ``pop`` comes from a pool that sums cells with ``pop``'s gain."""
    for q in circuit.inputs_to(pop.name, "shunt"):
        reporters = [r for r in circuit.inputs_to(q.pre) if r.target == "basal"]
        if not reporters or any(circuit.population(r.pre).model.gain != pop.model.gain for r in reporters):
            return False
    return bool(circuit.inputs_to(pop.name, "shunt"))


def _feedforward_order(circuit: Circuit) -> list[Population]:
    """Every population after all of its inputs (memory cells too: their bound needs the
    bounds of what they integrate)."""
    done: list[Population] = []
    placed: set[str] = set()
    remaining = list(circuit.populations)
    while remaining:
        ready = [p for p in remaining if all(q.pre in placed for q in circuit.inputs_to(p.name))]
        if not ready:
            raise ValueError(f"bounds: recurrent loop among {[p.name for p in remaining]}")
        done += ready
        placed |= {p.name for p in ready}
        remaining = [p for p in remaining if p.name not in placed]
    return done


def rate_bounds(
    circuit: Circuit, tokens: Tokens, gain_ceiling: dict | None = None, gain_sum_ceiling=()
) -> dict[str, np.ndarray]:
    """Per population, an a-priori upper bound ``(n_columns, n_units)`` of every cell's rate.

    ``gain_ceiling[name]`` caps the apical gain of a population where a mechanism of the
    simulator bounds it (the spiking backend's adaptive threshold of exponential gains).
    ``gain_sum_ceiling`` names populations (of ``gain_ceiling``) whose gains that mechanism
    holds in *sum* over their columns (an area) at the ceiling, not only each gain, so what
    converges from them is bounded by the largest column's contribution.
    """
    gain_ceiling = gain_ceiling or {}
    summed = frozenset(name for name in gain_sum_ceiling if name in gain_ceiling)
    bounds: dict[str, np.ndarray] = {}
    n_writes = sum(1 for w in circuit.schedule if w.write is not None)
    for pop in _feedforward_order(circuit):
        if pop.silenced:
            bounds[pop.name] = np.zeros(pop.shape)
            continue
        if pop.model.kind == "relay":
            drives = [relay_drive(pop.stimulus, pop.n_columns, tokens, w) for w in circuit.schedule]
            bounds[pop.name] = np.max(np.maximum(drives, 0.0), axis=0)
            continue
        b_b = 0.0 if pop.bias_basal is None else pop.bias_basal
        b_a = 0.0 if pop.bias_apical is None else pop.bias_apical
        hi = pop.model.transfer(_input_bound(circuit, pop, bounds, "basal", summed) + b_b)
        if pop.model.divisive and _divisor_holds_gain(circuit, pop):
            hi = hi * DIVISIVE_TRANSIENT
        if pop.model.gain is not None and not (pop.model.divisive and _divisor_holds_gain(circuit, pop)):
            with np.errstate(over="ignore"):  # an exponential gain's bound may be inf: capped below
                g = pop.model.gain(_input_bound(circuit, pop, bounds, "apical", summed) + b_a)
            hi = hi * np.minimum(g, gain_ceiling.get(pop.name, np.inf))
        if pop.model.divisive and not _divisor_holds_gain(circuit, pop):
            hi = np.full(pop.shape, np.inf)  # no a-priori bound: the run needs a user-set range
        if pop.model.integrator:
            hi = hi * max(n_writes, 1)
        bounds[pop.name] = np.maximum(hi, 0.0)
    return bounds
