"""The simulated learner behind a per-step rollout budget, as every strategy sees it.

:class:`Environment` charges each generated rollout to the step's budget B = batch_size x rollouts_per_prompt,
trains the learner only through :meth:`Environment.train`, and records what a strategy predicted for the prompts
it chose (rank correlation with the realised accuracy, calibration). :class:`EpochStream` is verl's shuffled
loader (``drop_last``), the uniform prompt source of the peers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

# the core's average ranks and correlation: one implementation of Spearman's rank correlation
from cures_verl.core.report import average_ranks, pearson
from cures_verl.experiments.curriculum.simulator import FloatArray, IntArray, Learner

if TYPE_CHECKING:
    from cures_verl.experiments.strategies.base import Strategy

__all__ = ["CALIBRATION_BINS", "Environment", "EpochStream", "Rollouts", "StepRecord", "spearman"]

#: Bins of predicted accuracy in the calibration (reliability) record of a run.
CALIBRATION_BINS = 10


@dataclass(frozen=True)
class Rollouts:
    """A batch of scored rollouts, one entry per rollout.

    Attributes:
        prompt_ids: Prompt of each rollout, shape ``(k,)``.
        group_ids: GRPO group of each rollout (verl's ``uid``), shape ``(k,)``.
        rewards: 0/1 reward of each rollout, shape ``(k,)``.
    """

    prompt_ids: IntArray
    group_ids: IntArray
    rewards: FloatArray

    @property
    def size(self) -> int:
        """Number of rollouts."""
        return int(self.prompt_ids.size)

    @staticmethod
    def concat(parts: list[Rollouts]) -> Rollouts:
        """The rollouts of ``parts`` one after the other."""
        if not parts:
            return Rollouts(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
        return Rollouts(
            np.concatenate([p.prompt_ids for p in parts]),
            np.concatenate([p.group_ids for p in parts]),
            np.concatenate([p.rewards for p in parts]),
        )

    def select_groups(self, group_ids: IntArray) -> Rollouts:
        """The rollouts whose group is in ``group_ids``, in their original order."""
        keep = np.isin(self.group_ids, group_ids)
        return Rollouts(self.prompt_ids[keep], self.group_ids[keep], self.rewards[keep])


@dataclass(frozen=True)
class StepRecord:
    """What one step cost and did.

    Attributes:
        spent: Rollouts generated in the step (<= budget).
        num_updates: Optimiser steps taken in the step.
        trained: Rollouts in those updates' losses.
        informative: Of those, rollouts in groups with both outcomes (non-zero advantage).
        accuracy: Mean true accuracy over the dataset after the step.
        rank_corr: Spearman correlation between the accuracy the strategy predicted for the step's prompts and their
            realised group accuracy (NaN when the strategy predicted nothing or fewer than 2 distinct values).
        rank_corr_true: The same against the prompts' true accuracy when generated (the simulator knows it).
    """

    spent: int
    num_updates: int
    trained: int
    informative: int
    accuracy: float
    rank_corr: float = math.nan
    rank_corr_true: float = math.nan


def spearman(x: FloatArray, y: FloatArray) -> float:
    """Spearman's rank correlation of two samples (average ranks for ties); NaN if either is constant or k < 2.

    Args:
        x: Shape ``(k,)``.
        y: Shape ``(k,)``.

    Example:
        >>> spearman(np.array([0.1, 0.4, 0.3]), np.array([0.0, 1.0, 0.5]))
        1.0
        >>> math.isnan(spearman(np.array([0.1, 0.4]), np.array([0.5, 0.5])))
        True
    """
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    b = np.asarray(y, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"spearman needs samples of equal length, got {a.size} and {b.size}")
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return pearson(average_ranks(a), average_ranks(b))


class Environment:
    """The simulated learner behind a per-step rollout budget.

    Args:
        learner: The policy.
        batch_size: m, prompts per step for fixed-size strategies.
        rollouts_per_prompt: n; the budget per step is B = m * n.
        rng: Generator for the rewards.
    """

    def __init__(self, learner: Learner, *, batch_size: int, rollouts_per_prompt: int, rng: np.random.Generator):
        self.learner = learner
        self.batch_size = int(batch_size)
        self.rollouts_per_prompt = int(rollouts_per_prompt)
        self.budget = self.batch_size * self.rollouts_per_prompt
        self.rng = rng
        self.spent = 0
        self._next_group = 0
        self._updates = 0
        self._trained = 0
        self._informative = 0
        self.trained_prompts = np.zeros(learner.problem.num_prompts, dtype=bool)
        """Whether each prompt has been in at least one update's loss."""
        self.calibration = np.zeros((CALIBRATION_BINS, 4))
        """Per bin of predicted accuracy: rollouts, and their rollout-weighted sums of predicted, realised and true
        accuracy, over every :meth:`record_prediction` of the run."""
        self._predictions: list[FloatArray] = []  # this step's (3, k) blocks: predicted, realised, true

    @property
    def remaining(self) -> int:
        """Rollouts still available in this step."""
        return self.budget - self.spent

    def generate(self, prompt_ids: IntArray, counts: IntArray, *, group_ids: IntArray | None = None) -> Rollouts:
        """Generate and score ``counts[i]`` rollouts of ``prompt_ids[i]``, charging them to the step's budget.

        Args:
            prompt_ids: Prompts, shape ``(k,)``.
            counts: Rollouts per prompt, shape ``(k,)``, >= 0.
            group_ids: GRPO group of each prompt's rollouts, shape ``(k,)`` (to extend an earlier group, as
                Speed-RL's continuation does); None gives each prompt a fresh group.

        Returns:
            The rollouts, prompt by prompt.

        Raises:
            RuntimeError: If the step's budget would be exceeded.
            ValueError: On shape mismatches or negative counts.
        """
        ids = np.asarray(prompt_ids, dtype=np.int64).reshape(-1)
        n = np.asarray(counts, dtype=np.int64).reshape(-1)
        if ids.shape != n.shape or np.any(n < 0):
            raise ValueError("prompt_ids and counts must have the same length and counts must be >= 0")
        total = int(n.sum())
        if total > self.remaining:
            raise RuntimeError(
                f"a strategy asked for {total} rollouts with {self.remaining} of the step's budget {self.budget} left"
            )
        if group_ids is None:
            groups = self._next_group + np.arange(ids.size, dtype=np.int64)
            self._next_group += ids.size
        else:
            groups = np.asarray(group_ids, dtype=np.int64).reshape(-1)
            if groups.shape != ids.shape:
                raise ValueError("group_ids must have one entry per prompt")
        per_rollout = np.repeat(ids, n)
        rewards = self.learner.sample(per_rollout, self.rng)
        self.spent += total
        return Rollouts(per_rollout, np.repeat(groups, n), rewards)

    def train(
        self, rollouts: Rollouts, loss_weights: FloatArray | None = None, advantages: FloatArray | None = None
    ) -> None:
        """One policy update on ``rollouts`` (GRPO loss averaged over all of them); no-op when empty.

        ``advantages`` (one per rollout, in the order of ``rollouts``) replaces verl's GRPO advantage, e.g. by
        posterior-baseline ones (:mod:`cures_verl.core.advantage`); None keeps GRPO's.
        """
        if rollouts.size == 0:
            return
        stats = self.learner.update(
            rollouts.prompt_ids, rollouts.group_ids, rollouts.rewards, loss_weights=loss_weights, advantages=advantages
        )
        self._updates += 1
        self._trained += stats.num_rollouts
        self._informative += stats.num_informative
        self.trained_prompts[rollouts.prompt_ids] = True

    def record_prediction(self, prompt_ids: IntArray, predicted: FloatArray, rollouts: Rollouts) -> None:
        """Log what a strategy predicted for prompts it just generated, for the prediction-quality metrics.

        Call it after :meth:`generate` and before :meth:`train` (the true accuracy is read now). The realised
        accuracy of a prompt is the mean reward of its rollouts in ``rollouts``; prompts without a rollout there
        (dropped ones) are skipped. Costs no rollouts and does not change the policy.

        Args:
            prompt_ids: Distinct prompts, shape ``(k,)``.
            predicted: The strategy's accuracy estimate for each when it chose them, shape ``(k,)``, in [0, 1].
            rollouts: The rollouts generated for them (other prompts' rollouts may be mixed in).

        Raises:
            ValueError: On shape mismatches, repeated prompts or predictions outside [0, 1].
        """
        ids = np.asarray(prompt_ids, dtype=np.int64).reshape(-1)
        pred = np.asarray(predicted, dtype=np.float64).reshape(-1)
        if ids.shape != pred.shape or np.unique(ids).size != ids.size:
            raise ValueError("record_prediction needs distinct prompt_ids and one prediction per prompt")
        if not np.all((pred >= 0) & (pred <= 1)):
            raise ValueError("predicted accuracies must lie in [0, 1]")
        # rollouts' prompts [7, 7, 3, 7] -> unique [3, 7], counts [1, 3], correct [r3, r7a + r7b + r7c]
        unique, inverse, counts = np.unique(rollouts.prompt_ids, return_inverse=True, return_counts=True)
        correct = np.bincount(inverse, weights=rollouts.rewards, minlength=unique.size)
        position = np.searchsorted(unique, ids)
        found = (position < unique.size) & (unique[np.minimum(position, unique.size - 1)] == ids)
        if not found.any():
            return
        ids, pred, position = ids[found], pred[found], position[found]
        weight = counts[position].astype(np.float64)
        realised = correct[position] / weight
        true = self.learner.accuracy(ids)
        self._predictions.append(np.stack([pred, realised, true]))
        which = np.clip((pred * CALIBRATION_BINS).astype(np.int64), 0, CALIBRATION_BINS - 1)
        for column, values in enumerate((np.ones_like(pred), pred, realised, true)):
            self.calibration[:, column] += np.bincount(which, weights=weight * values, minlength=CALIBRATION_BINS)

    def true_accuracy(self) -> FloatArray:
        """The exact accuracy of every prompt. Only the oracle may call this."""
        return self.learner.accuracy()

    def run_step(self, strategy: Strategy) -> StepRecord:
        """Run one step of ``strategy`` and account for it.

        Raises:
            RuntimeError: If the strategy spent more than the budget (cannot happen through :meth:`generate`).
        """
        self.spent = 0
        self._updates = self._trained = self._informative = 0
        self._predictions = []
        strategy.step(self)
        if self.spent > self.budget:
            raise RuntimeError(f"strategy {strategy.name!r} spent {self.spent} > budget {self.budget}")
        rank_corr = rank_corr_true = math.nan
        if self._predictions:
            pred, realised, true = np.concatenate(self._predictions, axis=1)
            rank_corr, rank_corr_true = spearman(pred, realised), spearman(pred, true)
        return StepRecord(
            spent=self.spent,
            num_updates=self._updates,
            trained=self._trained,
            informative=self._informative,
            accuracy=self.learner.mean_accuracy(),
            rank_corr=rank_corr,
            rank_corr_true=rank_corr_true,
        )


class EpochStream:
    """Uniformly shuffled prompts without replacement within an epoch (verl's shuffled loader, ``drop_last``).

    Args:
        num_prompts: Dataset size.
        rng: Generator of the shuffles.

    Example:
        >>> stream = EpochStream(5, np.random.default_rng(0))
        >>> first = stream.next(2).tolist() + stream.next(2).tolist()
        >>> len(set(first))  # no repeat within an epoch
        4
    """

    def __init__(self, num_prompts: int, rng: np.random.Generator) -> None:
        self.num_prompts = int(num_prompts)
        self.rng = rng
        self._order = np.zeros(0, dtype=np.int64)
        self._pos = 0

    def next(self, k: int) -> IntArray:
        """The next ``k`` prompts (distinct); starts a new epoch when fewer than ``k`` remain in this one.

        Raises:
            ValueError: If ``k`` exceeds the dataset size.
        """
        if k > self.num_prompts:
            raise ValueError(f"cannot draw {k} distinct prompts from a dataset of {self.num_prompts}")
        if self._pos + k > self._order.size:
            self._order = self.rng.permutation(self.num_prompts).astype(np.int64)
            self._pos = 0
        out = self._order[self._pos : self._pos + k]
        self._pos += k
        return out
