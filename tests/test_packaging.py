"""The install extras: what a GPU user installs can also prepare data and plot; the verl version check names them."""

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

    from cures_verl.experiments import plots

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install 'cures-verl\[plot\]'"):
        plots._pyplot()


def test_a_verl_version_other_than_the_tested_one_is_refused_with_both_install_commands(monkeypatch):
    from cures_verl.verl_adapter import compat

    extras = _setup_kwargs(monkeypatch)["extras_require"]
    # the commands in the message install exactly what setup.py's extras pin
    assert compat.CPU_REQUIREMENT == "verl[verl-core]==0.9.1" and compat.CPU_REQUIREMENT in extras["verl"]
    assert compat.GPU_REQUIREMENT == "verl[verl-core,vllm]==0.9.1" and compat.GPU_REQUIREMENT in extras["gpu"]
    assert compat.check_verl_version("0.9.1") == "0.9.1"
    for other in ("0.9.0", "0.10.0", "0.9.1.dev0"):
        with pytest.raises(ImportError) as refused:
            compat.check_verl_version(other)
        message = str(refused.value)
        assert f"verl {other} is installed" in message
        assert 'CPU: pip install "verl[verl-core]==0.9.1"' in message
        assert 'GPU, with the vLLM rollout: pip install "verl[verl-core,vllm]==0.9.1"' in message
        assert 'pip install -e ".[gpu]"' in message


def test_a_missing_verl_names_both_install_commands(monkeypatch):
    from importlib import metadata

    from cures_verl.verl_adapter import compat

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(compat.metadata, "version", missing)
    with pytest.raises(ImportError, match=r'needs verl, which is not installed\. CPU: pip install "verl\[verl-core\]'):
        compat.check_verl_version()
    with pytest.raises(ImportError, match=r'GPU, with the vLLM rollout: pip install "verl\[verl-core,vllm\]==0\.9\.1"'):
        compat.check_verl_version()
