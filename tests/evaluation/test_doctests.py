"""Run the doctests of cures_verl.evaluation (pytest's testpaths only collect cures_verl/core by default)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import subprocess
import sys

import pytest

import cures_verl.evaluation

MODULES = sorted(info.name for info in pkgutil.iter_modules(cures_verl.evaluation.__path__, "cures_verl.evaluation."))


@pytest.mark.parametrize("name", MODULES)
def test_module_doctests_pass(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"


def test_importing_the_evaluation_package_loads_neither_torch_nor_verl() -> None:
    heavy = ("torch", "transformers", "verl", "vllm", "pyarrow")
    code = f"import sys, cures_verl.evaluation; print(','.join(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
