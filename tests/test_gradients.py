"""Exact gradients of E = 1/2 sum_i ||t_i - y_i||^2 against finite differences (MODEL.md section 4).

Sizes are pairwise distinct (H=2, d_k=3, d_v=4, N=5, D=6, M=7) so that a transposed axis
cannot pass. Finite differences are fourth-order central (step 1e-5): their truncation and
rounding errors are ~1e-10 relative for these O(1) problems, so the 1e-5 bound below is set
by the gradient, not by the check. Every problem is float64.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from ctattn.analysis.gradients import (
    attention_gradients,
    backward,
    finite_difference_gradients,
    flatten,
    squared_error,
)
from ctattn.analysis.reference import causal_mask, multihead_attention
from ctattn.circuits.backends import get_backend
from ctattn.circuits.build import circuit_for

from ctattn.core.feature_maps import FEATURE_MAPS, get_feature_map
from ctattn.core.problem import AttentionSpec, Tokens, random_tokens, random_weights
from ctattn.core.seeding import rng_for

H, D_K, D_V, N, D, M = 2, 3, 4, 5, 6, 7
STEP = 1e-5
TOLERANCE = 1e-5

CASES = [
    (variant, phi, causal, cross, biases)
    for variant, phi, causal, cross, biases in itertools.product(
        ("linear", "normalized", "softmax"), sorted(FEATURE_MAPS), (False, True), (False, True), (False, True)
    )
    if variant != "softmax" or phi == "relu"  # softmax does not use phi
]


def _problem(seed: int, variant: str, phi: str, cross: bool, biases: bool):
    weights = random_weights(seed, H, D, D_K, D_V, biases=biases)
    arrays = weights.arrays()
    tokens = random_tokens(seed, N, D, n_kv=M if cross else None)
    if variant == "normalized" and not FEATURE_MAPS[phi].nonnegative:
        # With a sign-indefinite phi, Z_i = sum_j phi(q_i).phi(k_j) can come arbitrarily close to
        # 0, where normalized attention is singular and no finite difference is accurate. Keep
        # q, k near 1.2 (inside (0, pi), so sin stays positive while its derivative varies):
        # a constant input feature x_0 = 1 with weight 1.2, and small other weights.
        rng = rng_for(seed, "well-conditioned")
        for name in ("W_Q", "W_K"):
            arrays[name] = rng.normal(0, 0.05, (H, D_K, D))
            arrays[name][:, :, 0] = 1.2
        X = tokens.X.copy()
        X[:, 0] = 1.0
        X_kv = None
        if tokens.X_kv is not None:
            X_kv = tokens.X_kv.copy()
            X_kv[:, 0] = 1.0
        tokens = Tokens(X=X, X_kv=X_kv)
    T = rng_for(seed, "targets").normal(0, 1, (N, D))
    return arrays, tokens, T


def _relative_errors(exact: dict, numeric: dict) -> dict[str, float]:
    # Relative to each array's norm, floored at 1e-4 of the whole gradient: softmax's db_K is
    # identically zero (a bias on every key shifts a whole row of scores), and a relative
    # error of two round-off numbers (~eps E / h ~ 1e-10) would be meaningless.
    scale = np.linalg.norm(flatten(numeric))
    return {
        k: float(np.linalg.norm(exact[k] - numeric[k]) / max(np.linalg.norm(numeric[k]), 1e-4 * scale))
        for k in numeric
    }


def _check_kinks(arrays, tokens, phi, variant, causal):
    """Precondition: no pre-activation within 2 steps of relu's kink (the FD stencil spans 2h)."""
    if phi != "relu" or variant == "softmax":
        return
    kw = dict(variant=variant, phi=phi, causal=causal, X_kv=tokens.X_kv)
    trace = multihead_attention(tokens.X, **arrays, **kw, trace=True)
    closest = min(np.abs(trace.Q).min(), np.abs(trace.K).min())
    assert closest > 10 * STEP, f"test problem too close to relu's kink ({closest:.1e}); draw another"


