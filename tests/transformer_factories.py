"""Tiny randomly initialised checkpoints in the published layouts, written with safetensors."""

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file


def _rng(seed):
    return np.random.default_rng(seed)


def _w(rng, *shape, scale=None):
    scale = 1.0 / np.sqrt(shape[-1]) if scale is None else scale
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _norm(rng, d):
    return (1 + 0.2 * rng.standard_normal(d)).astype(np.float32), (0.1 * rng.standard_normal(d)).astype(
        np.float32
    )


def write(directory, config, sd, dtype=None, shards=1):
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    if dtype is not None:
        sd = {k: (v.astype(dtype) if v.dtype.kind == "f" else v) for k, v in sd.items()}
    names = sorted(sd)
    if shards == 1:
        save_file(sd, str(directory / "model.safetensors"), metadata={"format": "pt"})
    else:
        weight_map = {}
        for s in range(shards):
            fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
            part = {n: sd[n] for n in names[s::shards]}
            save_file(part, str(directory / fname), metadata={"format": "pt"})
            weight_map.update({n: fname for n in part})
        (directory / "model.safetensors.index.json").write_text(
            json.dumps({"metadata": {}, "weight_map": weight_map})
        )
    return sd


BERT_CONFIG = dict(
    model_type="bert",
    architectures=["BertForMaskedLM"],
    hidden_size=16,
    num_attention_heads=4,
    num_hidden_layers=2,
    intermediate_size=24,
    vocab_size=40,
    max_position_embeddings=20,
    type_vocab_size=2,
    layer_norm_eps=1e-12,
    hidden_act="gelu",
    position_embedding_type="absolute",
)


def bert_state(seed=0, cfg=BERT_CONFIG, prefix="bert.", mlm=True, buffers=True):
    r = _rng(seed)
    D, F, V, P = (
        cfg["hidden_size"],
        cfg["intermediate_size"],
        cfg["vocab_size"],
        cfg["max_position_embeddings"],
    )
    sd = {}
    e = prefix + "embeddings."
    sd[e + "word_embeddings.weight"] = _w(r, V, D, scale=1.0)
    sd[e + "position_embeddings.weight"] = _w(r, P, D, scale=0.5)
    sd[e + "token_type_embeddings.weight"] = _w(r, 2, D, scale=0.5)
    sd[e + "LayerNorm.weight"], sd[e + "LayerNorm.bias"] = _norm(r, D)
    if buffers:
        sd[e + "position_ids"] = np.arange(P, dtype=np.int64)[None]
    for i in range(cfg["num_hidden_layers"]):
        p = f"{prefix}encoder.layer.{i}."
        for n in ("query", "key", "value"):
            sd[p + f"attention.self.{n}.weight"] = _w(r, D, D)
            sd[p + f"attention.self.{n}.bias"] = _w(r, D, scale=0.1)
        sd[p + "attention.output.dense.weight"], sd[p + "attention.output.dense.bias"] = (
            _w(r, D, D),
            _w(r, D, scale=0.1),
        )
        sd[p + "attention.output.LayerNorm.weight"], sd[p + "attention.output.LayerNorm.bias"] = _norm(r, D)
        sd[p + "intermediate.dense.weight"], sd[p + "intermediate.dense.bias"] = (
            _w(r, F, D),
            _w(r, F, scale=0.1),
        )
        sd[p + "output.dense.weight"], sd[p + "output.dense.bias"] = _w(r, D, F), _w(r, D, scale=0.1)
        sd[p + "output.LayerNorm.weight"], sd[p + "output.LayerNorm.bias"] = _norm(r, D)
    sd[prefix + "pooler.dense.weight"], sd[prefix + "pooler.dense.bias"] = _w(r, D, D), _w(r, D, scale=0.1)
    if mlm:
        c = "cls.predictions."
        sd[c + "transform.dense.weight"], sd[c + "transform.dense.bias"] = _w(r, D, D), _w(r, D, scale=0.1)
        sd[c + "transform.LayerNorm.weight"], sd[c + "transform.LayerNorm.bias"] = _norm(r, D)
        sd[c + "bias"] = _w(r, V, scale=0.1)
    return sd


GPT2_CONFIG = dict(
    model_type="gpt2",
    architectures=["GPT2LMHeadModel"],
    n_embd=16,
    n_head=4,
    n_layer=2,
    n_positions=24,
    vocab_size=50,
    layer_norm_epsilon=1e-5,
    activation_function="gelu_new",
    n_inner=None,
    scale_attn_weights=True,
)


