"""Comparing a circuit's output with the reference.

``relative_error(Y, Y_ref) = ||Y - Y_ref||_F / ||Y_ref||_F`` (Frobenius norms) and
``max_abs_error = max |Y - Y_ref|``; both are NaN-propagating, so a circuit that produced
NaN never passes a threshold.
"""

from __future__ import annotations

import numpy as np

__all__ = ["relative_error", "max_abs_error", "attention_entropy"]


def relative_error(Y: np.ndarray, Y_ref: np.ndarray) -> float:
    Y, Y_ref = np.asarray(Y, float), np.asarray(Y_ref, float)
    if Y.shape != Y_ref.shape:
        raise ValueError(f"Y: shape {Y.shape} differs from the reference's {Y_ref.shape}")
    denom = np.linalg.norm(Y_ref)
    if denom == 0:
        return float(np.linalg.norm(Y)) if np.all(np.isfinite(Y)) else float("nan")
    return float(np.linalg.norm(Y - Y_ref) / denom)


def max_abs_error(Y: np.ndarray, Y_ref: np.ndarray) -> float:
    diff = np.abs(np.asarray(Y, float) - np.asarray(Y_ref, float))
    return float("nan") if np.any(np.isnan(diff)) else float(diff.max())


def attention_entropy(A: np.ndarray, axis: int = -1) -> np.ndarray:
    """Shannon entropy ``-sum_j a_ij log a_ij`` (nats) of attention rows (``0 log 0 := 0``)."""
    A = np.asarray(A, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(A > 0, A * np.log(A), 0.0)
    return -terms.sum(axis=axis)
