"""``ctattn sweep CONFIG.toml``: run a base configuration over axes of values on Dask.

The config's ``[run]`` table is a ``ctattn run`` configuration, ``[axes]`` maps keys to lists
of values (grid, or ``mode = "zip"``), ``replicates`` repeats every point with child seeds
(:mod:`ctattn.sweeps.spec`). Tasks run on a local Dask cluster (one worker process per core;
``--workers N``) or on an existing one (``--scheduler tcp://host:port``). ``--out DIR``
(default ``sweeps/<config name>``) receives ``sweep.json``, one record per task in ``tasks/``
as each finishes, then ``results.nc`` (xarray, h5netcdf), ``results.csv`` and, when the axes
include ``neurons_per_unit``, ``sweep.png``. ``--resume`` continues an interrupted sweep.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ctattn.output import to_jsonable

__all__ = ["register", "finish_sweep"]


def register(sub) -> None:
    p = sub.add_parser(
        "sweep", help="run a configuration over axes of values (Dask)", description=__doc__.splitlines()[0]
    )
    p.add_argument("config", metavar="CONFIG.toml", help="sweep config: [run], [axes], mode, replicates")
    p.add_argument(
        "--scheduler", metavar="ADDRESS", default=None, help="an existing Dask scheduler, tcp://host:port"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="local worker processes (default: one per core)",
    )
    p.add_argument("--out", metavar="DIR", default=None, help="sweep folder (default sweeps/<config name>)")
    p.add_argument(
        "--resume", action="store_true", help="continue the sweep in --out, skipping finished tasks"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=_main)


def finish_sweep(out) -> dict:
    """Write ``results.nc``, ``results.csv`` and (if it applies) ``sweep.png`` from the records."""
    from ctattn.sweeps import read_records, read_sweep, write_results

    out = Path(out)
    sweep = read_sweep(out)
    records = read_records(out)
    ds = write_results(out, sweep, records)
    written = ["results.nc", "results.csv"]
    if "neurons_per_unit" in ds["rel_error"].dims and (ds["status"] == "ok").any():
        from ctattn.analysis.figures.sweeps import sweep_error_figure
        from ctattn.analysis.plotting import save

        save(sweep_error_figure(ds), out / "sweep.png")
        written.append("sweep.png")
    return dict(dataset=ds, written=written)


def _main(args) -> int:
    from ctattn.sweeps import load_sweep, run_sweep

    spec = load_sweep(args.config)
    out = args.out or os.path.join("sweeps", Path(args.config).stem)
    counts = run_sweep(
        spec,
        out,
        scheduler=args.scheduler,
        workers=args.workers,
        resume=args.resume,
        progress=True,
        source=os.path.abspath(args.config),
    )
    done = finish_sweep(out)
    ds = done["dataset"]
    status = [str(s) for s in ds["status"].values.ravel()]
    summary = dict(
        out=os.path.abspath(out),
        tasks=len(spec.tasks),
        ok=status.count("ok"),
        failed=status.count("failed"),
        missing=status.count("missing"),
        ran_now=counts["done"] + counts["failed"],
        skipped=counts["skipped"],
        written=done["written"],
    )
    if args.json:
        print(json.dumps(to_jsonable(summary)))
    else:
        print(
            f"ctattn sweep: {summary['tasks']} tasks ({summary['ok']} ok, {summary['failed']} failed, "
            f"{summary['skipped']} done before), dims {dict(ds['rel_error'].sizes)}"
        )
        print(f"  wrote {out}/" + ", ".join(done["written"]) + f"; summary: ctattn show {out}")
    if summary["failed"]:
        print(
            f"ctattn sweep: {summary['failed']} task(s) failed; see {out}/results.csv (column error)",
            file=sys.stderr,
        )
    return 0 if not summary["failed"] else 1


def _show_sweep(folder, as_json: bool) -> int:
    """``ctattn show SWEEPDIR``: the sweep's axes, task status and error per point."""
    from ctattn.sweeps import load_results, read_records, read_sweep, summarize, to_dataset

    folder = Path(folder)
    sweep = read_sweep(folder)
    ds = load_results(folder) if (folder / "results.nc").exists() else to_dataset(sweep, read_records(folder))
    rows = summarize(ds)
    status = [str(s) for s in ds["status"].values.ravel()]
    info = dict(
        folder=str(folder.resolve()),
        mode=sweep["mode"],
        axes=sweep["axes"],
        replicates=sweep["replicates"],
        tasks=len(status),
        ok=status.count("ok"),
        failed=status.count("failed"),
        missing=status.count("missing"),
        points=rows,
    )
    if as_json:
        print(json.dumps(to_jsonable(info)))
        return 0
    print(f"ctattn sweep in {info['folder']} ({sweep['mode']}, {sweep['replicates']} replicate(s))")
    for k, v in sweep["axes"].items():
        print(f"  axis {k:<17} {v}")
    print(f"  tasks {info['tasks']}: {info['ok']} ok, {info['failed']} failed, {info['missing']} not run")
    if rows:
        keys = [k for k in rows[0] if k not in ("ok", "rel_error", "ci95", "shot_noise_bound", "wall_s")]
        head = (
            "  "
            + "  ".join(f"{k:>16}" for k in keys)
            + f"  {'ok':>3}  {'rel_error':>10}  {'±95% CI':>9}  {'bound':>9}  {'wall s':>7}"
        )
        print(head)
        for r in rows:

            def f(v, fmt):
                return format(v, fmt) if isinstance(v, float) and v == v else "-"

            print(
                "  "
                + "  ".join(f"{str(r[k]):>16}" for k in keys)
                + f"  {r['ok']:>3}  {f(r['rel_error'], '10.3e')}  {f(r['ci95'], '9.2e')}  "
                f"{f(r['shot_noise_bound'], '9.2e') if r['shot_noise_bound'] is not None else '-':>9}  "
                f"{f(r['wall_s'], '7.2f') if r['wall_s'] is not None else '-':>7}"
            )
        from ctattn.analysis.figures.sweeps import SAMPLE_DIMS

        n_points = 1
        for d, n in ds["rel_error"].sizes.items():
            n_points *= 1 if d in SAMPLE_DIMS else n
        if len(rows) < n_points:
            print(f"  (first {len(rows)} of {n_points} points; all tasks: {folder}/results.csv)")
    return 0
