r"""Statistical comparison of a stochastic circuit's output with the matrix reference.

A spiking circuit's decoded output ``Y`` is random: the test of "``Y`` computes the reference"
is a test of the hypothesis ``E[Y] = Y_ref`` up to a documented bias budget, at a known
false-alarm rate, together with a check that the same test *rejects* references that are
wrong in plausible ways (its power). The pieces:

* **Per-output standard errors** from ``R`` independent replicates (runs with different
  seeds): ``sd_k`` of each output ``k`` (``ddof = 1``, ``R - 1`` degrees of freedom), and the
  standard error ``sd_k / sqrt(R)`` of their mean (:class:`Replicates`). No noise model is
  assumed; Poisson counting in the readout gives a lower bound on ``sd_k``.
* **A Bonferroni-corrected threshold** for the family of ``m`` outputs: every
  ``|z_k| <= c`` with ``c`` the two-sided ``1 - alpha / (2 m)`` quantile of Student's ``t``
  with the replicates' degrees of freedom (normal for known standard errors), so that a
  correct circuit fails with probability at most ``alpha`` (:func:`bonferroni_threshold`).
* **A bias budget** ``b_k`` (absolute, per output): systematic errors the model is allowed
  and documents (unfinished settling, discretisation). The statistic is
  ``z_k = max(|Y_k - Y_ref,k| - b_k, 0) / se_k`` (:func:`compare`).
* **A regression slope** of ``Y`` on ``Y_ref`` (least squares through the origin), which
  must be within ``c_1 * se_slope + b_rel`` of 1, where ``c_1`` is the two-sided
  ``1 - alpha`` quantile of t with Welch-Satterthwaite degrees of freedom (one test).
* **A power check**: the same statistic must reject references that are wrong by a head
  swap (``W_O`` of two heads exchanged), a transposed ``W_K`` (read in the other memory
  order, the classic layout bug), and an output scaled by 1.2 (:func:`wrong_references`).
* **Convergence**: the RMS error at window ``T`` over that at ``4 T`` is 2 for an unbiased
  estimator at the counting (``1 / sqrt(T)``) limit (:func:`error_ratio`).

The module knows nothing about circuits or simulators: standard errors, bias budgets (e.g.
:data:`ctattn.circuits.backends.spiking.BIAS_BUDGET`) and references come from the caller, so any
stochastic backend or variant can use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

__all__ = [
    "Replicates",
    "Comparison",
    "t_cdf",
    "t_quantile",
    "bonferroni_threshold",
    "regression_slope",
    "compare",
    "wrong_references",
    "power_check",
    "error_ratio",
]


# -- distributions (no scipy) -------------------------------------------------------------------
def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 1000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta ``I_x(a, b)``."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, dof: float) -> float:
    """Student's t distribution function with ``dof`` degrees of freedom (normal if ``inf``)."""
    if math.isinf(dof):
        return NormalDist().cdf(t)
    tail = 0.5 * _betainc(dof / 2.0, 0.5, dof / (dof + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, dof: float | None) -> float:
    """The ``p`` quantile of Student's t (``dof=None`` or ``inf``: the standard normal)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p: must lie in (0, 1), got {p!r}")
    z = NormalDist().inv_cdf(p)
    if dof is None or math.isinf(dof):
        return z
    if dof <= 0:
        raise ValueError(f"dof: must be positive, got {dof!r}")
    lo, hi = (0.0, 1.0) if p > 0.5 else (-1.0, 0.0)
    while t_cdf(hi, dof) < p:
        hi *= 2.0
    while t_cdf(lo, dof) > p:
        lo *= 2.0
    for _ in range(200):  # bisection: monotone, to ~1e-12
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, dof) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, abs(mid)):
            break
    return 0.5 * (lo + hi)


def bonferroni_threshold(n_tests: int, alpha: float = 0.01, dof: float | None = None) -> float:
    """Two-sided threshold ``c`` with ``P(max_k |z_k| > c) <= alpha`` for ``n_tests`` z-scores."""
    if n_tests < 1:
        raise ValueError(f"n_tests: must be at least 1, got {n_tests!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha: must lie in (0, 1), got {alpha!r}")
    return t_quantile(1.0 - alpha / (2.0 * n_tests), dof)


# -- replicates ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Replicates:
    """``R`` independent outputs ``Y (R, ...)`` of one stochastic computation (different seeds)."""

    Y: np.ndarray

    def __post_init__(self):
        Y = np.asarray(self.Y, dtype=float)
        if Y.ndim < 2 or Y.shape[0] < 2:
            raise ValueError(f"Y: needs at least 2 replicates along axis 0, got shape {Y.shape}")
        object.__setattr__(self, "Y", Y)

    @classmethod
    def of(cls, outputs) -> Replicates:
        return cls(np.stack([np.asarray(y, float) for y in outputs]))

    @property
    def n(self) -> int:
        return self.Y.shape[0]

    @property
    def dof(self) -> int:
        return self.n - 1

    @property
    def mean(self) -> np.ndarray:
        return self.Y.mean(axis=0)

    @property
    def sd(self) -> np.ndarray:
        """Per-output standard deviation of a single replicate (``ddof = 1``)."""
        return self.Y.std(axis=0, ddof=1)

    @property
    def se(self) -> np.ndarray:
        """Per-output standard error of :attr:`mean`."""
        return self.sd / math.sqrt(self.n)


# -- the comparison -----------------------------------------------------------------------------
def regression_slope(
    Y: np.ndarray, Y_ref: np.ndarray, se: np.ndarray, dof: float | None = None
) -> tuple[float, float, float | None]:
    """Least-squares slope of ``Y`` on ``Y_ref`` through the origin, its standard error and the
    degrees of freedom of that error.

    ``slope = sum(x y) / sum(x^2)`` with ``x = Y_ref``, so ``var = sum(x^2 se^2) / sum(x^2)^2``
    given the per-output standard errors ``se`` of ``Y``. Unweighted on purpose: weights
    ``1/se^2`` built from *estimated* errors correlate with the noise and make the nominal
    error too small. With estimated errors (``dof`` each) the degrees of freedom of the sum are
    Welch-Satterthwaite's ``(sum c_k se_k^2)^2 / sum (c_k se_k^2)^2 / dof``; ``None``: known.
    """
    Y, Y_ref, se = (np.asarray(a, float).ravel() for a in (Y, Y_ref, se))
    sxx = float(np.sum(Y_ref**2))
    if sxx == 0:
        return float("nan"), float("inf"), dof
    terms = Y_ref**2 * se**2 / sxx**2
    var = float(np.sum(terms))
    slope_dof = None
    if dof is not None and not math.isinf(dof):
        slope_dof = var**2 / float(np.sum(terms**2)) * dof if var > 0 else float(dof)
    return float(np.sum(Y * Y_ref) / sxx), math.sqrt(var), slope_dof


@dataclass(frozen=True)
class Comparison:
    """One statistical comparison of an output with a reference (see the module docstring).

    ``z`` per-output scores after the bias budget; ``threshold`` their Bonferroni bound;
    ``slope``/``slope_se`` the regression slope; ``slope_tolerance`` the allowed ``|slope-1|``;
    ``rel_error`` ``||Y - Y_ref|| / ||Y_ref||``. ``consistent`` is true when every ``z`` is
    within the threshold and the slope within its tolerance.
    """

    z: np.ndarray
    threshold: float
    slope: float
    slope_se: float
    slope_tolerance: float
    rel_error: float
    alpha: float
    dof: float | None

    @property
    def max_z(self) -> float:
        return float(np.max(self.z))

    @property
    def n_outputs(self) -> int:
        return int(self.z.size)

    @property
    def z_ok(self) -> bool:
        return bool(np.all(np.isfinite(self.z))) and self.max_z <= self.threshold

    @property
    def slope_ok(self) -> bool:
        return bool(abs(self.slope - 1.0) <= self.slope_tolerance)

    @property
    def consistent(self) -> bool:
        return self.z_ok and self.slope_ok

    def summary(self) -> str:
        verdict = "consistent" if self.consistent else "REJECTED"
        dof = "normal" if self.dof is None else f"t({self.dof:g})"
        return (
            f"{verdict}: max z {self.max_z:.2f} vs Bonferroni {self.threshold:.2f} "
            f"({self.n_outputs} outputs, alpha {self.alpha:g}, {dof}); slope {self.slope:.4f} "
            f"+- {self.slope_se:.4f} (|slope-1| <= {self.slope_tolerance:.4f}); "
            f"rel error {self.rel_error:.4f}"
        )


def compare(
    Y: np.ndarray,
    Y_ref: np.ndarray,
    se: np.ndarray,
    *,
    dof: float | None = None,
    alpha: float = 0.01,
    bias: float | np.ndarray = 0.0,
    bias_rel: float = 0.0,
    se_floor: float = 0.0,
) -> Comparison:
    """Test ``E[Y] = Y_ref`` given per-output standard errors ``se`` of ``Y``.

    ``dof``: degrees of freedom of ``se`` (``None``: known exactly). ``bias``: absolute bias
    budget per output (scalar or array); ``bias_rel``: the same budget as a fraction of the
    slope (added to the slope tolerance). ``alpha``: the family-wise false-alarm rate of each
    of the two parts (per-output scores and slope). ``se_floor``: the smallest standard error
    an output can be given, e.g. the resolution of a decoder that counts spikes (replicates
    that all count zero spikes have ``sd = 0``, which says nothing below one count).
    """
    Y, Y_ref = np.asarray(Y, float), np.asarray(Y_ref, float)
    se = np.maximum(np.broadcast_to(np.asarray(se, float), Y.shape), se_floor)
    if Y.shape != Y_ref.shape:
        raise ValueError(f"Y: shape {Y.shape} differs from the reference's {Y_ref.shape}")
    if np.any(~(se > 0)):
        raise ValueError("se: every standard error must be positive and finite")
    excess = np.maximum(np.abs(Y - Y_ref) - np.broadcast_to(bias, Y.shape), 0.0)
    z = np.where(np.isfinite(Y), excess / se, np.inf)
    slope, slope_se, slope_dof = regression_slope(Y, Y_ref, se, dof)
    norm = np.linalg.norm(Y_ref)
    return Comparison(
        z=z,
        threshold=bonferroni_threshold(Y.size, alpha, dof),
        slope=slope,
        slope_se=slope_se,
        slope_tolerance=t_quantile(1.0 - alpha / 2.0, slope_dof) * slope_se + bias_rel,
        rel_error=float(np.linalg.norm(Y - Y_ref) / norm) if norm > 0 else float("nan"),
        alpha=alpha,
        dof=dof,
    )


# -- power ----------------------------------------------------------------------------------------
def wrong_references(weights, tokens, spec) -> dict[str, np.ndarray]:
    """References that are wrong in plausible ways, to check a test's power.

    * ``heads swapped``: ``W_O`` of heads 0 and 1 exchanged (head outputs routed to the wrong
      slice of the output projection); needs two heads.
    * ``W_K transposed``: each ``W_K[h]`` (``d_k x d_model``) read in the other memory order,
      ``W_K[h].reshape(d_model, d_k).T`` (the plain transpose when ``d_k = d_model``).
    * ``output x1.2``: the correct output scaled by 1.2.
    """
    from ctattn.analysis.reference import multihead_attention

    kwargs = spec.reference_kwargs(weights)

    def reference(w):
        return multihead_attention(tokens.X, **w.arrays(), X_kv=tokens.X_kv, **kwargs)

    H, d_k, D = weights.W_K.shape
    out = {}
    if H >= 2:
        W_O = weights.W_O.copy()
        W_O[[0, 1]] = W_O[[1, 0]]
        out["heads swapped"] = reference(weights.replace(W_O=W_O))
    transposed = np.stack([w.reshape(D, d_k).T for w in weights.W_K])
    out["W_K transposed"] = reference(weights.replace(W_K=transposed))
    out["output x1.2"] = 1.2 * reference(weights)
    return out


def power_check(Y, se, references: dict[str, np.ndarray], **compare_options) -> dict[str, Comparison]:
    """:func:`compare` against each (wrong) reference; each should come out inconsistent."""
    return {name: compare(Y, ref, se, **compare_options) for name, ref in references.items()}


def error_ratio(errors_T, errors_4T) -> float:
    """``sqrt(mean e_T^2 / mean e_4T^2)`` over replicates: 2 at the counting limit."""
    a, b = np.asarray(errors_T, float), np.asarray(errors_4T, float)
    return float(np.sqrt(np.mean(a**2) / np.mean(b**2)))
