"""Figures drawn from configuration files (``configs/figures/NAME.toml``), and the error sweep behind ``scaling``.

``load_figure_config(name, path)`` reads a ``[figure]`` table (the figure's own keys) and a
``[run]`` table (the keys of ``ctattn run``); ``make_figure(name)`` runs what the figure needs
through :func:`ctattn.api.simulate` and draws it with :mod:`ctattn.analysis.figures`.
This is application code: it reads configs and runs simulations, so it sits above the analysis
layer.
"""

from __future__ import annotations

import os
from pathlib import Path

from ctattn.analysis.figures import (
    attention_maps,
    error_scaling,
    lesion_figure,
    output_maps,
    output_scatter,
    raster,
    rate_traces,
)
from ctattn.core.problem import InputError

__all__ = ["FIGURE_NAMES", "default_config_path", "load_figure_config", "make_figure", "sweep_errors"]


FIGURE_NAMES = ("raster", "traces", "attention", "scatter", "outputs", "scaling", "lesions")
_COMMON_KEYS = ("name", "out")
_FIGURE_KEYS = {
    "raster": ("title", "max_rows"),
    "scaling": ("title", "neurons_per_unit", "window_ms"),
    "lesions": ("title", "predictions", "problem_seed"),
}
# The lesion experiments fix their own problems (ctattn.analysis.experiments.PROBLEM); only the
# backend and its options come from [run].
_LESION_RUN_KEYS = (
    "backend",
    "seed",
    "neurons_per_unit",
    "window_ms",
    "settle_ms",
    "write_ms",
    "tau_ms",
    "dt_ms",
    "target",
)


def default_config_path(name: str) -> Path:
    """``configs/figures/NAME.toml`` of this source tree."""
    return Path(__file__).resolve().parents[1] / "configs" / "figures" / f"{name}.toml"


def _check_list(key, value, kind, source):
    from ctattn.config import parse_duration_ms

    if not isinstance(value, list) or not value:
        raise InputError(f"{source}: figure.{key}: expected a non-empty list, got {value!r}")
    if kind == "duration":
        return [parse_duration_ms(f"figure.{key}", v) for v in value]
    out = []
    for v in value:
        if kind is int and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise InputError(f"{source}: figure.{key}: expected positive integers, got {v!r}")
        if kind is str and not isinstance(v, str):
            raise InputError(f"{source}: figure.{key}: expected names, got {v!r}")
        out.append(v)
    return out


def load_figure_config(name: str, path=None):
    """``(figure settings, RunConfig)`` of figure ``name`` from a TOML file.

    The file has a ``[figure]`` table (``name``, ``out``, ``title`` and the figure's own
    keys) and a ``[run]`` table (the keys of ``ctattn run``, durations as ``"20 ms"``).
    Unknown keys are rejected with their name.
    """
    import tomllib

    from ctattn.config import RunConfig, validate_config

    if name not in FIGURE_NAMES:
        raise InputError(f"figure: unknown {name!r}; choose one of {list(FIGURE_NAMES)}")
    path = Path(path) if path is not None else default_config_path(name)
    source = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"config: file not found: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"config: {path} is not valid TOML ({exc})") from None
    unknown = sorted(set(data) - {"figure", "run"})
    if unknown:
        raise InputError(
            f"{source}: unknown table(s) or key(s) {unknown}; a figure config has [figure] and [run]"
        )
    figure = dict(data.get("figure", {}))
    allowed = _COMMON_KEYS + _FIGURE_KEYS.get(name, ())
    unknown = sorted(set(figure) - set(allowed))
    if unknown:
        raise InputError(
            f"{source}: unknown key(s) {['figure.' + k for k in unknown]} for figure {name!r}; "
            f"allowed: {list(allowed)}"
        )
    if figure.get("name", name) != name:
        raise InputError(f"{source}: figure.name is {figure['name']!r}, not {name!r}")
    for key in ("out", "title"):
        if key in figure and not isinstance(figure[key], str):
            raise InputError(f"{source}: figure.{key}: expected a string, got {figure[key]!r}")
    if "neurons_per_unit" in figure:
        figure["neurons_per_unit"] = _check_list("neurons_per_unit", figure["neurons_per_unit"], int, source)
    if "window_ms" in figure:
        figure["window_ms"] = _check_list("window_ms", figure["window_ms"], "duration", source)
    if "predictions" in figure:
        from ctattn.analysis.experiments import PREDICTIONS

        figure["predictions"] = _check_list("predictions", figure["predictions"], str, source)
        bad = sorted(set(figure["predictions"]) - set(PREDICTIONS))
        if bad:
            raise InputError(f"{source}: figure.predictions: unknown {bad}; choose from {list(PREDICTIONS)}")
    for key in ("max_rows", "problem_seed"):
        v = figure.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise InputError(f"{source}: figure.{key}: expected a non-negative integer, got {v!r}")
    raw = data.get("run", {})
    if not isinstance(raw, dict):
        raise InputError(f"{source}: [run] must be a table")
    if name == "lesions":
        extra = sorted(set(raw) - set(_LESION_RUN_KEYS))
        if extra:
            raise InputError(
                f"{source}: key(s) {['run.' + k for k in extra]} do not apply to the lesion figure, "
                f"whose problems are fixed; allowed: {list(_LESION_RUN_KEYS)}"
            )
    return figure, RunConfig(validate_config(raw, source=f"{source} [run]"))


