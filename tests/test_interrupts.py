"""SIGINT and SIGTERM at three points of a run (setup, simulation, writing) end it with exit
130 / 143 and one line on stderr, and leave nothing behind: no result, no temporary folder,
no Brian2 debug log; a previous result in ``--out`` survives byte for byte.

Each test runs ``ctattn run`` in a fresh process whose wrapper sends the signal to the
process itself at the chosen point: while the problem is being set up, two seconds into
Brian2's run (a rate run that would take about ten seconds), or after ``result.npz``
was written into the temporary output folder.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

WRAPPER = textwrap.dedent(
    """
    import os, signal, sys, threading
    point, signame = sys.argv[1], sys.argv[2]
    sig = getattr(signal, signame)

    def hit():
        os.kill(os.getpid(), sig)

    import ctattn.api
    if point == "setup":
        original = ctattn.api.problem_from_config
        def patched(*a, **k):
            hit()
            return original(*a, **k)
        ctattn.api.problem_from_config = patched
    elif point == "simulation":
        import brian2
        original = brian2.Network.run
        def patched(self, *a, **k):
            threading.Timer(2.0, hit).start()
            return original(self, *a, **k)
        brian2.Network.run = patched
    elif point == "writing":
        import ctattn.commands.run as run_module
        original = run_module.write_json
        def patched(path, obj):
            assert (os.path.dirname(path) and os.listdir(os.path.dirname(path)))  # result.npz is there
            hit()
            return original(path, obj)
        run_module.write_json = patched
    from ctattn.cli import main
    sys.exit(main(sys.argv[3:]))
    """
)

RUN = ["run", "--backend", "rate", "--heads", "2", "--tokens", "3", "--d-model", "4", "--out", "out"]
# Long enough that the signal two seconds in lands inside Brian2's loop (about 10 s of run).
LONG = ["--tokens", "6", "--settle", "10000"]


def _tree(root: Path) -> dict:
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir")
        for p in sorted(root.rglob("*"))
        if "tmp" not in p.relative_to(root).parts[:1]
    }


CASES = [
    (point, signame, code, previous)
    for point in ("setup", "simulation", "writing")
    for signame, code in (("SIGINT", 130), ("SIGTERM", 143))
    # a previous result is checked where it is most at risk: while writing
    for previous in ((False, True) if point == "writing" else (False,))
]


@pytest.mark.parametrize("point,signame,code,previous", CASES)
def test_interrupt_leaves_nothing_behind(tmp_path, point, signame, code, previous):
    (tmp_path / "tmp").mkdir()
    env = dict(os.environ, TMPDIR=str(tmp_path / "tmp"))
    if previous:
        from ctattn.cli import main

        assert main(["run", "--heads", "2", "--tokens", "3", "--out", str(tmp_path / "out")]) == 0
    before = _tree(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-c", WRAPPER, point, signame, *RUN, *(LONG if point == "simulation" else [])],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == code, proc.stderr
    assert lines == [f"ctattn: {'interrupted' if code == 130 else 'terminated'} ({signame})"], proc.stderr
    assert _tree(tmp_path) == before  # no result, no temp folder; a previous result unchanged
    assert list((tmp_path / "tmp").iterdir()) == []  # no Brian2 debug log or script copy


def test_signal_numbers():
    assert 128 + signal.SIGINT == 130 and 128 + signal.SIGTERM == 143
