"""verl overrides that run GRPO on the demo assets (task and hyper-parameters; not the CPU profile).

Combine with CPU mode's profile (``cures_verl.cpu``), which holds the device and resource
keys. The defaults are the settings under which the CPU probe saw the mean training reward rise within 50
steps (block means 0.41 -> 0.57, see ``docs/cpu_mode.md``): 64 prompts revisited every 4 steps, 16 prompts x
8 rollouts per step, two optimizer steps per training step (``ppo_mini_batch_size=8``) at lr 1e-3.
"""

from __future__ import annotations

from .assets import DemoAssets

__all__ = ["demo_overrides"]


def demo_overrides(
    assets: DemoAssets,
    *,
    total_training_steps: int = 50,
    train_batch_size: int = 16,
    rollout_n: int = 8,
    ppo_mini_batch_size: int = 8,
    learning_rate: float = 1e-3,
    max_response_length: int = 8,
    shuffle: bool = True,
    seed: int = 0,
) -> list[str]:
    """Hydra overrides (``key=value`` strings) for GRPO on the demo task.

    Args:
        assets: Output of :func:`cures_verl.experiments.trainer.build_demo_assets`.
        total_training_steps: Training steps (``trainer.total_training_steps``).
        train_batch_size: Prompts per step.
        rollout_n: Rollouts per prompt (a ``__rollout_n__`` column, if present, overrides it per prompt in V1).
        ppo_mini_batch_size: Prompts per optimizer step; ``train_batch_size / ppo_mini_batch_size`` updates
            per training step.
        learning_rate: Actor learning rate.
        max_response_length: Response token budget; the warm-started model answers in 2 tokens.
        shuffle: Shuffle the training prompts each epoch (``data.shuffle``).
        seed: ``data.seed`` and ``actor_rollout_ref.rollout.seed``.

    Returns:
        Overrides in verl's grouping order (data, actor_rollout_ref, algorithm, reward, trainer).

    Raises:
        ValueError: If ``train_batch_size`` is not a multiple of ``ppo_mini_batch_size``.
    """
    if train_batch_size % ppo_mini_batch_size:
        raise ValueError(
            f"train_batch_size={train_batch_size} must be a multiple of ppo_mini_batch_size={ppo_mini_batch_size}"
        )
    # verl pads each step's trajectories to a multiple of ppo_mini_batch_size * rollout.n
    # (trainer/ppo/v1/trainer_base.py:1600-1621), so that size divides every mini-batch and the whole batch.
    micro = ppo_mini_batch_size * rollout_n
    return [
        f"data.train_files={assets.train_parquet}",
        f"data.val_files={assets.val_parquet}",
        f"data.train_batch_size={train_batch_size}",
        "data.max_prompt_length=32",
        f"data.max_response_length={max_response_length}",
        f"data.shuffle={str(shuffle).lower()}",
        f"data.seed={seed}",
        f"actor_rollout_ref.model.path={assets.model_dir}",
        f"actor_rollout_ref.model.tokenizer_path={assets.tokenizer_dir}",
        f"actor_rollout_ref.actor.optim.lr={learning_rate}",
        f"actor_rollout_ref.actor.ppo_mini_batch_size={ppo_mini_batch_size}",
        f"actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu={micro}",
        "actor_rollout_ref.actor.use_kl_loss=false",
        f"actor_rollout_ref.rollout.n={rollout_n}",
        f"actor_rollout_ref.rollout.seed={seed}",
        f"actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu={micro}",
        f"actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu={micro}",
        "algorithm.adv_estimator=grpo",
        "algorithm.use_kl_in_reward=false",
        f"reward.custom_reward_function.path={assets.reward_path}",
        "reward.custom_reward_function.name=compute_score",
        f"trainer.total_training_steps={total_training_steps}",
        "trainer.val_before_train=false",
        "trainer.test_freq=-1",
        "trainer.save_freq=-1",
        "trainer.resume_mode=disable",
    ]
