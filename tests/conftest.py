"""Shared test fixtures and the ``slow`` marker.

Slow tests (long simulations, the standard-problem acceptance checks) run only with
``--runslow`` (or ``-m slow``): the default suite stays within CI's budget.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow") or "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def seed(request) -> int:
    """A seed fixed by the test's id (Nengo's habit): stable across runs, distinct across tests."""
    return zlib.crc32(request.node.nodeid.encode()) % (2**31)


@pytest.fixture
def rng(seed) -> np.random.Generator:
    return np.random.default_rng(seed)
