"""A corpus of bad inputs to the command line and the Python API, and a table of how each
family is handled.

Every CLI case must end with exit status 2 and exactly one line on stderr (no traceback), leave
the working folder byte for byte as it was, and leave a previous ctattn result in ``--out``
untouched. Every API case must raise ``ValueError`` or ``TypeError`` whose message names the
parameter. ``tests/test_bad_inputs.py`` runs the same corpus in the default test run.

    python benchmarks/bad_inputs.py          # prints: family | cases | handled | failures
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

SMALL = ["--heads", "2", "--tokens", "3", "--d-model", "4", "--d-k", "2", "--d-v", "2"]


def _w(p: Path, name="W.npz", **over):
    rng = np.random.default_rng(0)
    arrays = dict(
        W_Q=rng.normal(size=(2, 2, 4)),
        W_K=rng.normal(size=(2, 2, 4)),
        W_V=rng.normal(size=(2, 2, 4)),
        W_O=rng.normal(size=(2, 4, 2)),
    )
    arrays.update(over)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(p / name, **arrays)
    return str(p / name)


def _x(p: Path, name="X.npz", **over):
    arrays = dict(X=np.random.default_rng(1).normal(size=(3, 4)))
    arrays.update(over)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(p / name, **arrays)
    return str(p / name)


def _files(p: Path, w=None, x=None):
    return ["--weights", _w(p, **(w or {})), "--inputs", _x(p, **(x or {}))]


def _write(p: Path, name: str, data) -> str:
    path = p / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return str(path)


def _valid_npz_bytes() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, X=np.ones((3, 4)))
    return buf.getvalue()


def _run(p, *flags, out=True):
    return ["run", *flags] + (["--out", str(p / "out")] if out else [])


def _manifest_folder(p: Path, manifest, result: bytes | None = None) -> str:
    d = p / "saved"
    d.mkdir()
    (d / "manifest.json").write_text(manifest if isinstance(manifest, str) else json.dumps(manifest))
    if result is not None:
        (d / "result.npz").write_bytes(result)
    return str(d)


def _good_manifest(**over):
    m = dict(command="run", config=dict(backend="ideal"), versions={}, seed=0)
    m.update(over)
    return m


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _changed_input(p: Path):
    """A saved run whose weights file changed afterwards (repeatability)."""
    from ctattn.cli import main

    w, x = _w(p), _x(p)
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["run", "--weights", w, "--inputs", x, "--out", str(p / "first")]) == 0
    _w(p, W_Q=np.ones((2, 2, 4)))
    return ["run", "--config", str(p / "first" / "manifest.json"), "--out", str(p / "out")]


# (family, name, setup(tmp_path) -> argv)
CLI_CASES = [
    # -- unreadable inputs ------------------------------------------------------------------
    ("unreadable", "empty .npz", lambda p: _run(p, "--weights", _write(p, "W.npz", b""), "--inputs", _x(p))),
    ("unreadable", "truncated .npz", lambda p: _run(p, "--inputs", _write(p, "X.npz", _valid_npz_bytes()[:40]))),
    ("unreadable", "truncated .npz (half)", lambda p: _run(p, "--inputs", _write(p, "X.npz", _valid_npz_bytes()[:-30]))),
    ("unreadable", "non-zip .npz", lambda p: _run(p, "--inputs", _write(p, "X.npz", "hello, not a zip"))),
    ("unreadable", "random bytes .npz", lambda p: _run(p, "--weights", _write(p, "W.npz", os.urandom(300)), "--inputs", _x(p))),
    ("unreadable", ".npy passed as .npz", lambda p: (np.save(p / "X.npy", np.ones((3, 4))), _run(p, "--inputs", str(p / "X.npy")))[1]),
    ("unreadable", "folder as .npz", lambda p: ((p / "dir.npz").mkdir(), _run(p, "--inputs", str(p / "dir.npz")))[1]),
    ("unreadable", "missing weights file", lambda p: _run(p, "--weights", str(p / "nope.npz"), "--inputs", _x(p))),
    ("unreadable", "missing inputs file", lambda p: _run(p, "--inputs", str(p / "nope.npz"))),
    ("unreadable", "pickled object array", lambda p: (np.savez(p / "X.npz", X=np.array([{"a": 1}], dtype=object)), _run(p, "--inputs", str(p / "X.npz")))[1]),
    ("unreadable", "config missing", lambda p: _run(p, "--config", str(p / "nope.toml"))),
    ("unreadable", "config is a folder", lambda p: _run(p, "--config", str(p))),
    ("unreadable", "config invalid TOML", lambda p: _run(p, "--config", _write(p, "c.toml", "heads = = 3"))),
    ("unreadable", "config binary", lambda p: _run(p, "--config", _write(p, "c.toml", b"\xff\xfe\x00garbage"))),
    ("unreadable", "config JSON invalid", lambda p: _run(p, "--config", _write(p, "m.json", "{not json"))),
    ("unreadable", "config JSON without config table", lambda p: _run(p, "--config", _write(p, "m.json", "[1, 2]"))),
    ("unreadable", "config JSON config not a table", lambda p: _run(p, "--config", _write(p, "m.json", '{"config": 3}'))),
    ("unreadable", "config deeply nested JSON", lambda p: _run(p, "--config", _write(p, "m.json", "[" * 100000))),
    ("unreadable", "show: no folder", lambda p: ["show", str(p / "nothing")]),
    ("unreadable", "show: folder without manifest", lambda p: ((p / "empty").mkdir(), ["show", str(p / "empty")])[1]),
    ("unreadable", "show: manifest invalid JSON", lambda p: ["show", _manifest_folder(p, "{oops")]),
    ("unreadable", "show: manifest is a list", lambda p: ["show", _manifest_folder(p, "[]")]),
    ("unreadable", "show: manifest config is a string", lambda p: ["show", _manifest_folder(p, _good_manifest(config="x"))]),
    ("unreadable", "show: manifest argv is a number", lambda p: ["show", _manifest_folder(p, _good_manifest(argv=3))]),
    ("unreadable", "show: manifest without command", lambda p: ["show", _manifest_folder(p, {"config": {}})]),
    ("unreadable", "show: empty result.npz", lambda p: ["show", _manifest_folder(p, _good_manifest(), b"")]),
    ("unreadable", "show: truncated result.npz", lambda p: ["show", _manifest_folder(p, _good_manifest(), _npz(Y=np.ones(3), Y_ref=np.ones(3))[:50])]),
    ("unreadable", "show: non-zip result.npz", lambda p: ["show", _manifest_folder(p, _good_manifest(), b"plain text")]),
    ("unreadable", "show: result.npz Y string", lambda p: ["show", _manifest_folder(p, _good_manifest(), _npz(Y=np.array(["a"]), Y_ref=np.ones(1)))]),
    ("unreadable", "show: result.npz shapes differ", lambda p: ["show", _manifest_folder(p, _good_manifest(), _npz(Y=np.ones(3), Y_ref=np.ones(4)))]),
    ("unreadable", "grad --out existing folder", lambda p: (_grad_files(p), (p / "G").mkdir(), _grad(p, "G"))[2]),
    ("unreadable", "grad: targets truncated", lambda p: (_grad_files(p), _write(p, "T.npz", _npz(T=np.ones((3, 4)))[:60]), _grad(p))[2]),
    ("unreadable", "grad: targets .npy", lambda p: (_grad_files(p), np.save(p / "T.npy", np.ones((3, 4))), _grad(p, targets="T.npy"))[2]),
    ("unreadable", "lesion: empty weights", lambda p: ["lesion", "--silence", "L23", "--weights", _write(p, "W.npz", b""), "--inputs", _x(p)]),
    ("unreadable", "describe: non-zip inputs", lambda p: ["describe", "--inputs", _write(p, "X.npz", "zzz")]),
    # -- silently wrong values ---------------------------------------------------------------
    ("wrong values", "complex weights", lambda p: _run(p, *_files(p, w=dict(W_Q=np.ones((2, 2, 4)) * (1 + 1j))))),
    ("wrong values", "complex tokens", lambda p: _run(p, *_files(p, x=dict(X=np.ones((3, 4)) * 1j)))),
    ("wrong values", "string tokens", lambda p: _run(p, *_files(p, x=dict(X=np.full((3, 4), "1.5"))))),
    ("wrong values", "boolean tokens", lambda p: _run(p, *_files(p, x=dict(X=np.ones((3, 4), bool))))),
    ("wrong values", "boolean beta in W.npz", lambda p: _run(p, *_files(p, w=dict(beta=np.array(True))))),
    ("wrong values", "string beta in W.npz", lambda p: _run(p, *_files(p, w=dict(beta=np.array("0.5"))))),
    ("wrong values", "vector beta in W.npz", lambda p: _run(p, *_files(p, w=dict(beta=np.ones(2))))),
    ("wrong values", "complex beta in W.npz", lambda p: _run(p, *_files(p, w=dict(beta=np.array(1j))))),
    ("wrong values", "NaN in tokens", lambda p: _run(p, *_files(p, x=dict(X=np.full((3, 4), np.nan))))),
    ("wrong values", "inf in weights", lambda p: _run(p, *_files(p, w=dict(W_V=np.full((2, 2, 4), np.inf))))),
    ("wrong values", "W_K wrong shape", lambda p: _run(p, *_files(p, w=dict(W_K=np.ones((2, 3, 4)))))),
    ("wrong values", "W_O missing", lambda p: _run(p, *_files(p, w=dict(W_O=None)))),
    ("wrong values", "unknown key in W.npz", lambda p: _run(p, *_files(p, w=dict(W_X=np.ones(1))))),
    ("wrong values", "1-D tokens", lambda p: _run(p, *_files(p, x=dict(X=np.ones(4))))),
    ("wrong values", "tokens d_model mismatch", lambda p: _run(p, *_files(p, x=dict(X=np.ones((3, 5)))))),
    ("wrong values", "X_kv d_model mismatch", lambda p: _run(p, *_files(p, x=dict(X_kv=np.ones((2, 5)))))),
    ("wrong values", "no tokens", lambda p: _run(p, *_files(p, x=dict(X=np.ones((0, 4)))))),
    ("wrong values", "--kv-tokens without X_kv", lambda p: _run(p, *_files(p), "--kv-tokens", "5")),
    ("wrong values", "--kv-tokens contradicts X_kv", lambda p: _run(p, *_files(p, x=dict(X_kv=np.ones((2, 4)))), "--kv-tokens", "5")),
    ("wrong values", "--tokens contradicts inputs", lambda p: _run(p, *_files(p), "--tokens", "7")),
    ("wrong values", "--heads contradicts weights", lambda p: _run(p, *_files(p), "--heads", "3")),
    ("wrong values", "--d-k contradicts weights", lambda p: _run(p, *_files(p), "--d-k", "3")),
    ("wrong values", "TOML seed 1.5", lambda p: _run(p, "--config", _write(p, "c.toml", "seed = 1.5"))),
    ("wrong values", "TOML seed true", lambda p: _run(p, "--config", _write(p, "c.toml", "seed = true"))),
    ("wrong values", "TOML seed negative", lambda p: _run(p, "--config", _write(p, "c.toml", "seed = -1"))),
    ("wrong values", "--seed 1.5", lambda p: _run(p, "--seed", "1.5")),
    ("wrong values", "TOML heads 2.0", lambda p: _run(p, "--config", _write(p, "c.toml", "heads = 2.0"))),
    ("wrong values", "TOML heads 0", lambda p: _run(p, "--config", _write(p, "c.toml", "heads = 0"))),
    ("wrong values", "TOML causal string", lambda p: _run(p, "--config", _write(p, "c.toml", 'causal = "yes"'))),
    ("wrong values", "TOML beta boolean", lambda p: _run(p, "--config", _write(p, "c.toml", "beta = true"))),
    ("wrong values", "TOML beta string", lambda p: _run(p, "--config", _write(p, "c.toml", 'beta = "abc"'))),
    ("wrong values", "TOML beta nan", lambda p: _run(p, "--config", _write(p, "c.toml", "beta = nan"))),
    ("wrong values", "TOML variant unknown", lambda p: _run(p, "--config", _write(p, "c.toml", 'variant = "sparse"'))),
    ("wrong values", "TOML unknown key", lambda p: _run(p, "--config", _write(p, "c.toml", "window = 3"))),
    ("wrong values", "TOML weights a number", lambda p: _run(p, "--config", _write(p, "c.toml", "weights = 3"))),
    ("wrong values", "TOML table value", lambda p: _run(p, "--config", _write(p, "c.toml", "[run]\nheads = [1, 2]"))),
    ("wrong values", "--beta -1", lambda p: _run(p, "--beta", "-1", "--variant", "softmax")),
    ("wrong values", "--beta nan", lambda p: _run(p, "--beta", "nan", "--variant", "softmax")),
    ("wrong values", "--beta inf", lambda p: _run(p, "--beta", "inf", "--variant", "softmax")),
    ("wrong values", "--beta abc", lambda p: _run(p, "--beta", "abc")),
    ("wrong values", "--phi unknown", lambda p: _run(p, "--phi", "tanh")),
    ("wrong values", "--phi identity in a circuit", lambda p: _run(p, "--phi", "identity")),
    ("wrong values", "memory layout softmax", lambda p: _run(p, "--layout", "memory", "--variant", "softmax")),
    ("wrong values", "--variant unknown", lambda p: _run(p, "--variant", "sparse")),
    ("wrong values", "--settle on ideal", lambda p: _run(p, "--settle", "100")),
    ("wrong values", "--window on rate", lambda p: _run(p, "--backend", "rate", "--window", "100")),
    ("wrong values", "--neurons-per-unit on rate", lambda p: _run(p, "--backend", "rate", "--neurons-per-unit", "5")),
    ("wrong values", "--neurons-per-unit on ideal", lambda p: _run(p, "--neurons-per-unit", "5")),
    ("wrong values", "--target on ideal", lambda p: _run(p, "--target", "numpy")),
    ("wrong values", "--target standalone on rate", lambda p: _run(p, "--backend", "rate", "--target", "standalone")),
    ("wrong values", "TOML tau_ms on ideal", lambda p: _run(p, "--config", _write(p, "c.toml", 'tau_ms = "5 ms"'))),
    ("wrong values", "abbreviation --neuron", lambda p: _run(p, "--backend", "spiking", "--neuron", "5")),
    ("wrong values", "abbreviation --tok", lambda p: _run(p, "--tok", "3")),
    ("wrong values", "abbreviation --back", lambda p: _run(p, "--back", "rate")),
    ("wrong values", "abbreviation --dry", lambda p: _run(p, "--dry")),
    ("wrong values", "show abbreviation --js", lambda p: ["show", str(p / "out"), "--js"]),
    ("wrong values", "lesion without target", lambda p: ["lesion", *SMALL]),
    ("wrong values", "lesion unknown target", lambda p: ["lesion", "--silence", "L7", *SMALL]),
    ("wrong values", "unknown command", lambda p: ["frobnicate"]),
    ("wrong values", "unknown flag", lambda p: _run(p, "--frobnicate")),
    ("wrong values", "train --steps -1", lambda p: ["train", "--steps", "-1", "--out", str(p / "t")]),
    ("wrong values", "grad targets wrong shape", lambda p: (_grad_files(p, T=np.ones((2, 4))), _grad(p))[1]),
    ("wrong values", "grad targets complex", lambda p: (_grad_files(p, T=np.ones((3, 4)) * 1j), _grad(p))[1]),
    # -- non-finite results ------------------------------------------------------------------
    ("non-finite", "softmax beta 1e6", lambda p: _run(p, *SMALL, "--variant", "softmax", "--beta", "1e6")),
    ("non-finite", "softmax beta 1e300", lambda p: _run(p, *SMALL, "--variant", "softmax", "--beta", "1e300")),
    ("non-finite", "softmax inputs 1e150", lambda p: _run(p, *_files(p, x=dict(X=np.full((3, 4), 1e150))), "--variant", "softmax")),
    ("non-finite", "softmax weights 1e200", lambda p: _run(p, *_files(p, w=dict(W_Q=np.full((2, 2, 4), 1e200))), "--variant", "softmax")),
    ("non-finite", "linear inputs near the float limit", lambda p: _run(p, *_files(p, x=dict(X=np.full((3, 4), 1e300))))),
    ("non-finite", "normalized inputs near the float limit", lambda p: _run(p, *_files(p, x=dict(X=np.full((3, 4), 1e300))), "--variant", "normalized")),
    ("non-finite", "linear weights near the float limit", lambda p: _run(p, *_files(p, w=dict(W_V=np.full((2, 2, 4), 1e300), W_O=np.full((2, 4, 2), 1e300))))),
    ("non-finite", "rate backend inputs 1e300", lambda p: _run(p, *_files(p, x=dict(X=np.full((3, 4), 1e300))), "--backend", "rate", "--settle", "20")),
    # -- absurd sizes ------------------------------------------------------------------------
    ("absurd sizes", "--tokens 1e12", lambda p: _run(p, "--tokens", "1000000000000")),
    ("absurd sizes", "--heads 100000 --tokens 100000", lambda p: _run(p, "--heads", "100000", "--tokens", "100000")),
    ("absurd sizes", "--d-model 10000000", lambda p: _run(p, "--d-model", "10000000")),
    ("absurd sizes", "--heads 1e7 rate", lambda p: _run(p, "--heads", "10000000", "--backend", "rate")),
    ("absurd sizes", "TOML window 1e9 s", lambda p: _run(p, "--config", _write(p, "c.toml", 'backend = "spiking"\nwindow_ms = "1e9 s"'))),
    ("absurd sizes", "TOML settle 1e9 s (rate)", lambda p: _run(p, "--config", _write(p, "c.toml", 'backend = "rate"\nsettle_ms = "1e9 s"'))),
    ("absurd sizes", "--window 1e12", lambda p: _run(p, "--backend", "spiking", "--window", "1e12")),
    ("absurd sizes", "--settle 0.5 < dt (rate)", lambda p: _run(p, "--backend", "rate", "--settle", "0.5")),
    ("absurd sizes", "--settle 0.1 < dt (spiking)", lambda p: _run(p, "--backend", "spiking", "--settle", "0.1")),
    ("absurd sizes", "TOML settle 1 us", lambda p: _run(p, "--config", _write(p, "c.toml", 'backend = "rate"\nsettle_ms = "1 us"'))),
    ("absurd sizes", "settle not a whole number of steps", lambda p: _run(p, "--backend", "rate", "--settle", "2.5", *SMALL)),
    ("absurd sizes", "dt longer than tau", lambda p: _run(p, "--config", _write(p, "c.toml", 'backend = "rate"\ndt_ms = 20\nsettle_ms = 40'))),
    ("absurd sizes", "--neurons-per-unit 0", lambda p: _run(p, "--backend", "spiking", "--neurons-per-unit", "0")),
    ("absurd sizes", "--neurons-per-unit 1e9", lambda p: _run(p, "--backend", "spiking", "--neurons-per-unit", "1000000000")),
    ("absurd sizes", "spiking, a week of steps", lambda p: _run(p, "--backend", "spiking", "--tokens", "100000", "--window", "1000000")),
    ("absurd sizes", "--heads 0", lambda p: _run(p, "--heads", "0")),
    ("absurd sizes", "--tokens -3", lambda p: _run(p, "--tokens", "-3")),
    ("absurd sizes", "dry-run of an absurd size", lambda p: _run(p, "--tokens", "1000000000000", "--dry-run")),
    # -- output safety -----------------------------------------------------------------------
    ("output safety", "--out a regular file", lambda p: (_write(p, "file.txt", "keep me"), ["run", "--out", str(p / "file.txt")])[1]),
    ("output safety", "--out /dev/null", lambda p: ["run", "--out", "/dev/null"]),
    ("output safety", "--out the folder of the inputs", lambda p: ["run", *_files(p), "--out", str(p)]),
    ("output safety", "--out an unrelated folder", lambda p: ((p / "mine").mkdir(), _write(p / "mine", "notes.txt", "x"), ["run", "--out", str(p / "mine")])[2]),
    ("output safety", "--out .", lambda p: ["run", "--out", "."]),
    ("output safety", "--out x/..", lambda p: ((p / "x").mkdir(), ["run", "--out", "x/.."])[1]),
    ("output safety", "--out a result with an extra file", lambda p: (_write(p / "out", "notes.txt", "mine"), _run(p))[1]),
    ("output safety", "--out under a file", lambda p: (_write(p, "file.txt", "keep"), ["run", "--out", str(p / "file.txt" / "res")])[1]),
    ("output safety", "--out /", lambda p: ["run", "--out", "/"]),
    ("output safety", "--out a symlink to a file", lambda p: (_write(p, "real.txt", "keep"), os.symlink(p / "real.txt", p / "link"), ["run", "--out", str(p / "link")])[2]),
    ("output safety", "--out holds the config", lambda p: (_write(p / "out", "c.toml", "heads = 2"), ["run", "--config", str(p / "out" / "c.toml"), "--out", str(p / "out")])[1]),
    ("output safety", "--plots without --out", lambda p: ["run", "--plots"]),
    ("output safety", "lesion --out a file", lambda p: (_write(p, "file.txt", "keep"), ["lesion", "--silence", "L23", *SMALL, "--out", str(p / "file.txt")])[1]),
    ("output safety", "train --out a file", lambda p: (_write(p, "file.txt", "keep"), ["train", "--out", str(p / "file.txt")])[1]),
    ("output safety", "train --out an unrelated folder", lambda p: ((p / "mine").mkdir(), _write(p / "mine", "a.txt", "x"), ["train", "--out", str(p / "mine")])[2]),
    ("output safety", "grad --out an input file", lambda p: (_grad_files(p), _grad(p, "W.npz"))[1]),
    ("output safety", "grad --out an unrelated file", lambda p: (_grad_files(p), _write(p, "G.npz", "mine"), _grad(p, "G.npz"))[2]),
    ("output safety", "demo --out under a file", lambda p: (_write(p, "file.txt", "keep"), ["demo", "--out", str(p / "file.txt")])[1]),
    ("output safety", "figure --out /dev/null", lambda p: ["figure", "traces", "--out", "/dev/null"]),
    ("output safety", "figure --out .", lambda p: ["figure", "traces", "--out", "."]),
    ("output safety", "figure --out a folder named .png", lambda p: ((p / "f.png").mkdir(), ["figure", "traces", "--out", str(p / "f.png")])[1]),
    ("output safety", "figure --out a non-PNG file", lambda p: (_write(p, "notes.png", "my notes"), ["figure", "traces", "--out", str(p / "notes.png")])[1]),
    ("output safety", "figure --out its own config", lambda p: (_write(p, "c.png", "[figure]\n"), ["figure", "traces", "--config", str(p / "c.png"), "--out", str(p / "c.png")])[1]),
    ("unreadable", "figure: invalid TOML", lambda p: ["figure", "traces", "--config", _write(p, "f.toml", "a = = 1")]),
    ("unreadable", "figure: missing config", lambda p: ["figure", "traces", "--config", str(p / "nope.toml")]),
    # -- repeatability -----------------------------------------------------------------------
    ("repeatability", "manifest input changed", _changed_input),
    ("repeatability", "manifest names a missing input", lambda p: _run(p, "--config", _write(p, "m.json", json.dumps(dict(config=dict(weights=str(p / "gone.npz"))))))),
    ("repeatability", "manifest with a bad digest table", lambda p: _run(p, "--config", _write(p, "m.json", json.dumps(dict(config={}, input_sha256=[1]))))),
]  # fmt: skip


def _grad_files(p: Path, T=None):
    _w(p)
    _x(p)
    np.savez(p / "T.npz", T=np.ones((3, 4)) if T is None else T)


def _grad(p: Path, out="G.npz", targets="T.npz"):
    return ["grad", "--weights", str(p / "W.npz"), "--inputs", str(p / "X.npz"), "--targets", str(p / targets), "--out", str(p / out)]  # fmt: skip


def _api_cases():
    import ctattn
    from ctattn.core.problem import AttentionSpec, AttentionWeights, Tokens

    W = ctattn.random_weights(0, 2, 4, 2, 2)
    X = ctattn.random_tokens(0, 3, 4)
    sim = ctattn.simulate
    return [
        ("beta", lambda: sim(W, X, variant="softmax", beta="abc")),
        ("beta", lambda: sim(W, X, variant="softmax", beta=True)),
        ("beta", lambda: sim(W, X, variant="softmax", beta=float("nan"))),
        ("beta", lambda: sim(W, X, variant="softmax", beta=1e6)),
        ("settle_ms", lambda: sim(W, X, backend="rate", settle_ms="300 parsecs")),
        ("settle_ms", lambda: sim(W, X, backend="ideal", settle_ms=300)),
        ("neurons_per_unit", lambda: sim(W, X, backend="rate", neurons_per_unit=5)),
        ("weights", lambda: sim(W.arrays(), X)),
        ("tokens", lambda: sim(W, {"X": X.X})),
        ("X", lambda: sim(W, "tokens")),
        ("X", lambda: sim(W, X.X * 1j)),
        ("X", lambda: sim(W, X.X.astype(str))),
        ("n_heads", lambda: ctattn.random_weights(0, "a", 4, 2, 2)),
        ("n_heads", lambda: ctattn.random_weights(0, 2.5, 4, 2, 2)),
        ("seed", lambda: ctattn.random_weights(1.5, 2, 4, 2, 2)),
        ("seed", lambda: ctattn.random_tokens(-1, 3, 4)),
        ("n_tokens", lambda: ctattn.random_tokens(0, True, 4)),
        ("causal", lambda: sim(W, X, causal="yes")),
        ("variant", lambda: sim(W, X, variant=3)),
        ("backend", lambda: sim(W, X, backend="quantum")),
        ("W_Q", lambda: AttentionWeights(W_Q=np.ones((2, 2, 4)) * 1j, W_K=W.W_K, W_V=W.W_V, W_O=W.W_O)),
        ("W_Q", lambda: AttentionWeights(W_Q={"a": 1}, W_K=W.W_K, W_V=W.W_V, W_O=W.W_O)),
        ("beta", lambda: AttentionWeights(**W.arrays(), beta="0.5")),
        ("X_kv", lambda: Tokens(X=X.X, X_kv=np.ones((2, 4), bool))),
        ("phi", lambda: AttentionSpec(phi=None)),
        ("beta", lambda: AttentionSpec(beta=[1.0])),
    ]


def _snapshot(root: Path) -> dict:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if path.is_symlink() or path.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def previous_result(folder: Path) -> None:
    """A small ctattn result in ``folder`` (the one every case's ``--out`` points at)."""
    from ctattn.cli import main

    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["run", *SMALL, "--out", str(folder)]) == 0


