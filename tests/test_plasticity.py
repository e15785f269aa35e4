"""Local plasticity rules read from the circuit's populations (MODEL.md section 4).

The rules of :mod:`ctattn.analysis.plasticity` see only one window's rates and the target at the
higher-order relay. With symmetric feedback and the weights held fixed, their updates summed
over a sequence's windows must equal the exact gradient of :mod:`ctattn.analysis.gradients` (a
different code path that reads no circuit); one window's update must equal the gradient of
that token's own error. Sizes pairwise distinct: H=2, d_k=3, d_v=4, N=5, D=6, M=7.
"""

from __future__ import annotations

import ast
import inspect
import itertools

import ctattn.analysis.plasticity as plasticity
import numpy as np
import pytest
from ctattn.analysis.gradients import attention_gradients, flatten
from ctattn.analysis.learning import _cosine, local_gradient, make_task, train
from ctattn.analysis.plasticity import Feedback, local_gradients, read_head
from ctattn.circuits.backends import get_backend
from ctattn.circuits.build import circuit_for

from ctattn.core.problem import AttentionSpec, random_tokens, random_weights
from ctattn.core.seeding import rng_for

H, D_K, D_V, N, D, M = 2, 3, 4, 5, 6, 7
BIASES = ("b_Q", "b_K", "b_V", "b_O")

CASES = [
    c
    for c in itertools.product(
        ("linear", "normalized", "softmax"), ("relu", "softplus", "elu1"), *[(False, True)] * 3
    )
    if c[0] != "softmax" or c[1] == "relu"
]


def _setup(seed, variant, phi, causal, cross, biases):
    weights = random_weights(seed, H, D, D_K, D_V, biases=biases)
    tokens = random_tokens(seed, N, D, n_kv=M if cross else None)
    T = rng_for(seed, "targets").normal(0, 1, (N, D))
    spec = AttentionSpec(variant=variant, phi=phi, causal=causal)
    circuit = circuit_for(weights, tokens, spec)
    result = get_backend("ideal").run(circuit, tokens)
    present = tuple(b for b in BIASES if getattr(weights, b) is not None)
    return weights, tokens, T, spec, circuit, result, present


def _window(result, k):
    return {name: r[k] for name, r in result.window_rates.items()}


def _assert_close(local, exact):
    # Relative to the whole gradient: softmax's db_K is identically zero (round-off either way).
    scale = np.abs(flatten(exact)).max()
    for key in exact:
        np.testing.assert_allclose(local[key], exact[key], rtol=0, atol=1e-11 * scale, err_msg=key)


@pytest.mark.parametrize("variant,phi,causal,cross,biases", CASES)
def test_summed_local_updates_are_the_exact_gradient(variant, phi, causal, cross, biases):
    seed = 404 + CASES.index((variant, phi, causal, cross, biases))
    weights, tokens, T, spec, circuit, result, present = _setup(seed, variant, phi, causal, cross, biases)
    feedback = Feedback.create("symmetric", weights.W_O)
    total = None
    for k, window in enumerate(circuit.schedule):
        g = local_gradients(circuit, _window(result, k), T[window.query], feedback, biases=present)
        total = g if total is None else {key: total[key] + g[key] for key in total}
    kwargs = spec.reference_kwargs(weights)
    exact = attention_gradients(tokens.X, T, **weights.arrays(), **kwargs, X_kv=tokens.X_kv)
    assert set(exact.grads) | {"dB"} == set(total)
    _assert_close(total, exact.grads)
    # the feedback synapses' own update is the transpose of W_O's, so symmetric stays symmetric
    np.testing.assert_array_equal(total["dB"], np.transpose(total["dW_O"], (0, 2, 1)))


@pytest.mark.parametrize("variant", ["linear", "normalized", "softmax"])
def test_one_window_is_the_gradient_of_its_own_token(variant):
    """Online, token by token: window i's update is dE_i/dW with E_i = 1/2 ||t_i - y_i||^2."""
    weights, tokens, T, spec, circuit, result, present = _setup(17, variant, "softplus", True, True, True)
    feedback = Feedback.create("symmetric", weights.W_O)
    for k, window in enumerate(circuit.schedule):
        i = window.query
        g = local_gradients(circuit, _window(result, k), T[i], feedback, biases=present)
        T_i = result.Y.copy()  # every other token's error is zero
        T_i[i] = T[i]
        exact = attention_gradients(
            tokens.X, T_i, **weights.arrays(), **spec.reference_kwargs(weights), X_kv=tokens.X_kv
        )
        _assert_close(g, exact.grads)


