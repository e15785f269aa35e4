r"""Decoding what the circuit computes from its own populations' rates.

Works on any backend's :class:`~ctattn.circuits.backends.result.SimulationResult`
(``window_rates``: the rates at the end of each window for ideal/rate, the window's mean
rates for spiking), never on the reference.

Mask layout, query window of token ``i``, area ``h``, column ``j``:

* score ``s_ij = sum_d L2/3_{j,d}`` (ON minus OFF cells for ``softmax``, where it is the raw
  ``q_i . k_j`` before the slope ``beta``);
* weight ``a_ij``: ``s_ij`` for ``linear``; ``L5g_j / pool`` (the column's gain over the
  pool's total, the divisive normalisation) for ``normalized`` and ``softmax``.

Head output ``u_i^h = sum_j (L5_ON - L5_OFF)_j`` and block output ``y_i`` from the
higher-order relay. The KV-memory layout never forms ``a_ij`` explicitly (paper v3), so it has
no attention map; its head outputs decode the same way.
"""

from __future__ import annotations

import numpy as np
from ctattn.circuits.description import Circuit

__all__ = ["query_windows", "decode_scores", "decode_attention", "decode_head_outputs", "decode_output"]


def query_windows(circuit: Circuit) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the read-out windows and the query token each one presents."""
    pairs = [(k, w.query) for k, w in enumerate(circuit.schedule) if w.readout]
    return np.array([k for k, _ in pairs], dtype=int), np.array([q for _, q in pairs], dtype=int)


def _require_mask(circuit: Circuit) -> None:
    if circuit.info.get("layout") != "mask":
        raise ValueError("attention maps: only the mask layout represents a_ij in its populations")


def decode_scores(circuit: Circuit, window_rates: dict) -> np.ndarray:
    """Scores ``S (H, N, M)`` from the L2/3 cells of every area (unscaled ``q.k`` for softmax)."""
    _require_mask(circuit)
    windows, queries = query_windows(circuit)
    H, N, M = circuit.info["n_heads"], circuit.info["n_tokens"], circuit.info["n_kv"]
    S = np.zeros((H, N, M))
    for h in range(H):
        pop = circuit.population(f"A{h}.L23")
        rates = window_rates[pop.name][windows]  # (n_windows, M, units)
        if pop.signed_dims is not None:
            S[h, queries] = pop.decode(rates).sum(axis=-1)
        else:
            S[h, queries] = rates.sum(axis=-1)
    return S


def decode_attention(circuit: Circuit, window_rates: dict) -> np.ndarray:
    """Attention weights ``A (H, N, M)`` read from the circuit's populations (mask layout)."""
    _require_mask(circuit)
    if circuit.info["variant"] == "linear":
        return decode_scores(circuit, window_rates)
    windows, queries = query_windows(circuit)
    H, N, M = circuit.info["n_heads"], circuit.info["n_tokens"], circuit.info["n_kv"]
    A = np.zeros((H, N, M))
    for h in range(H):
        gains = window_rates[f"A{h}.L5g"][windows][..., 0]  # (n_windows, M)
        pool = window_rates[f"A{h}.pool"][windows][..., 0]  # (n_windows, 1)
        A[h, queries] = np.divide(gains, pool, out=np.zeros_like(gains), where=pool > 0)
    return A


def decode_head_outputs(circuit: Circuit, window_rates: dict) -> np.ndarray:
    """Head outputs ``U (H, N, d_v)`` summed over the L5 cells of each area."""
    windows, queries = query_windows(circuit)
    H, N, d_v = circuit.info["n_heads"], circuit.info["n_tokens"], circuit.info["d_v"]
    U = np.zeros((H, N, d_v))
    for h in range(H):
        pop = circuit.population(f"A{h}.L5")
        values = pop.decode(window_rates[pop.name][windows])  # (n_windows, columns, signed_dims)
        if circuit.info["layout"] == "mask":
            U[h, queries] = values.sum(axis=1)  # sum over key/value columns j
        else:
            U[h, queries] = values.sum(axis=2)  # column n = value feature; sum over d
    return U


def decode_output(circuit: Circuit, window_rates: dict) -> np.ndarray:
    """Block output ``Y (N, D)`` from the higher-order relay."""
    windows, queries = query_windows(circuit)
    pop = circuit.population(circuit.readout)
    Y = np.full((circuit.info["n_tokens"], pop.signed_dims), np.nan)
    Y[queries] = pop.decode(window_rates[pop.name][windows])[:, 0]
    return Y
