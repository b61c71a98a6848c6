"""The verl versions this adapter is built and tested against, checked at import with a clear message.

verl changes its trainer internals between minor releases (the curriculum-sampler hook was removed in
0.8, the V1 trainer became the default in 0.9), and the adapter relies on a few of them; each reliance
is written at its override site. We therefore accept exactly the versions we test.
"""

from __future__ import annotations

from importlib import metadata

__all__ = [
    "CPU_REQUIREMENT",
    "GPU_REQUIREMENT",
    "INSTALL_HINT",
    "SUPPORTED_VERL",
    "TESTED_VERL_VERSIONS",
    "check_verl_version",
]

#: Versions the adapter accepts. Keep in step with setup.py (VERL_PIN) and the README.
TESTED_VERL_VERSIONS = ("0.9.1",)
SUPPORTED_VERL = "==0.9.1"
#: What setup.py's ``verl`` extra installs (CPU: verl's trainer, no rollout engine) ...
CPU_REQUIREMENT = f"verl[verl-core]{SUPPORTED_VERL}"
#: ... and what its ``gpu`` extra installs: verl's vllm extra adds vLLM and verl's pinned CUDA build of torch.
GPU_REQUIREMENT = f"verl[verl-core,vllm]{SUPPORTED_VERL}"
#: The install commands, for both kinds of machine.
INSTALL_HINT = (
    f'CPU: pip install "{CPU_REQUIREMENT}" (or pip install -e ".[verl]" in the cures-verl checkout); '
    f'GPU, with the vLLM rollout: pip install "{GPU_REQUIREMENT}" (or pip install -e ".[gpu]" in the checkout, '
    "which adds data preparation and plotting)"
)


def check_verl_version(installed: str | None = None) -> str:
    """Return the installed verl version, or raise ImportError saying what to install.

    Args:
        installed: Version string to check (default: the installed distribution's).

    Raises:
        ImportError: If verl is missing or its version is not one we test.
    """
    if installed is None:
        try:
            installed = metadata.version("verl")
        except metadata.PackageNotFoundError as exc:
            raise ImportError(f"cures_verl.verl_adapter needs verl, which is not installed. {INSTALL_HINT}.") from exc
    if installed not in TESTED_VERL_VERSIONS:
        raise ImportError(
            f"cures-verl is built and tested against verl {', '.join(TESTED_VERL_VERSIONS)} but verl {installed} is "
            f"installed; install the tested version. {INSTALL_HINT}. "
            "The adapter overrides verl trainer internals that change between releases."
        )
    return installed
