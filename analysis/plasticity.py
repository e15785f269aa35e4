r"""Local plasticity: the gradient of each token's error as synaptic updates (MODEL.md section 4).

For the query window of token ``i`` (mask layout, head ``h``, column ``j`` holding token ``j``)
every synapse changes by a product of signals present at that synapse::

    W_O[h]  L5 -> HO          dW_O = eta e_i u_i^T                     delta rule
    W_V[h]  FO.context -> L5  dW_V = eta sum_j a_ij delta_i x_j^T      three-factor
    W_Q[h]  FO.query -> L2/3  dW_Q = eta sum_j [phi'(q_i) * G_ij phi(k_j)] x_i^T
    W_K[h]  FO.context -> L2/3 dW_K = eta sum_j [phi'(k_j) * G_ij phi(q_i)] x_j^T

(``softmax``: ``beta G_ij k_j`` and ``beta G_ij q_i`` in the brackets; biases take the presence
cell's rate, or the tonic ``1`` for ``b_O``, as their presynaptic rate). The factors, all read
from the circuit's populations in that window:

===================  ==================================================================
``x_i``, ``x_j``     presynaptic relay rates: ``FO.query`` and ``FO.context`` channel ``j``
                     (``ON - OFF``); the presence cell's rate gates the bias synapses
``y_i``              higher-order relay ``HO`` (``ON - OFF``)
``e_i = t_i - y_i``  the teaching signal at ``HO``: target minus the relay's own output
``u_i``              the L5 output of the area, summed over columns (what ``W_O`` receives)
``delta_i``          the error fed back to the area's L5 cells, ``B[h] e_i`` (feedback
                     synapses ``B``; see below)
``v_j``              basal (value) drive of column ``j``'s L5 cells
``a_ij``             apical gain of column ``j``'s L5 cells, ``g(s_ij)`` (``/ Z_i`` by
                     the shunt of the inhibitory pool for ``normalized``, ``softmax``)
``phi(q_i)_d``,      basal transfer and its slope of L2/3 cell ``d`` at its basal drive
``phi'(q_i)_d``
``phi(k_j)_d``,      apical gain of L2/3 cell ``d`` and its slope at its apical drive
``phi'(k_j)_d``
``G_ij``             the column's scalar error, broadcast inside the microcolumn:
                     ``g_ij = v_j . delta_i`` summed over the column's L5 cells, then
                     ``linear``: ``g_ij``; ``normalized``: ``(g_ij - sum_j' a_ij' g_ij') / Z_i``;
                     ``softmax``: ``a_ij (g_ij - sum_j' a_ij' g_ij')``, the subtracted term
                     pooled over the area's columns by the inhibitory pool **[choice]**
===================  ==================================================================

A circuit shares ``W_Q[h]`` (broadcast), ``W_K[h]``, ``W_V[h]`` and ``W_O[h]`` (one matrix for
every column) between columns: the shared weight changes by the sum of its columns' updates.

**Feedback.** ``delta_i = W_O[h]^T e_i`` needs the forward weights at the feedback synapse
(weight transport). Here the feedback synapses ``B[h] (d_v, D)`` are their own weights:
``symmetric`` feedback starts as ``W_O[h]^T`` and learns with the transposed delta rule
``dB = eta u_i e_i^T`` (Kolen & Pollack 1994; Akrout et al. 2019): the same pre/post product
as ``W_O``, so it stays the transpose without ever reading it. ``random`` feedback is fixed
(feedback alignment, Lillicrap et al. 2016): an approximation whose cosine to the exact
gradient is measured by :mod:`ctattn.analysis.learning`.

Summed over the query windows of a sequence with the weights held fixed and symmetric
feedback, these updates are exactly ``-eta dE/dW`` of :mod:`ctattn.analysis.gradients` (the tests
check it); applied online, token by token, they follow the gradient of each token's own error.
This module never calls the matrix reference or the exact gradients.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ctattn.circuits.backends.ideal import steady_state_inputs
from ctattn.circuits.description import Circuit

from ctattn.core.feature_maps import FEATURE_MAPS
from ctattn.core.seeding import rng_for

__all__ = ["FEEDBACK", "Feedback", "ColumnSignals", "read_head", "local_gradients", "transfer_slope"]

FEEDBACK = ("symmetric", "random")


@dataclass(frozen=True)
class Feedback:
    """Feedback synapses ``B (H, d_v, D)`` from the higher-order relay to each area's L5 cells."""

    B: np.ndarray
    mode: str

    @property
    def plastic(self) -> bool:
        """Symmetric feedback learns (transposed delta rule); random feedback is fixed."""
        return self.mode == "symmetric"

    @classmethod
    def create(cls, mode: str, W_O: np.ndarray, seed: int = 0) -> Feedback:
        """``symmetric``: start as ``W_O[h]^T``; ``random``: ``N(0, 1/D)`` from stream ``feedback``."""
        if mode == "symmetric":
            return cls(np.transpose(W_O, (0, 2, 1)).copy(), mode)
        if mode == "random":
            H, D, d_v = W_O.shape
            return cls(rng_for(seed, "feedback").normal(0, 1 / np.sqrt(D), (H, d_v, D)), mode)
        raise ValueError(f"feedback: unknown {mode!r}; choose one of {list(FEEDBACK)}")


