"""The ``verl.plugins`` entry point ``cures_cpu``: switches CPU mode on in a process, or does nothing.

verl imports every ``verl.plugins`` entry point during ``import verl``, in every process (driver, TaskRunner,
Ray workers), and swallows any exception with a debug log (``verl/__init__.py:55-75``). Hence:

* **Inert by default.** Unless ``CURES_CPU_MODE=1`` (or ``true``/``yes``), importing this module registers
  nothing and patches nothing; it only reads one environment variable.
* **Loud refusal.** With CPU mode on and a CUDA GPU visible, :func:`activate` raises. verl would swallow the
  exception, so it is also logged at ERROR level, and the launcher re-imports this module itself, where the
  exception propagates.
* **Verifiable.** :data:`STATE` records whether this process activated CPU mode (and why not). The launcher
  checks it in the driver, and the rollout classes check it in their Ray workers, so a run can never proceed
  silently without the plugin.

Activation registers the CPU platform, the ``hf`` rollout (both registries) and applies the workarounds of
``workarounds.py``. It must happen before verl resolves its platform (the first ``get_platform()`` call, e.g.
when ``verl.trainer.constants_ppo`` is imported).
"""

from __future__ import annotations

import logging
import os

from .state import CPU_MODE_ENV, STATE, PluginState, cpu_mode_requested, require_active

__all__ = [
    "CPU_MODE_ENV",
    "STATE",
    "PluginState",
    "activate",
    "cpu_mode_requested",
    "require_active",
]

logger = logging.getLogger(__name__)

PLATFORM_ENV = "VERL_PLATFORM"


def _refuse_visible_gpu() -> None:
    import torch

    if torch.cuda.is_available():
        raise RuntimeError(
            f"{CPU_MODE_ENV}=1 but torch sees {torch.cuda.device_count()} CUDA GPU(s): CPU mode must not run on a GPU "
            f"machine; unset {CPU_MODE_ENV} and use a GPU recipe"
        )


def _select_cpu_platform() -> None:
    from verl.plugin.platform import PlatformRegistry, platform_manager

    from .platform import PLATFORM_NAME, CpuPlatform

    requested = os.environ.get(PLATFORM_ENV, "").strip().lower()
    if requested not in ("", PLATFORM_NAME):
        raise RuntimeError(
            f"{CPU_MODE_ENV}=1 conflicts with {PLATFORM_ENV}={requested!r}; "
            f"CPU mode needs {PLATFORM_ENV}=cpu (or unset)"
        )
    resolved = platform_manager._current_platform
    if resolved is not None and not isinstance(resolved, CpuPlatform):
        raise RuntimeError(
            f"verl already resolved its platform to {type(resolved).__name__} in this process, so CPU mode cannot be "
            f"switched on any more: set {CPU_MODE_ENV}=1 before importing verl.trainer (or anything that calls "
            "verl.plugin.platform.get_platform())"
        )
    PlatformRegistry.register(PLATFORM_NAME)(CpuPlatform)
    os.environ[PLATFORM_ENV] = PLATFORM_NAME


def _register_hf_rollout() -> None:
    from verl.workers.rollout.replica import RolloutReplicaRegistry

    from .workarounds import HF_ROLLOUT_NAME

    def load_replica() -> type:
        from .hf_rollout import HFReplica

        return HFReplica

    RolloutReplicaRegistry.register(HF_ROLLOUT_NAME, load_replica)


def activate() -> None:
    """Switch CPU mode on in this process (idempotent).

    Raises:
        RuntimeError: If a CUDA GPU is visible, verl's platform was already resolved to another one, or an
            environment variable conflicts (the message names it and the fix).
    """
    if STATE.active:
        return
    try:
        _refuse_visible_gpu()
        _select_cpu_platform()
        from . import workarounds

        workarounds.apply_all()
        _register_hf_rollout()
    except Exception as error:
        STATE.error = f"{type(error).__name__}: {error}"
        logger.error("CPU mode could not be switched on: %s", STATE.error)
        raise
    STATE.active = True
    STATE.error = None
    logger.debug("CPU mode active in pid %d", os.getpid())


if cpu_mode_requested():
    activate()
