r"""Normalised and softmax attention with spiking neurons.

The divisive step with spikes: gain cells (``A{h}.L5g``) report ``g(s_ij)`` to an inhibitory
pool (``A{h}.pool``) whose filtered spike train divides the L5 cells (shunting inhibition).
Encoding ranges are a-priori bounds (no oracle); the exponential gains of ``softmax`` are kept
finite by the per-area adaptive threshold (:data:`ctattn.models.spiking.ADAPTATION`), which
subtracts the area's running maximum exponent from every gain and deep cell: the same softmax,
with every gain at most ``exp(delta)`` at equilibrium. The settling phase grows with the
five-stage depth of the normalisation route.

Fast tests use a small problem with pairwise-distinct sizes (H=2, d_k=3, N=4, D=5, M=6,
d_v=7) and short windows; their tolerances come from Poisson counting (a Bonferroni-corrected
z over the family). The acceptance checks on the standard problem are ``slow``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from ctattn.analysis.attention_limits import mean_entropy, softmax_entropy_curve, uniform_attention
from ctattn.analysis.decoding import decode_attention
from ctattn.analysis.metrics import attention_entropy, relative_error
from ctattn.analysis.reference import multihead_attention
from ctattn.analysis.statistics import (
    Replicates,
    bonferroni_threshold,
    compare,
    error_ratio,
    power_check,
    wrong_references,
)
from ctattn.circuits.backends import get_backend
from ctattn.circuits.backends.ideal import run as run_ideal
from ctattn.circuits.backends.spiking import (
    BIAS_BUDGET,
    RATE_CAP_HZ,
    chain_depth,
    encoding_ranges,
    rate_scales_hz,
    settling_time,
)
from ctattn.circuits.build import circuit_for
from ctattn.circuits.dale import apply_dale

from ctattn.core.problem import AttentionSpec, Tokens, random_tokens, random_weights

H, D_K, N, D, M, D_V = 2, 3, 4, 5, 6, 7
FAST = dict(neurons_per_unit=400, window_ms=100.0, target="numpy")
ALPHA = 0.01


def _small(variant: str, *, beta=None, causal=False, n_tokens=N, seed=3):
    W = random_weights(seed, H, D, D_K, D_V, biases=True)
    T = random_tokens(seed, n_tokens, D, n_kv=M)
    spec = AttentionSpec(variant=variant, beta=beta, causal=causal)
    return W, T, spec, circuit_for(W, T, spec)


def _run(circuit, tokens, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a saturated escape rate is an error here
        return get_backend("spiking").run(circuit, tokens, **{**FAST, **options})


def _rho(circuit, tokens) -> dict:
    """The backend's a-priori rate scales (Hz per neuron at unit value) of every population."""
    dale = apply_dale(circuit)
    caps = {p.name: RATE_CAP_HZ["inhibitory" if p.inhibitory else "excitatory"] for p in dale.populations}
    return rate_scales_hz(encoding_ranges(dale, tokens, None), caps, 0.8)


def _attention_z(circuit, tokens, result, A_expected) -> np.ndarray:
    """z-scores of the attention decoded from gain-cell and pool counts, ``a = r_g / r_pool``.

    Poisson counts ``N_g``, ``N_pool`` give ``var(a) / a^2 ~ 1/N_g + 1/N_pool`` (the pool's own
    counting noise on top of the gains it sums); zero counts are given one count's resolution.
    """
    info, T = result.info, result.info["window_ms"] * 1e-3
    A = decode_attention(circuit, result.window_rates)
    z = np.zeros_like(A)
    rho = _rho(circuit, tokens)
    n = info["neurons_per_unit"]
    for h in range(circuit.info["n_heads"]):
        rho_g, rho_p = rho[f"A{h}.L5g"][:, 0], rho[f"A{h}.pool"][0, 0]
        counts_g = np.maximum(result.window_rates[f"A{h}.L5g"][..., 0] * n * rho_g * T, 1.0)
        counts_p = np.maximum(result.window_rates[f"A{h}.pool"][..., 0] * n * rho_p * T, 1.0)
        se = np.maximum(A[h], 1.0 / counts_p) * np.sqrt(1.0 / counts_g + 1.0 / counts_p)
        z[h] = (A[h] - A_expected[h]) / se
    return z


