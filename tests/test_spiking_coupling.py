"""The spiking backend's matrix coupling and the a-priori bounds it runs with (default suite).

* ``coupling="matrix"`` (:mod:`ctattn.circuits.backends.spiking.coupling`) computes the summed
  synaptic currents in matrix form; with the same seed it must give the synapse path's run
  (the same mean dynamics, and the same spike draws up to the rounding of the sums), on
  problems with Dale's interneurons (entry-list products), broadcast query relays, position
  relays that fall silent (reused decayed products), causal context and rotary/shared-weight circuits.
* The tightened bounds (:func:`ctattn.circuits.bounds.rate_bounds`: converging from cells
  normalised over their area's columns) must still bound every rate of the circuit's steady
  state, checked against the ideal backend on problems of several seeds and scales.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from ctattn.circuits.backends import get_backend
from ctattn.circuits.backends.spiking import coupling as coupling_module
from ctattn.circuits.backends.spiking.coupling import choose_coupling
from ctattn.circuits.bounds import rate_bounds
from ctattn.circuits.build import circuit_for
from ctattn.circuits.dale import apply_dale

from ctattn.core.problem import AttentionSpec, InputError, random_tokens, random_weights

FAST = dict(neurons_per_unit=400, window_ms=60, settle_ms=40, tau_ms=5, tau_syn_ms=2, dt_ms=0.5)


def _problem(seed: int, causal: bool, rotary: bool = False, n_tokens: int = 3):
    W = random_weights(seed, n_heads=2, d_model=6, d_k=4, d_v=3, biases=True)
    T = random_tokens(seed, n_tokens, 6)
    spec = AttentionSpec(variant="softmax", causal=causal)
    kwargs = {}
    if rotary:  # per-position rotations of q and k (rotary relays) and shared key/value weights
        angles = 0.3 * np.arange(n_tokens)[:, None] * np.array([1.0, 0.5])
        R = np.zeros((n_tokens, 4, 4))
        for p in range(n_tokens):
            for k, a in enumerate(angles[p]):
                c, s = np.cos(a), np.sin(a)
                R[p, 2 * k : 2 * k + 2, 2 * k : 2 * k + 2] = [[c, -s], [s, c]]
        shared = {k: np.stack([getattr(W, k)[0]] * 2) for k in ("W_K", "W_V", "b_K", "b_V")}
        W = replace(W, **shared)
        kwargs = dict(rotations=R, kv_groups=np.array([0, 0]))
    return circuit_for(W, T, spec, **kwargs), T


@pytest.mark.parametrize("causal, rotary", [(False, False), (True, False), (True, True)])
def test_matrix_coupling_reproduces_the_synapse_path(causal, rotary):
    circuit, T = _problem(11, causal, rotary)
    runs = {
        c: get_backend("spiking").run(circuit, T, coupling=c, seed=5, **FAST) for c in ("synapses", "matrix")
    }
    syn, mat = runs["synapses"], runs["matrix"]
    assert syn.info["coupling"] == "synapses" and mat.info["coupling"] == "matrix"
    # the same rate-level synapses simulated; only the synapse path makes Brian2 Synapses of them
    assert syn.info["n_synapses"] == mat.info["n_synapses"] == apply_dale(circuit).n_synapses
    assert syn.info["n_brian2_synapses"] == syn.info["n_synapses"] and mat.info["n_brian2_synapses"] == 0
    # same seed: the same draws (the sums differ in rounding only), far inside the noise that
    # a different seed shows
    other = get_backend("spiking").run(circuit, T, coupling="synapses", seed=6, **FAST)
    scale = np.linalg.norm(syn.Y)
    assert np.linalg.norm(mat.Y - syn.Y) / scale < 1e-3 * np.linalg.norm(other.Y - syn.Y) / scale
    for name, rates in syn.window_rates.items():
        np.testing.assert_allclose(mat.window_rates[name], rates, rtol=1e-6, atol=1e-9, err_msg=name)


def test_coupling_choice_and_bad_values(monkeypatch):
    circuit, T = _problem(3, causal=False)
    assert choose_coupling(circuit, "auto", "numpy") == "synapses"  # small: Brian2 synapses
    monkeypatch.setattr(coupling_module, "MATRIX_COUPLING_ABOVE", 10)
    assert choose_coupling(circuit, "auto", "cython") == "matrix"
    assert choose_coupling(circuit, "auto", "standalone") == "synapses"  # no step operations there
    with pytest.raises(InputError, match="^coupling"):
        choose_coupling(circuit, "matrix", "standalone")
    with pytest.raises(InputError, match="^coupling"):
        get_backend("spiking").run(circuit, T, coupling="sparse", **FAST)


@pytest.mark.parametrize(
    "seed, causal, scale", [(1, False, 1.0), (2, True, 3.0), (3, True, 0.3), (4, False, 5.0)]
)
def test_tightened_bounds_hold_in_the_steady_state(seed, causal, scale, monkeypatch):
    """Every rate of the ideal steady state, in every window, lies under its a-priori bound (the
    converging sums of normalised cells use the largest column, not the sum over columns)."""
    W = random_weights(seed, n_heads=3, d_model=8, d_k=4, d_v=5, biases=True)
    T = random_tokens(seed, 5, 8)
    T = type(T)(X=T.X * scale)
    circuit = apply_dale(circuit_for(W, T, AttentionSpec(variant="softmax", causal=causal)))
    bounds = rate_bounds(circuit, T)
    result = get_backend("ideal").run(circuit, T)
    checked = 0
    for name, rates in result.window_rates.items():
        rates = np.asarray(rates)
        assert np.all(rates <= bounds[name] * (1 + 1e-9) + 1e-12), name
        checked += 1
    assert checked >= len(circuit.populations) - 1
    # the readout's bound is far below the sum over columns the old rule gave
    readout = circuit.readout
    from ctattn.circuits import bounds as bounds_module

    monkeypatch.setattr(bounds_module, "_normalized_over_columns", lambda circuit, pop: False)
    summed_over_columns = rate_bounds(circuit, T)  # the rule before: every column's bound added
    assert np.max(bounds[readout]) < np.max(summed_over_columns[readout])
