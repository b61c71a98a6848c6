"""The install extras: what a GPU user installs can also prepare data and plot."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
import setuptools

ROOT = Path(__file__).resolve().parents[1]


def _setup_kwargs(monkeypatch) -> dict:
    captured: dict = {}
    monkeypatch.setattr(setuptools, "setup", lambda **kwargs: captured.update(kwargs))
    monkeypatch.chdir(ROOT)
    runpy.run_path(str(ROOT / "setup.py"), run_name="__main__")
    return captured


def test_gpu_extra_includes_plotting_and_data_preparation(monkeypatch):
    extras = _setup_kwargs(monkeypatch)["extras_require"]
    gpu = set(extras["gpu"])
    assert set(extras["plot"]) <= gpu and set(extras["data"]) <= gpu
    assert any(req.startswith("verl[verl-core,vllm]==") for req in gpu)


def test_plotting_without_matplotlib_names_the_install(monkeypatch):
    import sys

    from cures_verl import plots

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install 'cures-verl\[plot\]'"):
        plots._pyplot()
