"""Running a sweep on Dask distributed: a local cluster by default, or an existing scheduler.

``run_sweep(spec, out)`` submits every task (:func:`ctattn.sweeps.task.run_task`) to a Dask
``Client``: ``LocalCluster`` with one single-threaded worker process per core (Brian2's
preferences and random state are per process), or the scheduler at ``scheduler``
(``tcp://host:port``; a SLURM or PBS cluster started with dask-jobqueue, see the README).
Results come back to this process, which saves each task's record as ``OUT/tasks/<id>.json``
the moment it finishes (written to a temporary file and renamed: a record is whole or absent),
so an interrupted sweep keeps what it has done; ``resume=True`` skips the tasks whose record
says ``ok`` and runs the rest (failed ones again). ``OUT/sweep.json`` holds the sweep (its base
run, axes, tasks and a fingerprint); a resumed sweep must be the same sweep.

Progress: a bar over tasks with its ETA (:class:`ctattn.core.progress.Progress`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ctattn.core.problem import InputError
from ctattn.core.progress import Progress
from ctattn.output import to_jsonable, versions, write_json
from ctattn.sweeps.spec import SweepSpec
from ctattn.sweeps.task import run_task

__all__ = ["run_sweep", "read_records", "read_sweep", "save_record"]


def save_record(out: Path, record: dict) -> None:
    """Write one task's record atomically."""
    folder = Path(out) / "tasks"
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{record['task_id']}.json.tmp"
    write_json(tmp, record)
    os.replace(tmp, folder / f"{record['task_id']}.json")


def read_sweep(out) -> dict:
    path = Path(out) / "sweep.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"sweep: {out} has no sweep.json (is it a ctattn sweep folder?)") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"sweep: {path} is not valid JSON ({exc})") from None


def read_records(out) -> dict[str, dict]:
    """The saved records of ``out``, by task id (unreadable ones are skipped: they are redone)."""
    records = {}
    for path in sorted((Path(out) / "tasks").glob("t*.json")):
        try:
            rec = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        records[rec["task_id"]] = rec
    return records


def _prepare(spec: SweepSpec, out: Path, resume: bool, source: str | None) -> dict[str, dict]:
    described = dict(
        fingerprint=spec.fingerprint(),
        **spec.to_dict(),
        dims=list(spec.dims),
        tasks=[t.to_dict() for t in spec.tasks],
        source=source,
        versions=versions(),
    )
    if (out / "sweep.json").exists():
        if not resume:
            raise InputError(
                f"--out: {out} already holds a sweep; pass --resume to continue it or choose a new folder"
            )
        old = read_sweep(out)
        if old.get("fingerprint") != spec.fingerprint():
            raise InputError(
                f"--resume: {out} holds a different sweep (its config changed); choose a new --out"
            )
        return {k: r for k, r in read_records(out).items() if r.get("status") == "ok"}
    if out.exists() and any(out.iterdir()):
        raise InputError(f"--out: {out} exists and is not a sweep folder; choose a new folder")
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".sweep.json.tmp"
    write_json(tmp, to_jsonable(described))
    os.replace(tmp, out / "sweep.json")
    return {}


def _client(scheduler: str | None, workers: int | None):
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout="30s"), None
        except OSError as exc:
            raise InputError(f"--scheduler: cannot reach {scheduler} ({exc})") from None
    n = workers or os.cpu_count() or 1
    cluster = LocalCluster(
        n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
    )
    return Client(cluster), cluster


def run_sweep(
    spec: SweepSpec,
    out,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    resume: bool = False,
    progress: bool = True,
    source: str | None = None,
) -> dict:
    """Run the sweep's unfinished tasks, saving each record as it finishes.

    Returns ``{"done": n ok now, "failed": n failed now, "skipped": n already ok, "pending": n
    left}``. An interruption (Ctrl-C) closes the cluster; the records saved so far stay.
    """
    from dask.distributed import as_completed

    out = Path(out)
    if workers is not None and workers < 1:
        raise InputError(f"--workers: must be at least 1, got {workers}")
    finished = _prepare(spec, out, resume, source)
    todo = [t for t in spec.tasks if t.task_id not in finished]
    counts = dict(done=0, failed=0, skipped=len(finished), pending=len(todo))
    if not todo:
        return counts
    client, cluster = _client(scheduler, workers)
    bar = Progress("ctattn sweep", total=len(todo), unit="tasks", after=0.0, ticker=True) if progress else None
    try:
        tag = spec.fingerprint()
        futures = [
            client.submit(run_task, t.to_dict(), key=f"ctattn-{tag}-{t.task_id}", pure=False) for t in todo
        ]
        by_key = {f.key: t for f, t in zip(futures, todo)}
        for future in as_completed(futures):
            task = by_key[future.key]
            if future.status == "finished":
                record = future.result()
            else:  # the worker died or the task could not be run at all
                exc = future.exception()
                record = dict(
                    task_id=task.task_id,
                    coords=task.coords,
                    replicate=task.replicate,
                    seed=task.config["seed"],
                    status="failed",
                    error=f"{type(exc).__name__}: {exc}",
                )
            save_record(out, record)
            counts["done" if record["status"] == "ok" else "failed"] += 1
            counts["pending"] -= 1
            if bar is not None:
                finished_now = counts["done"] + counts["failed"]
                bar.update(finished_now, note=f"{counts['failed']} failed", final=not counts["pending"])
    finally:
        if bar is not None:
            bar.close()
        client.close()
        if cluster is not None:
            cluster.close()
    return counts
