"""Numpy forward pass of a :class:`~.model.TransformerModel`, with swappable attention.

``forward(model, token_ids, attention=None, layers_in_circuit=None)`` runs the model in float64.
For every layer in ``layers_in_circuit`` (default: all layers when ``attention`` is given) the
attention block's output is computed by the caller's
``attention(layer_index, X, block) -> (N, D)`` instead of :func:`exact_attention`; ``X`` is the
block's input (the normed residual for pre-norm models, the residual itself for post-norm
BERT) and the returned array is what the residual adds (``b_O`` included), exactly like the
default. Outputs follow Hugging Face ``output_hidden_states``: ``hidden_states[0]`` is the
embedding output, ``hidden_states[l+1]`` layer ``l``'s output, except that for models with a
final norm (GPT-2, LLaMA, glassllm) the last entry is taken after that norm.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .model import MLP, AttentionBlock, Norm, TransformerModel

__all__ = ["ForwardResult", "forward", "exact_attention", "apply_norm", "activation", "apply_mlp"]

_erf = np.frompyfunc(math.erf, 1, 1)


def activation(name: str, x: np.ndarray) -> np.ndarray:
    """Element-wise activation by Hugging Face name."""
    if name == "gelu":  # exact, erf form
        return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))
    if name == "gelu_new":  # tanh approximation (GPT-2; HF gelu_new / gelu_pytorch_tanh)
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "silu":
        return x / (1.0 + np.exp(-x))
    if name == "quick_gelu":
        return x / (1.0 + np.exp(-1.702 * x))
    raise ValueError(f"activation {name!r} is not supported")


def apply_norm(norm: Norm, x: np.ndarray) -> np.ndarray:
    """LayerNorm (biased variance) or RMSNorm over the last axis."""
    if norm.kind == "layernorm":
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        y = (x - mu) / np.sqrt(var + norm.eps) * norm.weight
    else:
        y = x / np.sqrt((x * x).mean(-1, keepdims=True) + norm.eps) * norm.weight
    return y + norm.bias if norm.bias is not None else y


def _linear(x, W, b=None):
    y = x @ W.T
    return y + b if b is not None else y


def apply_mlp(mlp: MLP, x: np.ndarray) -> np.ndarray:
    """The layer's feed-forward block on ``x (N, D)``."""
    up = _linear(x, mlp.W_in, mlp.b_in)
    if mlp.kind == "gated":
        hidden = activation(mlp.activation, _linear(x, mlp.W_gate, mlp.b_gate)) * up
    else:
        hidden = activation(mlp.activation, up)
    return _linear(hidden, mlp.W_out, mlp.b_out)


def _softmax(s: np.ndarray) -> np.ndarray:
    s = s - s.max(-1, keepdims=True)
    e = np.exp(s)
    return e / e.sum(-1, keepdims=True)


def exact_attention(
    X: np.ndarray, block: AttentionBlock, positions=None, mode: str = "rotate", return_weights: bool = False
):
    """Exact multi-head softmax attention of ``block`` on ``X (N, D)``.

    ``y_i = sum_h W_O[h] sum_j softmax_j(beta q_i^h . k_j^h) v_j^h + b_O`` with
    ``q_i^h = W_Q^(p_i)[h] x_i + b_Q^(p_i)[h]`` and ``k_j^h = W_K^(p_j)[h] x_j + b_K^(p_j)[h]``,
    the position-dependent projections of rotary blocks (plain ones otherwise; GQA is already
    expanded in ``W_K``/``W_V``). ``mode="rotate"`` rotates the projected vectors,
    ``mode="projection"`` builds ``R_p W_Q`` explicitly (slower; same result). Causal blocks
    mask ``j > i``. Returns ``(N, D)`` (and the ``(H, N, N)`` attention weights if asked).
    """
    X = np.asarray(X, dtype=np.float64)
    N = X.shape[0]
    positions = np.arange(N) if positions is None else np.asarray(positions)
    if block.sliding_window is not None and N > block.sliding_window:
        raise ValueError(
            f"sequence of {N} tokens exceeds the sliding window {block.sliding_window}, "
            "which is not implemented"
        )
    if mode == "projection":
        P = block.projections_at(positions)
        q = np.einsum("nhkd,nd->hnk", P["W_Q"], X)
        k = np.einsum("nhkd,nd->hnk", P["W_K"], X)
        if P["b_Q"] is not None:
            q = q + P["b_Q"].transpose(1, 0, 2)
        if P["b_K"] is not None:
            k = k + P["b_K"].transpose(1, 0, 2)
    elif mode == "rotate":
        q = np.swapaxes(block.W_Q @ X.T, 1, 2)  # (H, N, d_k)
        k = np.swapaxes(block.W_K @ X.T, 1, 2)
        if block.b_Q is not None:
            q = q + block.b_Q[:, None, :]
        if block.b_K is not None:
            k = k + block.b_K[:, None, :]
        if block.rotary is not None:
            q, k = block.rotary.apply(q, positions), block.rotary.apply(k, positions)
    else:
        raise ValueError(f"mode must be 'rotate' or 'projection', got {mode!r}")
    v = np.swapaxes(block.W_V @ X.T, 1, 2)  # (H, N, d_v)
    if block.b_V is not None:
        v = v + block.b_V[:, None, :]
    scores = block.beta * (q @ np.swapaxes(k, 1, 2))  # (H, N, N)
    if block.causal:
        scores = np.where(np.tril(np.ones((N, N), dtype=bool)), scores, -np.inf)
    A = _softmax(scores)
    y = (block.W_O @ np.swapaxes(A @ v, 1, 2)).sum(0).T  # sum_h W_O[h] (A_h V_h)^T
    if block.b_O is not None:
        y = y + block.b_O
    return (y, A) if return_weights else y