@pytest.mark.parametrize("variant,phi,causal,cross,biases", CASES)
def test_gradients_match_finite_differences(variant, phi, causal, cross, biases):
    seed = 20250 + CASES.index((variant, phi, causal, cross, biases))
    arrays, tokens, T = _problem(seed, variant, phi, cross, biases)
    kw = dict(variant=variant, phi=phi, causal=causal, X_kv=tokens.X_kv)
    _check_kinks(arrays, tokens, phi, variant, causal)
    grads = attention_gradients(tokens.X, T, **arrays, **kw)
    numeric = finite_difference_gradients(
        lambda p: squared_error(multihead_attention(tokens.X, **p, **kw), T), arrays, STEP
    )
    assert set(grads.grads) == set(numeric)
    errors = _relative_errors(grads.grads, numeric)
    assert max(errors.values()) < TOLERANCE, errors
    loss = squared_error(multihead_attention(tokens.X, **arrays, **kw), T)
    assert grads.loss == pytest.approx(loss, rel=1e-14)


def test_softmax_key_bias_has_no_gradient():
    """A key bias shifts every score of query i by q_i . b_K: softmax is blind to it."""
    arrays, tokens, T = _problem(7, "softmax", "relu", False, True)
    grads = attention_gradients(tokens.X, T, **arrays, variant="softmax")
    assert np.abs(grads["db_K"]).max() < 1e-12 * np.abs(grads["db_Q"]).max()
    assert np.abs(grads["db_Q"]).max() > 1e-3


def test_normalized_zero_partition_convention():
    """A query whose relu features are all zero has Z_i = 0; it attends to nothing (0/0 := 0)
    and stays so under a small perturbation, so the gradient must agree with finite differences."""
    arrays, tokens, T = _problem(11, "normalized", "relu", False, False)
    # Query 0 with q_0^h = -0.5 in every feature of every head (H d_k = D here, so it exists).
    stacked = arrays["W_Q"].reshape(H * D_K, D)
    X = tokens.X.copy()
    X[0] = np.linalg.solve(stacked, -0.5 * np.ones(H * D_K))
    kw = dict(variant="normalized", phi="relu")
    trace = multihead_attention(X, **arrays, **kw, trace=True)
    assert np.all(trace.S[:, 0].sum(axis=-1) == 0) and np.all(trace.A[:, 0] == 0)
    grads = attention_gradients(X, T, **arrays, **kw)
    numeric = finite_difference_gradients(
        lambda p: squared_error(multihead_attention(X, **p, **kw), T), arrays, STEP
    )
    assert max(_relative_errors(grads.grads, numeric).values()) < TOLERANCE


def _formula_gradients(arrays, X, T, variant, phi, causal):
    """MODEL.md section 4 written out token by token (linear and normalized), as a second,
    loop-based implementation that shares no code with ctattn.analysis.gradients."""
    fm = get_feature_map(phi)
    tr = multihead_attention(X, **arrays, variant=variant, phi=phi, causal=causal, trace=True)
    n = X.shape[0]
    mask = causal_mask(n, n) if causal else np.ones((n, n), bool)
    out = {k: np.zeros_like(arrays[k]) for k in ("W_Q", "W_K", "W_V", "W_O")}
    for h in range(arrays["W_Q"].shape[0]):
        for i in range(n):
            e = T[i] - tr.Y[i]
            delta = arrays["W_O"][h].T @ e
            out["W_O"][h] -= np.outer(e, tr.U[h, i])
            Z = tr.S[h, i].sum()
            for j in range(n):
                if not mask[i, j]:
                    continue
                out["W_V"][h] -= tr.A[h, i, j] * np.outer(delta, X[j])
                if variant == "linear":
                    G = tr.V[h, j] @ delta
                else:
                    G = (tr.V[h, j] - tr.U[h, i]) @ delta / Z
                out["W_Q"][h] -= np.outer(fm.df(tr.Q[h, i]) * G * fm(tr.K[h, j]), X[i])
                out["W_K"][h] -= np.outer(fm.df(tr.K[h, j]) * G * fm(tr.Q[h, i]), X[j])
    return out


