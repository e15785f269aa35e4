"""The shot-noise bound propagated through every stage (:mod:`ctattn.circuits.backends.spiking.noise`)
predicts the run-to-run spread of the spiking output.

The spread is measured from seeded replicates of one small problem at few neurons per unit (so
that noise, not bias, dominates). Tolerance, fixed before looking: the spread estimated from
``R`` replicates of ``K`` outputs has a relative standard error of about
``1 / sqrt(2 (R - 1) K)`` (12 % for R = 4, K = 24), and the first-order (delta-method) bound
leaves O(noise^2) out; a ratio within [0.6, 1.5] is about 4 standard errors either side.
"""

from __future__ import annotations

import numpy as np
import pytest
from ctattn.circuits.backends import get_backend
from ctattn.circuits.build import circuit_for

from ctattn.core.problem import AttentionSpec, random_tokens, random_weights


def _replicates(variant: str, seeds: int, n: int):
    weights, tokens = random_weights(0, 2, 6, 3, 3), random_tokens(0, 4, 6)
    circuit = circuit_for(weights, tokens, AttentionSpec(variant=variant))
    runs = [get_backend("spiking").run(circuit, tokens, seed=s, neurons_per_unit=n) for s in range(seeds)]
    Y = np.array([r.Y for r in runs])
    # spread of one run around the mean of the replicates (unbiased), relative to the output
    spread = np.sqrt(((Y - Y.mean(axis=0)) ** 2).sum() / (seeds - 1)) / np.linalg.norm(Y.mean(axis=0))
    return spread, [r.info for r in runs]


def _check(variant: str, seeds: int) -> None:
    spread, infos = _replicates(variant, seeds, n=300)
    propagated = float(np.median([i["shot_noise_bound_propagated"] for i in infos]))
    readout = float(np.median([i["shot_noise_bound"] for i in infos]))
    assert propagated > readout  # the upstream stages add variance to the readout's own
    assert 0.6 <= spread / propagated <= 1.5, (spread, propagated, readout)
    shares = infos[0]["shot_noise_shares"]
    assert abs(sum(shares.values()) - 1.0) < 0.01  # shares under 5e-4 are left out
    assert any(name.startswith("FO") for name in shares)  # the relays' noise reaches the output


def test_propagated_bound_predicts_the_spread_linear():
    _check("linear", seeds=4)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["normalized", "softmax"])
def test_propagated_bound_predicts_the_spread(variant):
    _check(variant, seeds=6)
