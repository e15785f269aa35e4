"""Weights, tokens and spec: validation names the field; seeds are reproducible streams."""

from __future__ import annotations

import numpy as np
import pytest

from ctattn.core.problem import (
    AttentionSpec,
    AttentionWeights,
    InputError,
    Tokens,
    random_tokens,
    random_weights,
)
from ctattn.core.seeding import rng_for


def test_weight_shapes_are_checked_by_name():
    W = random_weights(0, 2, 5, 3, 4)
    with pytest.raises(InputError, match="W_K"):
        AttentionWeights(W.W_Q, W.W_K[:, :2], W.W_V, W.W_O)
    with pytest.raises(InputError, match="W_O"):
        AttentionWeights(W.W_Q, W.W_K, W.W_V, W.W_O.transpose(0, 2, 1))
    with pytest.raises(InputError, match="b_V"):
        AttentionWeights(W.W_Q, W.W_K, W.W_V, W.W_O, b_V=np.zeros((2, 3)))
    with pytest.raises(InputError, match="NaN"):
        AttentionWeights(W.W_Q * np.nan, W.W_K, W.W_V, W.W_O)
    with pytest.raises(InputError, match="beta"):
        W.replace(beta=-1.0)


def test_tokens_are_checked():
    with pytest.raises(InputError, match="X_kv"):
        Tokens(np.ones((3, 4)), np.ones((2, 5)))
    with pytest.raises(InputError, match="X"):
        Tokens(np.ones(4))
    with pytest.raises(InputError, match="d_model"):
        Tokens(np.ones((3, 4))).check_against(random_weights(0, 1, 5, 2, 2))


def test_spec_is_checked():
    for kw, field in [
        (dict(variant="x"), "variant"),
        (dict(phi="x"), "phi"),
        (dict(layout="x"), "layout"),
        (dict(beta=float("nan")), "beta"),
        (dict(causal="yes"), "causal"),
    ]:
        with pytest.raises(InputError, match=field):
            AttentionSpec(**kw)


def test_npz_roundtrip(tmp_path):
    W = random_weights(3, 2, 5, 3, 4, biases=True).replace(beta=0.25)
    W.save(tmp_path / "W.npz")
    W2 = AttentionWeights.load(tmp_path / "W.npz")
    for k, v in W.arrays().items():
        np.testing.assert_array_equal(getattr(W2, k), v)
    assert W2.beta == 0.25


def test_seed_streams_are_independent_and_reproducible():
    a = random_weights(7, 2, 5, 3, 4)
    b = random_weights(7, 2, 5, 3, 4)
    np.testing.assert_array_equal(a.W_Q, b.W_Q)
    assert not np.allclose(random_weights(8, 2, 5, 3, 4).W_Q, a.W_Q)
    # Drawing from one stream never shifts another.
    x1 = rng_for(7, "tokens").normal(size=3)
    rng_for(7, "weights").normal(size=1000)
    np.testing.assert_array_equal(rng_for(7, "tokens").normal(size=3), x1)
    # Cross-attention adds X_kv without changing X.
    np.testing.assert_array_equal(random_tokens(7, 4, 5).X, random_tokens(7, 4, 5, n_kv=6).X)