@pytest.mark.parametrize("variant", ["linear", "normalized"])
@pytest.mark.parametrize("causal", [False, True])
def test_gradients_match_model_formulas(variant, causal):
    arrays, tokens, T = _problem(3, variant, "softplus", False, False)
    grads = attention_gradients(tokens.X, T, **arrays, variant=variant, phi="softplus", causal=causal)
    formula = _formula_gradients(arrays, tokens.X, T, variant, "softplus", causal)
    for k in formula:
        np.testing.assert_allclose(grads["d" + k], formula[k], rtol=1e-10, atol=1e-12)


def test_wrong_jacobians_are_rejected():
    """Power check: the same comparison rejects plausible mistakes, so the tolerance bites."""
    arrays, tokens, T = _problem(5, "normalized", "softplus", False, False)
    kw = dict(phi="softplus", X_kv=None)
    numeric_norm = finite_difference_gradients(
        lambda p: squared_error(multihead_attention(tokens.X, **p, variant="normalized", **kw), T),
        arrays,
        STEP,
    )
    # normalized attention differentiated as if it were linear (the u_i term and 1/Z_i dropped)
    trace = multihead_attention(tokens.X, **arrays, variant="normalized", **kw, trace=True)
    as_linear = backward(trace, tokens.X, T, arrays["W_O"], variant="linear", phi="softplus")
    assert max(_relative_errors(as_linear.grads, numeric_norm).values()) > 1e-2
    # causal attention differentiated without its mask
    numeric_causal = finite_difference_gradients(
        lambda p: squared_error(multihead_attention(tokens.X, **p, variant="linear", causal=True, **kw), T),
        arrays,
        STEP,
    )
    trace = multihead_attention(tokens.X, **arrays, variant="linear", causal=True, **kw, trace=True)
    unmasked = backward(trace, tokens.X, T, arrays["W_O"], variant="linear", phi="softplus", causal=False)
    assert max(_relative_errors(unmasked.grads, numeric_causal).values()) > 1e-2
    # softmax with a wrong inverse temperature
    numeric_soft = finite_difference_gradients(
        lambda p: squared_error(multihead_attention(tokens.X, **p, variant="softmax", beta=0.7), T),
        arrays,
        STEP,
    )
    wrong_beta = attention_gradients(tokens.X, T, **arrays, variant="softmax", beta=0.7 * 1.01)
    assert max(_relative_errors(wrong_beta.grads, numeric_soft).values()) > 1e-4


@pytest.mark.parametrize("variant", ["linear", "normalized", "softmax"])
@pytest.mark.parametrize("causal", [False, True])
def test_gradients_at_the_circuit_output(variant, causal):
    """Taking the error from the ideal circuit's own output gives the same gradients."""
    weights = random_weights(13, H, D, D_K, D_V, biases=True)
    tokens = random_tokens(13, N, D, n_kv=M)
    T = rng_for(13, "targets").normal(0, 1, (N, D))
    spec = AttentionSpec(variant=variant, phi="relu", causal=causal)
    Y = get_backend("ideal").run(circuit_for(weights, tokens, spec), tokens).Y
    kw = dict(**weights.arrays(), **spec.reference_kwargs(weights), X_kv=tokens.X_kv)
    from_circuit = attention_gradients(tokens.X, T, Y=Y, **kw)
    from_reference = attention_gradients(tokens.X, T, **kw)
    for k in from_reference.grads:
        np.testing.assert_allclose(from_circuit[k], from_reference[k], rtol=1e-9, atol=1e-12)


def test_target_shape_is_checked():
    arrays, tokens, T = _problem(1, "linear", "relu", False, False)
    with pytest.raises(ValueError, match="T: expected shape"):
        attention_gradients(tokens.X, T[:, :-1], **arrays)


def test_finite_differences_are_exact_on_a_quadratic():
    """The checker itself: E = 1/2 p^T A p has gradient A p, and both stencils are exact there."""
    rng = rng_for(0, "quadratic")
    A = rng.normal(size=(5, 5))
    A = A @ A.T
    p = {"w": rng.normal(size=(5,))}
    for order in (2, 4):
        g = finite_difference_gradients(lambda q: 0.5 * q["w"] @ A @ q["w"], p, 1e-3, order=order)["dw"]
        np.testing.assert_allclose(g, A @ p["w"], rtol=1e-9)
