"""The circuit as the attention of trained transformers: tiny checkpoints against independent
forwards, glassllm against its own forward pass, rotary and grouped-query attention as circuit
features, and the rate backend's matrix coupling."""

import time

import numpy as np
import pytest
import transformer_factories as fx
import transformer_reference as ref
from ctattn.analysis.transformers import encode, forward, load_checkpoint, load_model
from ctattn.analysis.transformers.circuit import CircuitAttention, block_circuit
from ctattn.analysis.transformers.compare import run_with_circuit
from ctattn.circuits.backends import get_backend

from ctattn.core.problem import AttentionSpec, InputError, random_tokens, random_weights

IDS = np.array([3, 17, 5, 0, 11, 29, 8, 8, 2, 19, 31, 7])


def rel(a, b):
    return np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(b)


def _tiny(tmp_path, arch):
    if arch == "bert":
        sd = fx.write(tmp_path, fx.BERT_CONFIG, fx.bert_state(1, prefix="bert.", mlm=True))
        return sd, ref.bert_forward(sd, fx.BERT_CONFIG, IDS, "bert.")
    if arch == "gpt2":
        sd = fx.write(tmp_path, fx.GPT2_CONFIG, fx.gpt2_state(2))
        return sd, ref.gpt2_forward(sd, fx.GPT2_CONFIG, IDS, "")
    cfg = dict(fx.LLAMA_CONFIG, attention_bias=True)  # GQA (4 query, 2 kv heads), rotary, biases
    sd = fx.write(tmp_path, cfg, fx.llama_state(3, cfg=cfg, biases=True, o_bias=True))
    return sd, ref.llama_forward(sd, cfg, IDS)


@pytest.mark.parametrize("arch", ["bert", "gpt2", "llama"])
def test_tiny_checkpoints_ideal_circuit_match_independent_forward(tmp_path, arch):
    _, (hidden, attn_out, logits) = _tiny(tmp_path, arch)
    model = load_checkpoint(tmp_path)
    circuit_attention = CircuitAttention("ideal")
    result = forward(model, IDS, attention=circuit_attention)
    assert len(circuit_attention.records) == model.n_layers  # every layer went through a circuit
    assert rel(result.hidden_states, hidden) < 1e-6
    assert rel(result.attention_outputs, attn_out) < 1e-6
    if logits is not None:
        assert rel(result.logits, logits) < 1e-6


def test_rotary_and_gqa_are_circuit_features(tmp_path):
    _tiny(tmp_path, "llama")
    model = load_checkpoint(tmp_path)
    block = model.layers[0].attention
    X = np.random.default_rng(0).standard_normal((5, model.d_model))
    circuit, _ = block_circuit(block, X)
    names = {p.name for p in circuit.populations}
    assert {f"FO.query@{p}" for p in range(5)} <= names and "FO.query" not in names
    # column j's key synapses carry R_j W_K: the rotation is in the weights, not in the token
    key = next(p for p in circuit.projections if p.name == "FO.context->A0.L23:apical")
    R = block.rotary.matrices(np.arange(5))
    d_k, D = block.d_k, block.d_model
    for j in range(5):
        assert np.allclose(key.weight[j, :d_k, :D], R[j] @ block.W_K[0])
    # heads 0, 1 share kv head 0: area 1's key/value synapses record area 0's as shared
    shares = {p.name: p.shares for p in circuit.projections if p.shares}
    assert shares == {
        "FO.context->A1.L23:apical": "FO.context->A0.L23:apical",
        "FO.context->A1.L5:basal": "FO.context->A0.L5:basal",
        "FO.context->A3.L23:apical": "FO.context->A2.L23:apical",
        "FO.context->A3.L5:basal": "FO.context->A2.L5:basal",
    }
    assert circuit.n_weights < circuit.n_synapses
    # dropping the rotations changes the result: the position synapses matter
    Y = get_backend("ideal").run(circuit, block_circuit(block, X)[1]).Y
    block.rotary, saved = None, block.rotary
    try:
        circuit_plain, tokens = block_circuit(block, X)
        assert rel(get_backend("ideal").run(circuit_plain, tokens).Y, Y) > 1e-3
    finally:
        block.rotary = saved


def test_kv_groups_must_hold_equal_weights():
    from ctattn.circuits.build import circuit_for

    W = random_weights(seed=1, n_heads=2, d_model=6, d_k=3, d_v=3)
    X = random_tokens(seed=1, n_tokens=4, d_model=6)
    with pytest.raises(InputError, match="kv_groups: heads 0 and 1"):
        circuit_for(W, X, AttentionSpec(variant="softmax"), kv_groups=[0, 0])
    with pytest.raises(InputError, match="rotations: expected shape"):
        circuit_for(W, X, AttentionSpec(variant="softmax"), rotations=np.zeros((3, 3, 3)))


def test_rate_matrix_coupling_equals_synapses(seed):
    """The matrix-form summed inputs integrate the same equations as Brian2 synapses."""
    from ctattn.circuits.build import circuit_for

    W = random_weights(seed=seed, n_heads=2, d_model=5, d_k=3, d_v=2, biases=True)
    X = random_tokens(seed=seed, n_tokens=4, d_model=5)
    circuit = circuit_for(W, X, AttentionSpec(variant="softmax", causal=True))
    rate = get_backend("rate")
    a = rate.run(circuit, X, coupling="synapses", settle_ms=100.0)
    b = rate.run(circuit, X, coupling="matrix", settle_ms=100.0)
    assert b.info["coupling"] == "matrix"
    assert rel(b.Y, a.Y) < 1e-10


