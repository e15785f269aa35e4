"""ON/OFF population pairs: signed quantities carried by non-negative rates.

A signed vector ``z`` is carried by ON cells ``[z]_+`` and OFF cells ``[-z]_+``;
``z = ON - OFF`` (MODEL.md section 2). A linear map ``y = W z`` between two such pairs is
wired as ``ON_y <- W ON_z - W OFF_z`` and ``OFF_y <- -W ON_z + W OFF_z`` (negative weights
stand for disynaptic inhibition through local interneurons), so every target cell gets a
drive whose rectification gives its half of ``y``.

These helpers build those weight matrices; they carry no simulator state.
"""

from __future__ import annotations

import numpy as np

__all__ = ["from_relay", "to_pair", "from_pair", "pair_to_pair", "encode", "decode"]


def from_relay(W: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """``(n, 2D+1)`` weights reading ``W x + b`` from a relay channel ``[x]_+, [-x]_+, 1``.

    The bias is a synapse from the channel's presence cell, so it is on only while the channel
    carries a token.
    """
    W = np.atleast_2d(W)
    b = np.zeros(W.shape[0]) if bias is None else np.asarray(bias, dtype=float)
    return np.hstack([W, -W, b[:, None]])


def to_pair(W: np.ndarray) -> np.ndarray:
    """Stack ``[W; -W]`` so ON targets get ``+W r`` and OFF targets ``-W r``."""
    return np.vstack([W, -W])


def from_pair(W: np.ndarray) -> np.ndarray:
    """``[W, -W]``: read ``W (ON - OFF)`` from an ON/OFF source."""
    return np.hstack([W, -W])


def pair_to_pair(W: np.ndarray) -> np.ndarray:
    """ON/OFF source to ON/OFF target carrying ``W z``."""
    return to_pair(from_pair(W))


def encode(z: np.ndarray) -> np.ndarray:
    """Rates ``[z]_+, [-z]_+`` along the last axis."""
    return np.concatenate([np.maximum(z, 0.0), np.maximum(-z, 0.0)], axis=-1)


def decode(r: np.ndarray) -> np.ndarray:
    """``ON - OFF`` along the last axis (first half minus second half)."""
    n = r.shape[-1] // 2
    return r[..., :n] - r[..., n : 2 * n]
