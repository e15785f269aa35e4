"""``ctattn run`` flags for the ``lif`` cell counts: ``--inhibitory-per-unit``,
``--readout-per-unit``, ``--cells-per-layer`` (config keys of the same names): they reach the
backend, round-trip through a manifest, and bad values are one line naming the field, exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ctattn.circuits.build import circuit_for
from ctattn.circuits.dale import apply_dale

from ctattn.cli import main
from ctattn.config import CELL_LAYERS, validate_config
from ctattn.core.problem import AttentionSpec, InputError, random_tokens, random_weights

TINY = ["--heads", "1", "--tokens", "2", "--d-model", "3", "--d-k", "2", "--d-v", "2", "--seed", "4"]
LIF = ["--backend", "spiking", "--neuron", "lif"]


def run_json(capsys, *argv) -> dict:
    assert main(["run", "--json", *argv]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out
    return json.loads(out[0])


def test_cell_count_flags_reach_the_cells_and_round_trip_through_the_manifest(tmp_path, capsys):
    counts = ["--neurons-per-unit", "6", "--inhibitory-per-unit", "3", "--readout-per-unit", "9"]
    short = ["--window", "10", "--settle", "10", "--allow-saturation"]
    a = run_json(
        capsys, *LIF, *TINY, *counts, "--cells-per-layer", "L5=4, TRN=2", *short, "--out", str(tmp_path / "a")
    )
    per_layer = {"FO": 6, "L2/3": 6, "L5": 4, "HO": 9, "PV": 3, "SOM": 3, "TRN": 2}
    layer_of = {
        p.name: p.layer
        for p in apply_dale(
            circuit_for(random_weights(4, 1, 3, 2, 2), random_tokens(4, 2, 3), AttentionSpec())
        ).populations
    }
    assert a["cells_per_unit"] == {name: per_layer[layer] for name, layer in layer_of.items()}
    config = json.loads((tmp_path / "a" / "manifest.json").read_text())["config"]
    assert config["cells_per_layer"] == {"L5": 4, "TRN": 2}
    assert (config["inhibitory_per_unit"], config["readout_per_unit"]) == (3, 9)
    b = run_json(capsys, "--config", str(tmp_path / "a" / "manifest.json"), "--out", str(tmp_path / "b"))
    assert b["cells_per_unit"] == a["cells_per_unit"] and b["n_neurons"] == a["n_neurons"]
    with np.load(tmp_path / "a" / "result.npz") as ra, np.load(tmp_path / "b" / "result.npz") as rb:
        np.testing.assert_array_equal(ra["Y"], rb["Y"])  # the same cells, the same seed: the same run


@pytest.mark.parametrize(
    "flags, needle",
    [
        ([*LIF, "--cells-per-layer", "L4=5"], "cells_per_layer: unknown layer 'L4'"),
        ([*LIF, "--cells-per-layer", "L5=0"], "cells_per_layer: L5 = 0"),
        ([*LIF, "--cells-per-layer", "L5=-3"], "cells_per_layer: L5 = -3"),
        ([*LIF, "--cells-per-layer", "L5=1.5"], "cells_per_layer: L5 = '1.5' is not a whole number"),
        ([*LIF, "--cells-per-layer", "L5"], "cells_per_layer: cannot read 'L5'"),
        ([*LIF, "--cells-per-layer", "L5=3,L5=4"], "cells_per_layer: layer 'L5' given twice"),
        ([*LIF, "--cells-per-layer", ","], "cells_per_layer: no layer given"),
        ([*LIF, "--cells-per-layer", "HO=1000000"], "cells_per_layer: HO = 1000000"),
        ([*LIF, "--inhibitory-per-unit", "0"], "inhibitory_per_unit"),
        ([*LIF, "--readout-per-unit", "2.5"], "--readout-per-unit"),
        (["--backend", "spiking", "--cells-per-layer", "L5=5"], "cells_per_layer: only the lif neuron model"),
        (
            ["--backend", "spiking", "--neuron", "poisson", "--inhibitory-per-unit", "5"],
            "inhibitory_per_unit: only the lif",
        ),
        (["--backend", "spiking", "--readout-per-unit", "5"], "readout_per_unit: only the lif"),
        (["--backend", "rate", "--cells-per-layer", "L5=5"], "cells_per_layer: the rate backend"),
        ([*LIF, "--threads", "2"], "threads: OpenMP threads are for the standalone target only"),
        ([*LIF, "--target", "standalone", "--threads", "0"], "threads"),
        (["--backend", "rate", "--target", "cython", "--threads", "2"], "threads: the rate backend"),
    ],
)
def test_bad_cell_counts_are_one_line_exit_2(capsys, flags, needle):
    assert main(["run", *flags, "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err


def test_cells_per_layer_from_toml(tmp_path, capsys):
    good = tmp_path / "good.toml"
    good.write_text('backend = "spiking"\nneuron = "lif"\ncells_per_layer = {HO = 7, "L2/3" = 5}\n')
    assert main(["run", "--config", str(good), "--dry-run", "--json"]) == 0
    est = json.loads(capsys.readouterr().out)
    assert est["cells_per_unit"]["HO"] == 7 and est["cells_per_unit"]["L2/3"] == 5
    assert est["cells_per_unit"]["L5"] == 100  # the lif default where nothing is given
    bad = tmp_path / "bad.toml"
    bad.write_text('backend = "spiking"\nneuron = "lif"\ncells_per_layer = {L5 = 1.5}\n')
    assert main(["run", "--config", str(bad), "--dry-run"]) == 2
    assert "cells_per_layer: L5 = 1.5" in capsys.readouterr().err


def test_cells_per_layer_canonical_form():
    values = validate_config(dict(backend="spiking", neuron="lif", cells_per_layer=" HO=7 ,L2/3=5"))
    assert values["cells_per_layer"] == {"L2/3": 5, "HO": 7}  # ordered as CELL_LAYERS
    with pytest.raises(InputError, match="cells_per_layer: L5 = True"):
        validate_config(dict(backend="spiking", neuron="lif", cells_per_layer={"L5": True}))
    with pytest.raises(InputError, match="cells_per_layer: expected a table"):
        validate_config(dict(backend="spiking", neuron="lif", cells_per_layer=[1, 2]))


@pytest.mark.parametrize(
    "variant, layout", [("linear", "mask"), ("normalized", "mask"), ("softmax", "mask"), ("linear", "memory")]
)
def test_cell_layers_name_every_layer_of_the_circuits(variant, layout):
    W, T = random_weights(0, 2, 3, 2, 2), random_tokens(0, 3, 3)
    circuit = apply_dale(circuit_for(W, T, AttentionSpec(variant=variant, layout=layout)))
    assert {p.layer for p in circuit.populations} <= set(CELL_LAYERS)