def test_depth_and_settling():
    """The normalisation route is five synaptic stages deep and settles 150 ms at the defaults;
    the three-stage circuits keep the 100 ms they were calibrated with."""
    depths = {v: chain_depth(_small(v)[3]) for v in ("linear", "normalized", "softmax")}
    assert depths == {"linear": 3, "normalized": 5, "softmax": 5}
    W, T, _, _ = _small("linear")
    memory = circuit_for(W, Tokens(X=T.X), AttentionSpec(layout="memory"))
    assert chain_depth(memory) == 3
    assert settling_time(3, 5e-3, 10e-3, 0.2, 2e-4, minimum=0.1) == 0.1
    assert settling_time(5, 5e-3, 10e-3, 0.2, 2e-4, minimum=0.1) == pytest.approx(0.15)
    # deeper chains need longer; slower filters need longer; the minimum is respected
    times = [settling_time(d, 5e-3, 10e-3, 0.2, 2e-4, minimum=0.1) for d in (4, 5, 6)]
    assert times[0] < times[1] < times[2]
    assert settling_time(5, 10e-3, 20e-3, 0.2, 2e-4, minimum=0.1) > times[1]


def test_adaptive_threshold_keeps_exponential_gains_under_the_caps():
    """Softmax at beta = 0.5 on this problem has pool rates from ~6 to ~6e3 (unit rates of the
    description) between query tokens. With the adaptive threshold every gain cell and pool
    stays under its cap (no rate scaling from the circuit's solution), nothing saturates, and
    the attention decoded from their counts is close to the reference's."""
    W, T, spec, circuit = _small("softmax", beta=0.5)
    ideal = run_ideal(circuit, T).window_rates
    peaks = np.array([ideal[f"A{h}.pool"].max() for h in range(H)])
    assert peaks.max() > 1e3  # the hard case
    result = _run(circuit, T, record_spikes=True)
    info = result.info
    assert info["saturated_fraction"] <= 1e-3 and info["settle_ms"] >= 150.0  # Dale: deeper
    for h in range(H):
        assert info["peak_rate_hz"][f"A{h}.L5g"] <= RATE_CAP_HZ["excitatory"]
        assert info["peak_rate_hz"][f"A{h}.pool"] <= RATE_CAP_HZ["inhibitory"]
        assert f"A{h}.pool" in info["inhibitory"]
    pool_times, pool_cells = result.spikes["A0.pool"]
    assert pool_cells.size > 0
    A_ref = multihead_attention(T.X, **W.arrays(), X_kv=T.X_kv, **spec.reference_kwargs(W), trace=True).A
    A = decode_attention(circuit, result.window_rates)
    assert np.abs(A - A_ref).max() < 0.15
    np.testing.assert_allclose(A.sum(axis=-1), 1.0, atol=0.15)


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_beta_zero_gives_uniform_attention(causal):
    """beta = 0: every visible token's gain cell fires like every other's; the pool's count is
    their sum, so a_ij = 1/n_i within counting noise (cross-attention, M = 6 > N = 4)."""
    W, T, spec, circuit = _small("softmax", beta=0.0, causal=causal)
    result = _run(circuit, T)
    z = _attention_z(circuit, T, result, uniform_attention(H, N, M, causal))
    assert np.abs(z).max() < bonferroni_threshold(z.size, ALPHA), np.abs(z).max()
    if causal:  # tokens not yet presented: their gain cells are silent, exactly
        A = decode_attention(circuit, result.window_rates)
        assert np.all(A[:, ~(np.arange(M)[None, :] <= np.arange(N)[:, None])] == 0)


@pytest.mark.parametrize("variant", ["normalized", "softmax"])
def test_one_token_has_weight_one(variant):
    """One key/value token: its gain cell and the pool carry the same rate, a = 1 (Poisson z).

    beta = 0.5: at larger beta the gain's own fluctuations (exp-amplified score noise, which the
    pool follows with a delay) add variance beyond counting at 10 neurons per unit."""
    W = random_weights(4, H, D, D_K, D_V, biases=True)
    T = Tokens(X=random_tokens(4, N, D).X, X_kv=random_tokens(5, 1, D).X)
    spec = AttentionSpec(variant=variant, phi="softplus", beta=0.5)
    circuit = circuit_for(W, T, spec)
    result = _run(circuit, T)
    z = _attention_z(circuit, T, result, np.ones((H, N, 1)))
    assert np.abs(z).max() < bonferroni_threshold(z.size, ALPHA), np.abs(z).max()


# -- acceptance on the standard problem (slow) ------------------------------------------------
SEEDS = tuple(range(8))
STANDARD = dict(neurons_per_unit=4000, target="cython")


