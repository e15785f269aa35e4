"""The ``lif`` part of the resource estimate (:mod:`ctattn.resources`) next to measured runs.

The estimate prices a ``--neuron lif`` run by its cell-steps (each cell: a membrane, a noise
draw and two synapses per step, :func:`ctattn.resources.lif_cost`)::

    time   = t0 + steps (c0 + c_cell cells + c_syn synapses)
    memory = base + m_cell cells + (the rate-level parts shared with poisson)

For each configuration this script runs ``ctattn run --dry-run --json`` (the estimate), then
the same run in a fresh process (after one unreported warm-up run per target, so that Cython's
one-time compilation, cached afterwards, is not counted), and prints the estimate next to what was measured: the
process's elapsed time (what the user waits: interpreter, imports, building, code generation
and the simulation), the run's own ``wall_s`` (compilation and calibration apart) and
``run_s`` (Brian2's ``run``), ``compile_s`` (code generation, loading compiled code), and the process's peak resident memory (``ru_maxrss``; Python,
numpy and Brian2 themselves are ~200 MB of it). ``--fit`` also prints the least-squares
constants of the model above from the measured rows (how the constants in ``resources.py``
were obtained). Problems are small (seconds to a minute each on 2 cores)::

    .venv/bin/python benchmarks/dry_run_calibration.py [--targets numpy,cython] [--fit] [--quick] [--standard] [--large]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

SPIKING = ["--backend", "spiking", "--neuron", "lif"]
SIZES = {
    "H1 N2 D4 k2 v2": ["--heads", "1", "--tokens", "2", "--d-model", "4", "--d-k", "2", "--d-v", "2"],
    "H2 N2 D8 k2 v3": ["--heads", "2", "--tokens", "2", "--d-model", "8", "--d-k", "2", "--d-v", "3"],
    "H2 N3 D8 k3 v2, n=50": [
        *("--heads", "2", "--tokens", "3", "--d-model", "8", "--d-k", "3", "--d-v", "2"),
        "--neurons-per-unit",
        "50",
    ],
    "H3 N3 D12 k4 v4": ["--heads", "3", "--tokens", "3", "--d-model", "12", "--d-k", "4", "--d-v", "4"],
    "H4 N4 D16 k4 v4": ["--heads", "4", "--tokens", "4", "--d-model", "16", "--d-k", "4", "--d-v", "4"],
}
QUICK = ("H1 N2 D4 k2 v2", "H2 N2 D8 k2 v3")
#: The standard problem (4 heads, 8 tokens, d_model 16, d_k = d_v = 4): ``--standard`` adds it
#: as a check on a larger problem that the fit does not see (1-2 min a run).
STANDARD = "standard (H4 N8 D16 k4 v4), not fitted"
#: ``--large``: the standard problem with the README's 500k-cell allocation (3-4 min a run).
LARGE = "standard, L5=550,TRN=550,HO=3000,L2/3=300, not fitted"
EXTRA = {STANDARD: [], LARGE: ["--cells-per-layer", "L5=550,TRN=550,HO=3000,L2/3=300"]}

PROBE = """
import json, resource, sys, contextlib, io
from ctattn.cli import main
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    code = main(["run", "--json", *sys.argv[1:]])
s = json.loads(buf.getvalue())
keep = ("n_neurons", "n_synapses", "n_weights", "wall_s", "run_s", "compile_s", "calibration_s",
        "sim_time_s", "dt_ms", "settle_ms")
out = {k: s.get(k) for k in keep}
out["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def _json(cmd: list[str]) -> dict:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} ... failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(flags: list[str]) -> tuple[dict, dict, float]:
    """The estimate, the run's summary (plus peak RSS) and the process's elapsed seconds."""
    est = _json([sys.executable, "-m", "ctattn.cli", "run", "--dry-run", "--json", *flags])
    start = time.perf_counter()
    got = _json([sys.executable, "-c", PROBE, *flags])
    return est, got, time.perf_counter() - start


def fit(rows: list[tuple[dict, dict, float]]) -> None:
    """Least-squares constants of the cost model from the measured rows of one target."""
    cells = np.array([g["n_neurons"] for _, g, _ in rows], float)
    steps = np.array([round(g["sim_time_s"] / (g["dt_ms"] * 1e-3)) for _, g, _ in rows], float)
    syn = np.array([g["n_weights"] for _, g, _ in rows], float)
    run_s = np.array([g["run_s"] for _, g, _ in rows], float)
    c_syn = 3e-8  # rate-level synapses: the poisson constant (benchmarks/resources.py)
    A = np.stack([steps, steps * cells], axis=1)
    (c0, c_cell), *_ = np.linalg.lstsq(A, run_s - steps * c_syn * syn, rcond=None)
    rest = np.array([t - g["run_s"] for _, g, t in rows])  # elapsed outside Brian2's run
    rss = np.array([g["maxrss_mb"] * 2**20 for _, g, _ in rows])
    (base, m_cell), *_ = np.linalg.lstsq(np.stack([np.ones_like(cells), cells], axis=1), rss, rcond=None)
    print(
        f"\nfit: c0 = {c0:.3g} s/step, c_cell = {c_cell:.3g} s per cell-step (c_syn = {c_syn:g} held), "
        f"t0 = {rest.mean():.3g} s (elapsed - run_s, from {rest.min():.3g} to {rest.max():.3g}), "
        f"RSS base = {base / 1e6:.0f} MB + {m_cell:.0f} B per cell"
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", default="numpy,cython")
    ap.add_argument("--fit", action="store_true", help="print the cost model's least-squares constants")
    ap.add_argument("--quick", action="store_true", help="only the two smallest problems")
    ap.add_argument("--standard", action="store_true", help="add the standard problem (not fitted)")
    ap.add_argument(
        "--large", action="store_true", help="add the standard problem with 500k cells (not fitted)"
    )
    args = ap.parse_args(argv)
    print(f"lif dry-run estimate vs measured ({os.cpu_count()} cores; times in s, memory in MB)\n")
    print(
        "| target | problem | cells (est / run) | steps | est. time | elapsed | wall_s | run_s | compile_s "
        "| time est/elapsed | est. memory | peak RSS | memory est/RSS |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for target in args.targets.split(","):
        # one unreported run first: Cython's one-time compilation (cached afterwards) is not priced
        measure([*SPIKING, *SIZES[QUICK[0]], "--target", target])
        rows = []
        sizes = {k: v for k, v in SIZES.items() if k in QUICK or not args.quick}
        sizes.update(
            {
                k: v
                for k, v in EXTRA.items()
                if (k == STANDARD and args.standard) or (k == LARGE and args.large)
            }
        )
        for name, dims in sizes.items():
            est, got, elapsed = measure([*SPIKING, *dims, "--target", target])
            if name not in EXTRA:
                rows.append((est, got, elapsed))
            rss = got["maxrss_mb"]
            mem = est["memory_bytes"] / 2**20
            print(
                f"| {target} | {name} | {est.get('n_cells') or est['n_neurons']:,} / {got['n_neurons']:,} "
                f"| {est['n_steps']:,} | {est['time_s']:.3g} | {elapsed:.3g} | {got['wall_s']:.3g} "
                f"| {got['run_s']:.3g} | {got['compile_s']:.3g} | {est['time_s'] / elapsed:.2f} | {mem:.0f} | {rss:.0f} "
                f"| {mem / rss:.2f} |",
                flush=True,
            )
        if args.fit and len(rows) >= 2:
            fit(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
