"""The spiking backend's ``lif`` neuron model (threshold integrate-and-fire cells).

* The acceptance run on the standard problem (4 heads, 8 tokens, d_model 16, d_k = d_v = 4,
  relu, linear, seed 0, numpy target), in the default test run: error threshold, rate caps,
  saturation, accounting.
* ``normalized`` and ``softmax`` on a small problem (sanity gate, pools at their equilibrium),
  and the tuft shunt's division on the cells alone.
* Small circuits: reproducibility from the master seed, cells per unit, what ``lif`` refuses.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from ctattn.analysis.metrics import relative_error
from ctattn.analysis.reference import multihead_attention
from ctattn.circuits.backends import get_backend
from ctattn.circuits.backends.spiking import RATE_CAP_HZ
from ctattn.circuits.backends.spiking.options import LIF_DEFAULTS
from ctattn.circuits.build import circuit_for
from ctattn.circuits.dale import apply_dale

from ctattn.core.problem import AttentionSpec, InputError, random_tokens, random_weights

#: The acceptance run's cells per unit (principal cells, Dale interneurons, readout): the
#: ``lif`` defaults.
ACCEPTANCE = {k: v for k, v in LIF_DEFAULTS.items() if k.endswith("_per_unit")}

#: Error model of the acceptance run (written after the first runs had measured 26-28 % on this
#: seed, so it is a sanity gate against wiring, sign or calibration errors with a ~1.3x margin,
#: not the issue's 5 % target, which ``benchmarks/spiking.py`` measures at 500k neurons): the
#: readout's Poisson counting noise ``bound`` (reported by the run from its own counts, no
#: reference), the same again from the L5 / TRN stage upstream (bursts of 100 cells at a few Hz
#: count about as few events per value as the readout's 400 cells at ~1 Hz), and a systematic
#: allowance of 10% (onset and relu rectification, ~5% per product stage measured on single
#: stages), with a 1.4x margin:
#: ``error <= 1.4 sqrt(2 bound^2 + 0.1^2)``. A wiring, sign or calibration error gives >= 100%.
BIAS_ALLOWANCE = 0.10
MARGIN = 1.4


def _standard(variant="linear"):
    W = random_weights(0, n_heads=4, d_model=16, d_k=4, d_v=4)
    T = random_tokens(0, 8, 16)
    spec = AttentionSpec(variant=variant, phi="relu")
    Y_ref = multihead_attention(T.X, **W.arrays(), **spec.reference_kwargs(W))
    return circuit_for(W, T, spec), T, Y_ref


def test_standard_problem_acceptance():
    circuit, T, Y_ref = _standard()
    result = get_backend("spiking").run(circuit, T, neuron="lif", seed=0)  # the lif defaults
    info = result.info
    error = relative_error(result.Y, Y_ref)
    print(
        f"lif: error {error:.4f}, shot-noise bound {info['shot_noise_bound']:.4f}, {info['n_neurons']} neurons ({info['n_interneurons']} interneurons), "
        f"wall {info['wall_s']:.1f} s, compile {info['compile_s']:.1f} s, calibration {info['calibration_s']:.1f} s"
    )
    limit = MARGIN * np.sqrt(2 * info["shot_noise_bound"] ** 2 + BIAS_ALLOWANCE**2)
    assert info["shot_noise_bound"] < 0.25, info["shot_noise_bound"]  # the readout counts enough
    # every stage's counting noise carried to the readout adds to the readout's own
    assert info["shot_noise_bound_propagated"] > info["shot_noise_bound"]
    assert 0.9 < sum(info["shot_noise_shares"].values()) <= 1.01  # shares below 5e-4 are left out
    assert error <= limit, (error, limit)
    assert info["neuron"] == "lif" and info["saturated_fraction"] <= 1e-3
    for name, peak in info["peak_rate_hz"].items():
        assert 0 < peak <= RATE_CAP_HZ["inhibitory" if name in info["inhibitory"] else "excitatory"], name
    dale = apply_dale(circuit)
    expected = sum(
        p.size
        * (
            ACCEPTANCE["readout_per_unit"]
            if p.name == dale.readout
            else ACCEPTANCE["inhibitory_per_unit"]
            if p.inhibitory
            else ACCEPTANCE["neurons_per_unit"]
        )
        for p in dale.populations
    )
    assert info["n_neurons"] == expected
    assert info["n_interneurons"] == sum(
        p.size * ACCEPTANCE["inhibitory_per_unit"] for p in dale.populations if p.inhibitory
    )
    # synapses simulated: rate-level weights plus one event synapse per cell (a cell reads its
    # unit's summed input as a linked variable)
    assert info["n_synapses"] == info["n_weights"] + info["n_neurons"]
    assert set(info["mean_rate_hz"]) == {p.name for p in dale.populations}
    json.dumps(info)


def _small(variant="linear", layout="mask"):
    W = random_weights(3, n_heads=1, d_model=3, d_k=2, d_v=2)
    T = random_tokens(3, 2, 3)
    return circuit_for(W, T, AttentionSpec(variant=variant, layout=layout)), T


def test_lif_runs_are_reproducible_from_the_master_seed():
    circuit, T = _small()
    run = lambda seed: get_backend("spiking").run(  # noqa: E731
        circuit,
        T,
        neuron="lif",
        seed=seed,
        neurons_per_unit=10,
        inhibitory_per_unit=5,
        readout_per_unit=10,
        window_ms=20,
        settle_ms=20,
        allow_saturation=True,
    )
    a, b, c = run(1), run(1), run(2)
    spikes = get_backend("spiking").run(
        circuit, T, neuron="lif", seed=1, neurons_per_unit=10, inhibitory_per_unit=5, readout_per_unit=10,
        window_ms=20, settle_ms=20, allow_saturation=True, record_spikes=True,
    )  # fmt: skip
    recorded = spikes.info["recorded_cells_per_population"]
    for pop in apply_dale(circuit).populations:  # every population, cells 0..m-1 of each unit
        t, i = spikes.spikes[pop.name]
        assert np.all((i >= 0) & (i < pop.size * recorded[pop.name])) and np.all(t >= 0)
    assert np.array_equal(spikes.Y, a.Y, equal_nan=True)  # recording changes no random number
    rates = lambda r: np.concatenate([np.ravel(v) for v in r.window_rates.values()])  # noqa: E731
    assert np.array_equal(a.Y, b.Y, equal_nan=True) and np.array_equal(rates(a), rates(b))
    assert not np.array_equal(rates(a), rates(c))
    assert a.info["neuron"] == "lif" and a.info["cells_per_unit"][circuit.readout] == 10
    assert a.info["dt_ms"] == LIF_DEFAULTS["dt_ms"]


@pytest.mark.parametrize("variant, layout, population", [("linear", "memory", "L23")])
def test_lif_refuses_cells_it_has_no_version_of(variant, layout, population):
    circuit, T = _small(variant, layout)
    with pytest.raises(InputError, match=f"neuron: 'lif'.*{population}"):
        get_backend("spiking").run(circuit, T, neuron="lif", window_ms=20, settle_ms=20)


def test_cells_per_unit_options_are_lif_only():
    circuit, T = _small()
    with pytest.raises(InputError, match="inhibitory_per_unit"):
        get_backend("spiking").run(circuit, T, neuron="poisson", inhibitory_per_unit=5)
    with pytest.raises(InputError, match="readout_per_unit"):
        get_backend("spiking").run(circuit, T, neuron="lif", readout_per_unit=0)
    with pytest.raises(InputError, match="encoding_ranges"):
        get_backend("spiking").run(circuit, T, neuron="lif", encoding_ranges={"HO": 1.0})
    with pytest.raises(InputError, match=r"cells_per_layer: unknown layer\(s\) \['L4'\]"):
        get_backend("spiking").run(circuit, T, neuron="lif", cells_per_layer={"L4": 5})


def test_lif_runs_repeat_across_processes():
    """One master seed, one run, whatever Python's string hashing (a cell's two noises are
    drawn in a fixed order: ``ctattn.models.lif.simulate.deterministic_noise_order``)."""
    import os
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from ctattn.circuits.backends import get_backend\n"
        "from ctattn.circuits.build import circuit_for\n"
        "from ctattn.core.problem import AttentionSpec, random_tokens, random_weights\n"
        "W = random_weights(3, n_heads=1, d_model=3, d_k=2, d_v=2); T = random_tokens(3, 2, 3)\n"
        "r = get_backend('spiking').run(circuit_for(W, T, AttentionSpec()), T, neuron='lif', seed=1,\n"
        "    neurons_per_unit=10, inhibitory_per_unit=5, readout_per_unit=10, window_ms=20, settle_ms=20,\n"
        "    allow_saturation=True)\n"
        "print(repr(sum(float(np.sum(v)) for v in r.window_rates.values())))\n"
    )
    out = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        run = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
        )
        assert run.returncode == 0, run.stderr[-2000:]
        out.append(run.stdout.strip().splitlines()[-1])
    assert out[0] == out[1]


@pytest.mark.parametrize("variant", ["normalized", "softmax"])
def test_lif_divisive_variants_on_a_small_problem(variant):
    """``normalized`` and ``softmax`` with lif cells (2 heads, 4 tokens, d_model 8, problem seed
    0; 100 / 25 / 400 cells per unit). A sanity gate, not an accuracy target: on three problem
    seeds (Cython target) these settings measured 9-23% (normalized) and 6-14% (softmax) with
    slopes 1.03-1.09; a wiring, sign or division error gives >= 50%. The pools must sit near the
    equilibrium where the adaptive threshold holds them (measured 0.84-1.17)."""
    from ctattn.circuits.backends.spiking.lif_tables import POOL_EQUILIBRIUM

    W = random_weights(0, n_heads=2, d_model=8, d_k=4, d_v=4)
    T = random_tokens(0, 4, 8)
    spec = AttentionSpec(variant=variant, phi="relu")
    Y_ref = multihead_attention(T.X, **W.arrays(), **spec.reference_kwargs(W))
    circuit = circuit_for(W, T, spec)
    result = get_backend("spiking").run(
        circuit, T, neuron="lif", seed=0, neurons_per_unit=100, inhibitory_per_unit=25, readout_per_unit=400
    )
    info = result.info
    error = relative_error(result.Y, Y_ref)
    slope = float(np.sum(result.Y * Y_ref) / np.sum(Y_ref**2))
    print(f"lif {variant}: error {error:.4f}, slope {slope:.3f}, wall {info['wall_s']:.1f} s")
    assert error <= 0.3 and abs(slope - 1) <= 0.2, (error, slope)
    assert info["saturated_fraction"] <= 1e-3
    for name, peak in info["peak_rate_hz"].items():
        assert 0 < peak <= RATE_CAP_HZ["inhibitory" if name in info["inhibitory"] else "excitatory"], name
    pools = np.concatenate([np.ravel(v) for k, v in result.window_rates.items() if k.endswith("pool")])
    assert pools.size and np.all(np.abs(pools / POOL_EQUILIBRIUM - 1) <= 0.3), pools


def test_tuft_shunt_divides_the_burst_probability():
    """The divisive L5 cell's mechanism alone: a shunt ``g`` on the tuft divides the burst rate
    by ``1 + g`` (the tuft potential is ``I_a / (1 + g)`` and the Ca threshold is uniform), so
    equal quotients ``I_a / (1 + g)`` give equal burst rates and half the quotient half the rate
    (400 cells per point, 1 s; counting noise ~2-3% per point)."""
    from ctattn.models.lif import get_model, simulate_grid

    grid = {
        "I_b": np.full(4, 1.6),
        "I_a": np.array([0.4, 1.2, 2.0, 1.0]),
        "g_sh": np.array([0.0, 2.0, 4.0, 4.0]),
    }
    run = simulate_grid(get_model("pyramidal"), grid, 400, 1.0, np.random.default_rng(5), dt=2e-4)
    R = run.rates()
    assert R[0] > 5, R  # bursts are counted at all
    np.testing.assert_allclose(R[1:3] / R[0], 1.0, atol=0.12)
    np.testing.assert_allclose(R[3] / R[0], 0.5, atol=0.1)


def test_standalone_threads_repeat_and_are_reported(tmp_path):
    """OpenMP threads of the C++ standalone build: a seed gives the same run twice at a given
    thread count (Brian2 gives every thread its own random stream), and ``info`` says how many."""
    circuit, T = _small()
    opts = dict(
        neuron="lif", seed=4, neurons_per_unit=10, inhibitory_per_unit=5, readout_per_unit=10,
        window_ms=20, settle_ms=20, allow_saturation=True, target="standalone", threads=2,
        standalone_dir=str(tmp_path / "build"),
    )  # fmt: skip
    a = get_backend("spiking").run(circuit, T, **opts)
    b = get_backend("spiking").run(circuit, T, **opts)
    assert a.info["threads"] == 2 and a.info["target"] == "standalone"
    assert np.array_equal(a.Y, b.Y, equal_nan=True)


@pytest.mark.parametrize(
    "options, field",
    [(dict(threads=2), "threads"), (dict(threads=0, target="standalone"), "threads")],
)
def test_threads_are_for_the_standalone_target(options, field):
    circuit, T = _small()
    with pytest.raises(InputError, match=field):
        get_backend("spiking").run(circuit, T, neuron="lif", **options)


def test_tables_are_ready_before_the_standalone_device(monkeypatch):
    """A calibration run needs Brian2's runtime device: the tables are read (or calibrated)
    before the standalone device takes over (calibrating inside it failed: Brian2 cannot read
    a variable of an unrun standalone network)."""
    from ctattn.circuits.backends.spiking import running

    calls = []
    monkeypatch.setattr(
        running, "calibrated_tables", lambda dt, target: calls.append(("tables", target)) or ({}, 0.0)
    )

    class Stop(Exception):
        pass

    def standalone(directory, threads):
        calls.append(("standalone", threads))
        raise Stop

    monkeypatch.setattr(running, "_standalone", standalone)
    circuit, T = _small()
    with pytest.raises(Stop):
        get_backend("spiking").run(circuit, T, neuron="lif", target="standalone", threads=2)
    assert calls == [("tables", "numpy"), ("standalone", 2)]