def _rotations(n_positions, thetas):
    d = 2 * len(thetas)
    R = np.zeros((n_positions, d, d))
    for p in range(n_positions):
        for i, t in enumerate(thetas):
            c, s = np.cos(p * t), np.sin(p * t)
            R[p, 2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = [[c, -s], [s, c]]
    return R


@pytest.mark.slow
def test_spiking_rotary_circuit_is_as_accurate_as_plain():
    """Position relays add no error of their own: spiking error near its shot-noise bound (measured
    ratio 1.3-1.6 on the standard problem, README); 2.5x leaves room for seed-to-seed spread."""
    from ctattn.circuits.build import circuit_for

    W = random_weights(seed=3, n_heads=2, d_model=8, d_k=4, d_v=4)
    X = random_tokens(seed=3, n_tokens=4, d_model=8)
    circuit = circuit_for(
        W, X, AttentionSpec(variant="softmax", causal=True), rotations=_rotations(4, [0.3, 1.1])
    )
    Y = get_backend("ideal").run(circuit, X).Y
    result = get_backend("spiking").run(circuit, X, seed=1)
    assert rel(result.Y, Y) < 2.5 * result.info["shot_noise_bound"]


PROMPT = "The little girl looked at the old king and said that she was going home"


@pytest.fixture(scope="module")
def glass():
    glassllm = pytest.importorskip("glassllm")  # the tests above run without it
    from ctattn.analysis.transformers.glassllm import glassllm_weights_path

    model = load_model("glassllm:en")
    ids = encode(model, PROMPT)[:16]
    own = glassllm.GlassLM.load(glassllm_weights_path("en"), dtype=np.float64)
    with glassllm.no_grad():
        logits = own.forward(ids).data[0]
    return model, ids, logits


def test_glassllm_ideal_circuit_matches_its_own_forward(glass):
    model, ids, logits = glass
    run = run_with_circuit(model, ids, "ideal", "all")
    assert len(ids) == 16 and run.layers == [0, 1, 2, 3]
    assert rel(run.circuit.logits, logits) < 1e-6
    assert run.metrics["top1_agreement"] == 1.0
    # the attention read from the circuit's own populations is the model's
    assert np.max(np.abs(run.attention_maps - run.attention_maps_ref)) < 1e-9


def test_glassllm_rate_circuit_all_layers(glass):
    """Acceptance: rate backend, all 4 layers, 16 tokens: logits within 1e-5 in <= 5 minutes."""
    model, ids, logits = glass
    start = time.process_time()
    run = run_with_circuit(model, ids, "rate", "all")
    # CPU time of this process: the work, unaffected by other jobs sharing the machine
    # (measured 51 s, wall 53 s, benchmarks/transformers.py)
    cpu = time.process_time() - start
    assert rel(run.circuit.logits, logits) < 1e-5
    assert cpu < 300.0
    assert all(r.info["coupling"] == "matrix" for r in run.attention.records)


def test_glassllm_spiking_layer_error_is_its_counting_noise(glass):
    """One glassllm layer (rotary relays, shared key/value weights, Dale's interneurons, tens of
    millions of rate-level synapses) on 4 tokens, spiking with the model settings: the matrix
    coupling runs it, and the error is the readout's counting noise, no bias on top (measured
    ratio 1.1-1.2, benchmarks/transformers_spiking_layer.py; unfinished settling gave 100x)."""
    from ctattn.analysis.transformers.circuit import SPIKING_MODEL_DEFAULTS

    model, ids, _ = glass
    exact = forward(model, ids[:4])
    circuit, tokens = block_circuit(model.layers[1].attention, exact.attention_inputs[1])
    result = get_backend("spiking").run(circuit, tokens, seed=3, **SPIKING_MODEL_DEFAULTS)
    assert result.info["coupling"] == "matrix" and result.info["n_brian2_synapses"] == 0
    assert result.info["n_synapses"] > 1_000_000
    error = rel(result.Y, exact.attention_outputs[1])
    assert error < 2.0 * result.info["shot_noise_bound"]
    assert result.info["saturated_fraction"] <= 1e-3


@pytest.mark.slow
def test_glassllm_spiking_circuit_all_layers(glass):
    """Acceptance: spiking (poisson) backend, all 4 layers, 16 tokens, the model settings of
    SPIKING_MODEL_DEFAULTS: top-1 agreement >= 90 % in <= 10 minutes and <= 8 GB (measured:
    benchmarks/transformers.py)."""
    import resource

    model, ids, logits = glass
    start = time.process_time()
    run = run_with_circuit(model, ids, "spiking", "all", neuron="poisson", seed=0)
    cpu = time.process_time() - start
    assert run.metrics["top1_agreement"] >= 0.9
    assert cpu < 600.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20 < 8.0  # GiB (kB on Linux)
    for record in run.attention.records:  # matrix coupling: no Brian2 synapse per weight
        assert record.info["coupling"] == "matrix" and record.info["n_brian2_synapses"] == 0
        assert record.info["n_synapses"] > 10_000_000
