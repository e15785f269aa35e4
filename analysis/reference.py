r"""The matrix reference: multi-head attention in numpy, the ground truth of every backend.

For tokens ``X`` (rows ``x_i``, queries) and ``X_kv`` (rows ``x_j``, keys and values;
``X_kv = X`` for self-attention), per head ``h``::

    q_i = W_Q[h] x_i + b_Q[h]      k_j = W_K[h] x_j + b_K[h]      v_j = W_V[h] x_j + b_V[h]

    linear      a_ij = phi(q_i) . phi(k_j)                                 (paper v3)
    normalized  a_ij = phi(q_i) . phi(k_j) / sum_j' phi(q_i) . phi(k_j')   (paper v1; 0/0 := 0)
    softmax     a_ij = exp(beta q_i . k_j) / sum_j' exp(beta q_i . k_j')   (Vaswani 2017)

    u_i^h = sum_j a_ij v_j          y_i = sum_h W_O[h] u_i^h + b_O

Causal attention restricts every sum over ``j`` to ``j <= i``. ``beta`` defaults to
``1/sqrt(d_k)`` and only enters ``softmax``.

Symbols (MODEL.md section 1): ``H`` heads, ``N`` query tokens, ``M`` key/value tokens,
``D = d_model``, ``d_k``, ``d_v``. Shapes: ``W_Q, W_K (H, d_k, D)``, ``W_V (H, d_v, D)``,
``W_O (H, D, d_v)``, ``b_Q, b_K (H, d_k)``, ``b_V (H, d_v)``, ``b_O (D,)``.

This module is pure maths and knows nothing of circuits; the backends are tested against it
and never call it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ctattn.core.feature_maps import get_feature_map
from ctattn.core.problem import VARIANTS

__all__ = [
    "VARIANTS",
    "AttentionTrace",
    "causal_mask",
    "attention_weights",
    "multihead_attention",
    "kv_memory_attention",
]


@dataclass(frozen=True)
class AttentionTrace:
    """Every intermediate of one forward pass (useful for plots and gradients).

    ``Q (H,N,d_k)``, ``K (H,M,d_k)``, ``V (H,M,d_v)``, ``S (H,N,M)`` the scores (masked
    entries 0 for linear/normalized, ``-inf`` for softmax), ``A (H,N,M)`` the attention
    weights, ``U (H,N,d_v)`` the head outputs, ``Y (N,D)`` the block output.
    """

    Q: np.ndarray
    K: np.ndarray
    V: np.ndarray
    S: np.ndarray
    A: np.ndarray
    U: np.ndarray
    Y: np.ndarray


def causal_mask(n_queries: int, n_keys: int) -> np.ndarray:
    """``mask[i, j] = (j <= i)``: query ``i`` sees key/value tokens up to its own position."""
    return np.arange(n_keys)[None, :] <= np.arange(n_queries)[:, None]


def _project(W: np.ndarray, X: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    out = np.einsum("hkd,nd->hnk", W, X)
    if b is not None:
        out = out + np.asarray(b)[:, None, :]
    return out


def attention_weights(
    Q: np.ndarray,
    K: np.ndarray,
    *,
    variant: str = "linear",
    phi: str = "relu",
    beta: float | None = None,
    causal: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Scores ``S`` and weights ``A`` of shape ``(H, N, M)`` from ``Q (H,N,d_k)``, ``K (H,M,d_k)``."""
    if variant not in VARIANTS:
        raise ValueError(f"variant: unknown attention variant {variant!r}; choose one of {VARIANTS}")
    n, m = Q.shape[1], K.shape[1]
    mask = causal_mask(n, m) if causal else np.ones((n, m), dtype=bool)
    if variant == "softmax":
        if beta is None:
            beta = 1.0 / np.sqrt(Q.shape[-1])
        S = np.where(mask, beta * np.einsum("hnk,hmk->hnm", Q, K), -np.inf)
        S_max = np.max(S, axis=-1, keepdims=True)
        E = np.exp(S - S_max)  # shift: exact in exact arithmetic, avoids overflow
        return S, E / E.sum(axis=-1, keepdims=True)
    fm = get_feature_map(phi)
    S = np.where(mask, np.einsum("hnk,hmk->hnm", fm(Q), fm(K)), 0.0)
    if variant == "linear":
        return S, S
    # A query that matches no key (Z_i = 0, possible with relu) attends to nothing: 0/0 := 0.
    # (Z_i < 0 only arises with the signed maths-only maps, identity and sin: plain s / Z.)
    Z = S.sum(axis=-1, keepdims=True)
    return S, np.divide(S, Z, out=np.zeros_like(S), where=Z != 0)