def gpt2_state(seed=0, cfg=GPT2_CONFIG, prefix="", buffers=True):
    r = _rng(seed)
    D, V, P = cfg["n_embd"], cfg["vocab_size"], cfg["n_positions"]
    F = cfg.get("n_inner") or 4 * D
    sd = {prefix + "wte.weight": _w(r, V, D, scale=1.0), prefix + "wpe.weight": _w(r, P, D, scale=0.5)}
    for i in range(cfg["n_layer"]):
        p = f"{prefix}h.{i}."
        sd[p + "ln_1.weight"], sd[p + "ln_1.bias"] = _norm(r, D)
        sd[p + "attn.c_attn.weight"], sd[p + "attn.c_attn.bias"] = (
            _w(r, D, 3 * D, scale=D**-0.5),
            _w(r, 3 * D, scale=0.1),
        )
        sd[p + "attn.c_proj.weight"], sd[p + "attn.c_proj.bias"] = (
            _w(r, D, D, scale=D**-0.5),
            _w(r, D, scale=0.1),
        )
        sd[p + "ln_2.weight"], sd[p + "ln_2.bias"] = _norm(r, D)
        sd[p + "mlp.c_fc.weight"], sd[p + "mlp.c_fc.bias"] = _w(r, D, F, scale=D**-0.5), _w(r, F, scale=0.1)
        sd[p + "mlp.c_proj.weight"], sd[p + "mlp.c_proj.bias"] = (
            _w(r, F, D, scale=F**-0.5),
            _w(r, D, scale=0.1),
        )
        if buffers:  # causal-mask buffers of older transformers versions: NOT biases
            sd[p + "attn.bias"] = np.tril(np.ones((P, P), dtype=bool))[None, None]
            sd[p + "attn.masked_bias"] = np.array(-1e4, dtype=np.float32)
    sd[prefix + "ln_f.weight"], sd[prefix + "ln_f.bias"] = _norm(r, D)
    return sd


LLAMA_CONFIG = dict(
    model_type="llama",
    architectures=["LlamaForCausalLM"],
    hidden_size=24,
    num_attention_heads=4,
    num_key_value_heads=2,
    num_hidden_layers=2,
    intermediate_size=40,
    vocab_size=60,
    max_position_embeddings=64,
    rms_norm_eps=1e-5,
    rope_theta=500.0,
    hidden_act="silu",
    tie_word_embeddings=False,
    attention_bias=False,
)


def llama_state(seed=0, cfg=LLAMA_CONFIG, prefix="model.", biases=False, o_bias=False, buffers=False):
    r = _rng(seed)
    D, F, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    H = cfg["num_attention_heads"]
    Hkv = cfg.get("num_key_value_heads", H)
    hd = cfg.get("head_dim", D // H)
    sd = {prefix + "embed_tokens.weight": _w(r, V, D, scale=1.0)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"{prefix}layers.{i}."
        sd[p + "input_layernorm.weight"] = _norm(r, D)[0]
        sd[p + "self_attn.q_proj.weight"] = _w(r, H * hd, D, scale=1.5 / np.sqrt(D))
        sd[p + "self_attn.k_proj.weight"] = _w(r, Hkv * hd, D, scale=1.5 / np.sqrt(D))
        sd[p + "self_attn.v_proj.weight"] = _w(r, Hkv * hd, D)
        sd[p + "self_attn.o_proj.weight"] = _w(r, D, H * hd)
        if biases:
            sd[p + "self_attn.q_proj.bias"] = _w(r, H * hd, scale=0.3)
            sd[p + "self_attn.k_proj.bias"] = _w(r, Hkv * hd, scale=0.3)
            sd[p + "self_attn.v_proj.bias"] = _w(r, Hkv * hd, scale=0.1)
        if o_bias:
            sd[p + "self_attn.o_proj.bias"] = _w(r, D, scale=0.1)
        if buffers:
            sd[p + "self_attn.rotary_emb.inv_freq"] = np.ones(hd // 2, np.float32)
        sd[p + "post_attention_layernorm.weight"] = _norm(r, D)[0]
        sd[p + "mlp.gate_proj.weight"] = _w(r, F, D)
        sd[p + "mlp.up_proj.weight"] = _w(r, F, D)
        sd[p + "mlp.down_proj.weight"] = _w(r, D, F)
    sd[prefix + "norm.weight"] = _norm(r, D)[0]
    if not cfg.get("tie_word_embeddings"):
        sd["lm_head.weight"] = _w(r, V, D)
    return sd
