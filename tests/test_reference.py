"""The matrix reference against naive loops and algebraic identities.

Sizes are pairwise distinct (H=2, N=5, M=7, D=11, d_k=3, d_v=4) so that a transposed axis
cannot pass. Tolerances are float64 round-off (1e-12 relative).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from ctattn.analysis.reference import attention_weights, causal_mask, kv_memory_attention, multihead_attention

from ctattn.core.feature_maps import FEATURE_MAPS, get_feature_map

H, N, M, D, DK, DV = 2, 5, 7, 11, 3, 4


def _weights(rng, biases=True):
    W = dict(
        W_Q=rng.normal(size=(H, DK, D)) / np.sqrt(D),
        W_K=rng.normal(size=(H, DK, D)) / np.sqrt(D),
        W_V=rng.normal(size=(H, DV, D)) / np.sqrt(D),
        W_O=rng.normal(size=(H, D, DV)) / np.sqrt(DV),
    )
    if biases:
        W.update(
            b_Q=rng.normal(size=(H, DK)),
            b_K=rng.normal(size=(H, DK)),
            b_V=rng.normal(size=(H, DV)),
            b_O=rng.normal(size=D),
        )
    return W


def _naive(X, X_kv, W, variant, phi, beta, causal):
    """Token-by-token loops, written straight from MODEL.md section 1."""
    f = get_feature_map(phi)
    n, m = X.shape[0], X_kv.shape[0]
    Y = np.zeros((n, D))
    for i in range(n):
        y = W.get("b_O", np.zeros(D)).copy()
        for h in range(H):
            q = W["W_Q"][h] @ X[i] + W.get("b_Q", np.zeros((H, DK)))[h]
            scores, values = [], []
            for j in range(m):
                if causal and j > i:
                    continue
                k = W["W_K"][h] @ X_kv[j] + W.get("b_K", np.zeros((H, DK)))[h]
                v = W["W_V"][h] @ X_kv[j] + W.get("b_V", np.zeros((H, DV)))[h]
                s = beta * float(q @ k) if variant == "softmax" else float(f(q) @ f(k))
                scores.append(s)
                values.append(v)
            scores = np.array(scores)
            if variant == "softmax":
                a = np.exp(scores - scores.max())
                a = a / a.sum()
            elif variant == "normalized":
                a = scores / scores.sum() if scores.sum() != 0 else np.zeros_like(scores)
            else:
                a = scores
            u = sum(aj * vj for aj, vj in zip(a, values))
            y = y + W["W_O"][h] @ u
        Y[i] = y
    return Y


@pytest.mark.parametrize(
    "variant,phi,causal,cross",
    [
        (v, p, c, x)
        for v, p, c, x in itertools.product(
            ["linear", "normalized", "softmax"],
            ["relu", "softplus", "elu1", "sin"],
            [False, True],
            [False, True],
        )
        if not (v == "normalized" and p == "sin")
    ],  # sin scores can sum to 0: normalisation undefined
)
def test_matches_naive_loops(rng, variant, phi, causal, cross):
    W = _weights(rng)
    X = rng.normal(size=(N, D))
    X_kv = rng.normal(size=(M, D)) if cross else None
    beta = 0.7
    Y = multihead_attention(X, **W, variant=variant, phi=phi, beta=beta, causal=causal, X_kv=X_kv)
    Y_naive = _naive(X, X if X_kv is None else X_kv, W, variant, phi, beta, causal)
    assert Y.shape == (N, D)
    np.testing.assert_allclose(Y, Y_naive, rtol=1e-12, atol=1e-12)


def test_heads_add_up(rng):
    W = _weights(rng, biases=False)
    X = rng.normal(size=(N, D))
    total = multihead_attention(X, **W, variant="softmax")
    parts = sum(
        multihead_attention(X, **{k: v[h : h + 1] for k, v in W.items()}, variant="softmax") for h in range(H)
    )
    np.testing.assert_allclose(total, parts, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("variant", ["linear", "normalized", "softmax"])
def test_token_permutation_equivariance(rng, variant):
    W = _weights(rng)
    X = rng.normal(size=(N, D))
    perm = rng.permutation(N)
    Y = multihead_attention(X, **W, variant=variant, phi="softplus")
    Y_perm = multihead_attention(X[perm], **W, variant=variant, phi="softplus")
    np.testing.assert_allclose(Y_perm, Y[perm], rtol=1e-12, atol=1e-12)


def test_causal_output_ignores_future_tokens(rng):
    W = _weights(rng)
    X = rng.normal(size=(N, D))
    X2 = X.copy()
    X2[3:] = rng.normal(size=(N - 3, D))
    for variant in ("linear", "normalized", "softmax"):
        Y1 = multihead_attention(X, **W, variant=variant, phi="softplus", causal=True)
        Y2 = multihead_attention(X2, **W, variant=variant, phi="softplus", causal=True)
        np.testing.assert_allclose(Y1[:3], Y2[:3], rtol=1e-12)
        assert not np.allclose(Y1[3:], Y2[3:])


@pytest.mark.parametrize("which", ["W_V", "W_O"])
def test_linearity_in_values_and_output(rng, which):
    W = _weights(rng, biases=False)
    X = rng.normal(size=(N, D))
    A, B = rng.normal(size=W[which].shape), rng.normal(size=W[which].shape)
    a, b = 0.3, -1.7
    f = lambda M_: multihead_attention(X, **{**W, which: M_}, variant="softmax")  # noqa: E731
    np.testing.assert_allclose(f(a * A + b * B), a * f(A) + b * f(B), rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("phi", ["relu", "softplus", "elu1", "identity", "sin"])
@pytest.mark.parametrize("causal,cross", [(False, False), (True, False), (False, True), (True, True)])
def test_kv_memory_order_equals_score_order(rng, phi, causal, cross):
    W = _weights(rng)
    X = rng.normal(size=(N, D))
    X_kv = rng.normal(size=(M, D)) if cross else None
    Y_scores = multihead_attention(X, **W, variant="linear", phi=phi, causal=causal, X_kv=X_kv)
    Y_memory = kv_memory_attention(X, **W, phi=phi, causal=causal, X_kv=X_kv)
    np.testing.assert_allclose(Y_memory, Y_scores, rtol=1e-11, atol=1e-12)


def test_softmax_rows_sum_to_one_and_default_beta(rng):
    Q, K = rng.normal(size=(H, N, DK)), rng.normal(size=(H, M, DK))
    S, A = attention_weights(Q, K, variant="softmax", causal=True)
    np.testing.assert_allclose(A.sum(-1), 1.0, rtol=1e-12)
    assert np.all(A[:, ~causal_mask(N, M)] == 0)
    _, A_explicit = attention_weights(Q, K, variant="softmax", beta=1 / np.sqrt(DK), causal=True)
    np.testing.assert_allclose(A, A_explicit, rtol=1e-14)


def test_normalized_zero_score_row_attends_to_nothing():
    Q = -np.ones((1, 2, 3))  # relu(q) = 0: every score zero
    K = np.ones((1, 4, 3))
    _, A = attention_weights(Q, K, variant="normalized", phi="relu")
    assert np.all(A == 0) and np.all(np.isfinite(A))


def test_feature_map_derivatives_match_finite_differences():
    x = np.linspace(-3, 3, 41) + 0.013  # avoid the kinks at 0
    for fm in FEATURE_MAPS.values():
        h = 1e-6
        numeric = (fm(x + h) - fm(x - h)) / (2 * h)
        np.testing.assert_allclose(fm.df(x), numeric, rtol=1e-6, atol=1e-8, err_msg=fm.name)


def test_unknown_variant_and_phi_named():
    with pytest.raises(ValueError, match="variant"):
        multihead_attention(np.ones((2, 3)), *[np.ones((1, 3, 3))] * 4, variant="cosine")
    with pytest.raises(ValueError, match="phi"):
        multihead_attention(np.ones((2, 3)), *[np.ones((1, 3, 3))] * 4, phi="tanh")
