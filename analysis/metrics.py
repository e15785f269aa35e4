"""Comparing a circuit's output with the reference.

``relative_error(Y, Y_ref) = ||Y - Y_ref||_F / ||Y_ref||_F`` (Frobenius norms) and
``max_abs_error = max |Y - Y_ref|``; both are NaN-propagating, so a circuit that produced
NaN never passes a threshold. Norms are computed on arrays scaled by their largest entry
(:func:`scaled_norm`, as LAPACK's ``dnrm2`` does), so values near the float limit give a finite
error instead of an overflowed ``inf / inf``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["relative_error", "relative_difference", "max_abs_error", "scaled_norm", "attention_entropy"]


def _max_abs(*arrays) -> float:
    return max((float(np.max(np.abs(a))) if a.size else 0.0) for a in arrays)


def scaled_norm(A: np.ndarray, scale: float | None = None) -> float:
    """``||A||_F`` computed as ``s ||A / s||_F`` with ``s = max |A|`` (no overflow in the squares;
    the result itself is ``inf`` only when the true norm exceeds the float range)."""
    A = np.asarray(A, float)
    s = _max_abs(A) if scale is None else scale
    if not np.isfinite(s):
        return float("nan") if np.any(np.isnan(A)) else float("inf")
    if s == 0:
        return 0.0
    with np.errstate(over="ignore"):
        return float(s * np.linalg.norm(A / s))


def relative_difference(Y: np.ndarray, Y_base: np.ndarray, scale: np.ndarray | None = None) -> float:
    """``||Y - Y_base||_F / ||scale||_F`` (``scale`` defaults to ``Y_base``), overflow-free: every
    array is divided by the largest entry of all of them before it is subtracted or squared.
    A zero ``scale`` returns the plain difference norm."""
    Y, Y_base = np.asarray(Y, float), np.asarray(Y_base, float)
    S = Y_base if scale is None else np.asarray(scale, float)
    if np.any(np.isnan(Y)) or np.any(np.isnan(Y_base)) or np.any(np.isnan(S)):
        return float("nan")
    s = _max_abs(Y, Y_base, S)
    if not np.isfinite(s):
        return float("nan")
    if s == 0:
        return 0.0
    diff = np.linalg.norm(Y / s - Y_base / s)  # each term <= 1 in magnitude: no overflow
    denom = np.linalg.norm(S / s)
    if denom == 0:
        return float(s * diff)
    return float(diff / denom)


def relative_error(Y: np.ndarray, Y_ref: np.ndarray) -> float:
    Y, Y_ref = np.asarray(Y, float), np.asarray(Y_ref, float)
    if Y.shape != Y_ref.shape:
        raise ValueError(f"Y: shape {Y.shape} differs from the reference's {Y_ref.shape}")
    return relative_difference(Y, Y_ref)


def max_abs_error(Y: np.ndarray, Y_ref: np.ndarray) -> float:
    Y, Y_ref = np.asarray(Y, float), np.asarray(Y_ref, float)
    if np.any(np.isnan(Y)) or np.any(np.isnan(Y_ref)):
        return float("nan")
    # |a - b| overflows only when it truly exceeds the float range; halve first to stay finite.
    with np.errstate(over="ignore"):
        diff = np.abs(Y / 2 - Y_ref / 2)
    with np.errstate(over="ignore"):
        return float(2 * diff.max()) if diff.size else 0.0


def attention_entropy(A: np.ndarray, axis: int = -1) -> np.ndarray:
    """Shannon entropy ``-sum_j a_ij log a_ij`` (nats) of attention rows (``0 log 0 := 0``)."""
    A = np.asarray(A, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(A > 0, A * np.log(A), 0.0)
    return -terms.sum(axis=axis)
