"""Architecture-independent representation of a trained transformer, in float64 numpy.

Each layer's attention block is held in the project's per-head exchange format (MODEL.md
section 1, ``ctattn.core.problem.AttentionWeights``): ``W_Q, W_K (H, d_k, D)``, ``W_V (H, d_v, D)``,
``W_O (H, D, d_v)``, biases ``b_Q, b_K (H, d_k)``, ``b_V (H, d_v)``, ``b_O (D,)`` (``None`` where
the checkpoint has none) and ``beta``. Grouped-query attention is expanded: ``W_K[h]`` and
``W_V[h]`` are the key/value projections *used by query head h*, and ``kv_head[h]`` says which
of the ``n_kv_heads`` stored key/value heads that is (heads sharing a kv head hold identical
copies). Rotary blocks carry a :class:`~.rotary.Rotary`; their query/key projections at position
``p`` are ``W_Q^(p) = R_p W_Q``, ``b_Q^(p) = R_p b_Q`` (same for K), see
:meth:`AttentionBlock.exchange_arrays` and :meth:`AttentionBlock.projections_at`.

The non-attention parts (embeddings, norms, MLPs, final norm, LM head) are plain dataclasses of
arrays; :mod:`.forward` runs them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ctattn.core.problem import HeadSizes, head_shapes

from .rotary import Rotary

__all__ = ["Norm", "MLP", "AttentionBlock", "Layer", "Embeddings", "LMHead", "TransformerModel"]

ACTIVATIONS = ("gelu", "gelu_new", "relu", "silu", "quick_gelu")


@dataclass
class Norm:
    """``layernorm``: ``(x - mean) / sqrt(var + eps) * weight + bias``;
    ``rmsnorm``: ``x / sqrt(mean(x^2) + eps) * weight`` (``bias`` None)."""

    kind: str
    weight: np.ndarray
    bias: np.ndarray | None
    eps: float

    def __post_init__(self):
        if self.kind not in ("layernorm", "rmsnorm"):
            raise ValueError(f"norm kind must be 'layernorm' or 'rmsnorm', got {self.kind!r}")


@dataclass
class MLP:
    """Position-wise feed-forward block; weights in (out, in) orientation.

    ``kind == "dense"``: ``W_out act(W_in x + b_in) + b_out``.
    ``kind == "gated"`` (SwiGLU): ``W_out (act(W_gate x + b_gate) * (W_in x + b_in)) + b_out``,
    ``W_in`` being the "up" projection.
    """

    kind: str
    activation: str
    W_in: np.ndarray
    W_out: np.ndarray
    b_in: np.ndarray | None = None
    b_out: np.ndarray | None = None
    W_gate: np.ndarray | None = None
    b_gate: np.ndarray | None = None

    def __post_init__(self):
        if self.kind not in ("dense", "gated"):
            raise ValueError(f"MLP kind must be 'dense' or 'gated', got {self.kind!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation {self.activation!r} is not supported (supported: {ACTIVATIONS})")
        if self.kind == "gated" and self.W_gate is None:
            raise ValueError("gated MLP needs W_gate")


@dataclass
class AttentionBlock(HeadSizes):
    """One layer's multi-head attention in the project's per-head format (see module doc)."""

    W_Q: np.ndarray
    W_K: np.ndarray
    W_V: np.ndarray
    W_O: np.ndarray
    b_Q: np.ndarray | None
    b_K: np.ndarray | None
    b_V: np.ndarray | None
    b_O: np.ndarray | None
    beta: float
    causal: bool
    kv_head: np.ndarray
    rotary: Rotary | None = None
    sliding_window: int | None = None

    def __post_init__(self):
        H, d_k, D = self.W_Q.shape
        d_v = self.W_V.shape[1]
        for name, shape in head_shapes(H, d_k, d_v, D).items():
            value = getattr(self, name)
            if value is not None and value.shape != shape:
                raise ValueError(f"attention block {name}: expected shape {shape}, got {value.shape}")
        self.kv_head = np.asarray(self.kv_head, dtype=int)
        if self.kv_head.shape != (H,):
            raise ValueError(f"attention block kv_head: expected shape ({H},), got {self.kv_head.shape}")
        if self.rotary is not None and self.rotary.head_dim != d_k:
            raise ValueError(f"rotary head_dim {self.rotary.head_dim} != d_k {d_k}")

    @property
    def n_kv_heads(self) -> int:
        return int(self.kv_head.max()) + 1

    def kv_weights(self) -> dict[str, np.ndarray | None]:
        """The stored (un-expanded) key/value heads: ``W_K, W_V (n_kv_heads, ., D)`` and biases."""
        first = [int(np.flatnonzero(self.kv_head == g)[0]) for g in range(self.n_kv_heads)]
        return {
            name: None if getattr(self, name) is None else getattr(self, name)[first]
            for name in ("W_K", "W_V", "b_K", "b_V")
        }

    def projections_at(self, positions) -> dict[str, np.ndarray | None]:
        """Position-dependent query/key projections for each position.

        Returns ``W_Q, W_K (N, H, d_k, D)`` and ``b_Q, b_K (N, H, d_k)`` (None without bias),
        ``W_Q[n] = R_{p_n} W_Q`` etc.; without rotary every position gets the plain weights.
        """
        positions = np.asarray(positions)
        N = len(positions)
        out = {}
        for w, b in (("W_Q", "b_Q"), ("W_K", "b_K")):
            W, bias = getattr(self, w), getattr(self, b)
            if self.rotary is None:
                out[w] = np.broadcast_to(W, (N,) + W.shape)
                out[b] = None if bias is None else np.broadcast_to(bias, (N,) + bias.shape)
            else:
                R = self.rotary.matrices(positions)  # (N, d_k, d_k)
                out[w] = np.einsum("nij,hjd->nhid", R, W)
                out[b] = None if bias is None else np.einsum("nij,hj->nhi", R, bias)
        return out

    def exchange_arrays(self, position: float | None = None, key_position: float | None = None) -> dict:
        """Keyword arguments for ``ctattn.core.problem.AttentionWeights``.

        Without rotary the plain projections (``position`` must be None or is ignored). With
        rotary the projections are those at a fixed query position ``position`` and key position
        ``key_position`` (default: the same), i.e. ``W_Q^(p) = R_p W_Q``, ``W_K^(s) = R_s W_K``;
        the full position-dependent family is :meth:`projections_at`.
        """
        arrays = {
            "W_Q": self.W_Q,
            "W_K": self.W_K,
            "W_V": self.W_V,
            "W_O": self.W_O,
            "b_Q": self.b_Q,
            "b_K": self.b_K,
            "b_V": self.b_V,
            "b_O": self.b_O,
        }
        if self.rotary is not None:
            if position is None:
                raise ValueError("rotary attention block: its W_Q/W_K depend on position; pass position=")
            s = position if key_position is None else key_position
            arrays["W_Q"], arrays["b_Q"] = self.rotary.rotated_projection(self.W_Q, self.b_Q, position)
            arrays["W_K"], arrays["b_K"] = self.rotary.rotated_projection(self.W_K, self.b_K, s)
        out = {k: np.array(v) for k, v in arrays.items() if v is not None}
        out["beta"] = float(self.beta)
        return out


@dataclass
class Layer:
    """One transformer layer.

    ``placement == "pre"``:  ``h += attn(attn_norm(h)); h += mlp(mlp_norm(h))``.
    ``placement == "post"``: ``h = attn_norm(h + attn(h)); h = mlp_norm(h + mlp(h))`` (BERT).
    """

    placement: str
    attn_norm: Norm
    attention: AttentionBlock
    mlp_norm: Norm
    mlp: MLP

    def __post_init__(self):
        if self.placement not in ("pre", "post"):
            raise ValueError(f"layer placement must be 'pre' or 'post', got {self.placement!r}")


@dataclass
class Embeddings:
    """``word[ids] (+ position[p]) (+ token_type[t])``, then ``norm`` if any.

    ``max_positions``: largest sequence length the model accepts (learned position tables,
    or glassllm's fixed rotary table); ``None`` for unbounded rotary models.
    """

    word: np.ndarray
    position: np.ndarray | None = None
    token_type: np.ndarray | None = None
    norm: Norm | None = None
    max_positions: int | None = None


@dataclass
class LMHead:
    """``logits = W t(h) + bias``; ``t`` is the identity or, for BERT's MLM head,
    ``transform_norm(act(transform_W h + transform_b))``."""

    W: np.ndarray
    bias: np.ndarray | None = None
    transform_W: np.ndarray | None = None
    transform_b: np.ndarray | None = None
    transform_activation: str | None = None
    transform_norm: Norm | None = None


@dataclass
class TransformerModel:
    """A loaded model: ``arch`` (``bert``, ``gpt2``, ``llama``, ``glassllm``), its raw config,
    embeddings, layers, optional final norm and LM head, and where it came from."""

    arch: str
    config: dict
    embeddings: Embeddings
    layers: list[Layer]
    final_norm: Norm | None = None
    lm_head: LMHead | None = None
    source: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def d_model(self) -> int:
        return self.embeddings.word.shape[1]

    @property
    def vocab_size(self) -> int:
        return self.embeddings.word.shape[0]

    def attention_blocks(self) -> list[AttentionBlock]:
        return [layer.attention for layer in self.layers]
