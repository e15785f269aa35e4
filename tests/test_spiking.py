"""The spiking backend: linear-nonlinear-Poisson populations decoded from spike counts (default suite).

Small problems with pairwise-distinct sizes (H=2, N=3, M=6, D=7, d_k=4, d_v=5), the numpy
target (no compilation) and short windows keep this file near a minute. The statistics are
those of :mod:`ctattn.analysis.statistics`: per-output standard errors from replicates with fixed
seeds, Bonferroni-corrected Student thresholds (alpha = 0.01 per check), the bias budget of
:data:`ctattn.circuits.backends.spiking.BIAS_BUDGET`, a regression slope near 1, and a power check
against wrong references. The standard-problem acceptance checks are in
``test_spiking_acceptance.py`` (slow).
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from ctattn.analysis.reference import multihead_attention
from ctattn.analysis.statistics import (
    Replicates,
    bonferroni_threshold,
    compare,
    power_check,
    wrong_references,
)
from ctattn.circuits.backends import get_backend
from ctattn.circuits.backends.spiking import (
    BIAS_BUDGET,
    RATE_CAP_HZ,
    SaturationError,
    _Progress,
    encoding_ranges,
    poisson_standard_errors,
)
from ctattn.circuits.build import circuit_for
from ctattn.circuits.dale import apply_dale

from ctattn.core.problem import AttentionSpec, InputError, random_tokens, random_weights

SIZES = dict(n_heads=2, d_model=7, d_k=4, d_v=5)
N, M = 3, 6
# Fast settings: shorter time constants allow a 50 ms settle (residual ~3e-4 of a token's
# change for the 2 ms / 5 ms filter chain, inside the bias budget); dt = 0.25 ms keeps every
# Units draw one count per step for their n cells, so n costs nothing: 400 cells per unit make the
# spiking noise small enough for the rectifications downstream of the noisy relays.
FAST = dict(neurons_per_unit=400, window_ms=100, settle_ms=50, tau_ms=5, tau_syn_ms=2, dt_ms=0.25)
ALPHA = 0.01
SEEDS = tuple(range(100, 108))  # fixed: 8 replicates

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


def _problem(layout="mask", causal=False, cross=False, biases=True):
    W = random_weights(7, **SIZES, biases=biases)
    T = random_tokens(7, N, SIZES["d_model"], n_kv=M if cross else None)
    spec = AttentionSpec(layout=layout, causal=causal)
    Y_ref = multihead_attention(T.X, **W.arrays(), X_kv=T.X_kv, **spec.reference_kwargs(W))
    return W, T, spec, circuit_for(W, T, spec), Y_ref


def _run(circuit, tokens, **options):
    return get_backend("spiking").run(circuit, tokens, **{**FAST, **options})


def _tolerances(Y_ref, n_runs: int = 1):
    """``compare`` options: the bias budget in absolute units (per output) and as a fraction
    (for the slope), and the standard-error floor of a mean of ``n_runs`` decoded outputs: one
    readout spike, ``1 / (n rho T)`` (replicates that all count zero spikes have sd 0)."""
    # the largest readout rho: the finest quantum of any output (a conservative floor)
    quantum = 1.0 / (FAST["neurons_per_unit"] * RATE_CAP_HZ["excitatory"] * FAST["window_ms"] * 1e-3)
    return dict(
        bias=BIAS_BUDGET * float(np.sqrt(np.mean(Y_ref**2))),
        bias_rel=BIAS_BUDGET,
        se_floor=quantum / np.sqrt(n_runs),
        alpha=ALPHA,
    )


@pytest.fixture(scope="module")
def replicates():
    """Eight runs of the mask layout (self-attention, biases) with fixed, distinct seeds."""
    W, T, spec, circuit, Y_ref = _problem()
    results = [_run(circuit, T, seed=s) for s in SEEDS]
    return dict(weights=W, tokens=T, spec=spec, circuit=circuit, Y_ref=Y_ref, results=results)


# -- options ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "options, field",
    [
        (dict(bogus=1), "bogus"),
        (dict(neurons_per_unit=0), "neurons_per_unit"),
        (dict(neurons_per_unit=2.5), "neurons_per_unit"),
        (dict(window_ms=-5), "window_ms"),
        (dict(settle_ms=0), "settle_ms"),
        (dict(write_ms=float("nan")), "write_ms"),
        (dict(tau_ms=-1), "tau_ms"),
        (dict(window_ms=100.1), "window_ms"),  # not a whole number of steps
        (dict(dt_ms=5), "dt_ms"),  # coarser than the time constants
        (dict(target="gpu"), "target"),
        (dict(encoding_ranges={"L4": 10}), "encoding_ranges"),
        (dict(encoding_ranges={"HO": -3}), "encoding_ranges"),
        (dict(headroom=1.5), "headroom"),
        (dict(neuron="hodgkin"), "neuron"),
        (dict(seed=-1), "seed"),
        (dict(relay_firing="bursty"), "relay_firing"),
    ],
)
def test_bad_options_are_rejected_by_name(options, field):
    _, T, _, circuit, _ = _problem()
    with pytest.raises(InputError, match=field):
        _run(circuit, T, **options)


def test_units_at_the_api_edge():
    import brian2

    _, T, _, circuit, _ = _problem()
    with pytest.raises(InputError, match="window_ms"):
        _run(circuit, T, window_ms=5 * brian2.Hz)
    result = _run(
        circuit,
        T,
        window_ms=0.05 * brian2.second,
        settle_ms=30 * brian2.ms,
    )
    assert result.info["window_ms"] == pytest.approx(50.0)
    assert result.info["settle_ms"] == pytest.approx(30.0)


# -- the neuron model -----------------------------------------------------------------------
def test_counts_follow_the_cell_law_without_calibration(replicates):
    """Relays and the L2/3 two-compartment cells driven by them fire at ``rho_u f(basal)
    g(apical)`` with Poisson counting noise only (``rho_u`` fixed a priori from the encoding
    range): the linear-nonlinear-Poisson transfer is the cell law, nothing is calibrated."""
    circuit, T = apply_dale(replicates["circuit"]), replicates["tokens"]
    ideal = get_backend("ideal").run(circuit, T).window_rates
    # regular (splay-state) relays: the L2/3 inputs ripple little, so their counts are Poisson
    result = _run(replicates["circuit"], T, seed=SEEDS[0], relay_firing="regular")
    info = result.info
    ranges = encoding_ranges(circuit, T, None)
    for pop in circuit.populations:
        if pop.layer not in ("FO", "L2/3"):
            continue
        rho = 0.8 * RATE_CAP_HZ["excitatory"] / np.where(ranges[pop.name] > 0, ranges[pop.name], 1.0)
        scale = info["neurons_per_unit"] * rho * info["window_ms"] * 1e-3
        expected, counts = ideal[pop.name] * scale, result.window_rates[pop.name] * scale
        # Poisson counting, plus the bias budget: the inhibitory half of a drive arrives through
        # Poisson interneurons (Dale's law), whose noise the rectification turns into a small bias
        slack = BIAS_BUDGET * np.max(expected)
        excess = np.abs(counts - expected) - slack
        z = excess / np.sqrt(np.maximum(expected, 1.0))
        assert np.max(z) < bonferroni_threshold(z.size, ALPHA), pop.name


def test_silenced_populations_never_spike():
    """Deterministic extremes: a silenced readout gives exactly 0; so does silencing every
    L2/3 population (no score on any apical tuft: relu gain 0), with no biases anywhere."""
    _, T, _, circuit, _ = _problem(biases=False)
    result = _run(circuit.replace_population("HO", silenced=True), T, seed=1)
    assert np.all(result.Y == 0) and len(result.spikes["HO"][0]) == 0
    lesioned = circuit
    for h in range(SIZES["n_heads"]):
        lesioned = lesioned.replace_population(f"A{h}.L23", silenced=True)
    result = _run(lesioned, T, seed=1, record_spikes=True)
    assert np.all(result.Y == 0)
    assert all(len(result.spikes[f"A{h}.{layer}"][0]) == 0 for h in range(2) for layer in ("L23", "L5"))
    assert len(result.spikes["FO.query"][0]) > 0  # the relays still carry the tokens


# -- agreement with the reference -------------------------------------------------------------
def test_mean_output_matches_reference(replicates):
    """The mean of 8 replicates agrees with the reference output by output (Bonferroni over
    N x D outputs, t with 7 dof), with a slope near 1; the same statistic rejects a head swap,
    a transposed W_K and a 1.2x output (power check)."""
    rep = Replicates.of([r.Y for r in replicates["results"]])
    Y_ref = replicates["Y_ref"]
    options = dict(dof=rep.dof, **_tolerances(Y_ref, rep.n))
    result = compare(rep.mean, Y_ref, rep.se, **options)
    assert result.consistent, result.summary()
    wrong = wrong_references(replicates["weights"], replicates["tokens"], replicates["spec"])
    assert set(wrong) == {"heads swapped", "W_K transposed", "output x1.2"}
    for name, check in power_check(rep.mean, rep.se, wrong, **options).items():
        assert not check.consistent, f"{name}: {check.summary()}"


def test_each_run_and_each_pair_of_seeds_is_consistent(replicates):
    """Every single run agrees with the reference, and two seeds with each other, given the
    per-output spread of the *other* runs (leave-one-out, so the test is not circular)."""
    Ys = np.stack([r.Y for r in replicates["results"]])
    Y_ref = replicates["Y_ref"]
    options = _tolerances(Y_ref)
    R = len(Ys)
    for k in range(R):
        others = Replicates(np.delete(Ys, k, axis=0))
        single = compare(Ys[k], Y_ref, others.sd, dof=others.dof, **{**options, "alpha": ALPHA / R})
        assert single.consistent, f"seed {SEEDS[k]}: {single.summary()}"
    rest = Replicates(Ys[2:])
    pair = compare(
        Ys[0] - Ys[1],
        np.zeros_like(Y_ref),
        np.sqrt(2) * rest.sd,
        dof=rest.dof,
        alpha=ALPHA,
        se_floor=np.sqrt(2) * options["se_floor"],
    )
    assert pair.z_ok, pair.summary()
    assert not np.array_equal(Ys[0], Ys[1])


def test_same_seed_same_output(replicates):
    again = _run(replicates["circuit"], replicates["tokens"], seed=SEEDS[0])
    np.testing.assert_array_equal(again.Y, replicates["results"][0].Y)


def test_recording_more_changes_no_random_numbers(replicates):
    again = _run(
        replicates["circuit"], replicates["tokens"], seed=SEEDS[1], record_spikes=True, trace_dt_ms=1.0
    )
    np.testing.assert_array_equal(again.Y, replicates["results"][1].Y)
    assert set(again.spikes) == {p.name for p in apply_dale(replicates["circuit"]).populations}
    t, a = again.traces["HO"]
    assert a.shape == (len(t), 1, 2 * SIZES["d_model"])


def test_spread_is_at_least_the_readout_shot_noise(replicates):
    """Poisson counting in the readout is a floor under the run-to-run variance: the total
    variance over outputs is at least that floor (up to the chi-square spread of 7 x 21 dof),
    and the reported bound is that floor relative to ||Y||."""
    results, circuit = replicates["results"], replicates["circuit"]
    rep = Replicates.of([r.Y for r in results])
    floor = np.mean([poisson_standard_errors(circuit, r) ** 2 for r in results], axis=0)
    assert np.sum(rep.sd**2) / np.sum(floor) > 0.75
    for r in results:
        se = poisson_standard_errors(circuit, r)
        assert r.info["shot_noise_bound"] == pytest.approx(np.linalg.norm(se) / np.linalg.norm(r.Y))


@pytest.mark.parametrize(
    "layout, causal, cross",
    [
        ("mask", True, False),
        pytest.param("mask", False, True, marks=pytest.mark.slow),
        pytest.param("memory", False, False, marks=pytest.mark.slow),
        pytest.param("memory", True, True, marks=pytest.mark.slow),
    ],
)
def test_layouts_causal_and_cross_attention(layout, causal, cross):
    """Both layouts, causal or not, self or cross: 6 replicates each, Bonferroni (t, 5 dof),
    slope, and the 1.2x output rejected. The memory layout's a-priori ranges are wider (a
    memory cell may hold every write), so its cells fire less per unit value: 4000 cells per
    unit give it the power to reject the 1.2x output."""
    _, T, _, circuit, Y_ref = _problem(layout, causal, cross)
    n = 4000 if layout == "memory" else FAST["neurons_per_unit"]
    rep = Replicates.of([_run(circuit, T, seed=s, neurons_per_unit=n).Y for s in SEEDS[:6]])
    options = dict(dof=rep.dof, **_tolerances(Y_ref, rep.n))
    result = compare(rep.mean, Y_ref, rep.se, **options)
    assert result.consistent, result.summary()
    assert not compare(rep.mean, 1.2 * Y_ref, rep.se, **options).consistent


# -- what a run reports ----------------------------------------------------------------------------
def test_info_reports_sizes_timings_and_the_bound(replicates):
    circuit, result = replicates["circuit"], replicates["results"][0]
    info = result.info
    n = FAST["neurons_per_unit"]
    assert info["backend"] == "spiking" and info["target"] == "numpy" and info["seed"] == SEEDS[0]
    assert info["neurons_per_unit"] == n and info["window_ms"] == FAST["window_ms"]
    dale = apply_dale(circuit)
    assert info["n_neurons"] == dale.n_neurons * n  # interneurons included
    assert info["n_interneurons"] == sum(p.size for p in dale.populations if p.inhibitory) * n
    assert info["n_synapses"] == info["n_weights"] == dale.n_synapses  # simulated: rate-level weights
    assert info["n_synapses_modelled"] == dale.n_synapses * n * n  # what they stand for: all-to-all
    assert info["neuron"] == "poisson"
    assert set(info["inhibitory"]) == {p.name for p in dale.populations if p.inhibitory}
    for name, peak in info["peak_rate_hz"].items():
        cap = RATE_CAP_HZ["inhibitory" if name in info["inhibitory"] else "excitatory"]
        assert 0 <= info["mean_rate_hz"][name] and peak <= cap + 1e-9, name
    assert info["sim_time_s"] == pytest.approx(N * (FAST["settle_ms"] + FAST["window_ms"]) * 1e-3)
    assert info["realtime_factor"] == pytest.approx(info["run_s"] / info["sim_time_s"])
    for key in ("wall_s", "compile_s", "run_s"):
        assert info[key] >= 0
    assert 0 < info["shot_noise_bound"] < 0.5
    assert info["saturated_fraction"] <= 1e-3
    json.dumps(info)  # plain values only: the CLI merges it into its JSON


def test_saturating_encoding_is_refused_naming_the_population():
    """A user-set encoding range far below what the readout carries: the intensity exceeds the
    cap in more than 0.1% of neuron-steps, and the run is refused naming the population; with
    allow_saturation it runs, reports the fraction and warns."""
    _, T, _, circuit, _ = _problem()
    with pytest.raises(SaturationError, match="HO"):
        _run(circuit, T, encoding_ranges={"HO": 1e-3})
    with pytest.warns(RuntimeWarning, match="HO"):
        result = _run(circuit, T, encoding_ranges={"HO": 1e-3}, allow_saturation=True)
    assert result.info["saturated_fraction"] > 1e-3
    assert result.info["peak_rate_hz"]["HO"] == pytest.approx(RATE_CAP_HZ["excitatory"])


def test_progress_indicator_only_for_longer_runs():
    quiet, loud = io.StringIO(), io.StringIO()
    short = _Progress(after=2.0, stream=quiet)
    short(0.5, 0.5, 0, 1.0)
    short(0.9, 1.0, 0, 1.0)
    assert quiet.getvalue() == ""
    long = _Progress(after=2.0, stream=loud)
    for elapsed, done in ((1.0, 0.2), (2.5, 0.5), (5.0, 1.0)):
        long(elapsed, done, 0, 3.0)
    lines = loud.getvalue().splitlines()
    assert len(lines) == 2 and "50.0%" in lines[0] and "100.0%" in lines[1]


def test_cli_json_has_the_spiking_keys(capsys):
    from ctattn.cli import main

    code = main(
        [
            "run",
            "--backend",
            "spiking",
            "--json",
            "--heads",
            "1",
            "--tokens",
            "2",
            "--d-model",
            "3",
            "--d-k",
            "2",
            "--d-v",
            "2",
            "--neurons-per-unit",
            "300",
            "--window",
            "40",
            "--settle",
            "30",
            "--seed",
            "2",
        ]
    )
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and len(out) == 1
    summary = json.loads(out[0])
    for key in (
        "shot_noise_bound",
        "sim_time_s",
        "realtime_factor",
        "n_synapses",
        "window_ms",
        "neurons_per_unit",
        "compile_s",
        "wall_s",
        "n_neurons",
        "neuron",
        "peak_rate_hz",
        "mean_rate_hz",
        "inhibitory",
        "saturated_fraction",
        "spikes_per_output",
    ):
        assert key in summary, key
    assert summary["neurons_per_unit"] == 300 and summary["window_ms"] == 40 and summary["seed"] == 2
