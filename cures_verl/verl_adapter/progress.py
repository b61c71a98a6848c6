"""Cumulative compute metrics for every run, CurES or plain GRPO: the x axes of a fair comparison.

verl counts global steps. A CurES step on the paper's schedule may be a cold-start step that generates rollouts
but does not update the policy, so runs compared per step are compared at unequal compute. Every run through
``python -m cures_verl.main`` (with ``cures.enable=false`` too) therefore logs, each step:

* ``progress/rollouts``: responses generated for training so far (cold-start steps included; padding rows
  that verl adds to divide the batch are not rollouts and do not count);
* ``progress/updates``: steps that updated the policy so far;
* ``progress/response_tokens``: response tokens generated for training so far.

The counts are saved with every checkpoint (``cures_progress.json`` in ``global_step_K/``) and restored on
resume. Built on verl 0.9.1's synchronous V1 trainer (``verl/trainer/ppo/v1/trainer_sync.py``).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from typing import Any

from omegaconf import DictConfig
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync
from verl.utils.checkpoint.checkpoint_manager import find_latest_ckpt_path

__all__ = ["PROGRESS_FILE", "Progress", "ProgressTrainer"]

logger = logging.getLogger(__name__)

PROGRESS_FILE = "cures_progress.json"


@dataclass
class Progress:
    """Cumulative counts since the start of training."""

    rollouts: int = 0
    updates: int = 0
    response_tokens: int = 0

    def metrics(self) -> dict[str, float]:
        """The ``progress/*`` metrics."""
        return {f"progress/{name}": float(value) for name, value in asdict(self).items()}


class ProgressTrainer(PPOTrainerSync):
    """verl's synchronous V1 trainer plus the ``progress/*`` metrics (module docstring); nothing else changes."""

    def __init__(self, config: DictConfig) -> None:
        super().__init__(config)
        self.progress = Progress()
        self._updated_this_step = False

    def _resume_folder(self) -> str | None:
        # the checkpoint folder verl 0.9.1 trainer_base.py:850-877 (_load_checkpoint) resumes from, or None
        trainer = self.config.trainer
        if trainer.resume_mode == "auto":
            return find_latest_ckpt_path(os.path.abspath(trainer.default_local_dir))
        if trainer.resume_mode == "resume_path" and isinstance(trainer.resume_from_path, str):
            return os.path.abspath(trainer.resume_from_path)
        return None

    def _update_actor(self, batch: Any, metrics: dict) -> Any:
        self._updated_this_step = True
        return super()._update_actor(batch, metrics)

    def step(self, metrics: dict, timing_raw: dict) -> Any:
        self._updated_this_step = False
        batch = super().step(metrics, timing_raw)
        # verl 0.9.1 padding_utils.py: rows added to make the batch divisible carry tag is_padding=True; each tag
        # holds its trajectory's response_len (agent_loop_tq.py:205-214)
        real = [tag for tag in batch.tags if not tag.get("is_padding", False)]
        self.progress.rollouts += len(real)
        self.progress.response_tokens += sum(int(tag["response_len"]) for tag in real)
        self.progress.updates += int(self._updated_this_step)
        metrics.update(self.progress.metrics())
        return batch

    def _save_checkpoint(self) -> None:
        super()._save_checkpoint()
        # verl 0.9.1 trainer_base.py:952: the step's folder
        folder = os.path.join(self.config.trainer.default_local_dir, f"global_step_{self.global_steps}")
        with open(os.path.join(folder, PROGRESS_FILE), "w") as fh:
            json.dump(asdict(self.progress), fh)

    def _load_checkpoint(self) -> None:
        folder = self._resume_folder()
        super()._load_checkpoint()
        if self.global_steps == 0 or folder is None:
            return
        path = os.path.join(folder, PROGRESS_FILE)
        if not os.path.isfile(path):
            logger.warning(
                "%s has no %s (saved before cures-verl logged progress/*): progress/* count from this resume on, "
                "not from the start of training",
                folder,
                PROGRESS_FILE,
            )
            return
        with open(path) as fh:
            self.progress = Progress(**json.load(fh))
