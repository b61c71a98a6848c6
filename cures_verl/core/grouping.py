"""Flat per-rollout arrays -> per-prompt Beta counts (the bridge from a trainer's batch to the posterior).

A trainer hands us one row per rollout: the prompt's stable id and the rollout's reward. The posterior
needs, per prompt, the number of correct rollouts and the number of rollouts (CurES Eq. 23). Rewards
that are not 0/1 need a rule (the paper assumes a 0/1 verifiable reward, Eq. 2):

* ``binary``: rewards must be exactly 0 or 1, anything else is an error (the safe default);
* ``threshold``: a rollout is correct when its reward >= threshold;
* ``fractional``: a reward r in [0, 1] adds r to the correct and 1 - r to the incorrect count, the
  Beta-Bernoulli update with a soft outcome (it keeps the posterior mean equal to the mean reward).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cures_verl.core._typing import FloatArray, IntArray

__all__ = ["PromptCounts", "count_rollouts", "rewards_to_outcomes", "run_starts", "sorted_distinct"]


@dataclass(frozen=True)
class PromptCounts:
    """Per-prompt rollout counts of one batch.

    Attributes:
        prompt_indices: Distinct prompt ids, sorted, shape ``(u,)``.
        num_correct: Correct (or soft-correct) rollouts per prompt, shape ``(u,)``.
        num_total: Rollouts per prompt, shape ``(u,)``.
    """

    prompt_indices: IntArray
    num_correct: FloatArray
    num_total: FloatArray

    @property
    def accuracy(self) -> FloatArray:
        """Realised group accuracy num_correct / num_total, shape ``(u,)``."""
        return self.num_correct / np.maximum(self.num_total, 1.0)


def rewards_to_outcomes(rewards: FloatArray, rule: str = "binary", threshold: float = 0.5) -> FloatArray:
    """Map rewards to outcomes in [0, 1] by ``rule`` (see the module docstring).

    Args:
        rewards: Rewards, shape ``(k,)``.
        rule: ``binary``, ``threshold`` or ``fractional``.
        threshold: Threshold of the ``threshold`` rule.

    Returns:
        Outcomes in [0, 1], float64, shape ``(k,)``.

    Raises:
        ValueError: On NaN rewards, non-0/1 rewards under ``binary``, rewards outside [0, 1] under
            ``fractional``, or an unknown rule.

    Example:
        >>> rewards_to_outcomes(np.array([0.0, 1.0, 0.7]), "threshold").tolist()
        [0.0, 1.0, 1.0]
        >>> rewards_to_outcomes(np.array([0.0, 1.0, 0.7]), "fractional").tolist()
        [0.0, 1.0, 0.7]
    """
    rewards = np.asarray(rewards, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(rewards)):
        raise ValueError("rewards must be finite (found NaN or inf)")
    if rule == "binary":
        bad = (rewards != 0.0) & (rewards != 1.0)
        if bad.any():
            raise ValueError(
                f"{int(bad.sum())} rewards are not 0 or 1 (e.g. {rewards[bad][0]!r}); the binary rule needs a 0/1 "
                "reward: set cures.posterior.reward_rule=threshold or =fractional for partial-credit rewards"
            )
        return rewards
    if rule == "threshold":
        return (rewards >= threshold).astype(np.float64)
    if rule == "fractional":
        if np.any((rewards < 0) | (rewards > 1)):
            raise ValueError(
                "the fractional reward rule needs rewards in [0, 1]; rescale the reward or use "
                "cures.posterior.reward_rule=threshold"
            )
        return rewards
    raise ValueError(f"unknown reward rule {rule!r}; choose 'binary', 'threshold' or 'fractional'")


def run_starts(values: np.ndarray) -> IntArray:
    """The index of the first element of each run of equal neighbours of a 1-D array (the distinct values' first
    positions when the array is sorted).

    Example:
        >>> run_starts(np.array([7, 7, 3, 3, 3, 7])).tolist()
        [0, 2, 5]
    """
    v = np.asarray(values).reshape(-1)
    if v.size == 0:
        return np.empty(0, dtype=np.int64)
    starts: IntArray = np.flatnonzero(np.concatenate([[True], v[1:] != v[:-1]]))
    return starts


def sorted_distinct(values: np.ndarray) -> np.ndarray:
    """The distinct values of a 1-D array, sorted: ``np.unique(values)`` for integers and finite floats, by one
    sort and a comparison of neighbours (numpy 2's hash-based ``unique`` is about 20x slower on the few thousand
    prompt ids of a step).

    Example:
        >>> sorted_distinct(np.array([5, 2, 5, 9, 2])).tolist()
        [2, 5, 9]
    """
    ordered = np.sort(np.asarray(values).reshape(-1), kind="stable")
    result: np.ndarray = ordered[run_starts(ordered)]
    return result


def count_rollouts(
    prompt_indices: IntArray, rewards: FloatArray, *, rule: str = "binary", threshold: float = 0.5
) -> PromptCounts:
    """Group per-rollout rewards by prompt id.

    Args:
        prompt_indices: Stable prompt id of every rollout, shape ``(k,)``, non-negative integers.
        rewards: Reward of every rollout, shape ``(k,)``.
        rule: Reward rule (see :func:`rewards_to_outcomes`).
        threshold: Threshold of the ``threshold`` rule.

    Returns:
        The per-prompt counts.

    Raises:
        ValueError: On length mismatch, negative ids, or rewards the rule rejects.

    Example:
        >>> c = count_rollouts(np.array([7, 3, 7, 7]), np.array([1.0, 0.0, 0.0, 1.0]))
        >>> c.prompt_indices.tolist(), c.num_correct.tolist(), c.num_total.tolist()
        ([3, 7], [0.0, 2.0], [1.0, 3.0])
    """
    idx = np.asarray(prompt_indices).reshape(-1)
    if idx.size and not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"prompt_indices must be integers, got dtype {idx.dtype}")
    idx = idx.astype(np.int64, copy=False)
    outcomes = rewards_to_outcomes(rewards, rule, threshold)
    if idx.shape != outcomes.shape:
        raise ValueError(f"prompt_indices and rewards differ in length: {idx.size} vs {outcomes.size}")
    if idx.size and idx.min() < 0:
        raise ValueError("prompt ids must be >= 0")
    if idx.size:
        # a trainer's batch holds each prompt's rollouts together: [7, 7, 3, 3, 3] -> runs at 0, 2 of prompts
        # [7, 3]; when no prompt has two runs, sum each run and sort the m prompts (not the k rollouts)
        starts = run_starts(idx)
        runs = idx[starts]
        order = np.argsort(runs, kind="stable")
        sorted_runs = runs[order]
        if np.all(sorted_runs[1:] > sorted_runs[:-1]):
            lengths = np.diff(np.append(starts, idx.size))
            run_of_rollout = np.repeat(np.arange(runs.size), lengths)  # bincount adds in rollout order, as below
            correct = np.bincount(run_of_rollout, weights=outcomes, minlength=runs.size)[order].astype(np.float64)
            return PromptCounts(sorted_runs, correct, lengths[order].astype(np.float64))
    # [7, 3, 7, 7] -> unique [3, 7], inverse [1, 0, 1, 1] -> sums by bincount
    unique, inverse = np.unique(idx, return_inverse=True)
    correct = np.bincount(inverse, weights=outcomes, minlength=unique.size).astype(np.float64)
    total = np.bincount(inverse, minlength=unique.size).astype(np.float64)
    return PromptCounts(unique, correct, total)
