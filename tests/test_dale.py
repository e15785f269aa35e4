"""Dale's law (ctattn.circuits.dale): every population excitatory or inhibitory, same computation."""

import numpy as np
import pytest
from ctattn.circuits.backends import ideal, rate
from ctattn.circuits.build import circuit_for
from ctattn.circuits.dale import apply_dale, dale_violations

from ctattn.core.problem import AttentionSpec, random_tokens, random_weights

CASES = [
    ("linear", "mask", False),
    ("normalized", "mask", True),
    ("softmax", "mask", False),
    ("linear", "memory", False),
    ("linear", "memory", True),
]


@pytest.mark.parametrize("variant,layout,causal", CASES)
def test_dale_keeps_the_ideal_steady_state_exactly(variant, layout, causal):
    w = random_weights(3, 3, 7, 5, 3, biases=True)
    t = random_tokens(3, 5, 7)
    c = circuit_for(w, t, AttentionSpec(variant=variant, layout=layout, causal=causal))
    d = apply_dale(c)
    assert dale_violations(c)  # the signed description breaks Dale's law ...
    assert dale_violations(d) == []  # ... the transformed one keeps it
    assert d.n_neurons > c.n_neurons
    np.testing.assert_allclose(ideal.run(d, t).Y, ideal.run(c, t).Y, atol=1e-12)
    assert apply_dale(d) is d
    for p in d.populations:
        if p.inhibitory and p.layer in ("PV", "SOM", "TRN"):
            out = [q for q in d.projections if q.pre == p.name]
            assert out and all(np.all(q.weight <= 0) for q in out)


def test_dale_interneurons_are_named_by_target():
    w = random_weights(0, 2, 6, 3, 3)
    t = random_tokens(0, 4, 6)
    d = apply_dale(circuit_for(w, t, AttentionSpec(variant="softmax")))
    layers = {p.layer for p in d.populations if p.inhibitory}
    assert {"PV", "SOM", "TRN", "pool"} <= layers


def test_dale_rate_backend_matches_ideal():
    w = random_weights(1, 2, 5, 3, 3)
    t = random_tokens(1, 3, 5)
    d = apply_dale(circuit_for(w, t, AttentionSpec(variant="linear")))
    np.testing.assert_allclose(rate.run(d, t).Y, ideal.run(d, t).Y, atol=1e-5)
