"""The ``lif`` cell types (ctattn.models.lif): refractoriness, rate caps, the apical gain and the
shunt act in the right direction, calibration cache, seeding. Small populations, numpy target."""

from __future__ import annotations

import numpy as np
import pytest
from ctattn.models import lif
from ctattn.models.lif import MODELS, calibrate, parameter_hash, peak_bin_rate_hz, simulate_grid

from ctattn.core.seeding import rng_for

DT = 1e-4

# Drives far above the operating range, so that refractoriness is what limits the rate.
STRONG = {
    "relay": {"I": [20.0]},
    "interneuron": {"I": [20.0]},
    "pyramidal": {"I_b": [20.0], "I_a": [0.9]},
    "divider": {"I": [40.0], "g_sh": [0.0]},
}


def _min_isi(run):
    t, i = run.spikes
    order = np.lexsort((t, i))
    t, i = t[order], i[order]
    same = i[1:] == i[:-1]
    return float(np.diff(t)[same].min())


@pytest.mark.parametrize("name", sorted(MODELS))
def test_refractory_period_respected(name):
    model = MODELS[name]
    assert model.refractory_s >= (1e-3 if model.inhibitory else 2e-3)
    run = simulate_grid(model, STRONG[name], 20, 0.3, rng_for(0, f"test-refractory-{name}"))
    # the drive is strong enough that the refractory period is nearly the whole ISI
    assert run.rates(run.spikes)[0] > 0.4 / model.refractory_s
    assert _min_isi(run) >= model.refractory_s - DT / 2


@pytest.mark.parametrize("name", sorted(MODELS))
def test_rates_under_caps_over_operating_range(name):
    model = MODELS[name]
    corners = np.meshgrid(*[model.operating_range[k] for k in model.inputs], indexing="ij")
    grid = {k: c.ravel() for k, c in zip(model.inputs, corners)}
    run = simulate_grid(model, grid, 100, 0.5, rng_for(1, f"test-caps-{name}"))
    peak = peak_bin_rate_hz(run)
    assert 0 < peak <= model.rate_cap_hz
    assert run.rates().max() > 10.0  # the range is not silent


def test_apical_input_raises_burst_rate_monotonically():
    ia = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
    grid = {"I_b": np.full(ia.size, 1.4), "I_a": ia}
    run = simulate_grid(MODELS["pyramidal"], grid, 100, 1.0, rng_for(2, "test-apical"))
    bursts = run.rates()
    assert np.all(np.diff(bursts) > 0), bursts
    assert bursts[-1] > 3 * bursts[0]
    # the gain change is a change of burst probability: the event rate (basal) moves far less
    spikes = run.rates(run.spikes)
    assert spikes[-1] / spikes[0] < bursts[-1] / bursts[0]


@pytest.mark.parametrize("dt", [1e-3, 0.8e-3])
def test_every_ca_plateau_lasts_the_same_number_of_steps(dt):
    # The Ca2+ plateau used to end at a float time t + T_ca; whether a later step's t fell
    # short of it depended on rounding, which changes with t's binary exponent: at dt 1 ms it
    # lasted T_ca/dt - 1 updates, or T_ca/dt in 0% of plateaus in [2, 4) s and 26% in [4, 8) s,
    # and the burst rate drifted along a run. Now it is round(T_ca / dt) updates, always.
    import brian2 as b2

    model = MODELS["pyramidal"]
    b2.start_scope()
    b2.seed(3)
    cells = model.neuron_group(b2, 20, b2.Clock(dt=dt * b2.second))
    for key, val in lif.draw_parameters(model, 1, 20, np.random.default_rng(3)).items():
        setattr(cells, key, val)
    cells.I_b, cells.I_a, cells.t_ca_end = 2.0, 1.2, -1 * b2.second  # every event bursts
    cells.run_on_event("burst", "trig = 0")
    mon = b2.StateMonitor(cells, "plat", record=True)
    b2.run(8.3 * b2.second, namespace={})
    lengths = []
    for row in np.asarray(mon.plat, int):  # per cell, the runs of plateau steps
        edges = np.diff(np.concatenate([[0], row, [0]]))
        starts, ends = np.flatnonzero(edges > 0), np.flatnonzero(edges < 0)
        cut = int(row[-1])  # a plateau still on at the end is cut short: not counted
        lengths.append((ends - starts)[: len(starts) - cut])
    lengths = np.concatenate(lengths)
    assert lengths.size > 2000  # plateaus in every binade of t up to 8 s
    assert set(lengths.tolist()) == {int(np.floor(model.constants["T_ca"] / dt + 0.5))}


