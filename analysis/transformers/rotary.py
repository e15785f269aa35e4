"""Rotary position embeddings (RoPE) as position-dependent rotations of query and key vectors.

A rotary layer replaces ``q = W_Q x + b_Q`` at position ``p`` by ``R_p q``, where ``R_p`` is a
block rotation acting on coordinate pairs of each head vector. Two pairings occur in practice:

* ``"half"`` (Hugging Face ``rotate_half``, LLaMA/Mistral/Qwen2): coordinate ``i`` is paired
  with ``i + r/2`` (``r`` the rotary dimension), and the frequency of pair ``i`` is
  ``inv_freq[i] = theta^(-2i/r)``::

      out = x * cat(cos, cos) + rotate_half(x) * cat(sin, sin),
      rotate_half(x) = cat(-x[r/2:], x[:r/2]).

* ``"pair"`` (the original RoFormer / glassllm convention): coordinates ``(2i, 2i+1)`` form a
  pair with the same ``inv_freq[i]``::

      out[2i]   = x[2i] cos - x[2i+1] sin
      out[2i+1] = x[2i] sin + x[2i+1] cos.

Both rotate pair ``i`` by the angle ``p * inv_freq[i]``, so ``R_p`` is orthogonal and
``R_p^T R_s = R_{s-p}``: the score ``q_p . k_s`` depends only on ``s - p``. Coordinates beyond
``rotary_dim`` (partial rotary) pass unchanged.

Because the rotation is linear, the rotated query is a position-dependent projection:
``q_p = R_p (W_Q x + b_Q) = W_Q^(p) x + b_Q^(p)`` with ``W_Q^(p) = R_p W_Q`` and
``b_Q^(p) = R_p b_Q`` (:func:`rotated_projection`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Rotary", "rotate_half", "rope_inv_freq"]

CONVENTIONS = ("half", "pair")


def rope_inv_freq(rotary_dim: int, theta: float, scaling: dict | None = None) -> np.ndarray:
    """Frequencies ``theta^(-2i/rotary_dim)``, ``i < rotary_dim/2``, with optional HF scaling.

    ``scaling`` is a Hugging Face ``rope_scaling`` dict. Supported: ``None``, ``"default"``,
    ``"linear"`` (frequencies divided by ``factor``) and ``"llama3"`` (the LLaMA 3.1 piecewise
    wavelength rule). Any other type raises ``ValueError``.
    """
    if rotary_dim <= 0 or rotary_dim % 2:
        raise ValueError(f"rotary dimension must be a positive even number, got {rotary_dim}")
    if not theta > 0:
        raise ValueError(f"rope theta must be positive, got {theta}")
    inv_freq = float(theta) ** (-np.arange(0, rotary_dim, 2, dtype=np.float64) / rotary_dim)
    if not scaling:
        return inv_freq
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    if kind == "default":
        return inv_freq
    if kind == "linear":
        return inv_freq / float(scaling["factor"])
    if kind == "llama3":
        factor = float(scaling["factor"])
        low = float(scaling["low_freq_factor"])
        high = float(scaling["high_freq_factor"])
        old_len = float(scaling["original_max_position_embeddings"])
        wavelen = 2 * np.pi / inv_freq
        out = np.where(wavelen > old_len / low, inv_freq / factor, inv_freq)
        smooth = (old_len / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * out / factor + smooth * out
        medium = (wavelen >= old_len / high) & (wavelen <= old_len / low)
        return np.where(medium, smoothed, out)
    raise ValueError(f"rope_scaling type {kind!r} is not supported (supported: default, linear, llama3)")


def rotate_half(x: np.ndarray) -> np.ndarray:
    """Hugging Face ``rotate_half``: ``cat(-x2, x1)`` over the last axis split in halves."""
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


@dataclass(frozen=True)
class Rotary:
    """Rotary parameters of one attention block.

    ``head_dim``: size of each query/key head vector; ``rotary_dim``: how many leading
    coordinates rotate (``head_dim`` unless partial); ``theta``: the base; ``convention``:
    ``"half"`` or ``"pair"``; ``inv_freq``: the ``rotary_dim/2`` frequencies actually used
    (after any ``rope_scaling``); ``attention_scaling``: factor on cos/sin (1 except for some
    scaled variants, kept for completeness).
    """

    head_dim: int
    theta: float
    convention: str = "half"
    rotary_dim: int | None = None
    scaling: dict | None = None
    inv_freq: np.ndarray = field(default=None, repr=False)
    attention_scaling: float = 1.0

    def __post_init__(self):
        if self.convention not in CONVENTIONS:
            raise ValueError(f"rotary convention must be one of {CONVENTIONS}, got {self.convention!r}")
        rdim = self.head_dim if self.rotary_dim is None else int(self.rotary_dim)
        if not 0 < rdim <= self.head_dim:
            raise ValueError(f"rotary_dim {rdim} must be in 1..head_dim={self.head_dim}")
        object.__setattr__(self, "rotary_dim", rdim)
        if self.inv_freq is None:
            object.__setattr__(self, "inv_freq", rope_inv_freq(rdim, self.theta, self.scaling))

    # -- angles --------------------------------------------------------------------------
    def cos_sin(self, positions) -> tuple[np.ndarray, np.ndarray]:
        """``cos, sin`` of ``p * inv_freq``, shape ``(len(positions), rotary_dim/2)``."""
        angles = np.outer(np.asarray(positions, dtype=np.float64), self.inv_freq)
        return np.cos(angles) * self.attention_scaling, np.sin(angles) * self.attention_scaling

    # -- vectors -------------------------------------------------------------------------
    def apply(self, x: np.ndarray, positions) -> np.ndarray:
        """Rotate ``x (..., N, head_dim)`` at ``positions (N,)``; returns a new array."""
        x = np.asarray(x, dtype=np.float64)
        cos, sin = self.cos_sin(positions)
        r = self.rotary_dim
        rot, rest = x[..., :r], x[..., r:]
        if self.convention == "half":
            c, s = np.concatenate([cos, cos], -1), np.concatenate([sin, sin], -1)
            out = rot * c + rotate_half(rot) * s
        else:
            even, odd = rot[..., 0::2], rot[..., 1::2]
            out = np.empty_like(rot)
            out[..., 0::2] = even * cos - odd * sin
            out[..., 1::2] = even * sin + odd * cos
        return np.concatenate([out, rest], axis=-1) if rest.shape[-1] else out

    # -- matrices ------------------------------------------------------------------------
    def matrix(self, position: float) -> np.ndarray:
        """The ``(head_dim, head_dim)`` orthogonal matrix ``R_p`` with ``apply(x, [p]) = R_p x``."""
        return self.apply(np.eye(self.head_dim), np.full(self.head_dim, position)).T

    def matrices(self, positions) -> np.ndarray:
        """``R_p`` for each position, shape ``(N, head_dim, head_dim)``."""
        return np.stack([self.matrix(p) for p in np.asarray(positions, dtype=np.float64)])

    def rotated_projection(self, W: np.ndarray, b: np.ndarray | None, position: float):
        """``(R_p W, R_p b)`` for per-head ``W (H, head_dim, D)`` and ``b (H, head_dim)`` or None."""
        R = self.matrix(position)
        Wp = np.einsum("ij,hjd->hid", R, W)
        bp = None if b is None else b @ R.T
        return Wp, bp
