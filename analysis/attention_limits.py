r"""The limits of normalised and softmax attention, as plain numpy (the tests' and figures' yardsticks).

For one attention row ``i`` with visible key/value tokens ``V_i`` (``j <= i`` when causal),
``n_i = |V_i|`` and scores ``s_ij`` (softmax: the raw ``q_i . k_j``, before ``beta``)::

    beta -> 0        a_ij -> 1 / n_i                          (uniform attention)
    beta -> inf      a_ij -> [j = argmax_j' s_ij']             (hard, argmax attention)
    n_i = 1          a_ij = 1                                 (one token: weight 1)

and, for softmax with gap ``g_i = s_i(1) - s_i(2)`` between the largest two visible scores,

    1 - max_j a_ij = sum_{j != argmax} a_ij <= (n_i - 1) exp(-beta g_i)          (argmax bound)

The entropy ``H_i(beta) = log Z_i - beta E_a[s]`` of a softmax row has ``dH_i/dbeta = -beta
Var_a(s) <= 0``: it falls monotonically from ``log n_i`` (uniform) to 0 (argmax, no ties).
Nothing here reads a circuit; compare these with what :mod:`ctattn.analysis.decoding` reads from one.
"""

from __future__ import annotations

import numpy as np
from ctattn.analysis.metrics import attention_entropy
from ctattn.analysis.reference import causal_mask

__all__ = [
    "visible_mask",
    "uniform_attention",
    "hard_attention",
    "argmax_bound",
    "mean_entropy",
    "softmax_entropy_curve",
]


def visible_mask(n_queries: int, n_keys: int, causal: bool) -> np.ndarray:
    """``(N, M)`` booleans: which key/value tokens query ``i`` may attend to."""
    return causal_mask(n_queries, n_keys) if causal else np.ones((n_queries, n_keys), dtype=bool)


def uniform_attention(n_heads: int, n_queries: int, n_keys: int, causal: bool) -> np.ndarray:
    """The ``beta -> 0`` limit ``(H, N, M)``: ``1 / n_i`` on every visible token, 0 elsewhere."""
    mask = visible_mask(n_queries, n_keys, causal).astype(float)
    return np.broadcast_to(mask / mask.sum(axis=1, keepdims=True), (n_heads, n_queries, n_keys)).copy()


def _masked(S: np.ndarray, causal: bool) -> np.ndarray:
    S = np.asarray(S, dtype=float)
    return np.where(visible_mask(S.shape[-2], S.shape[-1], causal), S, -np.inf)


def hard_attention(S: np.ndarray, causal: bool) -> np.ndarray:
    """The ``beta -> inf`` limit: one-hot on the largest visible score of each row (``(H, N, M)``)."""
    S = _masked(S, causal)
    return (np.arange(S.shape[-1]) == np.argmax(S, axis=-1)[..., None]).astype(float)


def argmax_bound(S: np.ndarray, beta: float, causal: bool) -> np.ndarray:
    """Upper bound ``(n_i - 1) exp(-beta g_i)`` on ``1 - max_j a_ij`` for each row (``(H, N)``).

    Rows with a single visible token have bound 0 (their weight is exactly 1).
    """
    S = _masked(S, causal)
    n_visible = np.isfinite(S).sum(axis=-1)
    if S.shape[-1] == 1:
        return np.zeros(S.shape[:-1])
    top2 = -np.sort(-S, axis=-1)[..., :2]
    many = n_visible > 1
    gap = np.where(many, top2[..., 0] - np.where(many, top2[..., 1], 0.0), 0.0)
    return np.where(many, (n_visible - 1) * np.exp(-beta * gap), 0.0)


def mean_entropy(A: np.ndarray) -> float:
    """Mean Shannon entropy (nats) over all attention rows of ``A (..., M)``."""
    return float(np.mean(attention_entropy(A)))


def softmax_entropy_curve(S: np.ndarray, betas, causal: bool) -> np.ndarray:
    """Mean softmax entropy at each ``beta`` for raw scores ``S (H, N, M)`` (the reference curve)."""
    S = np.asarray(S, dtype=float)
    mask = visible_mask(S.shape[-2], S.shape[-1], causal)
    out = []
    for beta in np.asarray(betas, dtype=float):
        E = np.where(mask, beta * np.where(mask, S, 0.0), -np.inf)
        E = np.exp(E - E.max(axis=-1, keepdims=True))
        out.append(mean_entropy(E / E.sum(axis=-1, keepdims=True)))
    return np.array(out)
