"""The ``ctattn run`` contract: flags, files, JSON, outputs, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ctattn.analysis.reference import multihead_attention

from ctattn.cli import main
from ctattn.core.problem import random_tokens, random_weights


def run_json(capsys, *argv) -> dict:
    code = main(["run", "--json", *argv])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    assert len(out) == 1, out  # exactly one JSON object on stdout
    return json.loads(out[0])


def fail(capsys, *argv) -> str:
    code = main(list(argv))
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert len(err) == 1, err
    return err[0]


def test_json_has_the_contract_keys(capsys):
    s = run_json(
        capsys, "--heads", "2", "--tokens", "5", "--d-model", "6", "--d-k", "3", "--d-v", "4", "--seed", "3"
    )
    for key in ("backend", "variant", "layout", "rel_error", "max_abs_error", "n_neurons", "wall_s", "seed"):
        assert key in s
    assert s["backend"] == "ideal" and s["seed"] == 3 and s["rel_error"] < 1e-12
    assert (s["n_heads"], s["n_tokens"], s["d_model"], s["d_k"], s["d_v"]) == (2, 5, 6, 3, 4)


def test_weights_and_inputs_files_cross_attention(tmp_path, capsys):
    W = random_weights(5, 2, 6, 3, 4, biases=True).replace(beta=0.9)
    T = random_tokens(5, 4, 6, n_kv=7)
    W.save(tmp_path / "W.npz")
    T.save(tmp_path / "X.npz")
    s = run_json(
        capsys,
        "--weights",
        str(tmp_path / "W.npz"),
        "--inputs",
        str(tmp_path / "X.npz"),
        "--variant",
        "softmax",
        "--causal",
        "--backend",
        "rate",
        "--out",
        str(tmp_path / "out"),
    )
    assert s["cross"] and s["n_kv"] == 7 and s["beta"] == 0.9 and s["rel_error"] < 1e-6
    with np.load(tmp_path / "out" / "result.npz") as r:
        Y_ref = multihead_attention(T.X, **W.arrays(), X_kv=T.X_kv, variant="softmax", beta=0.9, causal=True)
        np.testing.assert_allclose(r["Y_ref"], Y_ref, rtol=1e-12)
        assert r["Y"].shape == (4, 6) and "X_kv" in r.files and "b_O" in r.files
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["seed"] == 0 and manifest["config"]["variant"] == "softmax"
    assert {"python", "brian2", "numpy"} <= set(manifest["versions"])


@pytest.mark.parametrize("backend", ["ideal", "rate"])
def test_rerun_from_manifest_reproduces_Y_exactly(tmp_path, capsys, backend):
    run_json(
        capsys,
        "--backend",
        backend,
        "--tokens",
        "4",
        "--heads",
        "2",
        "--layout",
        "memory",
        "--causal",
        "--seed",
        "9",
        "--out",
        str(tmp_path / "a"),
    )
    run_json(capsys, "--config", str(tmp_path / "a" / "manifest.json"), "--out", str(tmp_path / "b"))
    with np.load(tmp_path / "a" / "result.npz") as a, np.load(tmp_path / "b" / "result.npz") as b:
        np.testing.assert_array_equal(a["Y"], b["Y"])


def test_toml_config_with_units_and_flag_override(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('backend = "rate"\nvariant = "normalized"\ntokens = 3\nheads = 2\nsettle_ms = "0.25 s"\n')
    s = run_json(capsys, "--config", str(cfg), "--tokens", "4")
    assert s["variant"] == "normalized" and s["n_tokens"] == 4 and s["window_ms"] == 250.0


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["run", "--variant", "cosine"], "variant"),
        (["run", "--weights", "/nonexistent/W.npz"], "not found"),
        (["run", "--layout", "memory", "--variant", "normalized"], "layout"),
        (["run", "--phi", "tanh"], "phi"),
        (["run", "--heads", "0"], "heads"),
        (["run", "--settle", "-5", "--backend", "rate"], "settle"),
        (["run", "--window", "50"], "spiking"),
        (["bogus-command"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_naming_the_problem(capsys, argv, needle):
    assert needle in fail(capsys, *argv)


def test_bad_files_write_nothing(tmp_path, capsys):
    W = random_weights(1, 2, 6, 3, 4)
    W.save(tmp_path / "W.npz")
    np.savez(tmp_path / "X_bad_shape.npz", X=np.ones((4, 5)))
    np.savez(tmp_path / "X_nan.npz", X=np.full((4, 6), np.nan))
    np.savez(tmp_path / "W_extra.npz", **W.arrays(), W_Z=np.ones(3))
    (tmp_path / "garbage.npz").write_bytes(b"not an npz")
    (tmp_path / "bad.toml").write_text('backend = "rate"\nwindw = 3\n')
    cases = [
        (["--weights", str(tmp_path / "W.npz"), "--inputs", str(tmp_path / "X_bad_shape.npz")], "d_model"),
        (["--weights", str(tmp_path / "W.npz"), "--inputs", str(tmp_path / "X_nan.npz")], "NaN"),
        (["--weights", str(tmp_path / "W_extra.npz")], "W_Z"),
        (["--weights", str(tmp_path / "garbage.npz")], "cannot read"),
        (["--config", str(tmp_path / "bad.toml")], "windw"),
    ]
    for k, (argv, needle) in enumerate(cases):
        out = tmp_path / f"out{k}"
        assert needle in fail(capsys, "run", *argv, "--out", str(out))
        assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp leftovers


def test_human_readable_output(capsys):
    assert main(["run", "--tokens", "3", "--heads", "1"]) == 0
    out = capsys.readouterr().out
    assert "rel_error" in out and "ideal" in out


def test_describe_lists_anatomy(capsys):
    assert main(["describe", "--heads", "2", "--tokens", "3", "--variant", "softmax"]) == 0
    out = capsys.readouterr().out
    for needle in (
        "A1.L23",
        "superficial (L2/3)",
        "higher-order thalamic relay",
        "W_O[1]",
        "corticothalamic",
    ):
        assert needle in out
