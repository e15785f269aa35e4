"""``ctattn show``, ``ctattn figure``, ``ctattn lesion`` and saved runs with figures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ctattn.cli import main

TINY = ["--heads", "2", "--tokens", "3", "--d-model", "5", "--d-k", "3", "--d-v", "2", "--seed", "4"]
TINY_SPIKING = TINY + [
    "--backend",
    "spiking",
    "--neurons-per-unit",
    "300",
    "--window",
    "40",
    "--settle",
    "30",
]


def ok(capsys, *argv) -> str:
    code = main(list(argv))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def fail(capsys, *argv) -> str:
    code = main(list(argv))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1, err
    return err[0]


# -- saved runs ------------------------------------------------------------------------------
def test_spiking_run_with_plots_writes_the_figures(tmp_path, capsys):
    out = tmp_path / "run"
    ok(capsys, "run", *TINY_SPIKING, "--variant", "softmax", "--out", str(out), "--plots")
    names = {p.name for p in out.glob("*.png")}
    assert {"raster.png", "attention.png", "scatter.png"} <= names
    assert all((out / n).stat().st_size < 200_000 for n in names)


def test_spiking_run_repeats_from_its_manifest(tmp_path, capsys):
    ok(capsys, "run", *TINY_SPIKING, "--out", str(tmp_path / "a"))
    ok(capsys, "run", "--config", str(tmp_path / "a" / "manifest.json"), "--out", str(tmp_path / "b"))
    with np.load(tmp_path / "a" / "result.npz") as a, np.load(tmp_path / "b" / "result.npz") as b:
        np.testing.assert_array_equal(a["Y"], b["Y"])
        assert not np.array_equal(a["Y"], a["Y_ref"])  # spiking noise: the equality above is not trivial


def test_show_prints_manifest_and_recomputed_comparison(tmp_path, capsys):
    out = tmp_path / "run"
    ok(capsys, "run", *TINY, "--backend", "rate", "--out", str(out), "--plots")
    text = ok(capsys, "show", str(out))
    assert "ctattn run output" in text and "backend" in text and "rate" in text
    assert "recomputed from result.npz" in text and "rel_error" in text
    assert "scatter.png" in text and "repeat:" in text
    data = json.loads(ok(capsys, "show", str(out), "--json"))
    with np.load(out / "result.npz") as r:
        expected = np.linalg.norm(r["Y"] - r["Y_ref"]) / np.linalg.norm(r["Y_ref"])
    assert data["recomputed"]["rel_error"] == pytest.approx(expected, rel=1e-12)
    assert data["manifest"]["summary"]["rel_error"] == pytest.approx(expected, rel=1e-9)
    assert "traces.png" in data["figures"]


def test_show_errors_are_one_line(tmp_path, capsys):
    assert "no folder" in fail(capsys, "show", str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    assert "manifest.json" in fail(capsys, "show", str(tmp_path / "empty"))


# -- figures ---------------------------------------------------------------------------------
def test_figure_from_a_config(tmp_path, capsys):
    cfg = tmp_path / "traces.toml"
    cfg.write_text(
        '[figure]\nout = "unused.png"\n[run]\nbackend = "rate"\nheads = 1\ntokens = 3\nd_model = 4\n'
        'd_k = 2\nd_v = 3\nsettle_ms = "100 ms"\n'
    )
    png = tmp_path / "t.png"
    text = ok(capsys, "figure", "traces", "--config", str(cfg), "--out", str(png))
    assert str(png) in text and png.stat().st_size > 10_000


def test_lesion_figure_from_a_config(tmp_path, capsys):
    cfg = tmp_path / "lesions.toml"
    cfg.write_text('[figure]\npredictions = ["P4", "P5"]\n[run]\nbackend = "ideal"\n')
    png = tmp_path / "l.png"
    data = json.loads(ok(capsys, "figure", "lesions", "--config", str(cfg), "--out", str(png), "--json"))
    assert png.exists() and set(data["summary"]) == {"P4", "P5"}
    assert data["summary"]["P4"]["lesions"]["HO"]["change_vs_intact"] == 1.0


def test_figure_errors(capsys, tmp_path):
    assert "portrait" in fail(capsys, "figure", "portrait")
    assert "not found" in fail(capsys, "figure", "traces", "--config", str(tmp_path / "none.toml"))


# -- lesions ---------------------------------------------------------------------------------
def test_lesion_reports_changes_against_intact_reference_and_prediction(capsys):
    s = json.loads(
        ok(capsys, "lesion", *TINY, "--variant", "softmax", "--silence", "L23", "--area", "1", "--json")
    )
    assert s["lesion"] == ["L23 (A1)"] and s["backend"] == "ideal"
    assert s["intact_error"] < 1e-12 and s["error_vs_predicted"] < 1e-12
    assert (
        s["change_vs_intact"] == pytest.approx(s["predicted_change"], rel=1e-9)
        and s["change_vs_intact"] > 0.01
    )
    assert s["head_output_change"]["A0"] == 0.0 and s["head_output_change"]["A1"] > 0.01
    text = ok(capsys, "lesion", *TINY, "--silence", "HO")
    assert "lesioned vs intact" in text and "lesioned vs prediction" in text


def test_lesion_saves_and_repeats_from_its_manifest(tmp_path, capsys):
    out = tmp_path / "les"
    first = json.loads(
        ok(
            capsys,
            "lesion",
            *TINY,
            "--backend",
            "rate",
            "--cut",
            "apical",
            "--area",
            "0",
            "--out",
            str(out),
            "--plots",
            "--json",
        )
    )
    assert (out / "lesion.png").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["command"] == "lesion" and manifest["lesion"]["cut"] == ["apical"]
    again = json.loads(ok(capsys, "lesion", "--config", str(out / "manifest.json"), "--json"))
    assert again["lesion"] == first["lesion"] and again["change_vs_intact"] == first["change_vs_intact"]
    text = ok(capsys, "show", str(out))
    assert "lesion:" in text and "change_vs_intact" in text


def test_lesion_of_the_cross_reading_circuit(capsys):
    s = json.loads(
        ok(
            capsys,
            "lesion",
            "--circuit",
            "cross-reading",
            "--tokens",
            "3",
            "--d-model",
            "5",
            "--silence",
            "L23",
            "--area",
            "A",
            "--json",
        )
    )
    assert s["intact_error"] < 1e-12 and s["error_vs_predicted"] < 1e-12
    assert s["head_output_change"] == {"B self": 0.0, "B cross": 1.0}


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["lesion"], "--silence"),
        (["lesion", "--silence", "L4"], "L4"),
        (["lesion", "--silence", "L23", "--area", "9"], "area"),
        (["lesion", "--silence", "pool", "--area", "1"], "pool"),
        (["lesion", "--silence", "HO", "--plots"], "--out"),
        (["lesion", "--silence", "L23", "--neurons-per-unit", "300"], "spiking"),
    ],
)
def test_lesion_errors_are_one_line(capsys, argv, needle):
    assert needle in fail(capsys, *argv)
