"""The examples in the public docstrings run and give what they show (numpydoc "Examples")."""

from __future__ import annotations

import doctest
import importlib

import pytest

DOCUMENTED = [
    "volforecast.backtests",
    "volforecast.calibration",
    "volforecast.drift",
    "volforecast.forecaster",
    "volforecast.injection",
    "volforecast.lineage",
    "volforecast.metrics",
    "volforecast.pooling",
    "volforecast.progress",
    "volforecast.selection",
    "volforecast.scoring",
    "volforecast.walkforward",
]


@pytest.mark.parametrize("name", DOCUMENTED)
def test_docstring_examples_run_as_written_when_executed(name, monkeypatch):
    for key in [k for k in __import__("os").environ if k.startswith("VOLF_")]:
        monkeypatch.delenv(key)
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0, f"{name} has no example"
