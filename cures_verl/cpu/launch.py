"""Launch verl's real trainer on CPU: set the environment, verify the plugin, compose, check, run.

Command line (plain verl GRPO/PPO; any verl override works, CPU mode's profile goes first)::

    python -m cures_verl.cpu.launch data.train_files=... actor_rollout_ref.model.path=... ...

Python, for an entry point that composes its own config (e.g. ``cures_verl/main.py``)::

    from cures_verl.cpu.launch import prepare_cpu_mode, run_cpu_config
    prepare_cpu_mode()                       # before anything imports verl.trainer
    config = ...compose with cpu_profile_overrides() + user overrides...
    run_cpu_config(config, task_runner_class=MyTaskRunner)

or all in one: ``run_cpu(overrides, config_dir=..., config_name=...)``.

What the steps guard against: verl loads plugins at ``import verl`` and swallows their errors, so
:func:`prepare_cpu_mode` sets the environment first and then *verifies* that the plugin activated in this
process; :func:`validate_cpu_config` rejects keys CPU mode cannot run with (naming the key), and
:func:`~.resources.check_ray_resources` rejects configs Ray could not place, which would otherwise hang.
The run itself is verl's: ``auto_set_device``, ``validate_config`` and ``run_ppo`` with verl's TaskRunner (V1
by default), exactly as ``verl/trainer/main_ppo.py:main`` does.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .profile import cpu_mode_env, cpu_profile_overrides
from .resources import check_ray_resources

__all__ = [
    "compose_cpu_config",
    "main",
    "prepare_cpu_mode",
    "run_cpu",
    "run_cpu_config",
    "validate_cpu_config",
    "verify_plugin_active",
    "with_replay_buffer_patches",
]

logger = logging.getLogger(__name__)

PLUGIN_MODULE = "cures_verl.cpu.plugin"
PLUGIN_ENTRY_POINT = "cures_cpu"
VERL_CONFIG_MODULE = "verl.trainer.config"
# Environment variables whose value CPU mode depends on: a different value set by the user is an error.
_REQUIRED_ENV = ("CURES_CPU_MODE", "VERL_PLATFORM", "VERL_ENGINE_DEVICE")


def prepare_cpu_mode(extra_env: Mapping[str, str] | None = None) -> None:
    """Set CPU mode's environment in this process, import verl and verify the plugin is active.

    Call it before anything imports ``verl.trainer`` (which resolves verl's platform). Ray's local workers,
    started later by verl, inherit the environment.

    Args:
        extra_env: More variables to set (they override the defaults of :func:`~.profile.cpu_mode_env`).

    Raises:
        RuntimeError: If a required variable is already set to a conflicting value, ``RAY_ADDRESS`` points to
            an existing cluster (its workers would not get the environment), or the plugin is not active.
    """
    env = {**cpu_mode_env(), **(extra_env or {})}
    for key in _REQUIRED_ENV:
        current = os.environ.get(key)
        if current not in (None, "", env[key]):
            raise RuntimeError(f"{key}={current!r} is set in the environment but CPU mode needs {key}={env[key]!r}")
    if os.environ.get("RAY_ADDRESS"):
        raise RuntimeError(
            f"RAY_ADDRESS={os.environ['RAY_ADDRESS']!r} is set: CPU mode starts its own local Ray so that every worker "
            "inherits its environment; unset RAY_ADDRESS"
        )
    for key, value in env.items():
        # required keys and explicit extra_env always apply; convenience defaults keep the user's own value
        if key in _REQUIRED_ENV or key not in os.environ or (extra_env and key in extra_env):
            os.environ[key] = value
    import verl  # noqa: F401  (loads the verl.plugins entry points, including ours)

    verify_plugin_active()


def verify_plugin_active() -> None:
    """Check that verl loaded the ``cures_cpu`` plugin and CPU mode is active in this process.

    If verl was imported before CPU mode's environment was set, the plugin loaded inert; it is activated here,
    which works as long as verl has not resolved its platform yet.

    Raises:
        RuntimeError: If the entry point is not installed or is excluded by ``VERL_USE_EXTERNAL_PLUGINS``, or
            activation fails (the cause is chained).
    """
    module = sys.modules.get(PLUGIN_MODULE)
    if module is None:
        installed = [
            ep for ep in importlib.metadata.entry_points(group="verl.plugins") if ep.name == PLUGIN_ENTRY_POINT
        ]
        if not installed:
            raise RuntimeError(
                f"the verl.plugins entry point {PLUGIN_ENTRY_POINT!r} is not installed, so Ray workers would run "
                "without CPU mode: install cures-verl into this environment (pip install -e .)"
            )
        policy = os.environ.get("VERL_USE_EXTERNAL_PLUGINS", "auto").strip().lower()
        if policy != "auto" and PLUGIN_ENTRY_POINT not in {name.strip() for name in policy.split(",")}:
            raise RuntimeError(
                f"VERL_USE_EXTERNAL_PLUGINS={policy!r} excludes {PLUGIN_ENTRY_POINT!r}: Ray workers would run without "
                f"CPU mode; unset it or add {PLUGIN_ENTRY_POINT}"
            )
        # verl swallowed an import error; importing it here raises the real cause.
        module = importlib.import_module(PLUGIN_MODULE)
    if not module.STATE.active:
        try:
            module.activate()
        except Exception as error:
            raise RuntimeError(f"CPU mode could not be activated: {error}") from error
    from verl.plugin.platform import get_platform

    from .platform import CpuPlatform

    platform = get_platform()
    if not isinstance(platform, CpuPlatform):
        raise RuntimeError(f"verl selected platform {type(platform).__name__}, not CPU mode's CpuPlatform")


def compose_cpu_config(
    overrides: Sequence[str],
    *,
    config_name: str = "ppo_trainer",
    config_dir: str | Path | None = None,
) -> Any:
    """Compose a verl config with CPU mode's profile first, then ``overrides``.

    Args:
        overrides: Hydra overrides; they win over the profile.
        config_name: Primary config name.
        config_dir: Directory of the primary config; default verl's packaged ``verl/trainer/config``.

    Returns:
        The composed ``DictConfig`` (interpolations unresolved, as ``hydra.main`` gives them).
    """
    from hydra import compose, initialize_config_dir, initialize_config_module

    all_overrides = [*cpu_profile_overrides(), *overrides]
    if config_dir is None:
        context = initialize_config_module(config_module=VERL_CONFIG_MODULE, version_base=None)
    else:
        context = initialize_config_dir(config_dir=str(Path(config_dir).resolve()), version_base=None)
    with context:
        return compose(config_name=config_name, overrides=all_overrides)


def validate_cpu_config(config: Any) -> None:
    """Reject config values CPU mode cannot run with, naming each key and the value it needs.

    Raises:
        ValueError: Listing every offending key.
    """
    from omegaconf import OmegaConf

    def value(key: str) -> Any:
        return OmegaConf.select(config, key, default=None)

    problems = []
    expected = {
        "trainer.device": "cpu",
        "actor_rollout_ref.rollout.name": "hf",
        "actor_rollout_ref.rollout.mode": "async",
        "actor_rollout_ref.rollout.tensor_model_parallel_size": 1,
        "actor_rollout_ref.rollout.data_parallel_size": 1,
        "actor_rollout_ref.rollout.pipeline_model_parallel_size": 1,
        "actor_rollout_ref.actor.strategy": "fsdp2",
        "actor_rollout_ref.model.use_remove_padding": False,
    }
    for key, wanted in expected.items():
        if value(key) != wanted:
            problems.append(f"{key}={value(key)!r} (CPU mode needs {wanted!r})")
    attention = value("actor_rollout_ref.model.override_config.attn_implementation")
    if attention not in ("sdpa", "eager"):
        problems.append(
            f"actor_rollout_ref.model.override_config.attn_implementation={attention!r} "
            "(CPU mode needs 'sdpa' or 'eager')"
        )
    if value("trainer.use_v1") and value("trainer.v1.trainer_mode") == "separate_async":
        problems.append("trainer.v1.trainer_mode='separate_async' (the hf rollout runs in hybrid mode only)")
    if problems:
        raise ValueError("config is not runnable in CPU mode: " + "; ".join(problems))


def with_replay_buffer_patches(task_runner_class: Any) -> Any:
    """A Ray TaskRunner class that applies workarounds W7 (poll) and W8 (batch order) before verl's ``run``.

    The replay buffer is built inside the TaskRunner actor (verl 0.9.1 ``trainer_base.py:139``), so the patches
    must run in that process; this subclass does it first thing in ``run`` and then calls the original.

    Args:
        task_runner_class: A ``@ray.remote`` TaskRunner class (verl's or ours).

    Returns:
        A ``@ray.remote`` subclass with the same actor options.
    """
    import ray

    base = task_runner_class.__ray_actor_class__

    def run(self: Any, config: Any) -> Any:
        from .workarounds import patch_replay_buffer_order, patch_replay_buffer_poll

        patch_replay_buffer_poll()
        patch_replay_buffer_order()
        return base.run(self, config)

    subclass = type(f"Cpu{base.__name__}", (base,), {"run": run, "__module__": __name__})
    options = dict(getattr(task_runner_class, "_default_options", None) or {})
    return ray.remote(**options)(subclass) if options else ray.remote(subclass)


def run_cpu_config(config: Any, *, task_runner_class: Any = None) -> None:
    """Run verl's trainer on a composed config, after CPU-mode and Ray-resource checks.

    Args:
        config: A composed verl config (with CPU mode's profile applied).
        task_runner_class: Ray TaskRunner class; default verl's (``TaskRunnerV1``, or the legacy ``TaskRunner``
            with ``trainer.use_v1=false``).

    Raises:
        RuntimeError: If CPU mode is not active (call :func:`prepare_cpu_mode` first).
        ValueError: From :func:`validate_cpu_config`, :func:`~.resources.check_ray_resources` or verl's
            ``validate_config``.
    """
    verify_plugin_active()
    validate_cpu_config(config)
    demand = check_ray_resources(config)
    logger.info(
        "CPU mode: Ray needs %g/%g logical CPUs and %d/%g logical GPUs",
        demand.required_cpus,
        demand.available_cpus,
        demand.required_gpus,
        demand.available_gpus,
    )
    import ray
    from verl.trainer.main_ppo import TaskRunnerV1, run_ppo
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config
    from verl.utils.device import auto_set_device

    auto_set_device(config)
    validate_config(config=config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
    if task_runner_class is None:
        if config.trainer.use_v1:
            task_runner_class = TaskRunnerV1
        else:
            from verl.trainer.main_ppo_v0 import TaskRunner

            task_runner_class = TaskRunner
    started_ray = not ray.is_initialized()
    try:
        run_ppo(config, task_runner_class=with_replay_buffer_patches(task_runner_class))
    finally:
        if started_ray and ray.is_initialized():
            ray.shutdown()


def run_cpu(
    overrides: Sequence[str],
    *,
    config_name: str = "ppo_trainer",
    config_dir: str | Path | None = None,
    task_runner_class: Any = None,
    extra_env: Mapping[str, str] | None = None,
) -> None:
    """Prepare CPU mode, compose the config (profile, then ``overrides``) and run verl's trainer.

    Args:
        overrides: verl Hydra overrides.
        config_name: Primary config; default verl's ``ppo_trainer``.
        config_dir: Directory of the primary config; default verl's packaged configs.
        task_runner_class: See :func:`run_cpu_config`.
        extra_env: See :func:`prepare_cpu_mode`.
    """
    prepare_cpu_mode(extra_env)
    config = compose_cpu_config(overrides, config_name=config_name, config_dir=config_dir)
    run_cpu_config(config, task_runner_class=task_runner_class)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m cures_verl.cpu.launch [--config-dir D] [--config-name N] k=v...``."""
    parser = argparse.ArgumentParser(
        prog="python -m cures_verl.cpu.launch",
        description="Run verl's trainer on CPU (CPU mode's profile is applied before the overrides).",
    )
    parser.add_argument("--config-dir", default=None, help="directory of the primary config (default: verl's)")
    parser.add_argument("--config-name", default="ppo_trainer", help="primary config name (default: ppo_trainer)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. data.train_files=/path/train.parquet")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_cpu(args.overrides, config_name=args.config_name, config_dir=args.config_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
