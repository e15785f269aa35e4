"""Cells per layer for a ``lif`` run of a given size, from a pilot run's own noise (a script).

    .venv/bin/python benchmarks/lif_allocation.py [--variant linear] [--budget 500000]
        [--window-ms 400] [--pilot-seed 100] [--target cython] [--threads 1]

Runs the standard problem (:func:`spiking.standard_problem`, scale 1) once at the ``lif``
defaults (the pilot; seed 100, not one of the benchmark's seeds) and reads its propagated
counting-noise bound (``shot_noise_bound_propagated``, :mod:`ctattn.circuits.backends.spiking.noise`:
Poisson counting in every stage, carried to the readout at the run's own decoded rates) and
each population's share of that variance. Counting noise of a layer ``l`` falls like ``1/n_l``
(cells per unit) and ``1/T`` (counting window), so the output variance is
``V = (T_0 / T) sum_l a_l / n_l`` with ``a_l`` = (the layer's share x the pilot's variance x
its pilot cells per unit). Spending ``N = sum_l U_l n_l`` cells (``U_l`` units in layer ``l``)
at least variance is the Lagrange solution

    n_l = N sqrt(a_l / U_l) / sum_l' sqrt(a_l' U_l'),     V_min = (T_0 / T) (sum_l sqrt(a_l U_l))^2 / N

Prints, per layer, units, pilot cells and share, ``a_l``, the allocation for ``--budget`` and
the ``--cells-per-layer`` argument that gives it, and the noise the model predicts. Nothing here
reads the reference or the ideal backend: the pilot's noise comes from its own spikes. The
allocation is a property of where the circuit's variance arises; its accuracy claim is the
benchmark's run on other seeds and weight scales (``benchmarks/spiking.py``).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from ctattn.circuits.backends import get_backend  # noqa: E402
from ctattn.circuits.dale import apply_dale  # noqa: E402
from spiking import standard_problem  # noqa: E402


def allocation(units: dict, a: dict, budget: float) -> tuple[dict, float]:
    """Cells per unit ``n_l`` per layer minimising ``sum a_l / n_l`` at ``sum U_l n_l = budget``
    (rounded, at least 1), and the minimum ``(sum sqrt(a_l U_l))^2 / budget``."""
    total = sum(np.sqrt(a[k] * units[k]) for k in units)
    n = {k: max(1, int(round(budget * np.sqrt(a[k] / units[k]) / total))) for k in units}
    return n, float(total**2 / budget)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variant", default="linear")
    p.add_argument("--budget", type=float, default=500_000)
    p.add_argument("--window-ms", type=float, default=None, help="window of the planned run")
    p.add_argument("--pilot-seed", type=int, default=100)
    p.add_argument("--target", default="cython")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    circuit, T, _ = standard_problem(args.variant, 1.0)
    run = get_backend("spiking").run(
        circuit, T, neuron="lif", seed=args.pilot_seed, target=args.target, threads=args.threads
    )
    info = run.info
    dale = apply_dale(circuit)
    layer_of = {pop.name: pop.layer for pop in dale.populations}
    units: dict[str, int] = {}
    cells: dict[str, int] = {}
    share: dict[str, float] = {}
    for pop in dale.populations:
        units[pop.layer] = units.get(pop.layer, 0) + pop.size
        cells[pop.layer] = info["cells_per_unit"][pop.name]  # one count per layer at the defaults
    for name, s in info["shot_noise_shares"].items():
        share[layer_of[name]] = share.get(layer_of[name], 0.0) + s
    V = info["shot_noise_bound_propagated"] ** 2
    # layers whose share rounds below the report's 5e-4 get that floor (never zero cells)
    a = {k: max(share.get(k, 0.0), 5e-4) * V * cells[k] for k in units}
    window0 = info["window_ms"]
    window = args.window_ms or window0
    n, v_min = allocation(units, a, args.budget)
    print(
        f"pilot: {args.variant}, lif defaults, seed {args.pilot_seed}, {info['n_neurons']} neurons, "
        f"window {window0:g} ms: propagated noise {100 * np.sqrt(V):.2f}%\n"
    )
    print("| layer | units | pilot cells / unit | share of variance | a_l | cells / unit | cells |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for k in sorted(units, key=lambda k: -a[k]):
        print(
            f"| {k} | {units[k]} | {cells[k]} | {share.get(k, 0.0):.3f} | {a[k]:.3g} | {n[k]} | "
            f"{units[k] * n[k]:,} |"
        )
    total = sum(units[k] * n[k] for k in units)
    predicted = np.sqrt(v_min * window0 / window)
    print(
        f"\n{total:,} neurons; predicted counting noise {100 * predicted:.2f}% at window {window:g} ms "
        f"(the pilot's own propagated bound, rescaled: an estimate, not a measurement)"
    )
    print("--cells-per-layer " + ",".join(f"{k}={n[k]}" for k in sorted(units)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