def test_read_head_gives_the_paper_quantities():
    """The signals read from populations are q_i, k_j, v_j, a_ij, u_i, y_i of the reference."""
    from ctattn.analysis.reference import multihead_attention

    weights, tokens, T, spec, circuit, result, _ = _setup(23, "normalized", "elu1", False, True, True)
    trace = multihead_attention(
        tokens.X, **weights.arrays(), **spec.reference_kwargs(weights), X_kv=tokens.X_kv, trace=True
    )
    for k, window in enumerate(circuit.schedule):
        i = window.query
        for h in range(H):
            s = read_head(circuit, _window(result, k), h)
            np.testing.assert_allclose(s.q, np.broadcast_to(trace.Q[h, i], (M, D_K)), atol=1e-12)
            np.testing.assert_allclose(s.k, trace.K[h], atol=1e-12)
            np.testing.assert_allclose(s.v, trace.V[h], atol=1e-12)
            np.testing.assert_allclose(s.a, trace.A[h, i], atol=1e-12)
            np.testing.assert_allclose(s.u, trace.U[h, i], atol=1e-12)
            np.testing.assert_allclose(s.x_c, tokens.X_kv, atol=1e-12)
            np.testing.assert_allclose(s.y, trace.Y[i], atol=1e-12)


def test_random_feedback_changes_only_the_rules_that_use_it():
    """W_O's delta rule needs no feedback; W_V, W_Q, W_K's three-factor rules do."""
    weights, tokens, T, spec, circuit, result, present = _setup(31, "linear", "relu", False, False, True)
    sym = Feedback.create("symmetric", weights.W_O)
    rnd = Feedback.create("random", weights.W_O, seed=31)
    assert not rnd.plastic and sym.plastic
    for k, window in enumerate(circuit.schedule):
        a = local_gradients(circuit, _window(result, k), T[window.query], sym, biases=present)
        b = local_gradients(circuit, _window(result, k), T[window.query], rnd, biases=present)
        np.testing.assert_array_equal(a["dW_O"], b["dW_O"])
        np.testing.assert_array_equal(a["db_O"], b["db_O"])
        for key in ("dW_V", "dW_Q", "dW_K", "db_V"):
            assert not np.allclose(a[key], b[key]), key
        assert "dB" not in b


def test_the_rules_never_call_the_exact_gradient_or_the_reference():
    """Honest locality: ctattn.analysis.plasticity imports neither ctattn.analysis.gradients nor the reference."""
    tree = ast.parse(inspect.getsource(plasticity))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    assert not imported & {
        "ctattn.analysis.gradients",
        "ctattn.analysis.reference",
        "ctattn.analysis.learning",
    }, imported


def test_local_rule_is_unchanged_by_monitoring():
    """Measuring the cosine to the exact gradient must not leak into the updates."""
    task = make_task("teacher", 3, n_heads=2, n_tokens=4, d_model=5, d_k=3, d_v=2, n_sequences=2)
    start = random_weights(3, 2, 5, 3, 2)
    watched = train(task, start, rule="local", steps=4, monitor_every=1)
    blind = train(task, start, rule="local", steps=4, monitor_every=0)
    for key, value in watched.weights.arrays().items():
        np.testing.assert_array_equal(value, blind.weights.arrays()[key])
    assert np.all(np.isfinite(watched.curves["cosine"])) and np.all(np.isnan(blind.curves["cosine"]))


def test_feedback_alignment_is_an_approximation_that_is_measured():
    """Random feedback: the summed local updates are not the gradient (cosine < 1), W_O's are."""
    task = make_task("teacher", 5, n_heads=2, n_tokens=4, d_model=5, d_k=3, d_v=2, n_sequences=2)
    weights = random_weights(5, 2, 5, 3, 2)
    from ctattn.analysis.learning import exact_gradient

    _, exact = exact_gradient(weights, task)
    rnd = local_gradient(weights, task, Feedback.create("random", weights.W_O, seed=5))
    sym = local_gradient(weights, task, Feedback.create("symmetric", weights.W_O))
    keys = sorted(exact)
    assert _cosine(flatten(sym, keys), flatten(exact, keys)) == pytest.approx(1.0, abs=1e-12)
    assert _cosine(flatten(rnd, keys), flatten(exact, keys)) < 1 - 1e-3
    assert _cosine(rnd["dW_O"].ravel(), exact["dW_O"].ravel()) == pytest.approx(1.0, abs=1e-12)


def test_rules_reject_the_memory_layout():
    weights = random_weights(1, 1, 3, 2, 2)
    tokens = random_tokens(1, 2, 3)
    circuit = circuit_for(weights, tokens, AttentionSpec(layout="memory"))
    result = get_backend("ideal").run(circuit, tokens)
    with pytest.raises(ValueError, match="layout"):
        read_head(circuit, _window(result, 0), 0)


@pytest.mark.slow
def test_rules_read_from_the_rate_backend():
    """The same rules on the rate backend's settled window rates agree with the ideal ones."""
    setup = _setup(41, "normalized", "softplus", True, False, True)
    weights, tokens, T, spec, circuit, result, present = setup
    rate = get_backend("rate").run(circuit, tokens)
    feedback = Feedback.create("symmetric", weights.W_O)
    for k, window in enumerate(circuit.schedule):
        a = local_gradients(circuit, _window(rate, k), T[window.query], feedback, biases=present)
        b = local_gradients(circuit, _window(result, k), T[window.query], feedback, biases=present)
        scale = np.abs(flatten(b)).max()
        for key in b:
            np.testing.assert_allclose(a[key], b[key], rtol=0, atol=1e-6 * scale, err_msg=key)
