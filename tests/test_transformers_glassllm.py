"""Our numpy forward of glassllm's bundled models vs glassllm's own forward."""

import numpy as np
import pytest

glassllm = pytest.importorskip("glassllm")

from ctattn.analysis.transformers import encode, forward, load_glassllm, load_model  # noqa: E402
from ctattn.analysis.transformers.glassllm import glassllm_weights_path  # noqa: E402

PROMPT = {
    "en": "The little girl looked at the old king and said that she was going home",
    "pt": "A menina olhou para o velho rei e disse que ela",
}


def rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


@pytest.fixture(params=["en", "pt"])
def pair(request):
    lang = request.param
    return (
        lang,
        load_model(f"glassllm:{lang}"),
        glassllm.GlassLM.load(glassllm_weights_path(lang), dtype=np.float64),
    )


def test_structure(pair):
    lang, model, _ = pair
    assert model.arch == "glassllm" and model.n_layers == 4 and model.d_model == 128
    blk = model.layers[0].attention
    assert blk.n_heads == 4 and blk.n_kv_heads == 2 and list(blk.kv_head) == [0, 0, 1, 1]
    assert blk.rotary.convention == "pair" and blk.causal and blk.b_Q is None


def test_logits_and_trace_match(pair):
    lang, model, ref = pair
    ids = encode(model, PROMPT[lang])[:16]
    assert len(ids) == 16
    tracer = glassllm.Tracer()
    with glassllm.no_grad():
        logits = ref.forward(ids, trace=tracer).data[0]
    r = forward(model, ids)
    assert rel(r.logits, logits) < 1e-6
    for i in range(4):
        assert rel(r.attention_outputs[i], tracer.get("attn.out", i).value) < 1e-6
        assert rel(r.attention_inputs[i], tracer.get("norm.attn", i).value) < 1e-6
        if i < 3:
            assert rel(r.hidden_states[i + 1], tracer.get("resid.ffn", i).value) < 1e-6
    assert rel(r.hidden_states[-1], tracer.get("norm.final").value) < 1e-6
    assert rel(r.hidden_states[0], tracer.get("embed").value) < 1e-6


def test_float32_default_model(pair):
    lang, model, _ = pair
    ref32, tok = glassllm.load_pretrained(lang)
    ids = tok.encode(PROMPT[lang])
    with glassllm.no_grad():
        logits = ref32.forward(ids).data[0]
    assert rel(forward(model, ids).logits, logits) < 1e-5  # glassllm computes in float32


def test_max_len_and_errors(tmp_path):
    model = load_glassllm("en")
    with pytest.raises(ValueError, match="128 positions"):
        forward(model, np.zeros(129, dtype=int))
    with pytest.raises(ValueError, match="weights file not found"):
        load_glassllm(tmp_path / "x.npz")
    bad = tmp_path / "bad.npz"
    with np.load(glassllm_weights_path("en")) as data:
        arrays = {k: data[k] for k in data.files if k != "blocks.2.attn.W_V"}
    np.savez(bad, **arrays)
    with pytest.raises(ValueError, match="missing tensor 'blocks.2.attn.W_V'"):
        load_glassllm(bad)