@dataclass
class ForwardResult:
    """``hidden_states (L+1, N, D)`` (HF convention, see module doc), ``attention_inputs`` and
    ``attention_outputs (L, N, D)`` (each block's input and its output before the residual),
    ``residual (N, D)`` (last layer's output before any final norm), ``logits (N, V)`` or None."""

    hidden_states: np.ndarray
    attention_inputs: np.ndarray
    attention_outputs: np.ndarray
    residual: np.ndarray
    logits: np.ndarray | None


def embed(model: TransformerModel, token_ids, token_type_ids=None) -> np.ndarray:
    """The embedding output ``(N, D)``; raises ValueError for out-of-range ids or lengths."""
    emb = model.embeddings
    ids = np.asarray(token_ids)
    if ids.ndim != 1 or ids.size == 0 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(
            f"token_ids: expected a non-empty 1-D integer sequence, got shape {ids.shape} dtype {ids.dtype}"
        )
    V = emb.word.shape[0]
    if ids.min() < 0 or ids.max() >= V:
        raise ValueError(f"token_ids: ids must lie in [0, {V}), got range [{ids.min()}, {ids.max()}]")
    N = len(ids)
    if emb.max_positions is not None and N > emb.max_positions:
        raise ValueError(f"token_ids: {N} tokens exceed the model's {emb.max_positions} positions")
    h = emb.word[ids].astype(np.float64)
    if emb.position is not None:
        h = h + emb.position[:N]
    if emb.token_type is not None:
        tt = np.zeros(N, dtype=int) if token_type_ids is None else np.asarray(token_type_ids, dtype=int)
        if tt.shape != (N,) or tt.min() < 0 or tt.max() >= emb.token_type.shape[0]:
            raise ValueError(f"token_type_ids: expected {N} ids in [0, {emb.token_type.shape[0]})")
        h = h + emb.token_type[tt]
    if emb.norm is not None:
        h = apply_norm(emb.norm, h)
    return h


def forward(
    model: TransformerModel,
    token_ids,
    attention: Callable | None = None,
    layers_in_circuit=None,
    token_type_ids=None,
) -> ForwardResult:
    """Run ``model`` on one sequence of ``token_ids``; see the module docstring.

    ``attention``: None (exact attention everywhere) or ``f(layer_index, X, block) -> (N, D)``.
    ``layers_in_circuit``: iterable of layer indices (negative allowed) that use ``attention``;
    default all layers. ``token_type_ids``: BERT segment ids (default zeros).
    """
    L = model.n_layers
    if layers_in_circuit is None:
        chosen = set(range(L)) if attention is not None else set()
    else:
        chosen = set()
        for i in layers_in_circuit:
            if not -L <= int(i) < L:
                raise ValueError(f"layers_in_circuit: layer {i} out of range for {L} layers")
            chosen.add(int(i) % L)
        if chosen and attention is None:
            raise ValueError("layers_in_circuit given without an attention callback")

    h = embed(model, token_ids, token_type_ids)
    N, D = h.shape
    hidden, a_in, a_out = [h], [], []
    for i, layer in enumerate(model.layers):
        x = apply_norm(layer.attn_norm, h) if layer.placement == "pre" else h
        if i in chosen:
            y = np.asarray(attention(i, x, layer.attention), dtype=np.float64)
            if y.shape != (N, D) or not np.all(np.isfinite(y)):
                raise ValueError(
                    f"attention callback for layer {i}: expected finite ({N}, {D}) output, "
                    f"got shape {y.shape}"
                )
        else:
            y = exact_attention(x, layer.attention)
        a_in.append(x)
        a_out.append(y)
        if layer.placement == "pre":
            h = h + y
            h = h + apply_mlp(layer.mlp, apply_norm(layer.mlp_norm, h))
        else:
            h = apply_norm(layer.attn_norm, h + y)
            h = apply_norm(layer.mlp_norm, h + apply_mlp(layer.mlp, h))
        hidden.append(h)
    residual = h
    if model.final_norm is not None:
        hidden[-1] = apply_norm(model.final_norm, h)
    logits = None
    if model.lm_head is not None:
        head = model.lm_head
        t = hidden[-1]
        if head.transform_W is not None:
            t = activation(head.transform_activation, _linear(t, head.transform_W, head.transform_b))
            if head.transform_norm is not None:
                t = apply_norm(head.transform_norm, t)
        logits = _linear(t, head.W, head.bias)
    return ForwardResult(np.stack(hidden), np.stack(a_in), np.stack(a_out), residual, logits)
