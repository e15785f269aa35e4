"""Configuration files: TOML with units as strings, unknown keys rejected by name, and the
example configurations under ``configs/`` all valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctattn.config import RunConfig, load_config, parse_duration_ms, validate_config
from ctattn.core.problem import InputError
from ctattn.figure_configs import FIGURE_NAMES, default_config_path, load_figure_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RUN_CONFIGS = sorted(CONFIGS.glob("*.toml"))
FIGURE_CONFIGS = sorted((CONFIGS / "figures").glob("*.toml"))


@pytest.mark.parametrize(
    "text,ms",
    [
        ("20 ms", 20.0),
        ("0.3 s", 300.0),
        ("250us", 0.25),
        (" 1.5e2 ms ", 150.0),
        ("7", 7.0),
        (12, 12.0),
        (0.5, 0.5),
    ],
)
def test_durations_with_units(text, ms):
    assert parse_duration_ms("window_ms", text) == pytest.approx(ms)


@pytest.mark.parametrize("text", ["20 parsecs", "fast", "-3 ms", "0 s", True, [20]])
def test_bad_durations_name_the_key(text):
    with pytest.raises(InputError, match="window_ms"):
        parse_duration_ms("window_ms", text)


def test_unknown_run_key_is_named(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[run]\nbackend = "rate"\nwindow = "20 ms"\n')
    with pytest.raises(InputError, match="'window'"):
        validate_config(load_config(path), source=str(path))


def test_run_config_units_reach_the_backend_options(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('backend = "spiking"\nwindow_ms = "0.15 s"\nsettle_ms = "40 ms"\nseed = 3\n')
    cfg = RunConfig(validate_config(load_config(path)))
    assert cfg.backend_options() == dict(window_ms=150.0, settle_ms=40.0, seed=3)


@pytest.mark.parametrize("path", RUN_CONFIGS, ids=lambda p: p.name)
def test_example_run_configs_are_valid_and_run(path):
    """Every example config validates; its problem runs on the ideal backend (fast)."""
    from ctattn.commands.run import execute

    raw = load_config(path)
    values = validate_config(raw, source=path.name)
    assert values["backend"] in ("ideal", "rate", "spiking")
    options = {k: None for k in ("neurons_per_unit", "window_ms", "settle_ms", "write_ms", "tau_ms", "dt_ms")}
    run = execute(RunConfig({**values, **options, "backend": "ideal"}))
    assert run.rel_error < 1e-12


def test_every_figure_has_a_config():
    for name in FIGURE_NAMES:
        assert default_config_path(name).exists(), name


@pytest.mark.parametrize("path", FIGURE_CONFIGS, ids=lambda p: p.name)
def test_example_figure_configs_are_valid(path):
    name = path.stem.split("-")[0]
    figure, cfg = load_figure_config(name, path)
    assert figure.get("name", name) == name
    assert figure["out"].startswith("figures/") and figure["out"].endswith(".png")
    assert cfg["backend"] in ("rate", "spiking")


@pytest.mark.parametrize(
    "text,needle",
    [
        ('[figure]\nname = "traces"\ncolour = "red"\n[run]\nbackend = "rate"\n', "figure.colour"),
        ('[figure]\nname = "traces"\n[run]\nbackend = "rate"\ncolour = "red"\n', "colour"),
        ('[figure]\nname = "traces"\n[extras]\nx = 1\n', "extras"),
        ('[figure]\nname = "raster"\n[run]\nbackend = "rate"\n', "figure.name"),
        ('[figure]\nmax_rows = 3\n[run]\nbackend = "rate"\n', "max_rows"),
        ('[run]\nbackend = "rate"\nsettle_ms = "soon"\n', "settle_ms"),
        ("[figure\n", "TOML"),
    ],
)
def test_bad_figure_configs_name_the_problem(tmp_path, text, needle):
    path = tmp_path / "traces.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=needle):
        load_figure_config("traces", path)


@pytest.mark.parametrize(
    "text,needle",
    [
        ('[figure]\nneurons_per_unit = [10, "many"]\n[run]\nbackend = "spiking"\n', "neurons_per_unit"),
        ('[figure]\nwindow_ms = ["50 ms", "a while"]\n[run]\nbackend = "spiking"\n', "window_ms"),
    ],
)
def test_bad_sweep_lists_are_named(tmp_path, text, needle):
    path = tmp_path / "scaling.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=needle):
        load_figure_config("scaling", path)


def test_lesion_figure_config_takes_only_backend_keys(tmp_path):
    path = tmp_path / "lesions.toml"
    path.write_text('[figure]\npredictions = ["P1", "P9"]\n[run]\nbackend = "rate"\n')
    with pytest.raises(InputError, match="P9"):
        load_figure_config("lesions", path)
    path.write_text('[figure]\npredictions = ["P1"]\n[run]\nbackend = "rate"\nheads = 2\n')
    with pytest.raises(InputError, match="run.heads"):
        load_figure_config("lesions", path)
    path.write_text('[figure]\npredictions = ["P4"]\n[run]\nbackend = "spiking"\nwindow_ms = "50 ms"\n')
    figure, cfg = load_figure_config("lesions", path)
    assert figure["predictions"] == ["P4"] and cfg["window_ms"] == 50.0
