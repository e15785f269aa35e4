"""Sweeps: many runs of one circuit over axes of values, on Dask, with labelled results.

* :mod:`.spec`    -- the sweep config (``[run]``, ``[axes]``, mode, replicates) and its tasks;
* :mod:`.task`    -- one task on a worker: the run and its measures (never raises);
* :mod:`.engine`  -- running the tasks on a Dask cluster, saving each record, resuming;
* :mod:`.results` -- the xarray Dataset, netCDF and tidy CSV, and the summary ``ctattn show`` prints.
"""

from ctattn.sweeps.engine import read_records, read_sweep, run_sweep
from ctattn.sweeps.results import load_results, summarize, to_dataset, write_results
from ctattn.sweeps.spec import SweepSpec, Task, child_seed, load_sweep, sweep_from_dict

__all__ = [
    "SweepSpec",
    "Task",
    "child_seed",
    "load_sweep",
    "sweep_from_dict",
    "run_sweep",
    "read_records",
    "read_sweep",
    "to_dataset",
    "write_results",
    "load_results",
    "summarize",
]
