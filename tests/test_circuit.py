"""The circuit description: structure, anatomical names, validation; no simulator objects."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from ctattn.circuits.build import build_circuit, circuit_for
from ctattn.circuits.description import Circuit, Population, Projection
from ctattn.circuits.schedule import presentation_schedule
from ctattn.models.neurons import pyramidal_cell

from ctattn.core.problem import AttentionSpec, InputError, random_tokens, random_weights


def _circuit(layout="mask", variant="linear", causal=False, cross=False):
    W = random_weights(0, 2, 5, 3, 4, biases=True)
    T = random_tokens(0, 6, 5, n_kv=7 if cross else None)
    return circuit_for(W, T, AttentionSpec(variant=variant, layout=layout, causal=causal))


def test_description_imports_no_simulator():
    _circuit()
    # Brian2 is imported only by the Brian2 backends, never by the description.
    assert "brian2" not in sys.modules or "ctattn.circuits.backends.rate" in sys.modules


def test_mask_layout_populations_and_symbols():
    c = _circuit("mask", "normalized", cross=True)
    names = {p.name for p in c.populations}
    assert {"FO.query", "FO.context", "A0.L23", "A0.L5", "A0.L5g", "A0.pool", "A1.L23", "HO"} <= names
    L23, L5 = c.population("A0.L23"), c.population("A0.L5")
    assert (L23.n_columns, L23.n_units) == (7, 3)  # one column per key/value token, d_k cells
    assert (L5.n_columns, L5.n_units) == (7, 8)  # ON/OFF pairs of d_v values
    assert L23.layer == "L2/3" and L5.layer == "L5" and L23.region == "cortex"
    symbols = {(q.symbol, q.kind) for q in c.projections}
    assert {
        ("W_Q[0]", "matrix"),
        ("W_K[0]", "core"),
        ("W_V[0]", "core"),
        ("W_O[1]", "corticothalamic"),
    } <= symbols
    targets = {(q.pre, q.post): q.target for q in c.projections}
    assert targets[("A0.L23", "A0.L5")] == "apical"  # the attention mask lands on the L5 tuft
    assert targets[("A0.pool", "A0.L5")] == "shunt"


def test_memory_layout_columns_are_value_features():
    c = _circuit("memory", cross=True)
    assert c.population("A0.L23").model.integrator
    assert c.population("A0.L23").shape == (4, 6)  # d_v columns, ON/OFF x d_k memory entries
    kinds = {q.symbol: q.kind for q in c.projections if q.post == "A0.L23"}
    assert kinds == {"W_V[0]": "core", "W_K[0]": "matrix"}  # paper v3: value on core, key on matrix
    assert "FO.kv" in {p.name for p in c.populations}


def test_table_lists_every_population_and_projection():
    c = _circuit("mask", "softmax")
    text = c.table()
    for p in c.populations:
        assert p.name in text and p.anatomy in text
    for q in c.projections:
        assert q.name in text


def test_order_puts_inputs_first():
    c = _circuit("mask", "softmax")
    seen = set()
    for p in c.order():
        for q in c.inputs_to(p.name):
            if p.model.kind not in ("relay", "memory"):
                assert q.pre in seen, (q.pre, p.name)
        seen.add(p.name)


def test_causal_mask_layout_presents_context_in_order():
    sched = presentation_schedule("mask", causal=True, n_tokens=4, n_kv=4, cross=False)
    assert [w.context for w in sched] == [(0,), (0, 1), (0, 1, 2), (0, 1, 2, 3)]
    sched = presentation_schedule("memory", causal=False, n_tokens=3, n_kv=2, cross=True)
    assert [(w.query, w.write, w.readout) for w in sched] == [
        (None, 0, False),
        (None, 1, False),
        (0, None, True),
        (1, None, True),
        (2, None, True),
    ]


def test_memory_layout_rejects_softmax_and_circuits_reject_signed_phi():
    W = random_weights(0, 1, 3, 2, 2)
    with pytest.raises(InputError, match="layout"):
        build_circuit(W, AttentionSpec(variant="softmax", layout="memory"), n_tokens=3)
    with pytest.raises(InputError, match="phi"):
        build_circuit(W, AttentionSpec(phi="sin"), n_tokens=3)


def test_description_validates_wiring():
    cell = pyramidal_cell("relu", None)
    a = Population("a", cell, 2, 3, "cortex", "A0", "L5", "x", "y")
    b = Population("b", cell, 2, 4, "cortex", "A0", "L5", "x", "y")
    with pytest.raises(ValueError, match="does not fit"):
        Circuit((a, b), (Projection("a", "b", "basal", np.ones((3, 3)), "same", "local", "W"),), "b", ())
    with pytest.raises(ValueError, match="apical"):
        Circuit((a, b), (Projection("a", "b", "apical", np.ones((4, 3)), "same", "local", "W"),), "b", ())
    with pytest.raises(ValueError, match="recurrent"):
        Circuit(
            (a, b),
            (
                Projection("a", "b", "basal", np.ones((4, 3)), "same", "local", "W"),
                Projection("b", "a", "basal", np.ones((3, 4)), "same", "local", "W"),
            ),
            "b",
            (),
        ).order()


def test_weights_are_read_only():
    c = _circuit()
    with pytest.raises(ValueError):
        c.projections[0].weight[0, 0] = 1.0
