"""Regenerate the README figures (``figures/*.png``) from their configurations.

Each figure is drawn from ``configs/figures/<name>.toml`` by ``ctattn figure`` (one script
per figure's worth of settings: the TOML files). The spiking figures take a few minutes on
two cores; ``--only`` picks some, ``--skip-spiking`` leaves out the spiking ones.

    .venv/bin/python scripts/make_figures.py [--only raster attention] [--skip-spiking]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ctattn.figure_configs import load_figure_config, make_figure  # noqa: E402 - after the path set-up


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", metavar="CONFIG", help="config stems, e.g. raster lesions-spiking")
    ap.add_argument(
        "--skip-spiking", action="store_true", help="leave out figures that run the spiking backend"
    )
    args = ap.parse_args(argv)
    configs = sorted((ROOT / "configs" / "figures").glob("*.toml"))
    if args.only:
        known = {p.stem for p in configs}
        unknown = sorted(set(args.only) - known)
        if unknown:
            ap.error(f"--only: unknown {unknown}; choose from {sorted(known)}")
        configs = [p for p in configs if p.stem in args.only]
    for path in configs:
        name = path.stem.split("-")[0]
        figure, cfg = load_figure_config(name, path)
        if args.skip_spiking and cfg["backend"] == "spiking":
            continue
        start = time.perf_counter()
        out, _ = make_figure(
            name, path, ROOT / figure["out"], progress=lambda message: print(f"    {message}", flush=True)
        )
        size, seconds = out.stat().st_size / 1024, time.perf_counter() - start
        print(f"{path.stem:<16} -> {out.relative_to(ROOT)}  ({size:.0f} KB, {seconds:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
