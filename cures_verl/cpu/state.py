"""Whether CPU mode is active in this process: the state the plugin sets and the CPU-mode classes check.

Kept apart from :mod:`.plugin` so that the classes the plugin registers (the hf rollout) can check it without
importing the plugin that imports them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["CPU_MODE_ENV", "STATE", "PluginState", "cpu_mode_requested", "require_active"]

CPU_MODE_ENV = "CURES_CPU_MODE"
_TRUE_VALUES = frozenset({"1", "true", "yes"})


@dataclass
class PluginState:
    """Whether CPU mode is active in this process."""

    active: bool = False
    """True once :func:`~cures_verl.cpu.plugin.activate` completed in this process."""

    error: str | None = None
    """Why the last activation attempt failed, if it did."""


STATE = PluginState()


def cpu_mode_requested() -> bool:
    """True when ``CURES_CPU_MODE`` is ``1``, ``true`` or ``yes`` (case-insensitive)."""
    return os.environ.get(CPU_MODE_ENV, "").strip().lower() in _TRUE_VALUES


def require_active(component: str) -> None:
    """Raise unless CPU mode is active in this process.

    Args:
        component: What needs CPU mode (named in the error).

    Raises:
        RuntimeError: If the plugin's ``activate`` has not completed in this process.
    """
    if not STATE.active:
        reason = STATE.error or f"{CPU_MODE_ENV} is not set to 1 in this process"
        raise RuntimeError(
            f"{component} needs CPU mode, but the cures_cpu plugin is not active in pid {os.getpid()} ({reason}); "
            f"start runs through cures_verl.cpu.launch, or export {CPU_MODE_ENV}=1 before Python starts"
        )
