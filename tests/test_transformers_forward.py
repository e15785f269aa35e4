"""Attention callbacks, per-head exchange format, rotary projections and GQA mapping."""

import math

import numpy as np
import pytest
import transformer_factories as fx
from ctattn.analysis.transformers import Rotary, exact_attention, forward, load_checkpoint, rotate_half
from ctattn.analysis.transformers.rotary import rope_inv_freq

IDS = np.array([3, 17, 5, 0, 11, 29, 8, 8, 2, 19])


@pytest.fixture(params=["bert", "gpt2", "llama"])
def model(request, tmp_path):
    kind = request.param
    if kind == "bert":
        fx.write(tmp_path, fx.BERT_CONFIG, fx.bert_state(7))
    elif kind == "gpt2":
        fx.write(tmp_path, fx.GPT2_CONFIG, fx.gpt2_state(7))
    else:
        fx.write(
            tmp_path, dict(fx.LLAMA_CONFIG, attention_bias=True), fx.llama_state(7, biases=True, o_bias=True)
        )
    return load_checkpoint(tmp_path)


def naive_exchange_attention(X, block):
    """Attention from the exchange format only: per query/key position projections, loops."""
    N, D = X.shape
    y = np.zeros((N, D))
    for h in range(block.n_heads):
        for i in range(N):
            Wi = block.exchange_arrays(position=i) if block.rotary else block.exchange_arrays()
            q = Wi["W_Q"][h] @ X[i] + Wi.get("b_Q", np.zeros((block.n_heads, block.d_k)))[h]
            js = range(i + 1) if block.causal else range(N)
            s, vs = [], []
            for j in js:
                Wj = block.exchange_arrays(position=j) if block.rotary else Wi
                k = Wj["W_K"][h] @ X[j] + Wj.get("b_K", np.zeros((block.n_heads, block.d_k)))[h]
                s.append(Wi["beta"] * q @ k)
                vs.append(Wi["W_V"][h] @ X[j] + Wi.get("b_V", np.zeros((block.n_heads, block.d_v)))[h])
            a = np.exp(np.array(s) - max(s))
            a /= a.sum()
            y[i] += Wi["W_O"][h] @ (a @ np.array(vs))
    return y + block.b_O if block.b_O is not None else y


def test_callback_identity_and_inputs(model):
    base = forward(model, IDS)
    calls = []

    def cb(i, X, block):
        calls.append(i)
        np.testing.assert_allclose(X, base.attention_inputs[i], rtol=0, atol=1e-12)
        assert block is model.layers[i].attention
        return exact_attention(X, block)

    r = forward(model, IDS, attention=cb)
    assert calls == list(range(model.n_layers))
    np.testing.assert_allclose(r.hidden_states, base.hidden_states, rtol=0, atol=1e-12)


def test_exchange_format_reproduces_attention(model):
    base = forward(model, IDS)
    r = forward(model, IDS, attention=lambda i, X, b: naive_exchange_attention(X, b))
    assert np.linalg.norm(r.logits - base.logits) / np.linalg.norm(base.logits) < 1e-10


def test_projection_mode_equals_rotation(model):
    X = forward(model, IDS).attention_inputs[1]
    blk = model.layers[1].attention
    np.testing.assert_allclose(
        exact_attention(X, blk, mode="projection"), exact_attention(X, blk), atol=1e-12
    )


def test_layers_in_circuit_subset(model):
    seen = []
    zero = lambda i, X, b: (seen.append(i), np.zeros_like(X))[1]  # noqa: E731
    base = forward(model, IDS)
    r = forward(model, IDS, attention=zero, layers_in_circuit=[-1])
    assert seen == [model.n_layers - 1]
    np.testing.assert_allclose(r.hidden_states[:-1], base.hidden_states[:-1], atol=1e-12)
    assert not np.allclose(r.hidden_states[-1], base.hidden_states[-1])
    assert np.all(r.attention_outputs[-1] == 0)