def _standard(variant: str, beta=None):
    W = random_weights(0, n_heads=4, d_model=16, d_k=4, d_v=4)
    T = random_tokens(0, 8, 16)
    spec = AttentionSpec(variant=variant, beta=beta)
    Y_ref = multihead_attention(T.X, **W.arrays(), **spec.reference_kwargs(W), trace=True)
    return dict(weights=W, tokens=T, spec=spec, circuit=circuit_for(W, T, spec), ref=Y_ref)


@pytest.fixture(scope="module", params=["normalized", "softmax"])
def standard(request):
    problem = _standard(request.param)
    backend = get_backend("spiking")
    problem["runs"] = [backend.run(problem["circuit"], problem["tokens"], seed=s, **STANDARD) for s in SEEDS]
    problem["long_runs"] = [
        backend.run(problem["circuit"], problem["tokens"], seed=s, window_ms=800.0, **STANDARD)
        for s in SEEDS[:4]
    ]
    return problem


@pytest.mark.slow
def test_standard_error_at_most_8_percent(standard):
    Y_ref = standard["ref"].Y
    errors = [relative_error(r.Y, Y_ref) for r in standard["runs"]]
    print(
        standard["spec"].variant,
        "errors:",
        " ".join(f"{e:.4f}" for e in errors),
        "| shot-noise bounds:",
        " ".join(f"{r.info['shot_noise_bound']:.4f}" for r in standard["runs"]),
    )
    assert max(errors) <= 0.08, errors
    assert all(r.info["saturated_fraction"] <= 1e-3 for r in standard["runs"])


@pytest.mark.slow
def test_standard_quadrupling_the_window_halves_the_error(standard):
    """Convergence check: RMS error over 4 seeds at T = 200 ms over that at 4T is ~2 (counting
    noise, no bias floor)."""
    Y_ref = standard["ref"].Y
    ratio = error_ratio(
        [relative_error(r.Y, Y_ref) for r in standard["runs"][:4]],
        [relative_error(r.Y, Y_ref) for r in standard["long_runs"]],
    )
    print(standard["spec"].variant, f"error ratio T / 4T: {ratio:.2f}")
    assert 1.6 <= ratio <= 2.4, ratio


@pytest.mark.slow
def test_standard_mean_matches_reference_and_rejects_wrong_ones(standard):
    """The mean of 8 seeds is consistent with the reference (Bonferroni z per output within the
    linear variant's bias budget, regression slope) and inconsistent with wrong references."""
    Y_ref = standard["ref"].Y
    rep = Replicates.of([r.Y for r in standard["runs"]])
    quantum = 1.0 / (STANDARD["neurons_per_unit"] * max(standard["runs"][0].info["readout_rho_hz"]) * 0.2)
    options = dict(
        dof=rep.dof,
        alpha=ALPHA,
        bias=BIAS_BUDGET * float(np.sqrt(np.mean(Y_ref**2))),
        bias_rel=BIAS_BUDGET,
        se_floor=quantum / np.sqrt(rep.n),
    )
    result = compare(rep.mean, Y_ref, rep.se, **options)
    print(standard["spec"].variant, "reference:", result.summary())
    assert result.consistent, result.summary()
    wrong = wrong_references(standard["weights"], standard["tokens"], standard["spec"])
    for name, check in power_check(rep.mean, rep.se, wrong, **options).items():
        print(f"{name}:", check.summary())
        assert not check.consistent, f"{name}: {check.summary()}"


@pytest.mark.slow
def test_spiking_entropy_falls_with_beta():
    """The entropy of the attention read from the spiking gain cells and pools falls with beta
    as the reference's does (default 40 neurons per unit; 0.05 nats of counting noise and bias)."""
    betas = (0.0, 0.5, 2.0)
    entropies, expected = [], []
    for beta in betas:
        problem = _standard("softmax", beta=beta)
        result = get_backend("spiking").run(problem["circuit"], problem["tokens"], seed=1, target="cython")
        A = decode_attention(problem["circuit"], result.window_rates)
        entropies.append(mean_entropy(A))
        expected.append(float(np.mean(attention_entropy(problem["ref"].A))))
    print("entropy (spiking):", np.round(entropies, 3), "reference:", np.round(expected, 3))
    np.testing.assert_allclose(entropies, expected, atol=0.05)
    assert np.all(np.diff(entropies) < -0.1)
    S = _standard("softmax", beta=1.0)["ref"].S
    np.testing.assert_allclose(softmax_entropy_curve(S, betas, causal=False), expected, atol=1e-12)