def transfer_slope(transfer, x: np.ndarray) -> np.ndarray:
    """``f'(x)`` of a cell's transfer or gain function ``f(x) = phi(slope x)``."""
    try:
        fm = FEATURE_MAPS[transfer.name]
    except KeyError:
        if transfer.name == "exp":
            return transfer.slope * np.exp(transfer.slope * np.asarray(x, dtype=float))
        raise ValueError(f"transfer: no derivative for {transfer.name!r}") from None
    return transfer.slope * fm.df(transfer.slope * np.asarray(x, dtype=float))


@dataclass(frozen=True)
class ColumnSignals:
    """What the synapses of head ``h`` see in one query window (``M`` columns).

    ``x_q (D,)``, ``p_q`` query relay and its presence; ``x_c (M, D)``, ``p_c (M,)`` context
    channels; ``q (M, d_k)``, ``k (M, d_k)`` L2/3 basal and apical drive; ``v (M, d_v)`` L5 basal
    drive; ``a (M,)`` L5 gain (attention weight); ``Z`` the pool's rate (1 if none); ``u (d_v,)``
    the area's summed L5 output; ``y (D,)`` the higher-order relay's output.
    """

    x_q: np.ndarray
    p_q: float
    x_c: np.ndarray
    p_c: np.ndarray
    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    a: np.ndarray
    Z: float
    u: np.ndarray
    y: np.ndarray


def read_head(circuit: Circuit, rates: dict[str, np.ndarray], h: int) -> ColumnSignals:
    """Read head ``h``'s signals from one window's rates ``{population: (n_columns, n_units)}``.

    Dendritic drives are the synaptic sums of the recorded presynaptic rates (the circuit's own
    wiring, :func:`ctattn.circuits.backends.ideal.steady_state_inputs`), so this works on the rates of
    any backend.
    """
    if circuit.info.get("layout") != "mask":
        raise ValueError("layout: local plasticity is written for the mask layout (paper v1)")
    d_k, d_v = circuit.info["d_k"], circuit.info["d_v"]
    fo_q, fo_c = circuit.population("FO.query"), circuit.population("FO.context")
    L23, L5, HO = (circuit.population(n) for n in (f"A{h}.L23", f"A{h}.L5", "HO"))
    b23, a23, _ = steady_state_inputs(circuit, L23, rates)
    b5, a5, s5 = steady_state_inputs(circuit, L5, rates)
    gain = L5.model.gain(a5[:, 0])  # every L5 cell of a column has the same apical drive s_ij
    divisive = L5.model.divisive
    Z = float(s5[0, 0]) if divisive else 1.0
    a = (gain / Z if Z > 0 else np.zeros_like(gain)) if divisive else gain
    return ColumnSignals(
        x_q=fo_q.decode(rates["FO.query"])[0],
        p_q=float(rates["FO.query"][0, -1]),
        x_c=fo_c.decode(rates["FO.context"]),
        p_c=rates["FO.context"][:, -1].copy(),
        q=b23[:, :d_k],  # softmax: the first of the four cells per feature gets +q, +k
        k=a23[:, :d_k],
        v=b5[:, :d_v],
        a=a,
        Z=Z,
        u=L5.decode(rates[L5.name]).sum(axis=0),
        y=HO.decode(rates["HO"])[0],
    )


