r"""One sweep task, run on a Dask worker: a ``ctattn run`` (optionally lesioned) and its measures.

:func:`run_task` never raises: an error becomes a record with ``status = "failed"`` and the
error's text, so one bad point does not sink the sweep. Every task gets its own temporary
folder for Brian2 (the Cython cache and the C++ standalone project), removed afterwards, so
tasks running side by side on one machine never share generated code.

Measures of a task (``Y`` its output, ``Y_ref`` the reference)::

    rel_error = ||Y - Y_ref|| / ||Y_ref||
    bias      = <Y - Y_ref, Y_ref> / ||Y_ref||^2        (the error along Y_ref: a gain error)
    noise     = ||(Y - Y_ref) - bias Y_ref|| / ||Y_ref||  (the rest, orthogonal to Y_ref)

so ``rel_error^2 = bias^2 + noise^2``; ``shot_noise_bound`` (spiking: the error Poisson counting
in the readout alone predicts), ``wall_s``, ``n_neurons``, ``n_synapses`` and ``peak_rate`` (the
largest window-end rate of any population, in units of the description) come with it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback

import numpy as np

__all__ = ["run_task", "simulate_task", "measures", "MEASURES"]

MEASURES = (
    "rel_error",
    "bias",
    "noise",
    "shot_noise_bound",
    "max_abs_error",
    "wall_s",
    "n_neurons",
    "n_synapses",
    "peak_rate",
)


@contextlib.contextmanager
def _own_brian2_folder(config: dict):
    """A fresh folder for this task's Brian2 code; yields extra backend options."""
    folder = tempfile.mkdtemp(prefix="ctattn-task-")
    extra = {}
    old_cache = None
    try:
        if config["backend"] == "spiking" and config.get("target") == "standalone":
            extra["standalone_dir"] = os.path.join(folder, "standalone")
        elif config.get("target") == "cython":
            import brian2

            old_cache = brian2.prefs.codegen.runtime.cython.cache_dir
            brian2.prefs.codegen.runtime.cython.cache_dir = os.path.join(folder, "cython")
        yield extra
    finally:
        if old_cache is not None:
            import brian2

            brian2.prefs.codegen.runtime.cython.cache_dir = old_cache
        shutil.rmtree(folder, ignore_errors=True)


def simulate_task(config: dict, *, progress: bool = False, **extra_options):
    """Run the task's configuration; returns a :class:`ctattn.api.Run` (raises on bad input).

    The same steps as ``ctattn run`` (:func:`ctattn.api.simulate`), with the lesion of the
    ``lesion`` key applied to the circuit description before the backend runs it.
    """
    from ctattn.analysis.lesions import lesion
    from ctattn.analysis.reference import multihead_attention
    from ctattn.api import Run, problem_from_config
    from ctattn.circuits.backends import get_backend
    from ctattn.circuits.build import circuit_for
    from ctattn.config import RunConfig, validate_config
    from ctattn.core.problem import AttentionSpec, InputError

    run_keys = {k: v for k, v in config.items() if k not in ("lesion", "lesion_area")}
    cfg = RunConfig(validate_config(run_keys, source="task"))
    weights, tokens = problem_from_config(cfg.values)
    options = cfg.backend_options()
    if cfg["backend"] != "spiking":
        stray = sorted(k for k in ("neurons_per_unit", "window_ms") if k in options)
        if stray:
            raise InputError(f"{', '.join(stray)}: only the spiking backend takes this option")
    if cfg["backend"] in ("rate", "spiking"):
        options["progress"] = progress
    options.update(extra_options)
    spec = AttentionSpec(
        variant=cfg["variant"], phi=cfg["phi"], beta=cfg["beta"], causal=cfg["causal"], layout=cfg["layout"]
    )
    circuit = circuit_for(weights, tokens, spec)
    if config.get("lesion") not in (None, "none"):
        circuit = lesion(circuit, silence=[config["lesion"]], area=config.get("lesion_area"))
    result = get_backend(cfg["backend"]).run(circuit, tokens, **options)
    Y_ref = multihead_attention(
        tokens.X, **weights.arrays(), X_kv=tokens.X_kv, **spec.reference_kwargs(weights)
    )
    return Run(
        circuit=circuit,
        result=result,
        weights=weights,
        tokens=tokens,
        spec=spec,
        backend=cfg["backend"],
        Y_ref=Y_ref,
        config=dict(config),
    )


def measures(run) -> dict:
    """The task's measures (module docstring) from a finished run."""
    Y, Y_ref = np.asarray(run.Y, float), np.asarray(run.Y_ref, float)
    err, ref2 = Y - Y_ref, float(np.sum(Y_ref**2))
    bias = float(np.sum(err * Y_ref) / ref2) if ref2 > 0 else float("nan")
    noise = float(np.linalg.norm(err - bias * Y_ref) / np.sqrt(ref2)) if ref2 > 0 else float("nan")
    summary = run.summary()
    peaks = [float(np.max(r)) for r in run.result.window_rates.values() if np.size(r)]
    return dict(
        rel_error=float(run.rel_error),
        bias=bias,
        noise=noise,
        shot_noise_bound=summary.get("shot_noise_bound"),
        max_abs_error=float(run.max_abs_error),
        wall_s=summary.get("wall_s"),
        n_neurons=summary.get("n_neurons"),
        n_synapses=summary.get("n_synapses"),
        peak_rate=max(peaks) if peaks else None,
    )


def _import_brian2() -> None:
    """Import Brian2 from a worker thread.

    Dask runs tasks in worker threads, and Brian2's import installs a SIGINT handler (Ctrl-C
    ends a run cleanly), which Python allows from the main thread only. On a worker that handler
    has no use (the scheduler stops workers), so here it is skipped.
    """
    if "brian2" in sys.modules or threading.current_thread() is threading.main_thread():
        return
    original = signal.signal

    def main_thread_only(signum, handler):
        try:
            return original(signum, handler)
        except ValueError:
            return None

    signal.signal = main_thread_only
    try:
        import brian2  # noqa: F401
    finally:
        signal.signal = original


def run_task(task: dict) -> dict:
    """Run one task (``Task.to_dict()``); returns its record, ``status`` ``ok`` or ``failed``."""
    start = time.time()
    record = dict(task_id=task["task_id"], coords=task["coords"], replicate=task["replicate"])
    record["seed"] = task["config"]["seed"]
    try:
        _import_brian2()
        with _own_brian2_folder(task["config"]) as extra:
            run = simulate_task(task["config"], **extra)
        record.update(status="ok", **measures(run), Y=np.asarray(run.Y).tolist())
    except Exception as exc:  # recorded, not raised: a failed point must not sink the sweep
        record.update(
            status="failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(limit=20)
        )
    record.update(host=socket.gethostname(), pid=os.getpid(), started=start, task_s=time.time() - start)
    return record
