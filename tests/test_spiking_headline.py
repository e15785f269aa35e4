"""The spiking backend's headline, in the default test run.

* One acceptance run per neuron model on the standard problem (4 heads, 8 tokens, d_model 16,
  d_k = d_v = 4, relu, linear, seed 0, numpy target): relative error, rate caps, saturation,
  accounting.
* No rate or spiking code path reads the ideal backend, the matrix reference or ``Y_ref``:
  they are replaced by functions that raise, and both backends still run.
* A configuration that saturates (one cell per unit: the input spike trains are so noisy
  that intensities exceed their caps) exits 2, naming the population.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from ctattn.analysis.metrics import relative_error
from ctattn.analysis.reference import multihead_attention
from ctattn.circuits.backends import get_backend
from ctattn.circuits.backends.spiking import NEURON_MODELS, RATE_CAP_HZ
from ctattn.circuits.build import circuit_for
from ctattn.circuits.dale import apply_dale

from ctattn.core.problem import AttentionSpec, random_tokens, random_weights

#: What the issue asks of each neuron model on the standard problem (linear attention).
TARGET_ERROR = {"poisson": 0.03, "lif": 0.05}


@pytest.fixture(scope="module")
def standard():
    W = random_weights(0, n_heads=4, d_model=16, d_k=4, d_v=4)
    T = random_tokens(0, 8, 16)
    spec = AttentionSpec(variant="linear", phi="relu")
    Y_ref = multihead_attention(T.X, **W.arrays(), **spec.reference_kwargs(W))
    return dict(tokens=T, circuit=circuit_for(W, T, spec), Y_ref=Y_ref)


@pytest.mark.parametrize("neuron", [m for m in NEURON_MODELS if m != "lif"])  # lif: test_spiking_lif.py
def test_standard_problem_headline(standard, neuron):
    result = get_backend("spiking").run(standard["circuit"], standard["tokens"], neuron=neuron, seed=0)
    info = result.info
    error = relative_error(result.Y, standard["Y_ref"])
    print(
        f"{neuron}: error {error:.4f}, shot-noise bound {info['shot_noise_bound']:.4f}, "
        f"{info['n_neurons']} neurons ({info['n_interneurons']} interneurons), "
        f"wall {info['wall_s']:.1f} s, compile {info['compile_s']:.1f} s"
    )
    assert error <= TARGET_ERROR[neuron], error
    assert info["neuron"] == neuron and info["saturated_fraction"] <= 1e-3
    for name, peak in info["peak_rate_hz"].items():
        assert peak <= RATE_CAP_HZ["inhibitory" if name in info["inhibitory"] else "excitatory"] + 1e-9
    dale = apply_dale(standard["circuit"])
    assert info["n_neurons"] == dale.n_neurons * info["neurons_per_unit"]
    assert info["n_interneurons"] > 0 and info["spikes_per_output"] > 0
    json.dumps(info)


def test_no_rate_or_spiking_path_reads_the_solution(monkeypatch):
    """The ideal backend and the reference raise if called; rate and spiking runs still work."""
    import ctattn.analysis.reference as reference
    from ctattn.circuits.backends import ideal

    import ctattn.api as api

    def forbidden(*args, **kwargs):
        raise AssertionError("a rate or spiking code path read the circuit's solution")

    W = random_weights(5, 2, 5, 3, 3, biases=True)
    T = random_tokens(5, 3, 5)
    circuits = {v: circuit_for(W, T, AttentionSpec(variant=v)) for v in ("linear", "softmax")}
    for module, name in (
        (ideal, "run"),
        (ideal, "steady_state_inputs"),
        (ideal, "_law"),
        (reference, "multihead_attention"),
        (api, "multihead_attention"),
    ):
        monkeypatch.setattr(module, name, forbidden)
    for circuit in circuits.values():
        assert np.all(np.isfinite(get_backend("rate").run(circuit, T).Y))
        result = get_backend("spiking").run(circuit, T, window_ms=50, settle_ms=50)
        assert np.all(np.isfinite(result.Y))
        cells = dict(neurons_per_unit=10, inhibitory_per_unit=5, readout_per_unit=10, allow_saturation=True)
        result = get_backend("spiking").run(circuit, T, neuron="lif", window_ms=50, settle_ms=50, **cells)
        assert np.all(np.isfinite(result.Y)) and np.isfinite(result.info["shot_noise_bound_propagated"])


def test_saturating_configuration_exits_2_naming_the_population(capsys):
    from ctattn.cli import main

    argv = ["run", "--backend", "spiking", "--heads", "2", "--tokens", "3", "--d-model", "5"]
    argv += ["--d-k", "3", "--d-v", "3", "--neurons-per-unit", "1", "--window", "50", "--settle", "50"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "rate cap" in err and "population" in err
    assert main(argv + ["--allow-saturation", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["saturated_fraction"] > 1e-3