def local_gradients(
    circuit: Circuit,
    rates: dict[str, np.ndarray],
    target: np.ndarray,
    feedback: Feedback,
    *,
    biases: tuple[str, ...] = (),
) -> dict[str, np.ndarray]:
    """One query window's synaptic updates, as estimates of ``dE_i/dP`` (``dW = -eta`` this).

    ``rates``: the window's rates per population; ``target``: ``t_i (D,)``. Returns
    ``dW_Q, dW_K, dW_V, dW_O``, the ``db_*`` of ``biases``, and ``dB`` (the feedback synapses'
    own update, ``dW_O^T``, for symmetric feedback). See the module docstring for each rule.
    """
    variant = circuit.info["variant"]
    H = circuit.info["n_heads"]
    y = circuit.population("HO").decode(rates["HO"])[0]
    e = np.asarray(target, dtype=float) - y  # teaching signal at the higher-order relay
    out = {k: [] for k in ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "B")}
    for h in range(H):
        s = read_head(circuit, rates, h)
        L23 = circuit.population(f"A{h}.L23").model
        delta = feedback.B[h] @ e  # error fed back to the area's L5 cells
        present = s.p_c > 0  # columns that hold a token (presence cell of their channel)
        a = np.where(present, s.a, 0.0)
        g = np.where(present, s.v @ delta, 0.0)  # per-column scalar v_j . delta_i
        if variant == "linear":
            G = g
        elif variant == "normalized":
            pooled = a @ g  # the pool's subtractive term, sum_j a_ij g_ij
            G = np.where(present, g - pooled, 0.0) / s.Z if s.Z > 0 else np.zeros_like(g)
        else:  # softmax
            G = a * (g - a @ g)
        if variant == "softmax":
            beta = circuit.population(f"A{h}.L5").model.gain.slope  # neuromodulatory gain
            dq = beta * G[:, None] * s.k
            dk = beta * G[:, None] * s.q
        else:
            # L2/3 cell d: basal transfer phi(q_d), apical gain phi(k_d), and their slopes.
            dq = transfer_slope(L23.transfer, s.q) * G[:, None] * L23.gain(s.k)
            dk = transfer_slope(L23.gain, s.k) * G[:, None] * L23.transfer(s.q)
        dv = a[:, None] * delta[None, :]  # (M, d_v): apical gain x fed-back error, per column
        out["W_Q"].append(-np.outer(dq.sum(axis=0), s.x_q))
        out["b_Q"].append(-dq.sum(axis=0) * s.p_q)
        out["W_K"].append(-dk.T @ s.x_c)
        out["b_K"].append(-dk.T @ s.p_c)
        out["W_V"].append(-dv.T @ s.x_c)
        out["b_V"].append(-dv.T @ s.p_c)
        out["W_O"].append(-np.outer(e, s.u))
        out["B"].append(-np.outer(s.u, e))
    grads = {"d" + k: np.stack(v) for k, v in out.items() if k in ("W_Q", "W_K", "W_V", "W_O")}
    for name in biases:
        grads["d" + name] = -e if name == "b_O" else np.stack(out[name])
    if feedback.plastic:
        grads["dB"] = np.stack(out["B"])
    return grads
