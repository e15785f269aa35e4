"""Sweeps on Dask: a grid of runs equals the same runs one by one, on a local cluster and on a
scheduler started as separate processes; an interrupted sweep resumes without redoing tasks."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dask.distributed")
pytest.importorskip("xarray")

from ctattn.cli import main  # noqa: E402
from ctattn.commands.run import execute  # noqa: E402
from ctattn.config import RunConfig, validate_config  # noqa: E402
from ctattn.core.problem import InputError  # noqa: E402
from ctattn.sweeps import child_seed, load_results, read_records, run_sweep, sweep_from_dict  # noqa: E402

# a tiny spiking circuit: every task takes about a second, and its numbers depend on the seed
TINY = dict(
    backend="spiking",
    phi="softplus",
    heads=1,
    tokens=2,
    d_model=4,
    d_k=2,
    d_v=2,
    window_ms=40,
    settle_ms=10,
    dt_ms=0.5,
)
GRID = {
    "run": TINY,
    "axes": {"seed": [3, 4, 5], "neurons_per_unit": [200, 400, 800, 1600]},
}  # enough cells not to saturate


def _one_by_one(config: dict):
    """The task's run as ``ctattn run`` does it (same code path: commands.run.execute)."""
    keys = {k: v for k, v in config.items() if k not in ("lesion", "lesion_area")}
    return execute(RunConfig(validate_config(keys)), progress=False)


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "grid"
    spec = sweep_from_dict(GRID)
    counts = run_sweep(spec, out, workers=2, progress=False)
    return spec, out, counts


def test_grid_sweep_on_a_local_cluster_equals_the_runs_one_by_one(local_sweep, capsys):
    spec, out, counts = local_sweep
    assert len(spec.tasks) == 12 and counts == dict(done=12, failed=0, skipped=0, pending=0)
    records = read_records(out)
    workers = {r["pid"] for r in records.values()}
    assert len(workers) == 2  # the tasks really ran on two worker processes
    for task in spec.tasks:
        rec = records[task.task_id]
        run = _one_by_one(task.config)
        assert task.config["seed"] == task.coords["seed"]  # a seed axis sets the master seed as --seed does
        np.testing.assert_array_equal(np.asarray(rec["Y"]), run.Y)  # identical numbers
        assert rec["rel_error"] == run.rel_error
        np.testing.assert_equal(rec["shot_noise_bound"], run.summary()["shot_noise_bound"])
        assert 0 < rec["rel_error"] < 1  # a noisy spiking estimate, not a trivial output
    # labelled results: dims named after the axes, plus replicate; netCDF, CSV, figure, show
    assert main(["show", str(out), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["ok"] == 12 and len(shown["points"]) == 4  # one row per neurons_per_unit (seeds pooled)
    from ctattn.commands.sweep import finish_sweep

    written = finish_sweep(out)["written"]
    assert {"results.nc", "results.csv", "sweep.png"} <= set(written)
    ds = load_results(out)
    assert ds["rel_error"].dims == ("seed", "neurons_per_unit", "replicate")
    assert list(ds["neurons_per_unit"].values) == [200, 400, 800, 1600]
    one = ds["rel_error"].sel(seed=4, neurons_per_unit=800, replicate=0).item()
    task = next(t for t in spec.tasks if t.coords == {"seed": 4, "neurons_per_unit": 800})
    assert one == records[task.task_id]["rel_error"]
    err, bias, noise = (ds[k].values for k in ("rel_error", "bias", "noise"))
    np.testing.assert_allclose(err**2, bias**2 + noise**2, rtol=1e-9)
    rows = (out / "results.csv").read_text().splitlines()
    assert len(rows) == 13 and rows[0].startswith("task_id,seed,neurons_per_unit,replicate")


def test_the_same_sweep_on_a_scheduler_address_gives_identical_results(local_sweep, tmp_path):
    spec, out_local, _ = local_sweep
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    env = dict(os.environ, DASK_DISTRIBUTED__WORKER__DAEMON="False")
    log = open(tmp_path / "dask.log", "w")
    scheduler = subprocess.Popen(
        [*dask, "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"], stdout=log, stderr=log, env=env
    )
    worker = None
    try:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_worker",
                address,
                "--nworkers",
                "1",
                "--nthreads",
                "1",
                "--no-dashboard",
            ],
            stdout=log,
            stderr=log,
            env=env,
        )
        from dask.distributed import Client

        deadline = time.time() + 60
        while True:
            try:
                with Client(address, timeout="5s") as client:
                    client.wait_for_workers(1, timeout=60)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
        out = tmp_path / "remote"
        counts = run_sweep(sweep_from_dict(GRID), out, scheduler=address, progress=False)
        assert counts["done"] == 12
        remote, local = read_records(out), read_records(out_local)
        assert {r["pid"] for r in remote.values()}.isdisjoint({r["pid"] for r in local.values()})
        for task_id, rec in local.items():
            assert remote[task_id]["Y"] == rec["Y"] and remote[task_id]["rel_error"] == rec["rel_error"]
    finally:
        for proc in (worker, scheduler):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        log.close()


