"""The "digit sums" verifiable task, written in verl's RL parquet schema.

A problem is ``a =``, ``a + b =`` or ``a + b + c =`` with digits 0..9; the answer is the sum, one token. The
number of operands is the difficulty tier (1, 2 or 3), stored in ``extra_info.difficulty``. A warm-started
tiny model solves tier 1-2 problems part of the time and tier 3 almost never, which gives a curriculum
sampler the spread of accuracies it is built for.

Rows follow verl's schema (``verl/utils/dataset/rl_dataset.py``): ``data_source``, ``prompt`` (chat
messages), ``ability``, ``reward_model{style, ground_truth}`` and ``extra_info{index, split, difficulty}``.
``extra_info.index`` is the row id inside its split and is stable: it is the key CurES uses for its
per-prompt posterior. An optional ``__rollout_n__`` column sets per-prompt rollout counts for verl's V1
trainer (``verl/trainer/ppo/v1/agent_loop_tq.py:114``).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ABILITY",
    "DATA_SOURCE",
    "ROLLOUT_N_COLUMN",
    "DigitSumProblem",
    "all_problems",
    "sample_problem_splits",
    "to_verl_rows",
    "write_parquet",
]

DATA_SOURCE = "digit_sum"
ABILITY = "arithmetic"
ROLLOUT_N_COLUMN = "__rollout_n__"
MAX_TIER = 3
DEFAULT_TIER_WEIGHTS: Mapping[int, float] = {1: 0.05, 2: 0.65, 3: 0.30}


@dataclass(frozen=True)
class DigitSumProblem:
    """One problem: the operands (digits) whose sum is the answer."""

    operands: tuple[int, ...]

    @property
    def difficulty(self) -> int:
        """Difficulty tier = number of operands (1..3)."""
        return len(self.operands)

    @property
    def question(self) -> str:
        """The user message, e.g. ``"3 + 4 ="``."""
        return " + ".join(str(digit) for digit in self.operands) + " ="

    @property
    def answer(self) -> str:
        """The ground truth, e.g. ``"7"``."""
        return str(sum(self.operands))


def all_problems(tier: int) -> list[DigitSumProblem]:
    """Every problem of a tier, in lexicographic order of the operands.

    Args:
        tier: Number of operands, 1..3.

    Returns:
        ``10 ** tier`` problems.

    Raises:
        ValueError: If ``tier`` is not in 1..3.

    Example:
        >>> [p.question for p in all_problems(2)[:2]], len(all_problems(3))
        (['0 + 0 =', '0 + 1 ='], 1000)
    """
    if tier not in range(1, MAX_TIER + 1):
        raise ValueError(f"tier={tier} is invalid: the digit-sum task has tiers 1..{MAX_TIER} (operand counts)")
    return [DigitSumProblem(tuple(digits)) for digits in itertools.product(range(10), repeat=tier)]


def _tier_counts(total: int, weights: Mapping[int, float]) -> dict[int, int]:
    # largest remainder: weights {1: .05, 2: .65, 3: .3}, total 64 -> {1: 3, 2: 42, 3: 19}
    tiers = sorted(weights)
    raw = np.array([weights[tier] for tier in tiers], dtype=np.float64)
    if np.any(raw < 0) or raw.sum() <= 0:
        raise ValueError(f"tier_weights={dict(weights)} is invalid: weights must be >= 0 with a positive sum")
    exact = raw / raw.sum() * total
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: total - int(counts.sum())]] += 1
    return {tier: int(count) for tier, count in zip(tiers, counts, strict=True)}


def sample_problem_splits(
    num_train: int,
    num_val: int,
    *,
    tier_weights: Mapping[int, float] | None = None,
    seed: int = 0,
) -> tuple[list[DigitSumProblem], list[DigitSumProblem]]:
    """Draw disjoint train and validation problem sets with the given tier mix.

    Each split gets ``round(weight * size)`` problems per tier (largest remainder), drawn without
    replacement from the tier's problems; train and val never share a problem. Each split is then shuffled.

    Args:
        num_train: Number of training problems, >= 1.
        num_val: Number of validation problems, >= 0.
        tier_weights: Relative share of each tier, e.g. ``{1: 0.05, 2: 0.65, 3: 0.3}`` (the default).
        seed: Seed of the numpy generator; same seed, same splits.

    Returns:
        ``(train_problems, val_problems)``.

    Raises:
        ValueError: If a size is negative, a tier is unknown, or a tier has fewer problems than requested.

    Example:
        >>> train, val = sample_problem_splits(64, 16, seed=0)
        >>> len(train), len(val), set(train).isdisjoint(val)
        (64, 16, True)
    """
    if num_train < 1 or num_val < 0:
        raise ValueError(f"num_train={num_train}, num_val={num_val} are invalid: need num_train >= 1, num_val >= 0")
    weights = dict(DEFAULT_TIER_WEIGHTS if tier_weights is None else tier_weights)
    for tier in weights:
        all_problems(tier)  # validates the tier
    rng = np.random.default_rng(seed)
    train_counts = _tier_counts(num_train, weights)
    val_counts = _tier_counts(num_val, weights) if num_val else dict.fromkeys(weights, 0)
    train: list[DigitSumProblem] = []
    val: list[DigitSumProblem] = []
    for tier in sorted(weights):
        pool = all_problems(tier)
        needed = train_counts[tier] + val_counts[tier]
        if needed > len(pool):
            raise ValueError(
                f"tier {tier} has {len(pool)} distinct problems but the splits need {needed}; "
                "lower num_train/num_val or that tier's weight"
            )
        picks = rng.choice(len(pool), size=needed, replace=False)
        train.extend(pool[i] for i in picks[: train_counts[tier]])
        val.extend(pool[i] for i in picks[train_counts[tier] :])
    train = [train[i] for i in rng.permutation(len(train))]
    val = [val[i] for i in rng.permutation(len(val))]
    return train, val


def to_verl_rows(problems: Sequence[DigitSumProblem], split: str) -> list[dict[str, Any]]:
    """Convert problems into verl RL-dataset rows; ``extra_info.index`` is the row id.

    Args:
        problems: The problems, in row order.
        split: Split name stored in ``extra_info.split`` (``"train"`` or ``"test"``).

    Returns:
        One dict per problem with verl's columns.

    Example:
        >>> row = to_verl_rows([DigitSumProblem((3, 4))], "train")[0]
        >>> row["prompt"], row["reward_model"], row["extra_info"]
        ([{'role': 'user', 'content': '3 + 4 ='}], {'style': 'rule', 'ground_truth': '7'}, \
{'index': 0, 'split': 'train', 'difficulty': 2})
    """
    return [
        {
            "data_source": DATA_SOURCE,
            "prompt": [{"role": "user", "content": problem.question}],
            "ability": ABILITY,
            "reward_model": {"style": "rule", "ground_truth": problem.answer},
            "extra_info": {"index": index, "split": split, "difficulty": problem.difficulty},
        }
        for index, problem in enumerate(problems)
    ]


def write_parquet(
    rows: Sequence[Mapping[str, Any]],
    path: str | Path,
    *,
    rollout_n: Sequence[int] | None = None,
) -> Path:
    """Write verl rows to a parquet file, optionally with a per-prompt ``__rollout_n__`` column.

    Args:
        rows: Rows from :func:`to_verl_rows`.
        path: Output file; parent directories are created.
        rollout_n: Per-row rollout counts (each >= 1), same length as ``rows``. Only verl's V1 trainer
            reads this column.

    Returns:
        The written path.

    Raises:
        ValueError: If ``rows`` is empty, or ``rollout_n`` has the wrong length or a count below 1.
    """
    import pandas as pd

    if not rows:
        raise ValueError("rows is empty: a verl dataset needs at least one row")
    frame = pd.DataFrame(list(rows))
    if rollout_n is not None:
        counts = [int(count) for count in rollout_n]
        if len(counts) != len(rows) or min(counts) < 1:
            raise ValueError(
                f"rollout_n must hold one count >= 1 per row ({len(rows)} rows), got {len(counts)} counts "
                f"with minimum {min(counts) if counts else None}"
            )
        frame[ROLLOUT_N_COLUMN] = np.asarray(counts, dtype=np.int64)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out, index=False)
    return out
