"""The resource estimate (:mod:`ctattn.resources`) next to what runs measure.

For each configuration, ``ctattn run --dry-run --json`` gives the estimate; the same run in a
fresh process gives the measured wall time of the simulation (``wall_s``) and the process's
peak resident memory (``ru_maxrss``, which includes Python, numpy and Brian2 themselves, about
150-250 MB, so small runs are dominated by that baseline).

    python benchmarks/resources.py      # prints one table row per configuration
"""

from __future__ import annotations

import json
import subprocess
import sys

CONFIGS = [
    ["--backend", "ideal"],
    ["--backend", "ideal", "--heads", "16", "--tokens", "64", "--d-model", "32"],
    ["--backend", "rate"],
    ["--backend", "rate", "--variant", "softmax"],
    ["--backend", "rate", "--heads", "8", "--tokens", "16", "--d-model", "32"],
    ["--backend", "spiking", "--neurons-per-unit", "10", "--tokens", "4"],
]

PROBE = """
import json, resource, sys
from ctattn.cli import main
import contextlib, io
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    code = main(["run", "--json", *sys.argv[1:]])
summary = json.loads(buf.getvalue())
print(json.dumps(dict(wall_s=summary["wall_s"], maxrss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
"""


def main() -> int:
    print(
        "| config | neurons | synapses | steps | est. time (s) | measured wall (s) | est. memory (MB) | peak RSS (MB) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for flags in CONFIGS:
        dry = subprocess.run(
            [sys.executable, "-m", "ctattn.cli", "run", "--dry-run", "--json", *flags],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        est = json.loads(dry.stdout)
        run = subprocess.run(
            [sys.executable, "-c", PROBE, *flags], capture_output=True, text=True, check=True
        )
        got = json.loads(run.stdout.strip().splitlines()[-1])
        print(
            f"| {' '.join(flags)} | {est['n_neurons']:,} | {est['n_synapses']:,} | {est['n_steps']:,} | "
            f"{est['time_s']:.3g} | {got['wall_s']:.3g} | {est['memory_bytes'] / 1e6:.3g} | {got['maxrss_mb']:.0f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
