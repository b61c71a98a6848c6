"""CPU mode's profile: the verl Hydra overrides (``cpu_profile.yaml``) and the environment it needs.

The YAML holds only verl keys. :func:`cpu_profile_overrides` turns it into Hydra override strings, to be put
*before* the user's overrides so the user can still change any of them. Keys the YAML adds to verl's config
(they are not in ``ppo_trainer.yaml``) are listed in :data:`ADDED_KEYS` and use Hydra's ``++`` form; every other
key uses the plain form, so a typo in the profile fails at composition instead of adding a dead key.

:func:`cpu_mode_env` returns the environment variables every process of a CPU run needs. They must be in
``os.environ`` *before* ``import verl`` (verl loads the plugin at import time) and before Ray starts (Ray's
local workers inherit the driver's environment).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from cures_verl.config import flatten_keys

__all__ = [
    "ADDED_KEYS",
    "CPU_PROFILE_PATH",
    "cpu_mode_env",
    "cpu_profile_overrides",
    "format_override_value",
    "load_cpu_profile",
]

CPU_PROFILE_PATH = Path(__file__).with_name("cpu_profile.yaml")

ADDED_KEYS = frozenset(
    {
        "ray_kwargs.ray_init.num_gpus",
        "ray_kwargs.ray_init.include_dashboard",
        "actor_rollout_ref.model.override_config.attn_implementation",
        "critic.model.override_config.attn_implementation",
    }
)
"""Profile keys absent from verl's ``ppo_trainer.yaml`` (``ray.init`` arguments, entries of the empty
``override_config`` dicts); written as ``++key=value``."""


def cpu_mode_env() -> dict[str, str]:
    """Environment variables of a CPU-mode run.

    Returns:
        ``CURES_CPU_MODE=1`` (switches the plugin on), ``VERL_PLATFORM=cpu`` (selects the CPU platform),
        ``VERL_ENGINE_DEVICE=cuda`` (W2 in ``workarounds.py``), ``WANDB_MODE=disabled`` and
        ``HF_HUB_OFFLINE=1`` (no network), ``TOKENIZERS_PARALLELISM=false`` (no tokenizer thread pools in
        forked Ray workers), ``RAY_DEDUP_LOGS=0`` (step metrics are printed once per step; deduplication
        only delays them).

    Example:
        >>> cpu_mode_env()["CURES_CPU_MODE"], cpu_mode_env()["VERL_PLATFORM"]
        ('1', 'cpu')
    """
    return {
        "CURES_CPU_MODE": "1",
        "VERL_PLATFORM": "cpu",
        "VERL_ENGINE_DEVICE": "cuda",
        "WANDB_MODE": "disabled",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "RAY_DEDUP_LOGS": "0",
    }


def load_cpu_profile(path: str | Path = CPU_PROFILE_PATH) -> dict[str, Any]:
    """The profile as a nested dict.

    Raises:
        ValueError: If the file is not a YAML mapping.
    """
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a YAML mapping of verl keys, got {type(data).__name__}")
    return data


def format_override_value(value: Any) -> str:
    """Format a YAML scalar or list of scalars in Hydra's override grammar.

    Raises:
        TypeError: For values other than None, bool, int, float, str or a list of those.

    Example:
        >>> [format_override_value(v) for v in (True, 12, 0.5, None, "sdpa", ["console"], "it's")]
        ['true', '12', '0.5', 'null', "'sdpa'", "['console']", "'it\\\\'s'"]
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # Hydra's quoted strings: a backslash only escapes a quote, or backslashes right before a quote (or the
        # closing quote); elsewhere it is literal. So double only those runs, and escape the quotes.
        escaped = re.sub(r"(\\*)('|$)", lambda m: m.group(1) * 2 + ("\\'" if m.group(2) else ""), value)
        return f"'{escaped}'"
    if isinstance(value, list | tuple):
        return "[" + ",".join(format_override_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} value {value!r} as a Hydra override")


def cpu_profile_overrides(path: str | Path = CPU_PROFILE_PATH) -> list[str]:
    """The profile as Hydra overrides, e.g. ``"trainer.device='cpu'"`` and ``"++ray_kwargs.ray_init.num_gpus=1"``.

    Example:
        >>> overrides = cpu_profile_overrides()
        >>> "actor_rollout_ref.rollout.name='hf'" in overrides, "++ray_kwargs.ray_init.num_gpus=1" in overrides
        (True, True)
    """
    return [
        f"{'++' if key in ADDED_KEYS else ''}{key}={format_override_value(value)}"
        for key, value in flatten_keys(load_cpu_profile(path)).items()
    ]
