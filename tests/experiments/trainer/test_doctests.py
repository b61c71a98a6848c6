"""Run the examples in the comparison harness's and the exact evaluation's docstrings."""

from __future__ import annotations

import doctest
import importlib

import pytest

pytest.importorskip("transformers")

MODULES = ["cures_verl.experiments.trainer.compare", "cures_verl.experiments.trainer.exact"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