def test_callback_errors(model):
    with pytest.raises(ValueError, match="expected finite"):
        forward(model, IDS, attention=lambda i, X, b: X[:, :3])
    with pytest.raises(ValueError, match="out of range"):
        forward(model, IDS, attention=lambda i, X, b: X, layers_in_circuit=[5])
    with pytest.raises(ValueError, match="without an attention callback"):
        forward(model, IDS, layers_in_circuit=[0])


def test_exchange_arrays_shapes(model):
    blk = model.layers[0].attention
    if blk.rotary is not None:
        with pytest.raises(ValueError, match="position"):
            blk.exchange_arrays()
        arr = blk.exchange_arrays(position=0)
        np.testing.assert_allclose(arr["W_Q"], blk.W_Q, atol=1e-15)  # R_0 = I
    else:
        arr = blk.exchange_arrays()
    H, dk, D = arr["W_Q"].shape
    assert arr["W_K"].shape == (H, dk, D) and arr["W_O"].shape == (H, D, arr["W_V"].shape[1])
    assert arr["beta"] == pytest.approx(1 / math.sqrt(dk))


def test_gqa_expansion(tmp_path):
    fx.write(tmp_path, fx.LLAMA_CONFIG, sd := fx.llama_state(1))
    blk = load_checkpoint(tmp_path).layers[1].attention
    Wk = sd["model.layers.1.self_attn.k_proj.weight"].astype(float).reshape(2, 6, 24)
    kv = blk.kv_weights()
    np.testing.assert_array_equal(kv["W_K"], Wk)
    np.testing.assert_array_equal(blk.W_K[0], blk.W_K[1])
    np.testing.assert_array_equal(blk.W_K[2], Wk[1])


# ------------------------------------------------------------------------------ rotary
@pytest.mark.parametrize("convention", ["half", "pair"])
def test_rotary_matrices(convention):
    rot = Rotary(head_dim=8, theta=100.0, convention=convention)
    R3, R7 = rot.matrix(3), rot.matrix(7)
    np.testing.assert_allclose(R3 @ R3.T, np.eye(8), atol=1e-12)
    np.testing.assert_allclose(R3.T @ R7, rot.matrix(4), atol=1e-12)  # relative position
    x = np.random.default_rng(0).standard_normal((5, 8))
    np.testing.assert_allclose(rot.apply(x, np.arange(5))[3], R3 @ x[3], atol=1e-12)


def test_rotary_conventions_explicit():
    d, theta, p = 6, 50.0, 2.5
    x = np.random.default_rng(1).standard_normal(d)
    inv = theta ** (-np.arange(0, d, 2) / d)
    c = np.cos(p * np.concatenate([inv, inv]))
    s = np.sin(p * np.concatenate([inv, inv]))
    np.testing.assert_allclose(Rotary(d, theta, "half").apply(x[None], [p])[0], x * c + rotate_half(x) * s)
    pair = np.empty(d)
    for i in range(d // 2):
        a = p * inv[i]
        pair[2 * i] = x[2 * i] * math.cos(a) - x[2 * i + 1] * math.sin(a)
        pair[2 * i + 1] = x[2 * i] * math.sin(a) + x[2 * i + 1] * math.cos(a)
    np.testing.assert_allclose(Rotary(d, theta, "pair").apply(x[None], [p])[0], pair)


def test_partial_rotary_and_scaling():
    rot = Rotary(head_dim=8, theta=10.0, rotary_dim=4)
    x = np.arange(8.0)
    assert np.all(rot.apply(x[None], [3])[0, 4:] == x[4:])
    inv = rope_inv_freq(8, 10.0)
    np.testing.assert_allclose(rope_inv_freq(8, 10.0, {"rope_type": "linear", "factor": 4.0}), inv / 4)
    l3 = rope_inv_freq(
        64,
        5e5,
        {
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192,
        },
    )
    base = rope_inv_freq(64, 5e5)
    assert l3[0] == base[0] and l3[-1] == pytest.approx(base[-1] / 8)
    assert np.all(l3 <= base)
