"""The Ray task runners: verl's own, training with our trainer classes.

verl 0.9.1's ``TaskRunnerV1.run`` (``verl/trainer/main_ppo.py:126``) initialises TransferQueue, builds
the trainer class registered under ``trainer.v1.trainer_mode`` (``get_trainer_cls``, which reads
``trainer_base.TRAINER_REGISTRY``), the agent loop manager, and calls ``fit()``. We reuse it whole: our
runners are subclasses whose ``run`` points the ``sync`` entry of that registry at our trainer in *their own*
Ray actor process (which runs nothing but this training job) and then call verl's ``run``.

* :data:`CuresTaskRunner`: :class:`~cures_verl.verl_adapter.trainer.CuresTrainer` (``cures.enable=true``);
* :data:`ProgressTaskRunner`: :class:`~cures_verl.verl_adapter.progress.ProgressTrainer`, verl's trainer plus the
  ``progress/*`` metrics (``cures.enable=false``, the plain GRPO arm).
"""

from __future__ import annotations

import importlib
from typing import Any

import ray
from verl.trainer.main_ppo import TaskRunnerV1

__all__ = ["CuresTaskRunner", "ProgressTaskRunner"]

# Ray keeps the undecorated class of an actor class in __ray_actor_class__.
_VerlTaskRunner: Any = TaskRunnerV1.__ray_actor_class__


class _SyncTrainerTaskRunner(_VerlTaskRunner):  # type: ignore[misc]
    #: "module:Class" of the trainer registered for trainer.v1.trainer_mode=sync
    trainer_class = ""

    def run(self, config: Any) -> None:
        from verl.trainer.ppo.v1 import trainer_base

        mode = config.trainer.v1.trainer_mode
        if mode != "sync":
            raise ValueError(f"{self.trainer_class} needs trainer.v1.trainer_mode=sync, got {mode!r}")
        module, _, name = self.trainer_class.partition(":")
        trainer_base.TRAINER_REGISTRY["sync"] = getattr(importlib.import_module(module), name)
        return super().run(config)


class _CuresTaskRunner(_SyncTrainerTaskRunner):
    trainer_class = "cures_verl.verl_adapter.trainer:CuresTrainer"


class _ProgressTaskRunner(_SyncTrainerTaskRunner):
    trainer_class = "cures_verl.verl_adapter.progress:ProgressTrainer"


CuresTaskRunner = ray.remote(_CuresTaskRunner)
ProgressTaskRunner = ray.remote(_ProgressTaskRunner)
