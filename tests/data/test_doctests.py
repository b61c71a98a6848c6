"""Run the doctests of cures_verl.data (pytest's testpaths only collect cures_verl/core by default)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import cures_verl.data

MODULES = sorted(info.name for info in pkgutil.iter_modules(cures_verl.data.__path__, "cures_verl.data."))


@pytest.mark.parametrize("name", MODULES)
def test_module_doctests_pass(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"


def test_importing_the_data_package_loads_no_heavy_dependency() -> None:
    import subprocess
    import sys

    heavy = ("torch", "verl", "pyarrow", "datasets", "pandas")
    code = f"import sys, cures_verl.data; print(','.join(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
