"""The bundled models of the numpy-only ``glassllm`` package as :class:`~.model.TransformerModel`.

``weights/{en,pt}.npz`` (fp16, a ``__config__`` JSON entry): 4 layers, d_model 128, 4 query and 2
key/value heads, pre-RMSNorm, rotary embeddings on adjacent pairs (``rope_base``), SwiGLU, logits
tied to the embedding ``E``. Weights are stored ``(in, out)`` and used as ``x @ W``.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np

from .architectures import _output_per_head, _split_heads_rows
from .model import MLP, AttentionBlock, Embeddings, Layer, LMHead, Norm, TransformerModel
from .rotary import Rotary

__all__ = ["glassllm_weights_path", "load_glassllm"]

_GLASS_DEFAULTS = {
    "vocab_size": 1024,
    "d_model": 128,
    "n_layers": 4,
    "n_heads": 4,
    "n_kv_heads": 2,
    "max_len": 128,
    "rope_base": 10000.0,
    "eps": 1e-6,
}


def glassllm_weights_path(lang: str) -> Path:
    """Path of the bundled ``glassllm/weights/{lang}.npz`` (without importing glassllm)."""
    spec = importlib.util.find_spec("glassllm")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("glassllm: package not installed (pip install glassllm)")
    path = Path(list(spec.submodule_search_locations)[0]) / "weights" / f"{lang}.npz"
    if not path.is_file():
        raise ValueError(f"glassllm: bundled weights file not found: {path}")
    return path


def load_glassllm(source: str | Path) -> TransformerModel:
    """Load a glassllm model: a bundled language name (``"en"``, ``"pt"``) or an ``.npz`` path.

    glassllm's file is ``np.savez_compressed`` of ``__config__`` (JSON of its ``Config``) and the
    parameters (float16): ``E (V, D)``; per block ``blocks.{i}.norm1.gamma``,
    ``blocks.{i}.attn.W_Q (D, H d_k)``, ``W_K, W_V (D, H_kv d_k)``, ``W_O (H d_k, D)`` (all
    ``(in, out)``, used as ``x @ W``), ``blocks.{i}.norm2.gamma``, ``blocks.{i}.ffn.W1`` (gate),
    ``W3`` (up) ``(D, F)``, ``W2 (F, D)``; ``norm_f.gamma``. The model: pre-RMSNorm
    (``x / sqrt(mean x^2 + eps) * gamma``), causal GQA (query head ``h`` uses kv head
    ``h // (H/H_kv)``), rotary with adjacent pairs ``(2i, 2i+1)`` and ``theta_i = base^(-2i/d_k)``,
    ``beta = 1/sqrt(d_k)``, no biases, SwiGLU ``W2^T (silu(W1^T x) * W3^T x)``, final RMSNorm,
    logits ``h E^T`` (tied), at most ``max_len`` positions.
    """
    path = glassllm_weights_path(str(source)) if str(source) in ("en", "pt") else Path(source)
    if not path.is_file():
        raise ValueError(f"glassllm: weights file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise ValueError(f"glassllm: cannot read {path} as .npz ({exc})") from None
    if "__config__" not in arrays:
        raise ValueError(f"glassllm: {path} has no '__config__' entry")
    try:
        cfg = {**_GLASS_DEFAULTS, **json.loads(str(arrays.pop("__config__")))}
    except ValueError as exc:
        raise ValueError(f"glassllm: {path} '__config__' is not JSON ({exc})") from None
    V, D, L = int(cfg["vocab_size"]), int(cfg["d_model"]), int(cfg["n_layers"])
    H, Hkv, eps = int(cfg["n_heads"]), int(cfg["n_kv_heads"]), float(cfg["eps"])
    if D % H or H % Hkv or (D // H) % 2:
        raise ValueError(f"glassllm: {path} config has inconsistent d_model/n_heads/n_kv_heads: {cfg}")
    hd = D // H
    used = set()

    def get(name, shape=None):
        if name not in arrays:
            raise ValueError(f"glassllm: {path} is missing tensor {name!r}")
        arr = arrays[name].astype(np.float64)
        if shape is not None and arr.shape != tuple(shape):
            raise ValueError(
                f"glassllm: tensor {name!r} in {path}: expected shape {tuple(shape)}, got {arr.shape}"
            )
        used.add(name)
        return arr

    E = get("E", (V, D))
    F = get("blocks.0.ffn.W1").shape[1] if L else 0
    rotary = Rotary(head_dim=hd, theta=float(cfg["rope_base"]), convention="pair")
    kv_head = np.arange(H) // (H // Hkv)
    layers = []
    for i in range(L):
        p = f"blocks.{i}."
        Wk = _split_heads_rows(get(p + "attn.W_K", (D, Hkv * hd)).T, Hkv, hd)
        Wv = _split_heads_rows(get(p + "attn.W_V", (D, Hkv * hd)).T, Hkv, hd)
        attn = AttentionBlock(
            W_Q=_split_heads_rows(get(p + "attn.W_Q", (D, H * hd)).T, H, hd),
            W_K=Wk[kv_head],
            W_V=Wv[kv_head],
            W_O=_output_per_head(get(p + "attn.W_O", (H * hd, D)).T, H, hd),
            b_Q=None,
            b_K=None,
            b_V=None,
            b_O=None,
            beta=1.0 / math.sqrt(hd),
            causal=True,
            kv_head=kv_head,
            rotary=rotary,
        )
        mlp = MLP(
            "gated",
            "silu",
            W_gate=get(p + "ffn.W1", (D, F)).T,
            W_in=get(p + "ffn.W3", (D, F)).T,
            W_out=get(p + "ffn.W2", (F, D)).T,
        )
        layers.append(
            Layer(
                "pre",
                Norm("rmsnorm", get(p + "norm1.gamma", (D,)), None, eps),
                attn,
                Norm("rmsnorm", get(p + "norm2.gamma", (D,)), None, eps),
                mlp,
            )
        )
    final = Norm("rmsnorm", get("norm_f.gamma", (D,)), None, eps)
    unused = sorted(set(arrays) - used)
    if unused:
        raise ValueError(
            f"glassllm: {path} has unexpected tensor(s) {unused[:5]} (more layers than n_layers?)"
        )
    extra = {"n_kv_heads": Hkv}
    tok = (
        path.with_name(path.name[: -len(".npz")] + ".tokenizer.json") if path.name.endswith(".npz") else None
    )
    if tok is not None and tok.is_file():
        extra["tokenizer_path"] = str(tok)
    return TransformerModel(
        "glassllm",
        cfg,
        Embeddings(word=E, max_positions=int(cfg["max_len"])),
        layers,
        final,
        LMHead(W=E),
        str(path),
        extra,
    )