def run_cli_case(setup, tmp: Path, template: Path | None = None) -> tuple[bool, str]:
    """Run one case in ``tmp`` (also the working folder); returns ``(handled, why)``."""
    from ctattn.cli import main

    if template is not None:
        shutil.copytree(template, tmp / "out")
    else:
        previous_result(tmp / "out")
    cwd = os.getcwd()
    os.chdir(tmp)
    try:
        argv = setup(tmp)
        before = _snapshot(tmp)
        err, out = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse --help and friends
                code = exc.code
            except BaseException as exc:  # noqa: BLE001 - the corpus reports every escape
                return False, f"raised {type(exc).__name__}: {exc}"
        after = _snapshot(tmp)
    finally:
        os.chdir(cwd)
    lines = err.getvalue().strip().splitlines()
    if code != 2:
        return False, f"exit {code}, stderr {lines[-1:] or ''}"
    if len(lines) != 1 or "Traceback" in err.getvalue():
        return False, f"{len(lines)} lines on stderr: {lines[:3]}"
    if after != before:
        changed = sorted(set(after.items()) ^ set(before.items()))
        return False, f"the folder changed: {changed[:3]}"
    return True, lines[0]


def run_api_case(param: str, call) -> tuple[bool, str]:
    try:
        call()
    except (ValueError, TypeError) as exc:
        return (param in str(exc)), f"{type(exc).__name__}: {exc}"
    except BaseException as exc:  # noqa: BLE001
        return False, f"raised {type(exc).__name__}: {exc}"
    return False, "no error"


def main() -> int:
    rows: dict[str, list] = {}
    failures = []
    with tempfile.TemporaryDirectory() as base:
        base = Path(base)
        template = base / "template"
        previous_result(template)
        for i, (family, name, setup) in enumerate(CLI_CASES):
            tmp = base / f"case{i}"
            tmp.mkdir()
            ok, why = run_cli_case(setup, tmp, template)
            rows.setdefault(family, []).append(ok)
            if not ok:
                failures.append((family, name, why))
        for param, call in _api_cases():
            ok, why = run_api_case(param, call)
            rows.setdefault("API", []).append(ok)
            if not ok:
                failures.append(("API", param, why))
    print("| family | cases | handled (exit 2, one line, nothing written; API: error names the parameter) |")
    print("|---|---:|---:|")
    for family, oks in rows.items():
        print(f"| {family} | {len(oks)} | {sum(oks)} |")
    print(f"| **total** | {sum(len(v) for v in rows.values())} | {sum(sum(v) for v in rows.values())} |")
    for family, name, why in failures:
        print(f"FAILED {family}: {name}: {why}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
