"""NWB export of a spiking run: per neuron exactly the run's spike counts, read back by pynwb and
by Neo; nwbinspector finds nothing but the checks that need a real subject or laboratory."""

from __future__ import annotations

import numpy as np
import pytest

pynwb = pytest.importorskip("pynwb")

from ctattn.analysis.nwb import load_spikes, neurons_per_unit, spike_counts, token_windows  # noqa: E402

from ctattn.cli import main  # noqa: E402
from ctattn.commands.export import write_run_nwb  # noqa: E402
from ctattn.commands.run import execute, write_run  # noqa: E402
from ctattn.config import RunConfig, validate_config  # noqa: E402

# softmax: every layer, the gain cells and the inhibitory pools spike
SMALL = dict(
    backend="spiking",
    variant="softmax",
    heads=2,
    tokens=3,
    d_model=4,
    d_k=2,
    d_v=2,
    neurons_per_unit=50,  # every cell recorded (the backend records up to 50 per unit)
    window_ms=20,
    # 40 ms: the start from silence (the divisive pools have had no input yet) must be over
    # when saturation starts to count; at 20 ms the readout, whose a-priori range is now the
    # largest column's, clips 0.4 % of neuron-steps in that transient (any number of cells)
    settle_ms=40,
    seed=11,
)
# what nwbinspector asks of a recording that a simulation cannot honestly give: a subject, an
# experimenter and an institution; keywords are left out because Neo's NWBIO cannot read them.
# (Runs of 2 tokens or 2 neurons per unit also draw check_column_binary_capability: a column
# whose values happen to be 0 and 1.)
EXPECTED_CHECKS = {"check_subject_exists", "check_experimenter_exists", "check_institution", "check_keywords"}


@pytest.fixture(scope="module")
def spiking_run():
    return execute(RunConfig(validate_config(SMALL)), progress=False, spikes=True)


def _units(path):
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        table = nwb.units.to_dataframe()
        windows = nwb.intervals["token_windows"].to_dataframe()
        rates = {k: np.asarray(v.data[:]) for k, v in nwb.processing["misc"].data_interfaces.items()}
    return table, windows, rates


def test_nwb_holds_exactly_the_runs_spike_counts_and_neo_reads_it(spiking_run, tmp_path):
    run = spiking_run
    path = tmp_path / "run.nwb"
    write_run_nwb(run, path)
    table, windows, rates = _units(path)
    n_of = neurons_per_unit(run.circuit, run.result.info)
    counts = spike_counts(run.result.spikes, n_of, run.circuit)
    assert set(run.result.spikes) == {p.name for p in run.circuit.populations}  # every population recorded
    assert len(table) == sum(len(c) for c in counts.values()) == run.summary()["n_neurons"]
    for name, per_neuron in counts.items():
        rows = table[table["population"] == name]
        got = np.array([len(t) for t in rows["spike_times"]])
        np.testing.assert_array_equal(got, per_neuron)  # per neuron, exactly the run's counts
        assert (rows["cell"].to_numpy() == np.arange(len(per_neuron)) % n_of[name]).all()
    assert per_neuron.sum() > 0
    # the simulator's own spike counters (synapses onto the units, not the spike monitors) saw the
    # same spikes: every one before the network's extra last step
    end = run.result.info["sim_time_s"] - 0.5 * run.result.info["dt_ms"] * 1e-3
    in_file = sum(int(np.sum(np.asarray(t) < end)) for t in table["spike_times"])
    assert in_file == run.result.info["n_spikes"] > 0
    pools = table[table["layer"] == "pool"]
    assert (
        len(pools)
        and (pools["ei"] == "inhibitory").all()
        and (table[table["layer"] == "L5"]["ei"] == "excitatory").all()
    )
    assert set(table["area"]) >= {"A0", "A1"}
    # token windows and rates agree with the run's own schedule and counts
    assert len(windows) == len(run.circuit.schedule)
    assert windows["stop_time"].iloc[-1] == pytest.approx(run.result.info["sim_time_s"])
    sizes = {p.name: p.size * n_of[p.name] for p in run.circuit.populations}
    total_rate_spikes = sum(r.sum() * 10e-3 * sizes[k] for k, r in rates.items())
    assert total_rate_spikes == pytest.approx(sum(c.sum() for c in counts.values()))

    from neo.io import NWBIO

    block = NWBIO(str(path), mode="r").read_all_blocks()[0]
    trains = [st for seg in block.segments for st in seg.spiketrains]
    assert len(trains) == len(table)
    assert sorted(len(st) for st in trains) == sorted(len(t) for t in table["spike_times"])

    from nwbinspector import inspect_nwbfile

    found = {m.check_function_name for m in inspect_nwbfile(nwbfile_path=str(path))}
    assert found <= EXPECTED_CHECKS, found


def test_export_of_a_saved_run_equals_the_direct_file(spiking_run, tmp_path, capsys):
    run = spiking_run
    write_run(run, tmp_path / "run", spikes=True)
    spikes, n_of = load_spikes(tmp_path / "run" / "spikes.npz")
    assert n_of == neurons_per_unit(run.circuit, run.result.info)
    assert main(["export", str(tmp_path / "run"), "--nwb", str(tmp_path / "exported.nwb")]) == 0
    write_run_nwb(run, tmp_path / "direct.nwb")
    a, wa, _ = _units(tmp_path / "exported.nwb")
    b, wb, _ = _units(tmp_path / "direct.nwb")
    assert a.drop(columns="spike_times").equals(b.drop(columns="spike_times"))
    assert all(np.array_equal(x, y) for x, y in zip(a["spike_times"], b["spike_times"]))
    assert wa.equals(wb)
    assert wa["count_start"].tolist() == [
        w["count_start"] for w in token_windows(run.circuit, run.result.info)
    ]


def test_nwb_bad_requests_exit_2_and_write_nothing(tmp_path, capsys):
    assert main(["run", "--nwb", str(tmp_path / "x.nwb")]) == 2  # ideal backend: no spikes
    assert "spiking" in capsys.readouterr().err
    plain = dict(SMALL, tokens=1, allow_saturation=True)  # any saved run without spikes will do
    write_run(execute(RunConfig(validate_config(plain)), progress=False), tmp_path / "plain")
    assert main(["export", str(tmp_path / "plain"), "--nwb", str(tmp_path / "y.nwb")]) == 2
    assert "--spikes" in capsys.readouterr().err
    assert not (tmp_path / "x.nwb").exists() and not (tmp_path / "y.nwb").exists()