def _is_png(path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(8) == b"\x89PNG\r\n\x1a\n"


def make_figure(name: str, config=None, out=None, *, progress=None) -> tuple[Path, dict]:
    """Draw figure ``name`` from its config file (default :func:`default_config_path`).

    Returns the PNG's path (``out``, else ``figure.out``, else ``figures/NAME.png``) and a
    summary of the numbers behind it. The path must end in ``.png`` and may only replace a
    PNG (never a folder, another file or the config); the figure is drawn into a temporary
    sibling file and renamed into place, so an error or interrupt leaves nothing partial.
    """
    from ctattn.output import check_out_file

    figure, cfg = load_figure_config(name, config)
    final = Path(out or figure.get("out") or f"figures/{name}.png")
    if final.suffix != ".png":
        raise InputError(f"--out: figures are written as PNG; give a name ending in .png, got {str(final)!r}")
    final = check_out_file(final, [config], recognise=_is_png)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.stem}.tmp{os.getpid()}.png")
    try:
        _, summary = _draw(name, figure, cfg, tmp, progress)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return final, summary


def _draw(name: str, figure: dict, cfg, out: Path, progress) -> tuple[Path, dict]:
    if name == "lesions":
        from ctattn.analysis.experiments import PREDICTIONS, run_prediction

        options = {k: v for k, v in cfg.backend_options().items()}
        keys = figure.get("predictions", list(PREDICTIONS))
        results = {}
        for key in keys:
            results[key] = run_prediction(
                key, cfg["backend"], problem_seed=figure.get("problem_seed", 0), **options
            )
            if progress:
                progress(f"{key}: done")
        return lesion_figure(results, out, title=figure.get("title")), {
            k: r.summary() for k, r in results.items()
        }
    if name == "scaling":
        records = sweep_errors(
            cfg,
            figure.get("neurons_per_unit", [10, 20, 40]),
            figure.get("window_ms", [100.0, 200.0]),
            progress=(
                lambda r: progress(
                    f"n={r['neurons_per_unit']} T={r['window_ms']:g} ms: rel. error {r['rel_error']:.3f}"
                )
            )
            if progress
            else None,
        )
        return error_scaling(records, out, title=figure.get("title")), dict(records=records)
    from ctattn.api import problem_from_config, simulate, spec_options

    weights, tokens = problem_from_config(cfg.values)
    options = cfg.backend_options()
    if cfg["backend"] == "spiking":
        options["record_spikes"] = name == "raster"
        if name == "traces":
            options["trace_dt_ms"] = 2.0
    elif cfg["backend"] == "rate" and name == "traces":
        options["trace_dt_ms"] = 5.0
    run = simulate(
        weights,
        tokens,
        backend=cfg["backend"],
        **spec_options(cfg.values),
        config=cfg.values,
        **options,
    )
    if name == "raster":
        path = raster(
            run.circuit, run.result, out, max_rows=figure.get("max_rows", 24), title=figure.get("title")
        )
    else:
        draw = {
            "traces": rate_traces,
            "attention": attention_maps,
            "scatter": output_scatter,
            "outputs": output_maps,
        }
        path = draw[name](run, out)
        if path is None:
            raise InputError(
                f"figure {name!r}: the {cfg['layout']} layout has no attention map; use layout 'mask'"
            )
    return path, run.summary()


def sweep_errors(cfg, neurons_per_unit, windows_ms, *, progress=None) -> list[dict]:
    """Spiking runs of one problem over ``neurons_per_unit x windows_ms``: error per point.

    ``cfg`` is a :class:`~ctattn.config.RunConfig` (backend ``spiking``); returns one dict per
    run with ``neurons_per_unit``, ``window_ms``, ``rel_error``, ``shot_noise_bound``,
    ``wall_s``.
    """
    from ctattn.api import problem_from_config, simulate, spec_options

    if cfg["backend"] != "spiking":
        raise InputError(f"backend: the error sweep needs the spiking backend, got {cfg['backend']!r}")
    weights, tokens = problem_from_config(cfg.values)
    base = {k: v for k, v in cfg.backend_options().items() if k not in ("neurons_per_unit", "window_ms")}
    records = []
    for n in neurons_per_unit:
        for T in windows_ms:
            run = simulate(
                weights,
                tokens,
                backend="spiking",
                **spec_options(cfg.values),
                neurons_per_unit=int(n),
                window_ms=float(T),
                **base,
            )
            records.append(
                dict(
                    neurons_per_unit=int(n),
                    window_ms=float(T),
                    rel_error=run.rel_error,
                    shot_noise_bound=run.result.info.get("shot_noise_bound"),
                    wall_s=run.result.info.get("wall_s"),
                )
            )
            if progress:
                progress(records[-1])
    return records
