"""The bridge between the Hydra ``cures:`` block and :class:`cures_verl.config.CuresConfig`.

Every value of the YAML block is ``${cures_preset:<key>}``: the :func:`register_resolvers` resolver
looks ``<key>`` up in the preset named by ``cures.preset``, so selecting a preset changes every default
while keys set on the command line (which replace the interpolation) win. The conversion to the typed
dataclass happens once, here, and validates every value.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from cures_verl.config import CuresConfig, preset_values
from cures_verl.config_docs import RESOLVER

__all__ = ["CONFIG_DIR", "CONFIG_NAME", "cures_config_from", "register_resolvers"]

#: Package holding cures_trainer.yaml (Hydra: config_path for @hydra.main, or pkg:// in a searchpath).
CONFIG_DIR = "config"
CONFIG_NAME = "cures_trainer"


def _preset_value(key: str, *, _root_: DictConfig) -> Any:
    cures = _root_.get("cures")
    preset = cures.get("preset", "paper") if cures is not None else "paper"
    values = preset_values(str(preset))
    if key not in values:
        raise KeyError(f"cures_preset: unknown key {key!r}; valid keys: {', '.join(sorted(values))}")
    return values[key]


def register_resolvers() -> None:
    """Register the ``cures_preset`` OmegaConf resolver (idempotent)."""
    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, _preset_value)


def cures_config_from(config: DictConfig) -> CuresConfig:
    """The validated :class:`CuresConfig` of a composed trainer config.

    Raises:
        ValueError: If the ``cures:`` block is missing, has unknown keys or invalid values (the message names
            the full key).
    """
    register_resolvers()
    if "cures" not in config:
        raise ValueError(
            "the config has no cures: block; launch with python -m cures_verl.main (config cures_trainer), "
            "or add cures_trainer.yaml's block to your own config"
        )
    container = OmegaConf.to_container(config.cures, resolve=True)
    assert isinstance(container, dict)
    return CuresConfig.from_mapping(container)