def test_an_interrupted_sweep_resumes_without_redoing_finished_tasks(tmp_path):
    """``ctattn sweep`` stopped with Ctrl-C (SIGINT) halfway, then ``--resume``."""
    config = tmp_path / "s.toml"
    config.write_text(
        '[run]\nbackend = "rate"\nheads = 1\ntokens = 2\nd_model = 4\nsettle_ms = 20\n'
        "[axes]\nseed = [0, 1, 2, 3]\nweight_scale = [0.5, 1.0, 2.0]\n"
    )
    out = tmp_path / "s"
    cmd = [sys.executable, "-m", "ctattn.cli", "sweep", str(config), "--out", str(out), "--workers", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while len(list((out / "tasks").glob("t*.json"))) < 4 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)  # interrupted, as a user would
    assert proc.wait(timeout=60) == 130, proc.stderr.read()
    before = read_records(out)
    assert 4 <= len(before) < 12 and not (out / "results.nc").exists()
    stamps = {k: (r["started"], os.stat(out / "tasks" / f"{k}.json").st_mtime_ns) for k, r in before.items()}
    spec = sweep_from_dict(
        {
            "run": dict(backend="rate", heads=1, tokens=2, d_model=4, settle_ms=20),
            "axes": {"seed": [0, 1, 2, 3], "weight_scale": [0.5, 1.0, 2.0]},
        }
    )
    with pytest.raises(InputError, match="--resume"):
        run_sweep(spec, out, workers=1, progress=False)  # refuses to start over silently
    second = run_sweep(spec, out, workers=1, progress=False, resume=True)
    assert second["skipped"] == len(before) and second["done"] == 12 - len(before)
    after = read_records(out)
    assert len(after) == 12 and all(r["status"] == "ok" for r in after.values())
    for k, (started, mtime) in stamps.items():  # finished tasks were not redone
        assert after[k]["started"] == started and os.stat(out / "tasks" / f"{k}.json").st_mtime_ns == mtime
    changed = {"run": spec.base, "axes": {"seed": [0, 1]}}
    with pytest.raises(InputError, match="different sweep"):
        run_sweep(sweep_from_dict(changed), out, resume=True, progress=False)


def test_replicates_zip_mode_failed_tasks_and_seeds(tmp_path):
    spec = sweep_from_dict(
        {
            "run": dict(heads=1, tokens=2, d_model=4, d_k=2, d_v=2, variant="linear"),
            "axes": {"lesion": ["none", "pool"], "weight_scale": [1.0, 2.0]},
            "mode": "zip",
            "replicates": 2,
        }
    )
    assert [t.config["seed"] for t in spec.tasks[:2]] == [child_seed(0, 0, 2), child_seed(0, 1, 2)]
    assert child_seed(0, 1, 2) == int(np.random.SeedSequence(0).spawn(2)[1].generate_state(1)[0])
    assert child_seed(7, 0, 1) == 7
    out = tmp_path / "z"
    counts = run_sweep(spec, out, workers=1, progress=False)
    assert counts["done"] == 2 and counts["failed"] == 2  # 'pool' needs a normalised variant
    failed = [r for r in read_records(out).values() if r["status"] == "failed"]
    assert all("normalisation pool" in r["error"] for r in failed)
    from ctattn.commands.sweep import finish_sweep

    ds = finish_sweep(out)["dataset"]
    assert ds["rel_error"].dims == ("point", "replicate") and list(ds["lesion"].values) == ["none", "pool"]
    assert np.isnan(ds["rel_error"].values[1]).all() and list(ds["status"].values[1]) == ["failed"] * 2


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"run": {}, "axes": {}}, r"\[axes\]"),
        ({"run": {}, "axes": {"seeds": [1]}}, "unknown key"),
        ({"run": {}, "axes": {"seed": [1, 1]}}, "listed twice"),
        ({"run": {}, "axes": {"seed": [1, 2], "heads": [1]}, "mode": "zip"}, "equal length"),
        ({"run": {}, "axes": {"seed": [1]}, "replicates": 0}, "replicates"),
        ({"run": {}, "axes": {"weight_scale": [-1.0]}}, "weight_scale"),
    ],
)
def test_bad_sweep_configs_name_the_field(bad, match):
    with pytest.raises(InputError, match=match):
        sweep_from_dict(bad)


def test_sweep_cli_bad_config_exits_2_and_writes_nothing(tmp_path, capsys):
    cfg = tmp_path / "s.toml"
    cfg.write_text('[run]\nbackend = "ideal"\n[axes]\nsed = [1, 2]\n')
    assert main(["sweep", str(cfg), "--out", str(tmp_path / "o")]) == 2
    assert "sed" in capsys.readouterr().err and not Path(tmp_path / "o").exists()