def test_product_table_from_the_gain_row():
    # F is the gain row itself (rescaled so that max G = 1); G pools the surface over the basal
    # axis, so a noisy point moves G only by its share of the pooled sum, and F not at all
    from ctattn.models.lif.calibration import table_from_rates

    F = np.array([0.0, 1.0, 3.0, 7.0])
    G = np.array([0.0, 0.2, 0.6, 1.0])
    axes = (np.arange(4.0), np.arange(4.0))
    table = table_from_rates("product", "k", axes, np.outer(F, G), gain_row=2 * F)
    np.testing.assert_allclose(table.G, G, atol=1e-12)
    np.testing.assert_allclose(table.F, F, atol=1e-12)
    R = np.outer(F, G)
    R[1, 2] *= 1.3  # a point of the low row 30% off
    noisy = table_from_rates("product", "k", axes, R, gain_row=F)
    np.testing.assert_allclose(noisy.F, F, atol=1e-12)
    np.testing.assert_allclose(noisy.G[2], G[2] * (1 + 0.3 * F[1] / F.sum()), rtol=1e-12)


def test_shunt_lowers_divider_rate_monotonically():
    g = np.array([0.0, 0.5, 1.0, 2.0, 3.0])
    grid = {"I": np.full(g.size, 3.0), "g_sh": g}
    run = simulate_grid(MODELS["divider"], grid, 100, 1.0, rng_for(3, "test-shunt"))
    rates = run.rates()
    assert np.all(np.diff(rates) < 0), rates
    assert rates[-1] < 0.5 * rates[0]


def test_calibration_cache_hit_and_parameter_hash(tmp_path, monkeypatch):
    monkeypatch.setenv("CTATTN_CACHE", str(tmp_path))
    model = MODELS["relay"]
    grid = {"I": np.linspace(0.6, 3.6, 5)}
    first = calibrate(model, grid, n_per=30, duration=0.3, seed=5)
    assert len(list(tmp_path.glob("relay-*.npz"))) == 1

    def no_run(*a, **k):
        raise AssertionError("a cache hit must not simulate")

    monkeypatch.setattr(lif.calibration, "simulate_grid", no_run)
    second = calibrate(model, grid, n_per=30, duration=0.3, seed=5)
    for name in ("axis", "F", "rates"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    assert first.key == second.key
    # the table is monotone and its inverse undoes it inside the calibrated range
    assert np.all(np.diff(first.F) >= 0) and first.F[-1] > first.F[0]
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(first.inverse(first.transfer(x)), x, atol=1e-9)
    # any changed parameter changes the hash (and so misses the cache)
    h = parameter_hash(model)
    assert parameter_hash(model.with_constants(tau=0.021)) != h
    assert parameter_hash(model.with_constants(sigma=0.31)) != h
    assert parameter_hash(MODELS["interneuron"]) != h
    with pytest.raises(AssertionError, match="cache hit"):
        calibrate(model.with_constants(sigma=0.31), grid, n_per=30, duration=0.3, seed=5)


@pytest.mark.parametrize("name", ["relay", "pyramidal"])
def test_same_seed_same_spikes_other_seed_other_spikes(name):
    model = MODELS[name]
    grid = {k: [np.mean(model.operating_range[k])] for k in model.inputs}

    def spikes(seed):
        return simulate_grid(model, grid, 20, 0.2, rng_for(seed, "test-seeding")).spikes

    a, b, c = spikes(7), spikes(7), spikes(8)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert len(a[0]) > 0
    assert len(a[0]) != len(c[0]) or not np.array_equal(a[0], c[0])


def test_heterogeneity_is_stratified_and_paired():
    model = MODELS["pyramidal"]
    n = 100
    params = lif.draw_parameters(model, 3, n, np.random.default_rng(0))
    ranges = {
        k: (lo + model.constants.get(off, 0.0) if isinstance(off, str) else lo, hi - lo)
        for k, (lo, hi, off) in model.hetero.items()
    }
    bins = {}
    for name, (lo, width) in ranges.items():
        bins[name] = np.floor((params[name] - lo) / width * n).astype(int).reshape(3, n)
        for row in bins[name]:  # one cell per 1/n quantile bin in every unit
            assert sorted(row) == list(range(n))
    # low-discrepancy pairing: the k cells with the lowest Ca2+ thresholds hold the spread of b;
    # iid pairing leaves their mean b off by sqrt(1 / 12k) of its range (RMS over units)
    params = lif.draw_parameters(model, 500, n, np.random.default_rng(1))
    b = params["b"].reshape(500, n) - ranges["b"][0]
    theta = params["theta_ca"].reshape(500, n)
    for k in (10, 40):
        low = np.argsort(theta, axis=1)[:, :k]
        mean_b = np.take_along_axis(b, low, axis=1).mean(axis=1) / ranges["b"][1]
        assert np.sqrt(np.mean((mean_b - 0.5) ** 2)) < 0.5 * np.sqrt(1 / (12 * k))


def test_bad_input_names_the_field():
    relay = MODELS["relay"]
    with pytest.raises(ValueError, match="n_per"):
        simulate_grid(relay, {"I": [1.0]}, 0, 0.1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="duration"):
        simulate_grid(relay, {"I": [1.0]}, 5, -1.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="inputs"):
        simulate_grid(relay, {"I_b": [1.0]}, 5, 0.1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="g_sh"):
        simulate_grid(MODELS["divider"], {"I": [1.0], "g_sh": [-1.0]}, 5, 0.1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown constant"):
        relay.with_constants(tau_x=1.0)
