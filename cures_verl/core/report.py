"""What the sampler reports: calibration of the posterior, the sampling distribution and the plans (metrics).

* Calibration: how well the posterior mean predicted each observed group's accuracy (Pearson and Spearman
  correlation, mean absolute error): the p of Eqs. 14 and 20 is only as good as this.
* The sampling distribution rho of Eq. 14 over the eligible pool: its entropy and effective size.
* The plan: the rollout counts n_i of Eq. 20 against the budget, and the schedule position.

Reading the whole pool costs O(pool); nothing here changes the sampler's state or consumes its generator.
"""

from __future__ import annotations

import math

import numpy as np

from cures_verl.core._typing import FloatArray, IntArray
from cures_verl.core.allocation import RolloutAllocator
from cures_verl.core.difficulty import BetaAccuracyTracker
from cures_verl.core.grouping import PromptCounts, run_starts
from cures_verl.core.sampling import SamplingPolicy
from cures_verl.core.schedule import COLD_START, StepPlan

__all__ = ["CurriculumReport", "average_ranks", "pearson"]


def pearson(x: FloatArray, y: FloatArray) -> float:
    """Pearson's correlation of two samples; NaN when either is constant or has fewer than 2 values.

    Example:
        >>> round(pearson(np.array([0.1, 0.4, 0.3]), np.array([0.0, 1.0, 0.5])), 4)
        0.982
        >>> math.isnan(pearson(np.ones(3), np.ones(3)))
        True
    """
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])


def average_ranks(x: FloatArray) -> FloatArray:
    """0-based ranks, ties sharing their mean rank (Spearman's correlation is the Pearson one of these).

    Example:
        >>> average_ranks(np.array([0.3, 0.1, 0.3])).tolist()
        [1.5, 0.0, 1.5]
    """
    # one sort: [0.3, 0.1, 0.3] -> sorted [0.1, 0.3, 0.3], tie runs [0, 1) [1, 3) -> mean ranks 0, 1.5
    order = np.argsort(x, kind="stable")
    ordered = x[order]
    starts = run_starts(ordered)
    ends = np.append(starts[1:], x.size)
    result: FloatArray = np.empty(x.size)
    result[order] = np.repeat((starts + ends - 1) / 2.0, ends - starts)
    return result


class CurriculumReport:
    """Namespace-relative metrics of a sampler's parts (``batch/*``, ``posterior/*``, ``sampler/*``, ``alloc/*``,
    ``schedule/*``; docs/metrics.md lists them).

    Args:
        tracker: The posterior.
        policy: The sampling policy (Eq. 14).
        allocator: The rollout allocator (Eq. 20).
    """

    def __init__(self, tracker: BetaAccuracyTracker, policy: SamplingPolicy, allocator: RolloutAllocator) -> None:
        self.tracker, self.policy, self.allocator = tracker, policy, allocator

    @staticmethod
    def observation(counts: PromptCounts, predicted: FloatArray) -> dict[str, float]:
        """The batch and the calibration of ``predicted`` (the posterior means before the update) against it."""
        realised = counts.accuracy
        return {
            "batch/num_rollouts": float(counts.num_total.sum()),
            "batch/num_prompts": float(counts.prompt_indices.size),
            "batch/accuracy_mean": float(counts.num_correct.sum() / max(counts.num_total.sum(), 1.0)),
            "batch/frac_zero_variance": float(np.mean((realised == 0) | (realised == 1))) if realised.size else 0.0,
            "posterior/pred_realised_corr": pearson(predicted, realised),
            "posterior/pred_realised_rank_corr": pearson(average_ranks(predicted), average_ranks(realised)),
            "posterior/pred_abs_error": float(np.mean(np.abs(predicted - realised))) if realised.size else math.nan,
        }

    def sampling_probabilities(self, pool: IntArray, subset: int, step: int) -> FloatArray:
        """rho over ``pool`` (the eligible prompts of ``subset`` at ``step``), summing to 1 (Eq. 14)."""
        weights = self.policy.pool_weights(pool, subset, step)
        prob: FloatArray = weights / weights.sum()
        return prob

    def metrics(self, pool: IntArray, prob: FloatArray, plan: StepPlan | None) -> dict[str, float]:
        """The pool under rho = ``prob`` (``sampler/*``) and, when given, ``plan`` (``alloc/*``, ``schedule/*``)."""
        accuracy = self.tracker.posterior_mean(pool)
        entropy = float(-(prob * np.log(np.where(prob > 0, prob, 1.0))).sum())
        out = {
            "sampler/pool_size": float(pool.size),
            "sampler/pool_accuracy_mean": float(accuracy.mean()),
            "sampler/pool_accuracy_std": float(accuracy.std()),
            "sampler/frac_unseen": float(np.mean(self.tracker.num_observed(pool) == 0)),
            "sampler/weight_entropy": entropy / math.log(pool.size) if pool.size > 1 else 0.0,
            "sampler/effective_pool_size": math.exp(entropy),
        }
        if plan is not None:
            kept = plan.rollouts > 0
            n = plan.rollouts[kept] if kept.any() else np.zeros(1)
            out.update(
                {
                    "sampler/accuracy_mean": float(plan.predicted_accuracy.mean()),
                    "alloc/budget": float(self.allocator.budget),
                    "alloc/total": float(plan.total_rollouts),
                    "alloc/rollouts_min": float(n.min()),
                    "alloc/rollouts_mean": float(n.mean()),
                    "alloc/rollouts_max": float(n.max()),
                    "alloc/frac_at_min": float(np.mean(n == self.allocator.config.min_per_prompt)),
                    "alloc/num_dropped": float(np.count_nonzero(~kept)),
                    "schedule/iteration": float(plan.iteration),
                    "schedule/is_cold_start": float(plan.phase == COLD_START),
                }
            )
        return out