def multihead_attention(
    X: np.ndarray,
    W_Q: np.ndarray,
    W_K: np.ndarray,
    W_V: np.ndarray,
    W_O: np.ndarray,
    *,
    b_Q: np.ndarray | None = None,
    b_K: np.ndarray | None = None,
    b_V: np.ndarray | None = None,
    b_O: np.ndarray | None = None,
    variant: str = "linear",
    phi: str = "relu",
    beta: float | None = None,
    causal: bool = False,
    X_kv: np.ndarray | None = None,
    trace: bool = False,
) -> np.ndarray | AttentionTrace:
    """Block output ``Y (N, D)`` of multi-head attention (score order, paper v1).

    ``X_kv`` given: cross-attention (queries from ``X``, keys and values from ``X_kv``).
    ``trace=True`` returns an :class:`AttentionTrace` with every intermediate.
    """
    X = np.asarray(X, dtype=float)
    X_kv = X if X_kv is None else np.asarray(X_kv, dtype=float)
    Q = _project(W_Q, X, b_Q)
    K = _project(W_K, X_kv, b_K)
    V = _project(W_V, X_kv, b_V)
    S, A = attention_weights(Q, K, variant=variant, phi=phi, beta=beta, causal=causal)
    U = np.einsum("hnm,hmv->hnv", A, V)
    Y = np.einsum("hdv,hnv->nd", W_O, U)
    if b_O is not None:
        Y = Y + b_O
    if trace:
        return AttentionTrace(Q=Q, K=K, V=V, S=S, A=A, U=U, Y=Y)
    return Y


def kv_memory_attention(
    X: np.ndarray,
    W_Q: np.ndarray,
    W_K: np.ndarray,
    W_V: np.ndarray,
    W_O: np.ndarray,
    *,
    b_Q: np.ndarray | None = None,
    b_K: np.ndarray | None = None,
    b_V: np.ndarray | None = None,
    b_O: np.ndarray | None = None,
    phi: str = "relu",
    causal: bool = False,
    X_kv: np.ndarray | None = None,
) -> np.ndarray:
    """Linear attention in key-value-memory order (paper v3).

    ``M_i = sum_{j (<= i)} v_j phi(k_j)^T`` (shape ``(H, d_v, d_k)``), ``u_i = M_i phi(q_i)``:
    the same numbers as :func:`multihead_attention` with ``variant="linear"``, summed in a
    different order.
    """
    X = np.asarray(X, dtype=float)
    X_kv = X if X_kv is None else np.asarray(X_kv, dtype=float)
    fm = get_feature_map(phi)
    fQ = fm(_project(W_Q, X, b_Q))
    fK = fm(_project(W_K, X_kv, b_K))
    V = _project(W_V, X_kv, b_V)
    outer = np.einsum("hmv,hmk->mhvk", V, fK)  # one memory increment per key/value token
    n, m = X.shape[0], X_kv.shape[0]
    if causal:
        cumulative = np.cumsum(outer, axis=0)  # M after writing tokens 0..j
        memory = np.stack([cumulative[min(i, m - 1)] for i in range(n)])
    else:
        memory = np.broadcast_to(outer.sum(axis=0), (n,) + outer.shape[1:])
    U = np.einsum("nhvk,hnk->hnv", memory, fQ)
    Y = np.einsum("hdv,hnv->nd", W_O, U)
    if b_O is not None:
        Y = Y + b_O
    return Y
