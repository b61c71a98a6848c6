"""The verl versions this adapter is built and tested against, checked at import with a clear message.

verl changes its trainer internals between minor releases (the curriculum-sampler hook was removed in
0.8, the V1 trainer became the default in 0.9), and the adapter relies on a few of them; each reliance
is written at its override site. We therefore accept exactly the versions we test.
"""

from __future__ import annotations

from importlib import metadata

__all__ = ["SUPPORTED_VERL", "TESTED_VERL_VERSIONS", "check_verl_version"]

#: Versions the adapter accepts. Keep in step with setup.py (VERL_PIN) and the README.
TESTED_VERL_VERSIONS = ("0.9.1",)
SUPPORTED_VERL = "==0.9.1"


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
            raise ImportError(
                'cures_verl.verl_adapter needs verl: pip install "cures-verl[verl]" '
                f"(which installs verl[verl-core]{SUPPORTED_VERL})"
            ) from exc
    if installed not in TESTED_VERL_VERSIONS:
        raise ImportError(
            f"cures-verl is built and tested against verl {', '.join(TESTED_VERL_VERSIONS)} but verl {installed} is "
            f'installed; install the tested version with pip install "verl[verl-core]{SUPPORTED_VERL}". '
            "The adapter overrides verl trainer internals that change between releases."
        )
    return installed
