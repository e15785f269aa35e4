r"""Figures: what the circuit does, side by side with the transformer it is meant to compute.

Run figures (``write_run_figures(run, folder)`` writes every one the run supports):

* ``raster.png`` (spiking backend): spike rasters grouped thalamus (first order) -> area
  (= head) -> layer (L2/3, L5) -> population -> higher-order thalamus, one row per rate unit,
  token windows marked;
* ``traces.png``: mean rate of every population over the token sequence, and the block
  output ``y_i(t)`` decoded from the higher-order relay against the reference's ``y_i``;
* ``attention.png`` (mask layout): the attention weights ``a_ij`` decoded from each area's own
  populations (:mod:`ctattn.analysis.decoding`) beside the reference's, and their difference;
* ``scatter.png``: circuit against reference, for the block output ``y`` (one colour per
  output dimension) and for every head's output ``u^h`` read from its L5 cells;
* ``outputs.png``: ``Y``, ``Y_ref`` and ``Y - Y_ref`` as heat maps.

Experiment figures: :func:`error_scaling` (output error against neurons per unit and counting
window, with the shot-noise slope ``-1/2``) and :func:`lesion_figure` (the five lesion
predictions of MODEL.md section 5, :mod:`ctattn.analysis.experiments`).

Every figure has labelled axes with units ("a.u." for the description's dimensionless rates;
seconds, Hz, ms) and a legend or colour bar.
"""

from ctattn.analysis.figures.activity import raster, rate_traces, window_edges
from ctattn.analysis.figures.comparison import attention_maps, output_maps, output_scatter, write_run_figures
from ctattn.analysis.figures.experiments import error_scaling, lesion_figure
from ctattn.analysis.plotting import save

__all__ = [
    "write_run_figures",
    "raster",
    "rate_traces",
    "attention_maps",
    "output_scatter",
    "output_maps",
    "error_scaling",
    "lesion_figure",
    "window_edges",
    "save",
    "RUN_FIGURES",
]

RUN_FIGURES = ("raster", "traces", "attention", "scatter", "outputs")
