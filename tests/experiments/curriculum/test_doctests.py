"""Run the examples in the benchmark's docstrings (pytest's testpaths do not collect
cures_verl/experiments/curriculum)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "cures_verl.experiments.curriculum.simulator",
    "cures_verl.experiments.curriculum.overhead",
    "cures_verl.experiments.curriculum.posterior_advantage",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
