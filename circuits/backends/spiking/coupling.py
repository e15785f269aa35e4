r"""Coupling of the spiking backend: how the summed synaptic currents ``s_x`` reach each unit.

Every projection of the circuit adds, at each step, ``W a_pre`` to the summed synaptic current
of its target site::

    s_x[post] = sum_{projections q onto site x} W_q a_pre(q)        (per step)

with ``a_pre`` the presynaptic units' filtered spike trains (their traces, whose mean is the
unit's value of the description; :func:`ctattn.models.spiking.trace_jump`). Two couplings
compute this sum, with the same equations for everything else:

* ``"synapses"``: every non-zero rate-level weight is a Brian2 synapse with a summed variable
  (``O(synapses)`` per step; the one choice for the C++ standalone target);
* ``"matrix"``: one step operation computes the same sums in matrix form, projection by
  projection (:meth:`Projection.apply <ctattn.circuits.description.Projection.apply>`: a
  broadcast projection is one matrix-vector product for all its target columns, a projection
  that ``shares`` another's weights reuses the same array), before the units integrate: the
  place where Brian2 updates summed variables, reading the same traces. The mean dynamics are
  exactly those of the synapse path (and, for a given seed, the spike draws too, up to the
  rounding of the sums). ``O(weights of the description)`` per step: circuits of trained
  transformers (tens of millions of rate-level synapses, most of them broadcast queries) need it.

``"auto"`` (default) picks ``matrix`` above :data:`MATRIX_COUPLING_ABOVE` rate-level synapses
on the runtime targets (``numpy``, ``cython``), ``synapses`` otherwise. The run's ``info``
says which (``coupling``), how many rate-level synapses it simulates (``n_synapses``) and how
many of them are Brian2 ``Synapses`` (``n_brian2_synapses``: 0 under ``matrix``).
"""

from __future__ import annotations

import numpy as np
from ctattn.circuits.backends.brian2_support import GroupPlan
from ctattn.circuits.description import Circuit

from ctattn.core.problem import InputError

__all__ = ["COUPLINGS", "MATRIX_COUPLING_ABOVE", "choose_coupling", "matrix_inputs", "matrix_operation"]

COUPLINGS = ("auto", "synapses", "matrix")
#: Above this many rate-level synapses, ``coupling="auto"`` computes the inputs in matrix form
#: (the rate backend's threshold, :data:`ctattn.circuits.backends.rate.MATRIX_COUPLING_ABOVE`).
MATRIX_COUPLING_ABOVE = 200_000


def choose_coupling(circuit: Circuit, coupling: str, target: str) -> str:
    """The coupling of a run: ``coupling`` resolved (``auto``) and checked against ``target``."""
    if coupling not in COUPLINGS:
        raise InputError(f"coupling: unknown {coupling!r}; choose one of {list(COUPLINGS)}")
    if coupling == "auto":
        big = circuit.n_synapses > MATRIX_COUPLING_ABOVE
        return "matrix" if big and target != "standalone" else "synapses"
    if coupling == "matrix" and target == "standalone":
        raise InputError("coupling: 'matrix' runs on the numpy and cython targets, not standalone")
    return coupling


def matrix_inputs(circuit: Circuit, groups: list[GroupPlan]) -> list[dict[str, list[str]]]:
    """Per group, the summed-input variables of each site (``J_<site>``, set by the operation)."""
    where = {p.name: k for k, plan in enumerate(groups) for p in plan.members}
    inputs: list[dict[str, list[str]]] = [dict() for _ in groups]
    for proj in circuit.projections:
        if not proj.cut:
            inputs[where[proj.post]][proj.target] = [f"J_{proj.target}"]
    return inputs


def matrix_operation(circuit: Circuit, groups: list[GroupPlan], units: list):
    """A function of no arguments that sets every ``J_<site>`` to ``sum_q W_q a_pre`` from the
    units' current traces ``a`` (Brian2's state arrays, read and written in place)."""
    where = {p.name: (k, plan) for k, plan in enumerate(groups) for p in plan.members}
    traces = [u.variables["a"].get_value() for u in units]
    sinks = {}
    wiring = []
    for proj in circuit.projections:
        if proj.cut:
            continue
        (gi, gpre), (gj, gpost) = where[proj.pre], where[proj.post]
        pre, post = circuit.population(proj.pre), circuit.population(proj.post)
        key = (gj, proj.target)
        if key not in sinks:
            sinks[key] = units[gj].variables[f"J_{proj.target}"].get_value()
        wiring.append(
            (proj, gi, gpre.slice(pre.name), pre.shape, key, gpost.slice(post.name), post.n_columns)
        )

    def update():
        for sink in sinks.values():
            sink[:] = 0.0
        for proj, gi, pre_slice, pre_shape, key, post_slice, n_columns in wiring:
            a_pre = traces[gi][pre_slice]
            if not a_pre.any():  # a source that has not fired yet (a later token's relay) adds 0
                continue
            sinks[key][post_slice] += proj.apply(a_pre.reshape(pre_shape), n_columns).ravel()

    return update


def brian2_synapse_count(synapses: dict) -> int:
    """Rate-level synapses simulated as Brian2 ``Synapses`` (``plan_synapses``' lists)."""
    return int(sum(len(w) for _, _, w in synapses.values()))


def weight_entries(circuit: Circuit) -> int:
    """Entries of the weight arrays the matrix coupling multiplies with (shared arrays once)."""
    return int(sum(np.asarray(q.weight).size for q in circuit.projections if not q.cut and q.shares is None))
