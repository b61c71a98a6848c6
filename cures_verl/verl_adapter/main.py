"""Hydra entry point: ``python -m cures_verl.main`` (verl's ``main_ppo`` with CurES).

Adopting CurES in an existing verl run is one change: launch ``python -m cures_verl.main`` instead of
``python -m verl.trainer.main_ppo`` with the same overrides (CurES's own settings are under ``cures.*``).
``cures.enable=false`` runs verl's own ``main_ppo`` logic on the same config, with verl's synchronous trainer plus
the cumulative ``progress/*`` metrics every run logs (:mod:`cures_verl.verl_adapter.progress`); other trainer
modes run verl entirely unchanged.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from cures_verl.verl_adapter.hydra_config import CONFIG_DIR, CONFIG_NAME, cures_config_from, register_resolvers

__all__ = ["check_logger_credentials", "main", "run"]

logger = logging.getLogger(__name__)

register_resolvers()


def _resolve_cures_block(config: DictConfig) -> None:
    """Replace the cures: interpolations by their values, so Ray workers need no custom resolver."""
    resolved = OmegaConf.to_container(config.cures, resolve=True)
    config.cures = OmegaConf.create(resolved)


def check_logger_credentials(config: DictConfig, environ: dict[str, str] | None = None) -> None:
    """Refuse ``trainer.logger`` with ``wandb`` when no credentials are available, before any worker starts (verl
    would otherwise fail minutes into a run, when its tracker is created).

    Credentials: ``WANDB_API_KEY``, ``WANDB_MODE=offline|disabled``, or an ``api.wandb.ai`` entry in ``~/.netrc``
    (what ``wandb login`` writes).

    Raises:
        ValueError: Naming ``trainer.logger`` and the fixes.
    """
    env = dict(os.environ if environ is None else environ)
    loggers = OmegaConf.select(config, "trainer.logger", default=[]) or []
    loggers = [loggers] if isinstance(loggers, str) else list(loggers)
    if "wandb" not in loggers:
        return
    if env.get("WANDB_API_KEY") or env.get("WANDB_MODE", "").lower() in ("offline", "disabled", "dryrun"):
        return
    netrc = Path(env.get("NETRC", Path(env.get("HOME", str(Path.home()))) / ".netrc"))
    if netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="replace"):
        return
    raise ValueError(
        f"trainer.logger={loggers} includes wandb but no wandb credentials were found (WANDB_API_KEY, "
        "WANDB_MODE=offline, or `wandb login`); set one of them, or log with trainer.logger=['console','file']"
    )


def run(config: DictConfig) -> None:
    """Train with the composed ``config`` (what ``main`` does after Hydra composed it).

    ``trainer.device=cpu`` (set by ``profile=cpu``) switches on CPU mode: its environment is set and its verl
    plugin verified *before* verl's trainer modules are imported, and the config is checked for settings CPU
    mode cannot run and for Ray resources that would make verl hang (docs/cpu_mode.md).
    """
    cures = cures_config_from(config)
    check_logger_credentials(config)
    _resolve_cures_block(config)
    from cures_verl.verl_adapter.compat import check_verl_version

    check_verl_version()
    cpu_mode = OmegaConf.select(config, "trainer.device") == "cpu"
    if cpu_mode:
        from cures_verl.cpu.launch import prepare_cpu_mode, run_cpu_config

        prepare_cpu_mode()
    from verl.trainer import main_ppo

    if cures.enable:
        from cures_verl.verl_adapter.runner import CuresTaskRunner
        from cures_verl.verl_adapter.trainer import check_trainer_config

        check_trainer_config(config, cures)
        task_runner_class = CuresTaskRunner
    elif config.trainer.get("use_v1", True) and config.trainer.v1.trainer_mode == "sync":
        from cures_verl.verl_adapter.runner import ProgressTaskRunner

        logger.info("cures.enable=false: verl's trainer, plus the progress/* metrics")
        task_runner_class = ProgressTaskRunner
    else:
        logger.info("cures.enable=false with a non-sync trainer: running verl's main_ppo unchanged (no progress/*)")
        if cpu_mode:
            run_cpu_config(config)
        else:
            main_ppo.main.__wrapped__(config)
        return
    if cpu_mode:
        run_cpu_config(config, task_runner_class=task_runner_class)
        return
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config
    from verl.utils.device import auto_set_device

    # the same preparation as verl 0.9.1 main_ppo.main (main_ppo.py:167-180), then our task runner
    auto_set_device(config)
    validate_config(config=config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
    main_ppo.run_ppo(config, task_runner_class=task_runner_class)


@hydra.main(config_path=CONFIG_DIR, config_name=CONFIG_NAME, version_base=None)
def main(config: DictConfig) -> None:
    """``python -m cures_verl.main <hydra overrides>``."""
    run(config)


if __name__ == "__main__":
    main()
