"""A sweep's labelled results: an xarray Dataset, saved as netCDF (h5netcdf) and as a tidy CSV.

Dimensions are the axes' keys (grid mode; ``point`` with every axis as a coordinate in zip
mode) plus ``replicate``; variables are the task measures (:data:`ctattn.sweeps.task.MEASURES`:
``rel_error``, ``bias``, ``noise``, ``shot_noise_bound``, ``wall_s``, ``n_neurons``, ...), each
task's master seed ``task_seed``, and its ``status`` (``ok``, ``failed`` or ``missing``; NaN measures where not
``ok``). Attributes hold the base run config and the sweep's mode as JSON text.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from ctattn.sweeps.task import MEASURES

__all__ = ["to_dataset", "write_results", "load_results", "tidy_rows", "summarize"]


def _index(values: list, value) -> int:
    for k, v in enumerate(values):
        if v == value:
            return k
    raise KeyError(value)


def to_dataset(sweep: dict, records: dict):
    """The Dataset of ``sweep`` (``sweep.json``) filled from ``records`` (by task id)."""
    import xarray as xr

    axes, mode, R = sweep["axes"], sweep["mode"], sweep["replicates"]
    if mode == "grid":
        dims = [*axes, "replicate"]
        shape = [len(v) for v in axes.values()] + [R]
        coords = {k: np.asarray(v) for k, v in axes.items()}
    else:
        n = len(next(iter(axes.values())))
        dims, shape = ["point", "replicate"], [n, R]
        coords = {"point": np.arange(n), **{k: ("point", np.asarray(v)) for k, v in axes.items()}}
    coords["replicate"] = np.arange(R)
    data = {m: np.full(shape, np.nan) for m in MEASURES}
    seed = np.full(shape, -1, dtype=np.int64)
    status = np.full(shape, "missing", dtype=object)
    task_of = {}
    for k, task in enumerate(sweep["tasks"]):
        if mode == "grid":
            where = tuple(_index(axes[a], task["coords"][a]) for a in axes) + (task["replicate"],)
        else:
            where = (k // R, task["replicate"])
        task_of[task["task_id"]] = where
        seed[where] = task["config"]["seed"]
    for task_id, rec in records.items():
        where = task_of.get(task_id)
        if where is None:
            continue
        status[where] = rec.get("status", "failed")
        if rec.get("status") == "ok":
            for m in MEASURES:
                if rec.get(m) is not None:
                    data[m][where] = rec[m]
    variables = {m: (dims, v) for m, v in data.items()}
    variables["task_seed"] = (dims, seed)
    variables["status"] = (dims, status.astype(str))
    ds = xr.Dataset(variables, coords=coords)
    ds.attrs.update(
        base_config=json.dumps(sweep["base"]),
        mode=mode,
        replicates=R,
        fingerprint=sweep.get("fingerprint", ""),
        n_tasks=len(sweep["tasks"]),
    )
    return ds


def tidy_rows(sweep: dict, records: dict) -> list[dict]:
    """One row per task: id, axis values, replicate, its master seed, status, measures, error."""
    rows = []
    for task in sweep["tasks"]:
        rec = records.get(task["task_id"], {})
        row = dict(task_id=task["task_id"], **task["coords"], replicate=task["replicate"])
        row.update(task_seed=task["config"]["seed"], status=rec.get("status", "missing"))
        row.update({m: rec.get(m) for m in MEASURES})
        row["error"] = rec.get("error", "")
        rows.append(row)
    return rows


def write_results(out, sweep: dict, records: dict):
    """Write ``results.nc`` (h5netcdf) and ``results.csv`` into ``out``; returns the Dataset."""
    import os

    out = Path(out)
    ds = to_dataset(sweep, records)
    tmp = out / ".results.nc.tmp"
    ds.to_netcdf(tmp, engine="h5netcdf")
    os.replace(tmp, out / "results.nc")
    rows = tidy_rows(sweep, records)
    tmp = out / ".results.csv.tmp"
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in rows)
    os.replace(tmp, out / "results.csv")
    return ds


def load_results(out):
    """The Dataset of a finished sweep folder (``results.nc``)."""
    import xarray as xr

    with xr.open_dataset(Path(out) / "results.nc", engine="h5netcdf") as ds:
        return ds.load()


def summarize(ds, max_rows: int = 40) -> list[dict]:
    """Per point of the axes other than ``seed``: tasks ok, the mean relative error over seeds
    and replicates, and its 95 % t interval."""
    from ctattn.analysis.figures.sweeps import SAMPLE_DIMS, mean_and_ci

    point_dims = [d for d in ds["rel_error"].dims if d not in SAMPLE_DIMS]
    stacked = ds.stack(_point=point_dims) if point_dims else ds.expand_dims("_point")
    rows = []
    for k in range(min(stacked.sizes["_point"], max_rows)):
        one = stacked.isel(_point=k)
        values = np.asarray(one["rel_error"].values, float)
        mean, half = mean_and_ci(values)
        row = {d: one[d].values.item() for d in point_dims} if point_dims else {}
        if "point" in point_dims:
            row.update(
                {c: one[c].values.item() for c in ds.coords if ds[c].dims == ("point",) and c != "point"}
            )
        row.update(
            ok=int(np.sum(np.asarray(one["status"].values) == "ok")),
            rel_error=mean,
            ci95=half,
            shot_noise_bound=float(np.nanmean(one["shot_noise_bound"].values))
            if np.isfinite(one["shot_noise_bound"].values).any()
            else None,
            wall_s=float(np.nanmean(one["wall_s"].values))
            if np.isfinite(one["wall_s"].values).any()
            else None,
        )
        rows.append(row)
    return rows
