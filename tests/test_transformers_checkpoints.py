"""Loaders vs independent numpy forwards on tiny random checkpoints in the published layouts."""

import json

import ml_dtypes
import numpy as np
import pytest
import transformer_factories as fx
import transformer_reference as ref
from ctattn.analysis.transformers import forward, load_checkpoint, load_model

TOL = 1e-6


def rel(a, b):
    return np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(b)


def check(result, expected):
    hidden, attn_out, logits = expected
    assert result.hidden_states.shape == hidden.shape
    assert rel(result.hidden_states, hidden) < TOL
    assert rel(result.attention_outputs, attn_out) < TOL
    if logits is None:
        assert result.logits is None
    else:
        assert result.logits.shape == logits.shape
        assert rel(result.logits, logits) < TOL


IDS = np.array([3, 17, 5, 0, 11, 29, 8, 8, 2, 19, 31, 7])


@pytest.mark.parametrize("prefix", ["bert.", ""])
@pytest.mark.parametrize("mlm", [True, False])
def test_bert(tmp_path, prefix, mlm):
    sd = fx.write(tmp_path, fx.BERT_CONFIG, fx.bert_state(1, prefix=prefix, mlm=mlm))
    model = load_checkpoint(tmp_path)
    assert model.arch == "bert" and model.n_layers == 2
    assert not model.layers[0].attention.causal
    expected = ref.bert_forward(sd, fx.BERT_CONFIG, IDS, prefix)
    check(forward(model, IDS), expected)
    # buffers/pooler are the only tensors left unread
    assert all(("position_ids" in n or "pooler" in n) for n in model.extra["unused_tensors"])


@pytest.mark.parametrize("prefix", ["", "transformer."])
def test_gpt2(tmp_path, prefix):
    sd = fx.write(tmp_path, fx.GPT2_CONFIG, fx.gpt2_state(2, prefix=prefix))
    model = load_checkpoint(tmp_path)
    blk = model.layers[0].attention
    assert blk.causal and blk.b_Q is not None and np.any(blk.b_Q != 0)
    check(forward(model, IDS), ref.gpt2_forward(sd, fx.GPT2_CONFIG, IDS, prefix))
    assert all(n.endswith(("attn.bias", "attn.masked_bias")) for n in model.extra["unused_tensors"])


def test_gpt2_untied_head_and_inverse_layer_scaling(tmp_path):
    cfg = dict(fx.GPT2_CONFIG, scale_attn_by_inverse_layer_idx=True)
    sd = fx.gpt2_state(3)
    sd["lm_head.weight"] = np.random.default_rng(0).standard_normal((50, 16)).astype(np.float32)
    fx.write(tmp_path, cfg, sd)
    model = load_checkpoint(tmp_path)
    assert model.layers[1].attention.beta == pytest.approx(0.5 / np.sqrt(4))
    r = forward(model, IDS)
    assert rel(r.logits, r.hidden_states[-1] @ sd["lm_head.weight"].astype(float).T) < 1e-12


