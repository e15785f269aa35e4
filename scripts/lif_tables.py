"""Calibrate the spiking backend's ``lif`` cell types and ship the tables with the package.

    .venv/bin/python scripts/lif_tables.py [--dt-ms 0.2] [--targets numpy,cython]

Writes ``models/lif/tables/<type>-<key>.npz`` (the calibration cache's file names, keyed by a
SHA-256 of the cell parameters and calibration settings), and prints the time each took. A
changed model has another key: the backend then recalibrates (and caches) on first use.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dt-ms", type=float, default=0.2)
    p.add_argument("--targets", default="numpy,cython")
    args = p.parse_args(argv)
    from ctattn.models.lif.calibration import SHIPPED_TABLES

    os.makedirs(SHIPPED_TABLES, exist_ok=True)
    os.environ["CTATTN_CACHE"] = SHIPPED_TABLES
    from ctattn.circuits.backends.spiking.lif_tables import calibrated_tables

    for target in args.targets.split(","):
        t0 = time.perf_counter()
        calibrated_tables(args.dt_ms * 1e-3, target)
        print(f"target {target}, dt {args.dt_ms:g} ms: {time.perf_counter() - t0:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
