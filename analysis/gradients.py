r"""Exact gradients of the squared error of one attention block (MODEL.md section 4).

Loss and error (``t_i`` the target of query ``i``, ``y_i`` the block output)::

    E = 1/2 sum_i ||t_i - y_i||^2          e_i = t_i - y_i          delta_i^h = W_O[h]^T e_i

Per head ``h`` (head index dropped; ``x_i`` queries, ``x_j`` keys/values, ``a_ij``, ``u_i``,
``q_i``, ``k_j``, ``v_j`` as in :mod:`ctattn.analysis.reference`)::

    dE/dW_O = - sum_i e_i u_i^T                         dE/db_O = - sum_i e_i
    dE/dW_V = - sum_ij a_ij delta_i x_j^T               dE/db_V = - sum_ij a_ij delta_i
    dE/dW_Q = - sum_i [sum_j dq_ij] x_i^T               dE/db_Q = - sum_ij dq_ij
    dE/dW_K = - sum_j [sum_i dk_ij] x_j^T               dE/db_K = - sum_ij dk_ij

with the score error ``G_ij = -dE/ds_ij`` (zero where the causal mask hides ``j``)::

    linear      G_ij = g_ij                       g_ij = v_j . delta_i    (= -dE/da_ij)
    normalized  G_ij = (g_ij - u_i . delta_i) / Z_i = ((v_j - u_i) . delta_i) / Z_i
    softmax     G_ij = a_ij (g_ij - u_i . delta_i)                        (softmax Jacobian)

and its projection onto the query and key::

    linear, normalized   dq_ij = phi'(q_i) * G_ij phi(k_j)      dk_ij = phi'(k_j) * G_ij phi(q_i)
    softmax              dq_ij = beta G_ij k_j                  dk_ij = beta G_ij q_i

(``*`` elementwise). For ``normalized`` a query whose scores sum to ``Z_i = 0`` attends to
nothing (the reference's ``0/0 := 0``): its weights are locally constant, so its ``G_ij = 0``.

This is the authors' gradient-check script generalised to every variant, causal masking,
cross-attention and biases; :func:`finite_difference_gradients` is the independent check.
Pure maths: it knows nothing of circuits (the learning rules of :mod:`ctattn.analysis.plasticity`
read the same quantities from a circuit's populations instead).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ctattn.analysis.reference import AttentionTrace, causal_mask, multihead_attention

from ctattn.core.feature_maps import get_feature_map

__all__ = [
    "PARAMETERS",
    "Gradients",
    "squared_error",
    "attention_gradients",
    "backward",
    "finite_difference_gradients",
    "flatten",
]

# Every learnable array of a block, in the order of AttentionWeights.KEYS.
PARAMETERS = ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "b_O")


@dataclass(frozen=True)
class Gradients:
    """``loss`` ``E``, the gradients ``dE/dP`` keyed ``"dW_Q"`` ... ``"db_O"`` (only for the
    parameters present), the error ``e (N, D)`` and the forward trace they were taken at."""

    loss: float
    grads: dict[str, np.ndarray]
    error: np.ndarray
    trace: AttentionTrace

    def __getitem__(self, key: str) -> np.ndarray:
        return self.grads[key]


def squared_error(Y: np.ndarray, T: np.ndarray) -> float:
    """``E = 1/2 sum_i ||t_i - y_i||^2``."""
    return 0.5 * float(np.sum((np.asarray(T) - np.asarray(Y)) ** 2))


def flatten(grads: dict[str, np.ndarray], keys=None) -> np.ndarray:
    """All arrays of ``grads`` (in ``keys`` order, default sorted) as one vector."""
    keys = sorted(grads) if keys is None else keys
    return np.concatenate([np.ravel(grads[k]) for k in keys])


def backward(
    trace: AttentionTrace,
    X: np.ndarray,
    T: np.ndarray,
    W_O: np.ndarray,
    *,
    X_kv: np.ndarray | None = None,
    Y: np.ndarray | None = None,
    variant: str = "linear",
    phi: str = "relu",
    beta: float | None = None,
    causal: bool = False,
    biases: tuple[str, ...] = (),
) -> Gradients:
    """Gradients of ``E`` at the forward pass ``trace`` (see the module docstring).

    ``Y``: the block output the error is taken from (default ``trace.Y``); a circuit's own
    output can be passed here, the Jacobian being that of the matrix reference. ``biases``:
    which of ``b_Q, b_K, b_V, b_O`` to return gradients for.
    """
    X = np.asarray(X, dtype=float)
    X_kv = X if X_kv is None else np.asarray(X_kv, dtype=float)
    Y = trace.Y if Y is None else np.asarray(Y, dtype=float)
    Q, K, V, A, U = trace.Q, trace.K, trace.V, trace.A, trace.U
    N, M = Q.shape[1], K.shape[1]
    E = np.asarray(T, dtype=float) - Y  # e_i
    delta = np.einsum("hdv,nd->hnv", W_O, E)  # delta_i^h = W_O[h]^T e_i
    g = np.einsum("hmv,hnv->hnm", V, delta)  # g_ij = v_j . delta_i = -dE/da_ij
    mask = causal_mask(N, M) if causal else np.ones((N, M), dtype=bool)

    if variant == "linear":
        G = np.where(mask, g, 0.0)
    elif variant == "normalized":
        # Rows the forward pass normalised sum to exactly 1; the others were set to 0 (0/0 := 0)
        # and stay 0 under a small perturbation, so they carry no gradient.
        Z = trace.S.sum(axis=-1, keepdims=True)
        normalised = np.abs(A.sum(axis=-1, keepdims=True)) > 0.5
        ud = np.einsum("hnv,hnv->hn", U, delta)[..., None]  # u_i . delta_i
        G = np.where(mask & normalised, (g - ud) / np.where(normalised, Z, 1.0), 0.0)
    elif variant == "softmax":
        ud = np.einsum("hnm,hnm->hn", A, g)[..., None]  # sum_j a_ij g_ij = u_i . delta_i
        G = A * (g - ud)  # masked entries have a_ij = 0
    else:
        raise ValueError(f"variant: unknown attention variant {variant!r}")

    if variant == "softmax":
        if beta is None:
            beta = 1.0 / np.sqrt(Q.shape[-1])
        dQ = beta * np.einsum("hnm,hmk->hnk", G, K)  # sum_j dq_ij
        dK = beta * np.einsum("hnm,hnk->hmk", G, Q)  # sum_i dk_ij
    else:
        fm = get_feature_map(phi)
        dQ = fm.df(Q) * np.einsum("hnm,hmk->hnk", G, fm(K))
        dK = fm.df(K) * np.einsum("hnm,hnk->hmk", G, fm(Q))
    dV = np.einsum("hnm,hnv->hmv", A, delta)  # sum_i a_ij delta_i

    grads = {
        "dW_Q": -np.einsum("hnk,nd->hkd", dQ, X),
        "dW_K": -np.einsum("hmk,md->hkd", dK, X_kv),
        "dW_V": -np.einsum("hmv,md->hvd", dV, X_kv),
        "dW_O": -np.einsum("nd,hnv->hdv", E, U),
    }
    bias_grads = {
        "b_Q": -dQ.sum(axis=1),
        "b_K": -dK.sum(axis=1),
        "b_V": -dV.sum(axis=1),
        "b_O": -E.sum(axis=0),
    }
    for name in biases:
        grads["d" + name] = bias_grads[name]
    return Gradients(loss=squared_error(Y, T), grads=grads, error=E, trace=trace)


def attention_gradients(
    X: np.ndarray,
    T: np.ndarray,
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
    Y: np.ndarray | None = None,
) -> Gradients:
    """Forward pass of the reference and :func:`backward`: ``E`` and ``dE/dP`` for every ``P``.

    Arguments as :func:`ctattn.analysis.reference.multihead_attention`, plus targets ``T (N, D)``;
    gradients of the biases are returned for the biases given. ``Y`` as in :func:`backward`.
    """
    arrays = dict(b_Q=b_Q, b_K=b_K, b_V=b_V, b_O=b_O)
    present = tuple(k for k, v in arrays.items() if v is not None)
    trace = multihead_attention(
        X,
        W_Q,
        W_K,
        W_V,
        W_O,
        **arrays,
        variant=variant,
        phi=phi,
        beta=beta,
        causal=causal,
        X_kv=X_kv,
        trace=True,
    )
    T = np.asarray(T, dtype=float)
    if T.shape != trace.Y.shape:
        raise ValueError(f"T: expected shape {trace.Y.shape} (n_tokens, d_model), got {T.shape}")
    return backward(
        trace, X, T, W_O, X_kv=X_kv, Y=Y, variant=variant, phi=phi, beta=beta, causal=causal, biases=present
    )


def finite_difference_gradients(
    loss_of, params: dict[str, np.ndarray], step: float = 1e-5, *, order: int = 4
) -> dict[str, np.ndarray]:
    """Central differences of ``loss_of(params) -> float`` for every entry of every array.

    ``order=2``: ``(E(P+h) - E(P-h)) / 2h``, truncation error ``O(h^2 E''')``;
    ``order=4``: ``(8 (E(P+h) - E(P-h)) - (E(P+2h) - E(P-2h))) / 12h`` (Richardson),
    truncation ``O(h^4 E^(5))``. The rounding error is ``O(eps E / h)`` either way, ~1e-11
    relative at ``h = 1e-5``. The fourth order matters near a singular point, e.g. a small
    ``Z_i`` of ``normalized`` attention with a sign-indefinite ``phi``, where ``E'''`` grows
    like ``1/Z_i^3``. ``params`` is not modified.
    """
    if order not in (2, 4):
        raise ValueError(f"order: expected 2 or 4, got {order!r}")
    out = {}
    for name in params:
        work = {k: np.array(v, dtype=float, copy=True) for k, v in params.items()}
        grad = np.zeros_like(work[name])
        flat, gflat = work[name].reshape(-1), grad.reshape(-1)

        def shifted(n, offset, flat=flat, work=work):  # bound now: the closure is used in this pass only
            orig = flat[n]
            flat[n] = orig + offset
            value = loss_of(work)
            flat[n] = orig
            return value

        for n in range(flat.size):
            d1 = shifted(n, step) - shifted(n, -step)
            if order == 2:
                gflat[n] = d1 / (2 * step)
            else:
                d2 = shifted(n, 2 * step) - shifted(n, -2 * step)
                gflat[n] = (8 * d1 - d2) / (12 * step)
        out["d" + name] = grad
    return out
