"""Every bad input gets exit 2, one line, and nothing written (the corpus of
``benchmarks/bad_inputs.py``, over 140 CLI cases in every family of the hardening issue, plus
API cases); and the good paths next to them still work: a previous result is replaced, a
changed input runs with ``--force``, ``--dry-run`` prints the estimate, JSON is strict."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ctattn.cli import main

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("bad_inputs", ROOT / "benchmarks" / "bad_inputs.py")
corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(corpus)


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    folder = tmp_path_factory.mktemp("template") / "out"
    corpus.previous_result(folder)
    return folder


def test_the_corpus_covers_every_family():
    families = {family for family, _, _ in corpus.CLI_CASES}
    assert families == {
        "unreadable",
        "wrong values",
        "non-finite",
        "absurd sizes",
        "output safety",
        "repeatability",
    }
    assert len(corpus.CLI_CASES) >= 100


@pytest.mark.parametrize("case", corpus.CLI_CASES, ids=[f"{f}: {n}" for f, n, _ in corpus.CLI_CASES])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(case, tmp_path, template):
    family, name, setup = case
    ok, why = corpus.run_cli_case(setup, tmp_path, template)
    assert ok, why
    # The previous result in --out is still a complete, readable ctattn result.
    assert main(["show", str(tmp_path / "out"), "--json"]) == 0


@pytest.mark.parametrize("param,call", corpus._api_cases(), ids=[p for p, _ in corpus._api_cases()])
def test_api_errors_name_the_parameter(param, call):
    ok, why = corpus.run_api_case(param, call)
    assert ok, why


SUBPROCESS_CASES = [
    ["run", "--tokens", "1000000000000"],
    ["run", "--inputs", "X.npz"],  # written empty below
    ["run", "--out", "/dev/null"],
]


@pytest.mark.parametrize("argv", SUBPROCESS_CASES, ids=lambda a: " ".join(a))
def test_bad_input_in_a_fresh_process(argv, tmp_path):
    (tmp_path / "X.npz").write_bytes(b"")
    env = dict(os.environ, TMPDIR=str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = subprocess.run(
        [sys.executable, "-m", "ctattn.cli", *argv], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_previous_result_is_replaced_whole(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", *corpus.SMALL, "--out", str(out)]) == 0
    first = (out / "result.npz").read_bytes()
    assert main(["run", *corpus.SMALL, "--seed", "4", "--out", str(out), "--plots"]) == 0
    assert (out / "result.npz").read_bytes() != first
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["files"]) == {p.name for p in out.iterdir()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp folders left


def test_manifest_records_input_digests_and_force_reruns(tmp_path, capsys):
    w, x = corpus._w(tmp_path), corpus._x(tmp_path)
    assert main(["run", "--weights", w, "--inputs", x, "--out", str(tmp_path / "a")]) == 0
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert set(manifest["input_sha256"]) == {"weights", "inputs"}
    assert manifest["config"]["heads"] == 2 and manifest["config"]["tokens"] == 3  # the files' sizes
    again = ["run", "--config", str(tmp_path / "a" / "manifest.json"), "--json"]
    capsys.readouterr()
    assert main(again) == 0
    corpus._x(tmp_path, X=np.zeros((3, 4)))
    assert main(again) == 2
    err = capsys.readouterr().err
    assert err.startswith("ctattn: error: inputs:") and "--force" in err
    assert main([*again, "--force"]) == 0


def test_dry_run_prints_the_estimate_and_writes_nothing(tmp_path, capsys):
    assert main(["run", "--backend", "rate", "--dry-run", "--json", "--out", str(tmp_path / "o")]) == 0
    est = json.loads(capsys.readouterr().out)
    assert est["n_neurons"] == 713 and est["n_synapses"] == 25600 and est["n_windows"] == 8
    assert est["n_steps"] == 8 * 300 and est["fits"] is True and est["memory_bytes"] > 0
    assert list(tmp_path.iterdir()) == []
    assert main(["run", "--heads", "100000", "--tokens", "100000", "--dry-run"]) == 0
    assert "does NOT fit" in capsys.readouterr().out


def test_json_is_strict_and_metrics_do_not_overflow(capsys):
    from ctattn.analysis.metrics import max_abs_error, relative_error

    from ctattn.output import dumps

    assert json.loads(dumps({"a": float("nan"), "b": [np.inf, 1.0]})) == {"a": None, "b": [None, 1.0]}
    Y_ref = np.array([[1e308, -1e308], [1.5e308, 3.0]])
    Y = Y_ref * (1 + 1e-9)
    assert relative_error(Y, Y_ref) == pytest.approx(1e-9, rel=1e-6)
    assert np.isfinite(max_abs_error(Y, Y_ref))
    assert np.isnan(relative_error(np.full((2, 2), np.nan), Y_ref))


def test_circuit_size_formulas_are_exact():
    from ctattn.circuits.build import circuit_for

    from ctattn.core.problem import AttentionSpec, random_tokens, random_weights
    from ctattn.resources import circuit_size

    rng = np.random.default_rng(5)
    for variant, layout in [
        ("linear", "mask"),
        ("normalized", "mask"),
        ("softmax", "mask"),
        ("linear", "memory"),
    ]:
        for cross in (False, True):
            H, N, M, D, dk, dv = (int(v) for v in rng.integers(1, 6, 6))
            W, T = random_weights(0, H, D, dk, dv), random_tokens(0, N, D, n_kv=M if cross else None)
            c = circuit_for(W, T, AttentionSpec(variant=variant, layout=layout))
            size = circuit_size(
                H, N, M if cross else N, D, dk, dv, variant=variant, layout=layout, cross=cross
            )
            assert size == (c.n_neurons, c.n_synapses, len(c.schedule))
