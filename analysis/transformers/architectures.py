"""Converters from published checkpoint layouts to :class:`~.model.TransformerModel`.

Supported (``config.json`` ``model_type``):

* ``bert`` -- post-LayerNorm encoder. Tensors ``[bert.]embeddings.{word,position,token_type}_
  embeddings.weight``, ``embeddings.LayerNorm.{weight,bias}``, ``[bert.]encoder.layer.{i}.
  attention.self.{query,key,value}.{weight,bias}`` (torch ``Linear``: weight ``(out, in)``),
  ``attention.output.dense``, ``attention.output.LayerNorm``, ``intermediate.dense``,
  ``output.dense``, ``output.LayerNorm``; optional MLM head ``cls.predictions.transform.dense``,
  ``cls.predictions.transform.LayerNorm``, ``cls.predictions.bias``, decoder tied to the word
  embeddings (``cls.predictions.decoder.weight`` used if present). Not causal.
* ``gpt2`` -- pre-LayerNorm decoder. ``[transformer.]wte``, ``wpe``, ``h.{i}.ln_1``,
  ``h.{i}.attn.c_attn`` (``Conv1D``: weight ``(in, out)``, output columns ``q | k | v``),
  ``h.{i}.attn.c_proj``, ``ln_2``, ``mlp.c_fc``, ``mlp.c_proj``, ``ln_f``; ``attn.bias`` /
  ``attn.masked_bias`` are causal-mask buffers and are ignored; LM head tied to ``wte``
  (``lm_head.weight`` used if present). ``gelu_new`` MLP.
* ``llama``, ``mistral``, ``qwen2`` -- pre-RMSNorm decoders with rotary embeddings
  (rotate-half, ``rope_theta``, optional ``rope_scaling``), grouped-query attention
  (``num_key_value_heads``), SwiGLU ``gate_proj/up_proj/down_proj``. ``[model.]embed_tokens``,
  ``layers.{i}.input_layernorm``, ``self_attn.{q,k,v,o}_proj`` (biases if present),
  ``post_attention_layernorm``, ``norm``; ``lm_head.weight`` or, when ``tie_word_embeddings``,
  the embedding matrix; no head otherwise.
* glassllm ``.npz`` files (:mod:`.glassllm`; :func:`load_model` dispatches to it).

Every missing key/tensor, wrong shape or unsupported setting raises ``ValueError`` naming it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .checkpoints import TensorStore, open_checkpoint
from .model import MLP, AttentionBlock, Embeddings, Layer, LMHead, Norm, TransformerModel
from .rotary import Rotary

__all__ = ["load_checkpoint", "load_model", "SUPPORTED_MODEL_TYPES"]

SUPPORTED_MODEL_TYPES = ("bert", "gpt2", "llama", "mistral", "qwen2")
_ACT_ALIASES = {
    "gelu": "gelu",
    "gelu_new": "gelu_new",
    "gelu_pytorch_tanh": "gelu_new",
    "relu": "relu",
    "silu": "silu",
    "swish": "silu",
    "quick_gelu": "quick_gelu",
}


def _cfg(config: dict, key: str, source: str, default=...):
    if key in config and config[key] is not None:
        return config[key]
    if default is ...:
        raise ValueError(f"{source}/config.json: missing key {key!r}")
    return default


def _act(name: str, source: str, key: str) -> str:
    if name not in _ACT_ALIASES:
        raise ValueError(
            f"{source}/config.json: {key}={name!r} is not supported (supported: {sorted(_ACT_ALIASES)})"
        )
    return _ACT_ALIASES[name]


def _split_heads_rows(W: np.ndarray, n: int, d: int) -> np.ndarray:
    """Linear weight ``(n*d, D)`` (out, in) -> per-head ``(n, d, D)``."""
    return W.reshape(n, d, W.shape[-1])


def _output_per_head(W: np.ndarray, n: int, d: int) -> np.ndarray:
    """Output weight ``(D, n*d)`` (out, in) -> per-head ``W_O (n, D, d)``."""
    return W.reshape(W.shape[0], n, d).transpose(1, 0, 2)


def _prefix(store: TensorStore, candidates: tuple[str, ...], probe: str, source: str) -> str:
    for p in candidates:
        if p + probe in store:
            return p
    raise ValueError(
        f"checkpoint {source}: missing tensor {candidates[-1] + probe!r} "
        f"(also tried prefixes {list(candidates[:-1])})"
    )


# --------------------------------------------------------------------------------- BERT
def _bert(config: dict, t: TensorStore, source: str) -> TransformerModel:
    D = int(_cfg(config, "hidden_size", source))
    H = int(_cfg(config, "num_attention_heads", source))
    L = int(_cfg(config, "num_hidden_layers", source))
    F = int(_cfg(config, "intermediate_size", source))
    V = int(_cfg(config, "vocab_size", source))
    P = int(_cfg(config, "max_position_embeddings", source))
    T = int(_cfg(config, "type_vocab_size", source, 2))
    eps = float(_cfg(config, "layer_norm_eps", source, 1e-12))
    act = _act(_cfg(config, "hidden_act", source, "gelu"), source, "hidden_act")
    if _cfg(config, "position_embedding_type", source, "absolute") != "absolute":
        raise ValueError(
            f"{source}/config.json: position_embedding_type={config['position_embedding_type']!r} "
            "is not supported (only 'absolute')"
        )
    if config.get("is_decoder") or config.get("add_cross_attention"):
        raise ValueError(f"{source}/config.json: BERT decoders / cross-attention are not supported")
    if D % H:
        raise ValueError(f"{source}/config.json: hidden_size {D} not divisible by num_attention_heads {H}")
    hd = D // H
    pre = _prefix(t, ("bert.", ""), "embeddings.word_embeddings.weight", source)

    def ln(name):
        return Norm("layernorm", t.get(name + ".weight", (D,)), t.get(name + ".bias", (D,)), eps)

    e = pre + "embeddings."
    emb = Embeddings(
        word=t.get(e + "word_embeddings.weight", (V, D)),
        position=t.get(e + "position_embeddings.weight", (P, D)),
        token_type=t.get(e + "token_type_embeddings.weight", (T, D)),
        norm=ln(e + "LayerNorm"),
        max_positions=P,
    )
    layers = []
    for i in range(L):
        p = f"{pre}encoder.layer.{i}."
        s = p + "attention.self."
        attn = AttentionBlock(
            W_Q=_split_heads_rows(t.get(s + "query.weight", (D, D)), H, hd),
            W_K=_split_heads_rows(t.get(s + "key.weight", (D, D)), H, hd),
            W_V=_split_heads_rows(t.get(s + "value.weight", (D, D)), H, hd),
            W_O=_output_per_head(t.get(p + "attention.output.dense.weight", (D, D)), H, hd),
            b_Q=t.get(s + "query.bias", (D,)).reshape(H, hd),
            b_K=t.get(s + "key.bias", (D,)).reshape(H, hd),
            b_V=t.get(s + "value.bias", (D,)).reshape(H, hd),
            b_O=t.get(p + "attention.output.dense.bias", (D,)),
            beta=1.0 / math.sqrt(hd),
            causal=False,
            kv_head=np.arange(H),
        )
        mlp = MLP(
            "dense",
            act,
            W_in=t.get(p + "intermediate.dense.weight", (F, D)),
            b_in=t.get(p + "intermediate.dense.bias", (F,)),
            W_out=t.get(p + "output.dense.weight", (D, F)),
            b_out=t.get(p + "output.dense.bias", (D,)),
        )
        layers.append(
            Layer("post", ln(p + "attention.output.LayerNorm"), attn, ln(p + "output.LayerNorm"), mlp)
        )
    head = None
    c = "cls.predictions."
    if c + "transform.dense.weight" in t:
        dec = t.find(c + "decoder.weight")
        bias_name = t.find(c + "bias", c + "decoder.bias")
        head = LMHead(
            W=t.get(dec, (V, D)) if dec else emb.word,
            bias=t.get(bias_name, (V,)) if bias_name else None,
            transform_W=t.get(c + "transform.dense.weight", (D, D)),
            transform_b=t.get(c + "transform.dense.bias", (D,)),
            transform_activation=act,
            transform_norm=ln(c + "transform.LayerNorm"),
        )
    return TransformerModel("bert", config, emb, layers, None, head, source)


# --------------------------------------------------------------------------------- GPT-2
def _gpt2(config: dict, t: TensorStore, source: str) -> TransformerModel:
    D = int(_cfg(config, "n_embd", source))
    H = int(_cfg(config, "n_head", source))
    L = int(_cfg(config, "n_layer", source))
    V = int(_cfg(config, "vocab_size", source))
    P = int(_cfg(config, "n_positions", source))
    F = int(_cfg(config, "n_inner", source, 4 * D))
    eps = float(_cfg(config, "layer_norm_epsilon", source, 1e-5))
    act = _act(_cfg(config, "activation_function", source, "gelu_new"), source, "activation_function")
    if D % H:
        raise ValueError(f"{source}/config.json: n_embd {D} not divisible by n_head {H}")
    if config.get("add_cross_attention"):
        raise ValueError(f"{source}/config.json: add_cross_attention is not supported")
    hd = D // H
    pre = _prefix(t, ("transformer.", ""), "wte.weight", source)

    def ln(name):
        return Norm("layernorm", t.get(name + ".weight", (D,)), t.get(name + ".bias", (D,)), eps)

    emb = Embeddings(
        word=t.get(pre + "wte.weight", (V, D)), position=t.get(pre + "wpe.weight", (P, D)), max_positions=P
    )
    layers = []
    for i in range(L):
        p = f"{pre}h.{i}."
        Wc = t.get(p + "attn.c_attn.weight", (D, 3 * D)).T  # Conv1D (in, out) -> (out, in)
        bc = t.get(p + "attn.c_attn.bias", (3 * D,))
        beta = 1.0 / math.sqrt(hd) if _cfg(config, "scale_attn_weights", source, True) else 1.0
        if config.get("scale_attn_by_inverse_layer_idx"):
            beta /= i + 1
        attn = AttentionBlock(
            W_Q=_split_heads_rows(Wc[:D], H, hd),
            W_K=_split_heads_rows(Wc[D : 2 * D], H, hd),
            W_V=_split_heads_rows(Wc[2 * D :], H, hd),
            W_O=_output_per_head(t.get(p + "attn.c_proj.weight", (D, D)).T, H, hd),
            b_Q=bc[:D].reshape(H, hd),
            b_K=bc[D : 2 * D].reshape(H, hd),
            b_V=bc[2 * D :].reshape(H, hd),
            b_O=t.get(p + "attn.c_proj.bias", (D,)),
            beta=beta,
            causal=True,
            kv_head=np.arange(H),
        )
        mlp = MLP(
            "dense",
            act,
            W_in=t.get(p + "mlp.c_fc.weight", (D, F)).T,
            b_in=t.get(p + "mlp.c_fc.bias", (F,)),
            W_out=t.get(p + "mlp.c_proj.weight", (F, D)).T,
            b_out=t.get(p + "mlp.c_proj.bias", (D,)),
        )
        layers.append(Layer("pre", ln(p + "ln_1"), attn, ln(p + "ln_2"), mlp))
    head_name = t.find("lm_head.weight")
    head = LMHead(W=t.get(head_name, (V, D)) if head_name else emb.word)
    return TransformerModel("gpt2", config, emb, layers, ln(pre + "ln_f"), head, source)


# --------------------------------------------------------------------------------- LLaMA
def _llama(config: dict, t: TensorStore, source: str) -> TransformerModel:
    kind = config["model_type"]
    D = int(_cfg(config, "hidden_size", source))
    H = int(_cfg(config, "num_attention_heads", source))
    Hkv = int(_cfg(config, "num_key_value_heads", source, H))
    L = int(_cfg(config, "num_hidden_layers", source))
    F = int(_cfg(config, "intermediate_size", source))
    V = int(_cfg(config, "vocab_size", source))
    hd = int(_cfg(config, "head_dim", source, D // H if D % H == 0 else 0))
    if hd <= 0:
        raise ValueError(
            f"{source}/config.json: hidden_size {D} not divisible by num_attention_heads {H} "
            "and no head_dim given"
        )
    if H % Hkv:
        raise ValueError(
            f"{source}/config.json: num_attention_heads {H} not divisible by num_key_value_heads {Hkv}"
        )
    eps = float(_cfg(config, "rms_norm_eps", source, 1e-6))
    theta = float(_cfg(config, "rope_theta", source, 10000.0))
    act = _act(_cfg(config, "hidden_act", source, "silu"), source, "hidden_act")
    rotary = Rotary(
        head_dim=hd,
        theta=theta,
        convention="half",
        scaling=config.get("rope_scaling"),
        rotary_dim=int(hd * float(config.get("partial_rotary_factor", 1.0))),
    )
    window = None
    if kind == "mistral" or (kind == "qwen2" and config.get("use_sliding_window")):
        window = config.get("sliding_window")
    pre = _prefix(t, ("model.", ""), "embed_tokens.weight", source)
    kv_head = np.arange(H) // (H // Hkv)
    attn_bias = bool(config.get("attention_bias", False))
    qkv_bias = attn_bias or kind == "qwen2"  # Qwen2 always has q/k/v biases and no o bias
    mlp_bias = bool(config.get("mlp_bias", False))

    def rms(name):
        return Norm("rmsnorm", t.get(name + ".weight", (D,)), None, eps)

    def bias(name, n, required):
        if required or name in t:
            return t.get(name, (n,))
        return None

    emb = Embeddings(word=t.get(pre + "embed_tokens.weight", (V, D)))
    layers = []
    for i in range(L):
        p = f"{pre}layers.{i}."
        a = p + "self_attn."
        bq = bias(a + "q_proj.bias", H * hd, qkv_bias)
        bk = bias(a + "k_proj.bias", Hkv * hd, qkv_bias)
        bv = bias(a + "v_proj.bias", Hkv * hd, qkv_bias)
        Wk = _split_heads_rows(t.get(a + "k_proj.weight", (Hkv * hd, D)), Hkv, hd)
        Wv = _split_heads_rows(t.get(a + "v_proj.weight", (Hkv * hd, D)), Hkv, hd)
        attn = AttentionBlock(
            W_Q=_split_heads_rows(t.get(a + "q_proj.weight", (H * hd, D)), H, hd),
            W_K=Wk[kv_head],
            W_V=Wv[kv_head],
            W_O=_output_per_head(t.get(a + "o_proj.weight", (D, H * hd)), H, hd),
            b_Q=None if bq is None else bq.reshape(H, hd),
            b_K=None if bk is None else bk.reshape(Hkv, hd)[kv_head],
            b_V=None if bv is None else bv.reshape(Hkv, hd)[kv_head],
            b_O=bias(a + "o_proj.bias", D, attn_bias and kind != "qwen2"),
            beta=1.0 / math.sqrt(hd),
            causal=True,
            kv_head=kv_head,
            rotary=rotary,
            sliding_window=window,
        )
        m = p + "mlp."
        mlp = MLP(
            "gated",
            act,
            W_in=t.get(m + "up_proj.weight", (F, D)),
            b_in=bias(m + "up_proj.bias", F, mlp_bias),
            W_gate=t.get(m + "gate_proj.weight", (F, D)),
            b_gate=bias(m + "gate_proj.bias", F, mlp_bias),
            W_out=t.get(m + "down_proj.weight", (D, F)),
            b_out=bias(m + "down_proj.bias", D, mlp_bias),
        )
        layers.append(
            Layer("pre", rms(p + "input_layernorm"), attn, rms(p + "post_attention_layernorm"), mlp)
        )
    head = None
    if "lm_head.weight" in t:
        head = LMHead(W=t.get("lm_head.weight", (V, D)))
    elif config.get("tie_word_embeddings", False):
        head = LMHead(W=emb.word)
    return TransformerModel(
        kind, config, emb, layers, rms(pre + "norm"), head, source, extra={"n_kv_heads": Hkv}
    )


_BUILDERS = {"bert": _bert, "gpt2": _gpt2, "llama": _llama, "mistral": _llama, "qwen2": _llama}


def load_checkpoint(directory: str | Path) -> TransformerModel:
    """Load a Hugging Face checkpoint directory (``config.json`` + safetensors) as float64."""
    config, store = open_checkpoint(directory)
    source = str(directory)
    kind = config.get("model_type")
    if kind not in _BUILDERS:
        raise ValueError(
            f"{source}/config.json: model_type {kind!r} is not supported "
            f"(supported: {', '.join(SUPPORTED_MODEL_TYPES)})"
        )
    model = _BUILDERS[kind](config, store, source)
    model.extra["unused_tensors"] = store.unused()
    tok = Path(directory) / "tokenizer.json"
    if tok.is_file():
        model.extra["tokenizer_path"] = str(tok)
    return model


def load_model(source: str | Path) -> TransformerModel:
    """``"glassllm:en"``/``"glassllm:pt"``, a glassllm ``.npz`` path, or a checkpoint directory."""
    from .glassllm import load_glassllm  # glassllm reuses this module's head reshaping

    s = str(source)
    if s.startswith("glassllm:"):
        return load_glassllm(s.split(":", 1)[1])
    if s.endswith(".npz"):
        return load_glassllm(s)
    return load_checkpoint(source)
