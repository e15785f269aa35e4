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
  projection, before the units integrate (the place where Brian2 updates summed variables,
  reading the same traces): a broadcast projection is one matrix-vector product for all its
  target columns, a converging one sums its source columns first, a per-column one is one
  batched product over the columns that carry a token, and sparse weights (Dale's interneurons
  copy their source one to one) are entry lists. A source that fired no spike in the last step
  reuses its last product times the trace's decay (exact, see :func:`matrix_operation`). The
  mean dynamics are exactly those of the synapse path and, for a given seed, the spike draws
  too, up to the rounding of the sums. ``O(weights of the description)`` per step: circuits of
  trained transformers (tens of millions of rate-level synapses, most of them broadcast
  queries) need it.

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

__all__ = [
    "COUPLINGS",
    "MATRIX_COUPLING_ABOVE",
    "choose_coupling",
    "matrix_inputs",
    "matrix_operation",
]

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


#: A 2-D weight array with at most this share of non-zero entries is applied as a list of its
#: non-zero entries (Dale's interneurons copy their source one to one: 1 entry in 257).
SPARSE_BELOW = 0.05


def _product(proj, pre_shape: tuple[int, int], n_post_columns: int, n_post_units: int):
    """``a (C_pre, U_pre) -> W a``, shaped ``(n_post_columns, n_post_units)`` or ``(n_post_units,)``
    for one value added to every post column (a broadcast projection): the sums of
    :meth:`Projection.apply <ctattn.circuits.description.Projection.apply>`, with sparse weights
    as entry lists and converging projections summed over columns first."""
    W = proj.weight
    n_pre_columns = pre_shape[0]
    if W.ndim == 2 and np.count_nonzero(W) <= SPARSE_BELOW * W.size:
        post_u, pre_u = np.nonzero(W)
        w = W[post_u, pre_u]
        if proj.columns == "same":
            flat = (np.arange(n_pre_columns)[:, None] * n_post_units + post_u).ravel()
            size = n_post_columns * n_post_units
            return lambda a: np.bincount(flat, weights=(a[:, pre_u] * w).ravel(), minlength=size)
        if proj.columns == "broadcast":
            return lambda a: np.bincount(post_u, weights=a[0, pre_u] * w, minlength=n_post_units)
        return lambda a: np.bincount(post_u, weights=a[:, pre_u].sum(axis=0) * w, minlength=n_post_units)
    if W.ndim == 2 and proj.columns == "converge":
        return lambda a: W @ a.sum(axis=0)
    if W.ndim == 2 and proj.columns == "broadcast":
        return lambda a: W @ a[0]
    if W.ndim == 3 and proj.columns == "same":
        return lambda a: _per_column(W, a)
    return lambda a: proj.apply(a, n_post_columns)


def _per_column(W: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``W[c] @ a[c]`` for every column ``c`` up to the last one whose source fired (a causal
    context relay fills its columns in order), as one batched product."""
    out = np.zeros(W.shape[:2])
    active = np.flatnonzero(a.any(axis=1))
    m = active[-1] + 1
    out[:m] = np.matmul(W[:m], a[:m, :, None])[:, :, 0]
    return out


def matrix_operation(circuit: Circuit, groups: list[GroupPlan], units: list, decay: float):
    """A function of no arguments that sets every ``J_<site>`` to ``sum_q W_q a_pre`` from the
    units' current traces ``a`` (Brian2's state arrays, read and written in place).

    ``decay = exp(-dt / tau_syn)``: between two reads a trace decays by it and jumps by the
    spikes of the step, ``a(t) = decay a(t - dt) + jump k(t - dt)``. Where a source fired no
    spike in the last step, ``W a(t) = decay W a(t - dt)`` exactly (up to rounding), so its
    last product is reused: a relay whose token has passed costs nothing while its trace
    fades. Reads each group's ``a`` and writes its ``J_<site>`` (:func:`matrix_inputs`)."""
    where = {p.name: (k, plan) for k, plan in enumerate(groups) for p in plan.members}
    traces = [u.variables["a"].get_value() for u in units]
    # the last step's spikes per unit; a cell model without the count ``k`` never reuses
    spikes = [u.variables["k"].get_value() if "k" in u.variables else np.ones(len(u)) for u in units]
    sinks, wiring = {}, []
    for proj in circuit.projections:
        if proj.cut:
            continue
        (gi, gpre), (gj, gpost) = where[proj.pre], where[proj.post]
        pre, post = circuit.population(proj.pre), circuit.population(proj.post)
        key = (gj, proj.target)
        if key not in sinks:
            sinks[key] = units[gj].variables[f"J_{proj.target}"].get_value()
        # the post population's inputs as a (columns, units) view of the group's array
        view = sinks[key][gpost.slice(post.name)].reshape(post.shape)
        product = _product(proj, pre.shape, post.n_columns, post.n_units)
        wiring.append([product, gi, gpre.slice(pre.name), pre.shape, view, None])

    # per source population: whether any unit has a trace, and whether any spiked last step
    sources = sorted({(entry[1], entry[2].start, entry[2].stop) for entry in wiring})
    index = {source: k for k, source in enumerate(sources)}
    for entry in wiring:
        entry[2] = index[(entry[1], entry[2].start, entry[2].stop)]
    # every group's populations tile it: one reduceat per group gives all its flags
    starts = {gi: np.array(sorted(groups[gi].offsets.values())) for gi, _, _ in sources}
    position = [(gi, int(np.searchsorted(starts[gi], start))) for gi, start, _ in sources]

    def flags(arrays) -> np.ndarray:
        per_group = {gi: np.logical_or.reduceat(arrays[gi] != 0, st) for gi, st in starts.items()}
        return np.array([per_group[gi][p] for gi, p in position], dtype=bool)

    def update():
        for sink in sinks.values():
            sink[:] = 0.0
        has_trace, fired = flags(traces), flags(spikes)
        for entry in wiring:
            product, gi, source, pre_shape, view, last = entry
            if not has_trace[source]:  # a source that has not fired yet (a later token's relay)
                entry[5] = None
                continue
            if last is not None and not fired[source]:
                out = last * decay
            else:
                start, stop = sources[source][1:]
                out = product(traces[gi][start:stop].reshape(pre_shape))
            entry[5] = out
            view += out.reshape(view.shape) if out.size == view.size else out  # else: broadcast

    return update
