"""The statistical comparison used by the spiking tests (analysis/statistics.py): pure numpy.

Quantiles against textbook values; the false-alarm rate of the Bonferroni and slope checks on
synthetic Gaussian outputs (known and estimated standard errors) is at most alpha; the checks
see a 5-sigma offset; the wrong references are wrong.
"""

from __future__ import annotations

import numpy as np
import pytest
from ctattn.analysis.reference import multihead_attention
from ctattn.analysis.statistics import (
    Replicates,
    bonferroni_threshold,
    compare,
    error_ratio,
    t_cdf,
    t_quantile,
    wrong_references,
)

from ctattn.core.problem import AttentionSpec, random_tokens, random_weights


@pytest.mark.parametrize(
    "p, dof, value",
    [
        (0.975, 1, 12.7062),
        (0.975, 7, 2.3646),
        (0.995, 4, 4.6041),
        (0.999, 15, 3.7328),
        (0.025, 10, -2.2281),
        (0.975, None, 1.95996),
        (0.95, float("inf"), 1.64485),
    ],
)
def test_t_quantiles_match_tables(p, dof, value):
    assert t_quantile(p, dof) == pytest.approx(value, abs=2e-4)
    if dof is not None:
        assert t_cdf(t_quantile(p, dof), dof) == pytest.approx(p, abs=1e-10)


def test_bonferroni_threshold():
    assert bonferroni_threshold(1, 0.05) == pytest.approx(1.95996, abs=1e-4)
    assert bonferroni_threshold(10, 0.05) == pytest.approx(2.80703, abs=1e-4)
    assert bonferroni_threshold(21, 0.01, dof=7) > bonferroni_threshold(21, 0.01)  # estimated SEs: wider
    with pytest.raises(ValueError, match="n_tests"):
        bonferroni_threshold(0)


def _false_alarms(rng, trials, n_outputs, replicates, alpha):
    """Fraction of correct (zero-bias) Gaussian experiments that each check rejects."""
    z_fail = slope_fail = 0
    Y_ref = rng.normal(0, 1, n_outputs)
    sigma = rng.uniform(0.05, 0.2, n_outputs)
    for _ in range(trials):
        if replicates:
            rep = Replicates(Y_ref + sigma * rng.normal(size=(replicates, n_outputs)))
            result = compare(rep.mean, Y_ref, rep.se, dof=rep.dof, alpha=alpha)
        else:
            result = compare(Y_ref + sigma * rng.normal(size=n_outputs), Y_ref, sigma, alpha=alpha)
        z_fail += not result.z_ok
        slope_fail += not result.slope_ok
    return z_fail / trials, slope_fail / trials


@pytest.mark.parametrize("replicates", [None, 5])
def test_false_alarm_rate_is_at_most_alpha(rng, replicates):
    alpha, trials = 0.05, 1500
    z_rate, slope_rate = _false_alarms(rng, trials, 30, replicates, alpha)
    slack = 3 * np.sqrt(alpha * (1 - alpha) / trials)  # binomial spread of the estimate
    assert z_rate <= alpha + slack
    assert slope_rate <= alpha + slack
    assert slope_rate >= alpha - slack  # the slope check is exact, not merely conservative


def test_offsets_beyond_the_budget_are_detected():
    Y_ref = np.linspace(-2, 2, 40)
    se = np.full(40, 0.01)
    shifted = Y_ref.copy()
    shifted[7] += 0.06  # 6 standard errors on one output
    assert not compare(shifted, Y_ref, se, alpha=0.01).z_ok
    assert compare(shifted, Y_ref, se, alpha=0.01, bias=0.05).z_ok  # within the budget + noise
    scaled = compare(1.02 * Y_ref, Y_ref, se, alpha=0.01)
    assert not scaled.slope_ok and scaled.slope == pytest.approx(1.02)
    assert compare(1.02 * Y_ref, Y_ref, se, alpha=0.01, bias_rel=0.03).slope_ok
    with pytest.raises(ValueError, match="se"):
        compare(Y_ref, Y_ref, np.zeros(40))
    assert compare(Y_ref, Y_ref, np.zeros(40), se_floor=0.01).consistent  # floor: counts of zero
    assert not compare(np.full(40, np.nan), Y_ref, se).consistent


def test_replicates_need_two_runs():
    with pytest.raises(ValueError, match="replicates"):
        Replicates(np.zeros((1, 3)))
    rep = Replicates.of([np.array([1.0, 2.0]), np.array([3.0, 2.0])])
    np.testing.assert_allclose(rep.mean, [2.0, 2.0])
    np.testing.assert_allclose(rep.sd, [np.sqrt(2), 0.0])
    assert rep.dof == 1 and rep.se[0] == pytest.approx(1.0)


def test_wrong_references_are_wrong():
    W = random_weights(3, n_heads=3, d_model=7, d_k=4, d_v=5)
    T = random_tokens(3, 6, 7)
    spec = AttentionSpec()
    Y = multihead_attention(T.X, **W.arrays())
    wrong = wrong_references(W, T, spec)
    assert set(wrong) == {"heads swapped", "W_K transposed", "output x1.2"}
    for name, Y_wrong in wrong.items():
        assert Y_wrong.shape == Y.shape
        assert np.linalg.norm(Y_wrong - Y) > 0.1 * np.linalg.norm(Y), name
    np.testing.assert_allclose(wrong["output x1.2"], 1.2 * Y)
    assert "heads swapped" not in wrong_references(
        W.replace(W_Q=W.W_Q[:1], W_K=W.W_K[:1], W_V=W.W_V[:1], W_O=W.W_O[:1]), T, spec
    )


def test_error_ratio():
    assert error_ratio([0.04, 0.04], [0.02, 0.02]) == pytest.approx(2.0)
    assert error_ratio([0.03, 0.05], [0.02, 0.02]) == pytest.approx(np.sqrt(0.0017) / 0.02)
