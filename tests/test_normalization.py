r"""Normalised attention in the circuit: the inhibitory pool that divides by shunting inhibition.

``a_ij = s_ij / Z_i`` with ``s_ij = phi(q_i) . phi(k_j)`` and ``Z_i = sum_j s_ij`` (paper v1).
In each area (head), one L5 gain cell per column reports ``s_ij`` to an inhibitory pool
(local interneurons) whose rate is ``Z_i`` and which divides every L5 cell of the area.

Tolerances: the ideal backend is exact up to round-off (1e-12); the rate backend settles for
30 tau per token window and starts every window from rest, leaving ~1e-8 relative (the
issue's bound, used here, is 1e-6). Attention weights are read from the circuit's own L5g and
pool populations (:func:`ctattn.analysis.decoding.decode_attention`), never from the reference.
Sizes are pairwise distinct: H=2, d_k=3, d_v=5, N=7, D=9, M=4 (cross-attention).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from ctattn.analysis.attention_limits import visible_mask
from ctattn.analysis.decoding import decode_attention, decode_scores
from ctattn.analysis.metrics import relative_error
from ctattn.analysis.reference import multihead_attention

from ctattn.api import simulate
from ctattn.cli import main
from ctattn.core.problem import AttentionWeights, Tokens, random_tokens, random_weights

H, D_K, D_V, N, D, M = 2, 3, 5, 7, 9, 4
TOL = {"ideal": 1e-12, "rate": 1e-6}


def _problem(seed: int, *, cross: bool, biases: bool = True, n_tokens: int = N):
    W = random_weights(seed, H, D, D_K, D_V, biases=biases)
    T = random_tokens(seed, n_tokens, D, n_kv=M if cross else None)
    return W, T


def _reference(W, T, *, phi="relu", causal=False):
    return multihead_attention(
        T.X, **W.arrays(), X_kv=T.X_kv, variant="normalized", phi=phi, causal=causal, trace=True
    )


def _zero_row_problem():
    """Head 0 of token 3 matches no key: x_3 = 0 and b_Q[0] < 0, so phi(q_3) = 0 and Z_3 = 0."""
    W, T = _problem(21, cross=False)
    b_Q = W.b_Q.copy()
    b_Q[0] = -0.5
    X = T.X.copy()
    X[3] = 0.0
    return W.replace(b_Q=b_Q), Tokens(X=X)


@pytest.mark.parametrize("backend", ["ideal", "rate"])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("cross", [False, True], ids=["self", "cross"])
def test_matches_reference(backend, causal, cross):
    W, T = _problem(3, cross=cross)
    run = simulate(W, T, backend=backend, variant="normalized", causal=causal)
    ref = _reference(W, T, causal=causal)
    assert relative_error(run.Y, ref.Y) < TOL[backend]
    # the attention map, read from the gain cells and the pool, is the reference's
    A = decode_attention(run.circuit, run.result.window_rates)
    np.testing.assert_allclose(A, ref.A, rtol=0, atol=TOL[backend])
    # each query row sums to 1 over the tokens it may see (0 where Z_i = 0), and to 0 beyond
    Z = ref.S.sum(axis=-1)
    np.testing.assert_allclose(A.sum(axis=-1), (Z > 0).astype(float), atol=TOL[backend])
    assert np.all(A[:, ~visible_mask(T.n_tokens, T.n_kv, causal)] == 0)


@pytest.mark.parametrize("phi", ["relu", "softplus", "elu1"])
def test_pool_rate_is_the_partition_function(phi):
    """L5g cell of column j = s_ij; pool = Z_i = sum_j s_ij; L2/3 cells sum to s_ij (ideal)."""
    W, T = _problem(4, cross=True)
    run = simulate(W, T, backend="ideal", variant="normalized", phi=phi, causal=True)
    ref = _reference(W, T, phi=phi, causal=True)
    rates = run.result.window_rates
    for h in range(H):
        gains = rates[f"A{h}.L5g"][:, :, 0]  # (windows = queries, columns = keys)
        np.testing.assert_allclose(gains, ref.S[h], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(rates[f"A{h}.pool"][:, 0, 0], ref.S[h].sum(axis=-1), rtol=1e-12)
    visible = visible_mask(N, M, True)
    np.testing.assert_allclose(decode_scores(run.circuit, rates)[:, visible], ref.S[:, visible], rtol=1e-12)


def test_circuit_divides_by_shunting_inhibition():
    """Wiring: gain cells converge on one pool per area, which shunts every L5 cell of that area."""
    W, T = _problem(5, cross=False)
    run = simulate(W, T, backend="ideal", variant="normalized")
    c = run.circuit
    for h in range(H):
        pool, L5, gain = c.population(f"A{h}.pool"), c.population(f"A{h}.L5"), c.population(f"A{h}.L5g")
        assert pool.shape == (1, 1) and pool.layer == "pool" and pool.model.kind == "pool"
        assert gain.shape == (N, 1) and L5.model.divisive and not gain.model.divisive
        into_pool = c.inputs_to(pool.name)
        wiring = [(p.pre, p.target, p.columns, p.kind) for p in into_pool]
        assert wiring == [(gain.name, "basal", "converge", "local")]
        shunts = c.inputs_to(L5.name, "shunt")
        assert [(p.pre, p.columns, p.kind) for p in shunts] == [(pool.name, "broadcast", "local")]
        assert {p.pre for p in c.inputs_to(L5.name, "shunt")} == {pool.name}  # nothing else divides
    # normalisation makes the weights invariant to the scale of the queries (relu is homogeneous)
    # while the pool's rate scales with it: the division happens in the circuit
    run3 = simulate(W.replace(W_Q=3 * W.W_Q, b_Q=3 * W.b_Q), T, backend="ideal", variant="normalized")
    np.testing.assert_allclose(
        decode_attention(run3.circuit, run3.result.window_rates),
        decode_attention(c, run.result.window_rates),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        run3.result.window_rates["A0.pool"], 3 * run.result.window_rates["A0.pool"], rtol=1e-12
    )


@pytest.mark.parametrize("backend", ["ideal", "rate"])
def test_query_that_matches_no_key_attends_to_nothing(backend):
    """Z_i = 0 (possible with relu): 0/0 := 0, as in the reference, after a window with Z > 0."""
    W, T = _zero_row_problem()
    ref = _reference(W, T)
    assert ref.S[0, 3].sum() == 0 and ref.S[0, 2].sum() > 0  # the case the test is about
    run = simulate(W, T, backend=backend, variant="normalized")
    assert relative_error(run.Y, ref.Y) < TOL[backend]
    A = decode_attention(run.circuit, run.result.window_rates)
    assert np.all(A[0, 3] == 0)
    assert np.all(run.result.window_rates["A0.L5"][3] == 0)  # the L5 cells of head 0 are silent
    np.testing.assert_allclose(A[1, 3].sum(), 1.0, atol=TOL[backend])  # head 1 still attends


@pytest.mark.parametrize("backend", ["ideal", "rate"])
def test_one_token_has_weight_one(backend):
    """A single key/value token gets weight 1, whatever its score (softplus: Z > 0)."""
    W, T = _problem(6, cross=False, n_tokens=1)
    run = simulate(W, T, backend=backend, variant="normalized", phi="softplus")
    A = decode_attention(run.circuit, run.result.window_rates)
    np.testing.assert_allclose(A, 1.0, atol=TOL[backend])
    v = np.einsum("hvd,d->hv", W.W_V, T.X[0]) + W.b_V
    np.testing.assert_allclose(
        run.Y[0], np.einsum("hdv,hv->d", W.W_O, v) + W.b_O, rtol=0, atol=TOL[backend] * np.abs(run.Y).max()
    )
    # cross-attention to one key/value token: every query gives it weight 1
    T1 = Tokens(X=random_tokens(6, 5, D).X, X_kv=T.X)
    run1 = simulate(W, T1, backend="ideal", variant="normalized", phi="softplus", causal=True)
    np.testing.assert_allclose(decode_attention(run1.circuit, run1.result.window_rates), 1.0, rtol=1e-12)
    np.testing.assert_allclose(run1.Y, np.broadcast_to(run.Y[0], (5, D)), atol=TOL[backend] * 10)


def test_beta_does_not_enter_normalized():
    W, T = _problem(7, cross=False)
    Y = [simulate(W, T, variant="normalized", beta=b).Y for b in (0.1, 3.0)]
    np.testing.assert_array_equal(Y[0], Y[1])


def _run_json(capsys, *argv) -> dict:
    code = main(["run", "--json", *argv])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and len(out) == 1, out
    return json.loads(out[0])


def test_cli_weights_file_with_biases(tmp_path, capsys):
    """``ctattn run --variant normalized`` on a W.npz with biases and an X.npz with X_kv (rate)."""
    W, T = _problem(8, cross=True)
    assert W.has_biases
    W.save(tmp_path / "W.npz")
    T.save(tmp_path / "X.npz")
    s = _run_json(
        capsys,
        "--backend",
        "rate",
        "--variant",
        "normalized",
        "--causal",
        "--weights",
        str(tmp_path / "W.npz"),
        "--inputs",
        str(tmp_path / "X.npz"),
        "--out",
        str(tmp_path / "out"),
    )
    assert s["variant"] == "normalized" and s["cross"] and s["causal"] and s["beta"] is None
    assert s["rel_error"] < 1e-6
    loaded = AttentionWeights.load(tmp_path / "W.npz")
    with np.load(tmp_path / "out" / "result.npz") as r:
        ref = _reference(loaded, Tokens.load(tmp_path / "X.npz"), causal=True)
        assert relative_error(r["Y"], ref.Y) < 1e-6  # checked here against our own reference too


def test_cli_memory_layout_refuses_normalized(capsys):
    code = main(["run", "--variant", "normalized", "--layout", "memory"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "layout" in err[0] and "normalized" in err[0]
