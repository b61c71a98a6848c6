"""Run the examples in the experiment tooling's docstrings (pytest's testpaths collect doctests only in core/ and
config.py)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "cures_verl.experiments.curriculum.simulator",
    "cures_verl.experiments.curriculum.overhead",
    "cures_verl.experiments.curriculum.posterior_advantage",
    "cures_verl.experiments.strategies.rules",
    "cures_verl.experiments.strategies.environment",
    "cures_verl.experiments.strategies.cures",
    "cures_verl.experiments.trainer.compare",
    "cures_verl.experiments.trainer.exact",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    if name.startswith("cures_verl.experiments.trainer."):
        pytest.importorskip("transformers")
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
