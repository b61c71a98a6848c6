"""Packaging for cures-verl. The version lives in cures_verl/__init__.py."""

from __future__ import annotations

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r'^__version__ = "([^"]+)"', (HERE / "cures_verl" / "__init__.py").read_text(), re.M).group(1)

# The verl release we build and test against. verl changes trainer internals between minor
# releases (the curriculum-sampler hook was removed in 0.8), so we pin it exactly.
VERL_PIN = "0.9.1"

EXTRAS = {
    # verl's trainer needs the verl-core extra (cachetools, TransferQueue); plain `verl` cannot import it.
    "verl": [f"verl[verl-core]=={VERL_PIN}", "hydra-core>=1.3", "omegaconf>=2.3"],
    "math": ["math-verify>=0.8"],
    "plot": ["matplotlib>=3.7"],
    "data": ["pyarrow>=15", "datasets>=2.14", "tqdm>=4.60"],
    # lint tools pinned: a newer ruff formats differently and would turn CI red on unchanged code
    "test": ["pytest>=8", "hypothesis>=6.100", "ruff==0.17.6", "mypy==2.4.1"],
}
# vLLM rollout on GPUs, through verl's own pins (torch 2.11 CUDA build), plus what the GPU workflow runs besides
# training: data preparation and the plots (scripts/prepare_data.py, scripts/plot_curriculum.py).
EXTRAS["gpu"] = [
    f"verl[verl-core,vllm]=={VERL_PIN}",
    "hydra-core>=1.3",
    "math-verify>=0.8",
    *EXTRAS["plot"],
    *EXTRAS["data"],
]
EXTRAS["all"] = sorted({req for name in ("verl", "math", "plot", "data", "test") for req in EXTRAS[name]})

setup(
    name="cures-verl",
    version=VERSION,
    description="CurES curriculum sampling and rollout allocation for verl (arXiv 2510.01037)",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10,<3.13",
    packages=find_packages(include=["cures_verl", "cures_verl.*"]),
    include_package_data=True,
    package_data={
        "cures_verl": ["verl_adapter/config/*.yaml", "verl_adapter/config/profile/*.yaml", "cpu/*.yaml"] + ["py.typed"]
    },
    install_requires=["numpy>=1.26"],
    extras_require=EXTRAS,
    entry_points={
        # verl imports every module in this group on `import verl`, in every Ray worker. Our plugin
        # registers the CPU platform and the transformers rollout, and does nothing unless the CPU
        # mode is switched on (CURES_CPU_MODE=1); see cures_verl/cpu/.
        "verl.plugins": ["cures_cpu = cures_verl.cpu.plugin"],
        "console_scripts": ["cures-bench = cures_verl.experiments.curriculum.__main__:main"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: Apache Software License",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
