"""The ``lif`` resource estimate (:mod:`ctattn.resources`): its cell count against built circuits
and a run, and the dry run that prints it (the time and memory constants are measured by
``benchmarks/dry_run_calibration.py``, not here)."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from ctattn.circuits.backends import get_backend
from ctattn.circuits.backends.spiking.options import chain_depth
from ctattn.circuits.build import circuit_for
from ctattn.circuits.dale import apply_dale

from ctattn.cli import main
from ctattn.core.problem import AttentionSpec, random_tokens, random_weights
from ctattn.resources import _LIF_DEPTH, INHIBITORY_LAYERS, estimate, lif_cells, lif_units


@pytest.mark.parametrize("variant", ["linear", "normalized", "softmax"])
@pytest.mark.parametrize(
    "H, N, M, D, dk, dv", [(2, 3, None, 5, 3, 4), (3, 2, 4, 3, 2, 1), (1, 5, None, 7, 4, 3)]
)
def test_lif_units_count_the_circuit_after_dale(H, N, M, D, dk, dv, variant):
    W, T = random_weights(1, H, D, dk, dv, biases=True), random_tokens(1, N, D, n_kv=M)
    circuit = apply_dale(circuit_for(W, T, AttentionSpec(variant=variant)))
    built = Counter()
    for p in circuit.populations:
        built[p.layer] += p.size
    units = lif_units(H, N, M or N, D, dk, dv, variant)
    assert set(built) == set(units)
    for layer, n in units.items():
        if layer in INHIBITORY_LAYERS:  # a bound: one interneuron per presynaptic unit at most
            assert 0.5 * n <= built[layer] <= n, layer
        else:
            assert built[layer] == n, layer
    if variant == "linear":  # the depth the settling time is priced with
        assert chain_depth(circuit) == _LIF_DEPTH


def test_lif_estimate_counts_cells_as_the_backend_does():
    W, T = random_weights(2, 1, 3, 2, 2), random_tokens(2, 2, 3)
    circuit = circuit_for(W, T, AttentionSpec())
    options = dict(
        neuron="lif",
        neurons_per_unit=6,
        inhibitory_per_unit=3,
        readout_per_unit=9,
        cells_per_layer={"L5": 4, "TRN": 2},
        window_ms=10,
        settle_ms=10,
    )
    result = get_backend("spiking").run(circuit, T, seed=0, allow_saturation=True, **options)
    per_unit = lif_cells(lif_units(1, 2, 2, 3, 2, 2), options)
    assert per_unit == {"FO": 6, "L2/3": 6, "L5": 4, "HO": 9, "PV": 3, "SOM": 3, "TRN": 2}
    ran = result.circuit
    for p in ran.populations:
        assert result.info["cells_per_unit"][p.name] == per_unit[p.layer], p.name
    dims = dict(heads=1, tokens=2, kv_tokens=None, d_model=3, d_k=2, d_v=2)
    est = estimate("spiking", dims, options=options)
    assert est.neuron == "lif" and result.info["n_neurons"] <= est.n_cells <= 1.3 * result.info["n_neurons"]
    steps = round(result.info["sim_time_s"] / (result.info["dt_ms"] * 1e-3))
    assert est.n_steps == steps and est.n_interneurons >= result.info["n_interneurons"]


def test_lif_defaults_and_automatic_settling_are_priced():
    dims = dict(heads=4, tokens=8, kv_tokens=None, d_model=16, d_k=4, d_v=4)
    lif = estimate("spiking", dims, options=dict(neuron="lif"))
    poisson = estimate("spiking", dims, options=dict(neuron="poisson"))
    assert lif.cells_per_unit == {
        "FO": 100,
        "L2/3": 100,
        "L5": 100,
        "HO": 400,
        "PV": 25,
        "SOM": 25,
        "TRN": 25,
    }
    # dt 1 ms; settle grown from 100 ms for 5 stages of 5 ms synapses + 20 ms cells (170 ms)
    assert lif.n_steps == 8 * (170 + 200)
    assert lif.time_s > poisson.time_s and lif.memory_bytes > poisson.memory_bytes
    faster = estimate("spiking", dims, options=dict(neuron="lif", target="cython"))
    assert faster.n_cells == lif.n_cells and faster.time_s < lif.time_s


def test_dry_run_prints_the_lif_estimate(capsys):
    assert main(["run", "--backend", "spiking", "--neuron", "lif", "--dry-run", "--json"]) == 0
    est = json.loads(capsys.readouterr().out)
    assert est["neuron"] == "lif" and est["n_cells"] > 100_000 and est["fits"] is True
    assert main(["run", "--backend", "spiking", "--neuron", "lif", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "lif cells" in out and "interneurons" in out
    assert np.isfinite(est["time_s"])
