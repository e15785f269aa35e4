"""Progress on stderr: quiet for short runs, a plain line at most every ~30 s when stderr is not a
terminal (logs), a tqdm bar on a terminal; the build phase is covered by a ticker."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest

from ctattn.config import validate_config
from ctattn.core.problem import InputError, random_weights
from ctattn.core.progress import Progress


def test_plain_lines_are_throttled_to_one_per_interval():
    out = io.StringIO()
    p = Progress("ctattn spiking", after=2.0, every=30.0, stream=out, tty=False)
    for elapsed in (1.0, 2.5, 10.0, 20.0, 31.0, 33.0, 62.0):
        p(elapsed, elapsed / 100, 0, 4.0)
    p(90.0, 1.0, 0, 4.0)
    lines = out.getvalue().splitlines()
    assert [line.split(" in ")[1].split(" s")[0] for line in lines] == ["2.5", "33.0", "90.0"]
    assert "ETA" in lines[0] and "100.0%" in lines[-1]


def test_the_build_phase_ticks_before_any_report():
    out = io.StringIO()
    p = Progress("ctattn rate", after=0.0, every=0.05, stream=out, tty=False, ticker=True)
    time.sleep(1.3)
    p.close()
    assert "building" in out.getvalue()
    n = len(out.getvalue().splitlines())
    time.sleep(1.2)
    assert len(out.getvalue().splitlines()) == n  # closed: the ticker has stopped


def test_a_terminal_gets_a_tqdm_bar():
    pytest.importorskip("tqdm")
    out = io.StringIO()
    p = Progress("ctattn sweep", total=12, unit="tasks", after=0.0, stream=out, tty=True)
    for k in range(1, 13):
        p.update(k, final=k == 12)
    text = out.getvalue()
    assert "12/12" in text and "100%" in text


def test_weight_scale_scales_the_same_draws():
    w1, w2 = random_weights(4, 2, 6, 3, 3), random_weights(4, 2, 6, 3, 3, scale=2.5)
    for k in ("W_Q", "W_K", "W_V", "W_O"):
        np.testing.assert_allclose(getattr(w2, k), 2.5 * getattr(w1, k), rtol=1e-15)
    assert validate_config({"weight_scale": 3})["weight_scale"] == 3.0
    for bad in (0, -1.0, float("inf")):
        with pytest.raises(InputError, match="weight_scale"):
            validate_config({"weight_scale": bad})