@pytest.mark.parametrize(
    "variant", ["plain", "tied", "bias_qkv", "no_prefix", "bf16", "sharded", "mha", "head_dim"]
)
def test_llama(tmp_path, variant):
    cfg = dict(fx.LLAMA_CONFIG)
    kwargs, prefix, dtype, shards = {}, "model.", None, 1
    if variant == "tied":
        cfg["tie_word_embeddings"] = True
    elif variant == "bias_qkv":
        cfg["attention_bias"] = True
        kwargs = dict(biases=True, o_bias=True, buffers=True)
    elif variant == "no_prefix":
        prefix = ""
    elif variant == "bf16":
        dtype = ml_dtypes.bfloat16
    elif variant == "sharded":
        shards = 3
    elif variant == "mha":
        cfg["num_key_value_heads"] = 4
    elif variant == "head_dim":
        cfg.update(head_dim=8, num_attention_heads=6, num_key_value_heads=3)
    sd = fx.write(
        tmp_path, cfg, fx.llama_state(4, cfg=cfg, prefix=prefix, **kwargs), dtype=dtype, shards=shards
    )
    model = load_checkpoint(tmp_path)
    check(forward(model, IDS), ref.llama_forward(sd, cfg, IDS, prefix))
    blk = model.layers[0].attention
    H, Hkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    assert blk.n_heads == H and blk.n_kv_heads == Hkv
    assert list(blk.kv_head) == [h // (H // Hkv) for h in range(H)]
    assert blk.rotary is not None and blk.rotary.convention == "half"


def test_qwen2_style(tmp_path):
    cfg = dict(fx.LLAMA_CONFIG, model_type="qwen2")
    cfg.pop("attention_bias")
    sd = fx.write(tmp_path, cfg, fx.llama_state(5, cfg=cfg, biases=True))
    model = load_checkpoint(tmp_path)
    assert model.layers[0].attention.b_O is None and model.layers[0].attention.b_Q is not None
    check(forward(model, IDS), ref.llama_forward(sd, cfg, IDS))


def test_load_model_dispatch(tmp_path):
    fx.write(tmp_path, fx.GPT2_CONFIG, fx.gpt2_state(0))
    assert load_model(tmp_path).arch == "gpt2"


# ------------------------------------------------------------------------------ errors
def test_missing_directory_and_config(tmp_path):
    with pytest.raises(ValueError, match="directory not found"):
        load_checkpoint(tmp_path / "nope")
    with pytest.raises(ValueError, match="config.json"):
        load_checkpoint(tmp_path)


def test_no_safetensors(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(fx.GPT2_CONFIG))
    with pytest.raises(ValueError, match=r"no \*\.safetensors"):
        load_checkpoint(tmp_path)


def test_unsupported_model_type(tmp_path):
    fx.write(tmp_path, dict(fx.GPT2_CONFIG, model_type="t5"), fx.gpt2_state(0))
    with pytest.raises(ValueError, match="model_type 't5' is not supported"):
        load_checkpoint(tmp_path)


def test_missing_tensor(tmp_path):
    sd = fx.llama_state(0)
    del sd["model.layers.1.mlp.up_proj.weight"]
    fx.write(tmp_path, fx.LLAMA_CONFIG, sd)
    with pytest.raises(ValueError, match=r"missing tensor 'model\.layers\.1\.mlp\.up_proj\.weight'"):
        load_checkpoint(tmp_path)


def test_wrong_shape(tmp_path):
    sd = fx.bert_state(0)
    sd["bert.encoder.layer.0.attention.self.key.weight"] = np.zeros((16, 15), np.float32)
    fx.write(tmp_path, fx.BERT_CONFIG, sd)
    with pytest.raises(
        ValueError, match=r"attention\.self\.key\.weight.*expected shape \(16, 16\), got \(16, 15\)"
    ):
        load_checkpoint(tmp_path)


def test_missing_config_key(tmp_path):
    cfg = dict(fx.GPT2_CONFIG)
    del cfg["n_head"]
    fx.write(tmp_path, cfg, fx.gpt2_state(0))
    with pytest.raises(ValueError, match="missing key 'n_head'"):
        load_checkpoint(tmp_path)


def test_missing_shard(tmp_path):
    fx.write(tmp_path, fx.LLAMA_CONFIG, fx.llama_state(0), shards=2)
    next(tmp_path.glob("model-00002*.safetensors")).unlink()
    with pytest.raises(ValueError, match="model-00002-of-00002.safetensors"):
        load_checkpoint(tmp_path)


def test_unsupported_activation_and_rope_scaling(tmp_path):
    fx.write(tmp_path, dict(fx.BERT_CONFIG, hidden_act="mish"), fx.bert_state(0))
    with pytest.raises(ValueError, match="hidden_act='mish'"):
        load_checkpoint(tmp_path)
    d2 = tmp_path / "b"
    fx.write(d2, dict(fx.LLAMA_CONFIG, rope_scaling={"rope_type": "yarn", "factor": 2.0}), fx.llama_state(0))
    with pytest.raises(ValueError, match="yarn"):
        load_checkpoint(d2)


def test_too_many_tokens(tmp_path):
    fx.write(tmp_path, fx.GPT2_CONFIG, fx.gpt2_state(0))
    model = load_checkpoint(tmp_path)
    with pytest.raises(ValueError, match="exceed the model's 24 positions"):
        forward(model, np.zeros(25, dtype=int))
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 50\)"):
        forward(model, np.array([1, 50]))
