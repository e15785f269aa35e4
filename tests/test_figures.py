"""Figures: every run figure is written for the backends that support it, and is legible.

Legibility is checked on the figure objects before they are saved: every panel with data has
axis labels, every figure has a legend or a colour bar, no text is smaller than 7 pt, and the
PNGs stay small enough for the README (< 200 KB).
"""

from __future__ import annotations

import numpy as np
import pytest
from ctattn.analysis import figures
from ctattn.analysis.experiments import PREDICTIONS, run_prediction

from ctattn.api import simulate
from ctattn.core.problem import random_tokens, random_weights

MAX_BYTES = 200_000


@pytest.fixture
def checked(monkeypatch):
    """Check every figure's legibility as it is saved; yields the list of saved paths."""
    saved = []
    original = figures.save

    def save(fig, path, **kw):
        _check_legible(fig)
        out = original(fig, path, **kw)
        assert out.stat().st_size < MAX_BYTES, f"{out.name}: {out.stat().st_size} bytes"
        saved.append(out)
        return out

    for module in (figures.activity, figures.comparison, figures.experiments):  # each family saves its own
        monkeypatch.setattr(module, "save", save)
    return saved


def _check_legible(fig) -> None:
    axes = [ax for ax in fig.axes if ax.axison and ax.get_label() != "<colorbar>"]
    colorbars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert axes, "a figure with no panels"
    has_x = any(ax.get_xlabel() for ax in axes)
    assert has_x, "no axis of the figure names its x quantity"
    for ax in axes:
        has_data = ax.lines or ax.collections or ax.images or ax.patches
        if not has_data:
            continue
        assert ax.get_ylabel(), f"panel {ax.get_title()!r} has no y label"
        shared = ax.get_shared_x_axes().get_siblings(ax)
        assert any(a.get_xlabel() for a in shared), f"panel {ax.get_title()!r} has no x label"
    assert colorbars or any(ax.get_legend() for ax in axes), "no legend and no colour bar"
    for text in fig.findobj(lambda o: hasattr(o, "get_fontsize") and hasattr(o, "get_text")):
        if text.get_text().strip() and text.get_visible():
            assert text.get_fontsize() >= 7, f"text {text.get_text()!r} at {text.get_fontsize()} pt"


def _small_run(backend, variant="softmax", layout="mask", **options):
    W = random_weights(3, 2, 5, 3, 2)
    X = random_tokens(3, 4, 5)
    return simulate(W, X, backend=backend, variant=variant, layout=layout, **options)


@pytest.mark.parametrize("backend", ["ideal", "rate"])
@pytest.mark.parametrize("variant", ["linear", "softmax"])
def test_run_figures(tmp_path, checked, backend, variant):
    run = _small_run(backend, variant)
    paths = figures.write_run_figures(run, tmp_path)
    assert sorted(p.name for p in paths) == ["attention.png", "outputs.png", "scatter.png", "traces.png"]
    assert all(p.exists() for p in paths) and len(checked) == 4


def test_memory_layout_has_no_attention_map(tmp_path, checked):
    run = _small_run("ideal", "linear", "memory")
    names = sorted(p.name for p in figures.write_run_figures(run, tmp_path))
    assert names == ["outputs.png", "scatter.png", "traces.png"]


def test_rate_traces_over_time(tmp_path, checked):
    run = _small_run("rate", trace_dt_ms=5.0)
    figures.rate_traces(run, tmp_path / "traces.png")
    edges = figures.window_edges(run.circuit, run.result.info)
    assert len(edges) == 4 and edges[-1][2] == pytest.approx(4 * run.result.info["window_ms"] * 1e-3)


@pytest.fixture(scope="module")
def spiking_run():
    """A tiny spiking run with every population's spikes and traces (a few seconds)."""
    return _small_run(
        "spiking",
        neurons_per_unit=300,
        window_ms=40,
        settle_ms=30,
        record_spikes=True,
        trace_dt_ms=2.0,
        seed=3,
    )


def test_spiking_run_figures(tmp_path, checked, spiking_run):
    paths = figures.write_run_figures(spiking_run, tmp_path)
    assert {"raster.png", "attention.png", "scatter.png", "traces.png"} <= {p.name for p in paths}
    edges = figures.window_edges(spiking_run.circuit, spiking_run.result.info)
    assert edges[-1][2] == pytest.approx(spiking_run.result.info["sim_time_s"])
    assert all(start < count < end for start, count, end in edges)  # settle, then count


def test_raster_groups_populations_and_shows_silence(tmp_path, checked, spiking_run):
    from ctattn.analysis.lesions import lesion
    from ctattn.circuits.backends import get_backend

    circuit = lesion(spiking_run.circuit, silence=["L23"], area=1)
    result = get_backend("spiking").run(
        circuit,
        spiking_run.tokens,
        neurons_per_unit=300,
        window_ms=40,
        settle_ms=30,
        record_spikes=True,
        seed=3,
    )
    assert len(result.spikes["A1.L23"][0]) == 0 and len(result.spikes["A0.L23"][0]) > 0
    import matplotlib

    captured = {}
    original = figures.save

    def keep(fig, path, **kw):
        captured["labels"] = [t.get_text() for t in fig.axes[0].get_yticklabels()]
        captured["texts"] = [t.get_text() for t in fig.axes[0].texts]
        return original(fig, path, **kw)

    figures.activity.save, saved = keep, figures.activity.save
    try:
        figures.raster(circuit, result, tmp_path / "raster.png")
    finally:
        figures.activity.save = saved
    labels = captured["labels"]
    order = [
        next(k for k, lab in enumerate(labels) if lab.startswith(prefix))
        for prefix in ("FO thalamus, query", "A0 L2/3", "A0 L5", "A1 L2/3", "HO thalamus")
    ]
    assert order == sorted(order)  # thalamus -> area -> layer -> HO
    assert "silenced" in captured["texts"]
    assert matplotlib.get_backend().lower() == "agg"


def test_raster_needs_spikes(tmp_path):
    run = _small_run("ideal")
    with pytest.raises(ValueError, match="spikes"):
        figures.raster(run.circuit, run.result, tmp_path / "r.png")


def test_error_scaling_figure(tmp_path, checked):
    rng = np.random.default_rng(5)
    records = [
        dict(
            neurons_per_unit=n,
            window_ms=T,
            rel_error=0.9 / np.sqrt(n * T * 1e-3) * rng.uniform(0.9, 1.1),
            shot_noise_bound=0.8 / np.sqrt(n * T * 1e-3),
        )
        for n in (10, 20, 40)
        for T in (50.0, 100.0, 200.0)
    ]
    figures.error_scaling(records, tmp_path / "scaling.png")
    with pytest.raises(ValueError, match="records"):
        figures.error_scaling([], tmp_path / "none.png")


def test_lesion_figure(tmp_path, checked):
    results = {key: run_prediction(key, "ideal") for key in PREDICTIONS}
    figures.lesion_figure(results, tmp_path / "lesions.png")
    assert (tmp_path / "lesions.png").exists()
