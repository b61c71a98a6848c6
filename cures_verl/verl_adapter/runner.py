"""The Ray task runner that trains with :class:`~cures_verl.verl_adapter.trainer.CuresTrainer`.

verl 0.9.1's ``TaskRunnerV1.run`` (``verl/trainer/main_ppo.py:126``) initialises TransferQueue, builds
the trainer class registered under ``trainer.v1.trainer_mode`` (``get_trainer_cls``, which reads
``trainer_base.TRAINER_REGISTRY``), the agent loop manager, and calls ``fit()``. We reuse it whole: our
runner is a subclass whose ``run`` points the ``sync`` entry of that registry at ``CuresTrainer`` in
*its own* Ray actor process (which runs nothing but this training job) and then calls verl's ``run``.
"""

from __future__ import annotations

from typing import Any

import ray
from verl.trainer.main_ppo import TaskRunnerV1

__all__ = ["CuresTaskRunner"]

# Ray keeps the undecorated class of an actor class in __ray_actor_class__.
_VerlTaskRunner: Any = TaskRunnerV1.__ray_actor_class__


class _CuresTaskRunner(_VerlTaskRunner):  # type: ignore[misc]
    def run(self, config: Any) -> None:
        from verl.trainer.ppo.v1 import trainer_base

        from cures_verl.verl_adapter.trainer import CuresTrainer

        mode = config.trainer.v1.trainer_mode
        if mode != "sync":
            raise ValueError(f"CurES needs trainer.v1.trainer_mode=sync, got {mode!r}")
        trainer_base.TRAINER_REGISTRY["sync"] = CuresTrainer
        return super().run(config)


CuresTaskRunner = ray.remote(_CuresTaskRunner)
