"""One call that builds every file the demo (and the CPU end-to-end tests) needs, offline, in seconds.

Layout under ``out_dir``::

    model/        config.json, generation_config.json, model.safetensors (no tokenizer files, see tokenizer.py)
    tokenizer/    tokenizer.json, tokenizer_config.json, chat_template.jinja
    train.parquet, val.parquet

The reward is this package's ``reward.py``, loaded by verl by path.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import reward as reward_module
from .model import WarmStartReport, build_model, warm_start
from .task import sample_problem_splits, to_verl_rows, write_parquet
from .tokenizer import build_tokenizer, save_tokenizer

__all__ = ["DemoAssets", "build_demo_assets"]

logger = logging.getLogger(__name__)

MAX_OPERANDS = 3


@dataclass(frozen=True)
class DemoAssets:
    """Paths of the built demo files, plus what the warm start reached."""

    model_dir: Path
    """Model directory for ``actor_rollout_ref.model.path``."""

    tokenizer_dir: Path
    """Tokenizer-only directory for ``actor_rollout_ref.model.tokenizer_path``."""

    train_parquet: Path
    """Training set for ``data.train_files``."""

    val_parquet: Path
    """Validation set for ``data.val_files``."""

    reward_path: Path
    """File for ``reward.custom_reward_function.path`` (function ``compute_score``)."""

    warm_start: WarmStartReport | None
    """Losses and per-tier p(correct) of the warm start; ``None`` when ``warm_start_steps == 0``."""


def build_demo_assets(
    out_dir: str | Path,
    *,
    num_prompts: int = 64,
    num_val_prompts: int = 32,
    tier_weights: Mapping[int, float] | None = None,
    rollout_n: Sequence[int] | None = None,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    warm_start_steps: int = 120,
    warm_start_learning_rate: float = 3e-3,
    seed: int = 0,
) -> DemoAssets:
    """Build tokenizer, model (optionally warm-started) and train/val parquet files under ``out_dir``.

    Args:
        out_dir: Directory to write into; created if missing. Existing files are overwritten.
        num_prompts: Training prompts.
        num_val_prompts: Validation prompts, disjoint from the training ones; >= 1 (verl requires
            ``data.val_files``).
        tier_weights: Share of each difficulty tier (operand count 1..3); see
            :func:`cures_verl.experiments.trainer.task.sample_problem_splits`.
        rollout_n: Optional per-prompt rollout counts written as the ``__rollout_n__`` column of the train
            parquet (V1 trainer only).
        hidden_size: Model width.
        num_layers: Decoder layers.
        num_heads: Attention heads.
        num_kv_heads: Key-value heads.
        warm_start_steps: Supervised warm-start steps; 0 keeps the random init.
        warm_start_learning_rate: AdamW learning rate of the warm start.
        seed: Seed of data sampling, model init and warm start.

    Returns:
        A :class:`DemoAssets`.

    Raises:
        ValueError: If a size is out of range (raised by the builders, naming the argument).
    """
    if num_val_prompts < 1:
        raise ValueError(f"num_val_prompts={num_val_prompts} is invalid: verl needs a non-empty data.val_files")
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(max_number=9 * MAX_OPERANDS)
    tokenizer_dir = save_tokenizer(tokenizer, root / "tokenizer")

    train, val = sample_problem_splits(num_prompts, num_val_prompts, tier_weights=tier_weights, seed=seed)
    train_parquet = write_parquet(to_verl_rows(train, "train"), root / "train.parquet", rollout_n=rollout_n)
    val_parquet = write_parquet(to_verl_rows(val, "test"), root / "val.parquet")

    model = build_model(
        tokenizer,
        hidden_size=hidden_size,
        num_layers=num_layers,
        num_heads=num_heads,
        num_kv_heads=num_kv_heads,
        seed=seed,
    )
    report = None
    if warm_start_steps:
        report = warm_start(model, tokenizer, steps=warm_start_steps, learning_rate=warm_start_learning_rate, seed=seed)
        logger.info("demo warm start: p(correct) by tier %s", report.accuracy_by_tier)
    model_dir = root / "model"
    model.save_pretrained(model_dir)
    return DemoAssets(
        model_dir=model_dir,
        tokenizer_dir=tokenizer_dir,
        train_parquet=train_parquet,
        val_parquet=val_parquet,
        reward_path=Path(reward_module.__file__).resolve(),
        warm_start=report,
    )
