"""Property-based tests (hypothesis, bounded examples so they fit the default run): random
shapes, values and flags through the reference and the ideal circuit; the loaders, the config
and manifest parsers on random and corrupted input. The contract in every case: a valid
result, or an :class:`InputError` (a ``ValueError``) naming a field, never another exception."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
from ctattn.analysis.metrics import relative_error
from ctattn.analysis.reference import multihead_attention
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ctattn.config import KEYS, load_config, validate_config
from ctattn.core.problem import AttentionSpec, AttentionWeights, InputError, Tokens

# derandomize: the same examples on every run, so CI cannot turn red by luck of the draw.
FAST = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@st.composite
def problems(draw):
    H, D, dk, dv = (draw(st.integers(1, 3)) for _ in range(4))
    N = draw(st.integers(1, 4))
    cross = draw(st.booleans())
    M = draw(st.integers(1, 4)) if cross else N
    variant = draw(st.sampled_from(["linear", "normalized", "softmax"]))
    layout = "memory" if variant == "linear" and draw(st.booleans()) else "mask"
    phi = draw(st.sampled_from(["relu", "softplus", "elu1"]))
    scale = draw(st.sampled_from([1e-3, 0.1, 1.0, 3.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    W = AttentionWeights(
        W_Q=rng.normal(0, scale, (H, dk, D)),
        W_K=rng.normal(0, scale, (H, dk, D)),
        W_V=rng.normal(0, 1, (H, dv, D)),
        W_O=rng.normal(0, 1, (H, D, dv)),
        b_O=rng.normal(0, 0.1, D) if draw(st.booleans()) else None,
    )
    T = Tokens(X=rng.normal(0, 1, (N, D)), X_kv=rng.normal(0, 1, (M, D)) if cross else None)
    spec = AttentionSpec(
        variant=variant,
        phi=phi,
        layout=layout,
        causal=draw(st.booleans()),
        beta=draw(st.sampled_from([None, 0.0, 0.5, 4.0])),
    )
    return W, T, spec


@FAST
@given(problems())
def test_ideal_circuit_matches_the_reference(problem):
    from ctattn.api import simulate

    W, T, spec = problem
    Y_ref = multihead_attention(T.X, **W.arrays(), X_kv=T.X_kv, **spec.reference_kwargs(W))
    try:
        run = simulate(W, T, backend="ideal", variant=spec.variant, phi=spec.phi, layout=spec.layout,
                       causal=spec.causal, beta=spec.beta)  # fmt: skip
    except InputError as exc:
        # Only the softmax overflow guard may refuse, and only when its bound is above the
        # true largest beta*|s| (the bound is an upper bound, never below the truth).
        from ctattn.resources import softmax_exp_bound

        assert spec.variant == "softmax" and str(exc).startswith("beta:"), str(exc)
        trace = multihead_attention(T.X, **W.arrays(), X_kv=T.X_kv, trace=True, **spec.reference_kwargs(W))
        S = np.abs(trace.S[np.isfinite(trace.S)])
        assert softmax_exp_bound(W, T, spec.resolved_beta(W)) >= S.max() * (1 - 1e-12)
        return
    assert np.all(np.isfinite(run.Y))
    assert relative_error(run.Y, Y_ref) < 1e-9 or np.abs(run.Y - Y_ref).max() < 1e-12


@FAST
@given(problems(), st.floats(1e-300, 1e300))
def test_relative_error_is_scale_free(problem, c):
    W, T, spec = problem
    Y = multihead_attention(T.X, **W.arrays(), X_kv=T.X_kv, **spec.reference_kwargs(W))
    Y2 = Y + 1e-3 * np.abs(Y).max()
    e = relative_error(Y2, Y)
    if np.abs(Y).max() > 0 and math.isfinite(e):
        assert relative_error(c * Y2, c * Y) == pytest.approx(e, rel=1e-6)


arrays = hnp.arrays(
    dtype=st.sampled_from([np.float64, np.float32, np.int64, np.bool_, np.complex128, np.dtype("U3")]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
)


@FAST
@given(st.dictionaries(st.sampled_from(["X", "X_kv", "Y"]), arrays, max_size=3))
def test_tokens_loader_returns_real_finite_tokens_or_names_the_problem(tmp_path, content):
    path = tmp_path / "X.npz"
    np.savez(path, **content)
    try:
        T = Tokens.load(path)
    except InputError as exc:
        assert str(exc).split(":")[0] in ("inputs", "X", "X_kv")
        return
    assert T.X.dtype == float and np.all(np.isfinite(T.X)) and T.X.ndim == 2


@FAST
@given(st.binary(max_size=400), st.integers(0, 10**6))
def test_corrupted_npz_is_an_input_error(tmp_path, noise, cut):
    buf = io.BytesIO()
    np.savez(
        buf, W_Q=np.ones((1, 1, 2)), W_K=np.ones((1, 1, 2)), W_V=np.ones((1, 1, 2)), W_O=np.ones((1, 2, 1))
    )
    data = buf.getvalue()
    cut = cut % (len(data) + 1)
    corrupted = data[:cut] + noise + data[cut + len(noise) :]
    path = tmp_path / "W.npz"
    path.write_bytes(corrupted)
    try:
        W = AttentionWeights.load(path)
    except InputError:
        return
    assert W.W_Q.shape == (1, 1, 2)


values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=2),
    st.sampled_from(
        ["ideal", "rate", "spiking", "softmax", "mask", "memory", "relu", "20 ms", "1e9 s", "numpy"]
    ),
)


@FAST
@given(st.dictionaries(st.sampled_from(sorted(KEYS) + ["bogus"]), values, max_size=6))
def test_config_validation_accepts_or_names_the_key(raw):
    try:
        out = validate_config(raw)
    except InputError as exc:
        named = str(exc).split(":")[0]
        assert named in KEYS or named == "config", str(exc)
        return
    assert set(out) == set(KEYS)
    for key, value in out.items():
        if value is not None and KEYS[key].kind == "int":
            assert isinstance(value, int) and not isinstance(value, bool)


@FAST
@given(st.text(max_size=200))
def test_toml_parser_never_crashes(tmp_path, text):
    path = tmp_path / "c.toml"
    path.write_text(text)
    try:
        validate_config(load_config(path))
    except InputError:
        pass


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
manifests = st.fixed_dictionaries(
    {},
    optional={k: json_values for k in ("command", "config", "versions", "summary", "argv", "lesion", "seed")},
)


@FAST
@given(manifests)
def test_manifest_parsers_accept_or_name_the_problem(tmp_path, manifest):
    from ctattn.cli import main
    from ctattn.commands.show import show

    folder = tmp_path / "m"
    folder.mkdir(exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    try:
        show(folder)
    except InputError as exc:
        assert str(exc).startswith("show:")
    try:
        validate_config(load_config(folder / "manifest.json"))
    except InputError:
        pass
    # and through the command line: exit 0 or 2, never a traceback
    import contextlib

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["show", str(folder)]) in (0, 2)
