"""How exactly the ``lif`` cell types multiply and divide (a script, not a test).

    .venv/bin/python benchmarks/lif_mechanisms.py [--n-per 200] [--duration 2] [--target numpy]
        [--seed 0]

For each cell type of :mod:`ctattn.models.lif`, over its operating range:

* a **calibration** run (master seed, stream ``lif-calibration``) on a grid of constant inputs
  (7 points per input, 13 for one-input cells) gives the model-only look-up table
  (:func:`ctattn.models.lif.calibrate`);
* a **test** run on another seed (stream ``lif-test``) at the *midpoints* of that grid (so
  the table's interpolation is tested too) measures the population rate per cell.

Errors are RMS over the test grid of (measured - ideal) relative to the RMS of the measured
rates. "raw": the best-fitting ideal law on the raw inputs (relay/interneuron: affine
``c I + d``; pyramidal: ``c I_b I_a``; divider: ``c I / (1 + g)``), least squares on the test
run itself. "calibrated": the table from the calibration run (other seed) applied to the test
inputs (pyramidal: ``F(I_b) G(I_a)``; divider: ``F(I / (1 + g))``; point cells: ``F(I)``).
``pyramidal+shunt``: the pyramid with a shunting conductance ``g`` on its tuft (the divisive L5
cell of the backend), raw law ``c I_b I_a / (1 + g)``, calibrated: the plain pyramid's table
(made at ``g = 0``) at the tuft's quotient, ``F(I_b) G(I_a / (1 + g))``.
"peak 5 ms": the highest population rate per cell in any 5 ms bin of the test run (all spikes)
against the cap (200 Hz excitatory, 400 Hz inhibitory). The rates are means over ``n_per``
cells and the whole test duration, so the calibrated error includes counting noise of
``n_per x duration``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from ctattn.models.lif import MODELS, calibrate, peak_bin_rate_hz, simulate_grid  # noqa: E402

from ctattn.core.seeding import rng_for, seed_for  # noqa: E402


def rel_rms(est, measured):
    measured = np.asarray(measured, float)
    return float(np.sqrt(np.mean((np.asarray(est) - measured) ** 2)) / np.sqrt(np.mean(measured**2)))


def best_scale(basis, y):
    """Least-squares fit of ``y`` by a linear combination of the columns of ``basis``."""
    coef = np.linalg.lstsq(basis, y, rcond=None)[0]
    return basis @ coef


def axes_for(model, n_points):
    return [np.linspace(*model.operating_range[k], n_points) for k in model.inputs]


#: The divisive L5 cell's tuft shunt (``pyramidal+shunt``): the tuft drive and the shunt over the
#: range the backend uses (``I_a`` up to ``(1 + 4) x 0.5``, ``g_sh = 4 I_s`` for pools 0.5..1.5),
#: so that the tuft potential ``I_a / (1 + g)`` stays within the Ca threshold range.
SHUNT_RANGE = {"I_a": (0.5, 2.5), "g_sh": (2.0, 6.0)}


def calibrated(name, args):
    """The cell type's table from its calibration run (stream ``lif-calibration-<name>``) on the
    grid of ``axes_for`` (13 points for one input, 7 per input otherwise), and the seconds spent."""
    model = MODELS[name]
    axes = axes_for(model, 13 if len(model.inputs) == 1 else 7)
    t0 = time.time()
    table = calibrate(
        model,
        dict(zip(model.inputs, axes)),
        n_per=args.n_per,
        duration=args.duration,
        seed=seed_for(args.seed, f"lif-calibration-{name}"),
        target=args.target,
        use_cache=not args.no_cache,
    )
    return table, axes, time.time() - t0


def measure_shunt(args):
    """The pyramid with a shunted tuft: burst rate against ``c I_b I_a / (1 + g)`` (raw) and
    against the plain pyramid's table ``F(I_b) G(I_a / (1 + g))`` (calibrated at ``g = 0``, other
    seed): how exactly the shunt divides the burst probability."""
    model = MODELS["pyramidal"]
    table, _, t_cal = calibrated("pyramidal", args)
    lo, hi = model.operating_range["I_b"]
    mids = [np.linspace(lo, hi, 5), np.linspace(*SHUNT_RANGE["I_a"], 5), np.linspace(*SHUNT_RANGE["g_sh"], 5)]
    mesh = np.meshgrid(*mids, indexing="ij")
    grid = {k: m.ravel() for k, m in zip(("I_b", "I_a", "g_sh"), mesh)}
    t0 = time.time()
    run = simulate_grid(
        model, grid, args.n_per, args.duration, rng_for(args.seed, "lif-test-shunt"), target=args.target
    )
    t_test = time.time() - t0
    R = run.rates()
    q = grid["I_a"] / (1.0 + grid["g_sh"])
    return {
        "cell": "pyramidal, tuft shunt",
        "readout": model.readout,
        "law": "c I_b I_a / (1 + g)",
        "range": f"I_b {lo:g}..{hi:g}, I_a {SHUNT_RANGE['I_a'][0]:g}..{SHUNT_RANGE['I_a'][1]:g}, "
        f"g {SHUNT_RANGE['g_sh'][0]:g}..{SHUNT_RANGE['g_sh'][1]:g}",
        "rate": f"{R.min():.0f}-{R.max():.0f}",
        "raw": rel_rms(best_scale((grid["I_b"] * q)[:, None], R), R),
        "cal": rel_rms(table.transfer(grid["I_b"], q), R),
        "peak": peak_bin_rate_hz(run),
        "cap": model.rate_cap_hz,
        "neurons": args.n_per * run.n_grid,
        "wall": t_test,
        "wall_cal": t_cal,
    }


def measure(name, args):
    if name == "pyramidal+shunt":
        return measure_shunt(args)
    model = MODELS[name]
    table, axes, t_cal = calibrated(name, args)
    mids = [0.5 * (a[1:] + a[:-1]) for a in axes]
    mesh = np.meshgrid(*mids, indexing="ij")
    grid = {k: m.ravel() for k, m in zip(model.inputs, mesh)}
    t0 = time.time()
    run = simulate_grid(
        model, grid, args.n_per, args.duration, rng_for(args.seed, f"lif-test-{name}"), target=args.target
    )
    t_test = time.time() - t0
    R = run.rates()
    if model.law == "1d":
        x = grid[model.inputs[0]]
        raw = rel_rms(best_scale(np.stack([x, np.ones_like(x)], 1), R), R)
        cal = rel_rms(table.transfer(x), R)
        law = "c I + d"
    elif model.law == "product":
        p = grid["I_b"] * grid["I_a"]
        raw = rel_rms(best_scale(p[:, None], R), R)
        cal = rel_rms(table.transfer(grid["I_b"], grid["I_a"]), R)
        law = "c I_b I_a"
    else:
        q = grid["I"] / (1.0 + grid["g_sh"])
        raw = rel_rms(best_scale(q[:, None], R), R)
        cal = rel_rms(table.transfer(grid["I"], grid["g_sh"]), R)
        law = "c I / (1 + g)"
    rng_txt = ", ".join(f"{k} {lo:g}..{hi:g}" for k, (lo, hi) in model.operating_range.items())
    return {
        "cell": name,
        "readout": model.readout,
        "law": law,
        "range": rng_txt,
        "rate": f"{R.min():.0f}-{R.max():.0f}",
        "raw": raw,
        "cal": cal,
        "peak": peak_bin_rate_hz(run),
        "cap": model.rate_cap_hz,
        "neurons": args.n_per * run.n_grid,
        "wall": t_test,
        "wall_cal": t_cal,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-per", type=int, default=200, help="cells per grid point (a population)")
    ap.add_argument("--duration", type=float, default=2.0, help="seconds simulated per run")
    ap.add_argument("--target", default="numpy", choices=["numpy", "cython"])
    ap.add_argument("--seed", type=int, default=0, help="master seed")
    ap.add_argument(
        "--cells", default=",".join([*MODELS, "pyramidal+shunt"]), help="comma-separated cell types"
    )
    ap.add_argument("--no-cache", action="store_true", help="recalibrate even when cached")
    args = ap.parse_args(argv)
    rows = [measure(name, args) for name in args.cells.split(",")]
    print(
        f"n_per {args.n_per} cells per grid point, {args.duration:g} s per run, dt 0.1 ms, "
        f"target {args.target}, master seed {args.seed} (calibration and test on different streams)\n"
    )
    print(
        "| cell | readout | ideal law | operating range | readout rate Hz | raw error | calibrated error "
        "| peak 5 ms Hz / cap | test cells | test wall s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['cell']} | {r['readout']} | {r['law']} | {r['range']} | {r['rate']} | {100 * r['raw']:.2f}% "
            f"| {100 * r['cal']:.2f}% | {r['peak']:.0f} / {r['cap']:.0f} | {r['neurons']} | {r['wall']:.1f} |"
        )


if __name__ == "__main__":
    main()
