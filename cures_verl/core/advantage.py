"""Posterior-baseline advantages for small GRPO groups (beyond the paper; off in every preset).

GRPO's advantage of rollout j of a prompt is ``(r_j - mean(r)) / std(r)`` over the prompt's own group. With 2-4
rollouts that mean is a poor estimate of the prompt's accuracy p, and a group whose rewards are all equal carries no
gradient at all. CurES already keeps a Beta(alpha, beta) posterior of every prompt's accuracy (Eq. 23); used as the
baseline, it denoises the advantage (the idea MaPP builds on: the posterior that selects prompts also shrinks the
GRPO baseline). The rule here, for rollout j of a group of n with outcomes o_1..o_n in [0, 1]:

    b_j = (alpha + S - o_j) / (alpha + beta + n - 1),    S = sum_k o_k        (leave-one-out posterior mean)
    A_j = (o_j - b_j) / sqrt(b_j (1 - b_j))                                   (``scale="posterior_std"``)
    A_j = o_j - b_j                                                           (``scale="none"``)

with alpha, beta the counts BEFORE this step's rewards are added (as the trainer holds them when it computes
advantages). Derivation, in docs/posterior_advantage.md:

* **Unbiased direction.** b_j and the scale use every outcome but o_j, and the rollouts of a group are drawn
  independently given the policy, so ``E[grad log pi(y_j) A_j] = E[1 / s_j] * grad J(x)``: the policy gradient of the
  prompt times a positive weight. GRPO's own mean includes r_j and shrinks each term by (n - 1) / n in expectation.
* **Less variance for small n.** The baseline's squared error about p is
  ``((n - 1) p (1 - p) + K^2 (m0 - p)^2) / (K + n - 1)^2`` with K = alpha + beta and m0 = alpha / K, against
  ``p (1 - p) / (n - 1)`` for the leave-one-out group mean: smaller whenever the posterior's error ``|m0 - p|`` is
  below about ``sqrt(p (1 - p) (K + 2 (n - 1)) / (K (n - 1)))`` (always when it is exact).
* **Signal from all-equal groups.** A group of 2 that is all correct on a prompt the posterior puts at 0.6 gets
  positive advantages (GRPO: zeros): the update pushes up what the posterior did not expect.
* **Bias when the posterior is stale.** The direction stays unbiased however wrong m0 is; only the variance grows with
  K (m0 - p)^2, which is why forgetting (``posterior.forgetting``) matters more with this option.

Example:
    >>> import numpy as np
    >>> adv = posterior_advantages(
    ...     np.array([1.0, 1.0, 0.0, 1.0]), np.array([0, 0, 1, 1]), np.array([3.0, 1.0]), np.array([2.0, 1.0])
    ... )
    >>> np.round(adv, 3).tolist()  # group 0 is all correct: GRPO gives 0, 0
    [0.707, 0.707, -1.414, 1.414]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cures_verl.config import AdvantageScale
from cures_verl.core._typing import BoolArray, FloatArray, IntArray

__all__ = [
    "SmallGroupAdvantages",
    "baseline_mse",
    "posterior_advantages",
    "posterior_baselines",
    "small_group_advantages",
]


def _check(outcomes: FloatArray, groups: IntArray, alpha: FloatArray, beta: FloatArray) -> None:
    if outcomes.ndim != 1 or groups.shape != outcomes.shape:
        raise ValueError(f"outcomes {outcomes.shape} and groups {groups.shape} must be 1-D of the same length")
    if alpha.ndim != 1 or beta.shape != alpha.shape:
        raise ValueError(f"alpha {alpha.shape} and beta {beta.shape} must be 1-D of the same length")
    if np.isnan(outcomes).any() or outcomes.min(initial=0.0) < 0 or outcomes.max(initial=0.0) > 1:
        raise ValueError("outcomes must lie in [0, 1] (map rewards with rewards_to_outcomes first)")
    if groups.size and (groups.min() < 0 or groups.max() >= alpha.size):
        raise ValueError(
            f"groups must index the {alpha.size} posterior rows, got ids in [{groups.min()}, {groups.max()}]"
        )
    if not (np.all(alpha > 0) and np.all(beta > 0)):
        raise ValueError("posterior counts alpha and beta must be > 0 (a Beta prior is proper)")


def posterior_baselines(outcomes: FloatArray, groups: IntArray, alpha: FloatArray, beta: FloatArray) -> FloatArray:
    """Leave-one-out posterior mean b_j = (alpha + S - o_j) / (alpha + beta + n - 1) of every rollout's prompt.

    Args:
        outcomes: Outcomes o_j in [0, 1], shape ``(k,)``.
        groups: Row of each rollout's prompt in ``alpha``/``beta``, int, shape ``(k,)``.
        alpha: Posterior correct counts before this step (prior included), shape ``(g,)``, > 0.
        beta: Posterior incorrect counts before this step, shape ``(g,)``, > 0.

    Returns:
        b_j in (0, 1), float64, shape ``(k,)``.

    Raises:
        ValueError: On shapes that disagree, outcomes outside [0, 1], group ids outside the rows, counts <= 0.

    Example:
        >>> posterior_baselines(np.array([1.0, 0.0]), np.array([0, 0]), np.array([1.0]), np.array([1.0])).tolist()
        [0.3333333333333333, 0.6666666666666666]
    """
    outcomes = np.asarray(outcomes, dtype=np.float64)
    groups = np.asarray(groups, dtype=np.int64)
    alpha = np.asarray(alpha, dtype=np.float64)
    beta = np.asarray(beta, dtype=np.float64)
    _check(outcomes, groups, alpha, beta)
    correct = np.bincount(groups, weights=outcomes, minlength=alpha.size)
    sizes = np.bincount(groups, minlength=alpha.size).astype(np.float64)
    result: FloatArray = (alpha[groups] + correct[groups] - outcomes) / (
        alpha[groups] + beta[groups] + sizes[groups] - 1.0
    )
    return result


def posterior_advantages(
    outcomes: FloatArray,
    groups: IntArray,
    alpha: FloatArray,
    beta: FloatArray,
    *,
    scale: AdvantageScale = "posterior_std",
) -> FloatArray:
    """Advantages ``(o_j - b_j) / s_j`` with the leave-one-out posterior baseline (module docstring).

    Args:
        outcomes: Outcomes o_j in [0, 1], shape ``(k,)``.
        groups: Row of each rollout's prompt in ``alpha``/``beta``, int, shape ``(k,)``.
        alpha: Posterior correct counts before this step, shape ``(g,)``, > 0.
        beta: Posterior incorrect counts before this step, shape ``(g,)``, > 0.
        scale: ``posterior_std``: s_j = sqrt(b_j (1 - b_j)), the Bernoulli std at the baseline (GRPO divides by
            the group's std); ``none``: s_j = 1 (as Dr. GRPO drops the std).

    Returns:
        Advantages, float64, shape ``(k,)``.

    Raises:
        ValueError: As :func:`posterior_baselines`, or on an unknown ``scale``.

    Example:
        >>> posterior_advantages(np.array([1.0, 0.0]), np.array([0, 0]), np.ones(1), np.ones(1), scale="none").tolist()
        [0.6666666666666667, -0.6666666666666666]
    """
    if scale not in ("posterior_std", "none"):
        raise ValueError(f"scale={scale!r}: expected 'posterior_std' or 'none'")
    baselines = posterior_baselines(outcomes, groups, alpha, beta)
    centred: FloatArray = np.asarray(outcomes, dtype=np.float64) - baselines
    if scale == "none":
        return centred
    result: FloatArray = centred / np.sqrt(baselines * (1.0 - baselines))
    return result


def baseline_mse(accuracy: float, group_size: int, alpha: float, beta: float) -> float:
    """Mean squared error about p of the leave-one-out posterior baseline (docs/posterior_advantage.md).

    ``((n - 1) p (1 - p) + (alpha - K p)^2) / (K + n - 1)^2`` with K = alpha + beta; with alpha = beta -> 0 it is the
    leave-one-out group mean's ``p (1 - p) / (n - 1)``.

    Args:
        accuracy: The prompt's true accuracy p in [0, 1].
        group_size: Rollouts n in the group, >= 2.
        alpha: Posterior correct count before the step, > 0.
        beta: Posterior incorrect count before the step, > 0.

    Returns:
        The mean squared error, a float.

    Raises:
        ValueError: On n < 2 or p outside [0, 1].

    Example:
        >>> round(baseline_mse(0.5, 2, 5.0, 5.0), 5)  # exact prior of weight 10 vs the other rollout's 0.25
        0.00207
    """
    if group_size < 2:
        raise ValueError(f"group_size={group_size}: a leave-one-out baseline needs n >= 2")
    if not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"accuracy={accuracy} must lie in [0, 1]")
    weight = alpha + beta
    return ((group_size - 1) * accuracy * (1 - accuracy) + (alpha - weight * accuracy) ** 2) / (
        weight + group_size - 1
    ) ** 2


@dataclass(frozen=True)
class SmallGroupAdvantages:
    """Which rollouts of a step take the posterior baseline, and their advantages.

    Attributes:
        rows: Whether each rollout's group has at most ``max_group_size`` rollouts, shape ``(k,)``.
        advantages: Advantages of the selected rollouts, in row order, shape ``(rows.sum(),)``.
        all_equal: Whether each selected rollout's group has one outcome only (GRPO gives it 0), shape as
            ``advantages``.
    """

    rows: BoolArray
    advantages: FloatArray
    all_equal: BoolArray


def small_group_advantages(
    prompt_ids: IntArray,
    outcomes: FloatArray,
    alpha: FloatArray,
    beta: FloatArray,
    *,
    max_group_size: int,
    scale: AdvantageScale = "posterior_std",
) -> SmallGroupAdvantages:
    """Posterior-baseline advantages of the rollouts whose prompt has at most ``max_group_size`` in the step.

    A group is all rollouts of one prompt in the step (CurES draws distinct prompts, so one group per prompt).

    Args:
        prompt_ids: Prompt of every rollout, shape ``(k,)``, any order.
        outcomes: Outcome of every rollout in [0, 1], shape ``(k,)``.
        alpha: Posterior correct count of every ROLLOUT's prompt before the step, shape ``(k,)``, > 0.
        beta: Posterior incorrect count of every rollout's prompt before the step, shape ``(k,)``, > 0.
        max_group_size: Largest group that takes the posterior baseline, >= 2.
        scale: As :func:`posterior_advantages`.

    Returns:
        The selection and its advantages.

    Raises:
        ValueError: On max_group_size < 2, shapes that disagree, counts that differ within a prompt, and as
            :func:`posterior_advantages`.

    Example:
        >>> out = small_group_advantages(
        ...     np.array([7, 7, 3, 3, 3]), np.array([1.0, 1.0, 1.0, 0.0, 0.0]), np.full(5, 2.0), np.full(5, 2.0),
        ...     max_group_size=2,
        ... )
        >>> out.rows.tolist(), np.round(out.advantages, 3).tolist(), out.all_equal.tolist()
        ([True, True, False, False, False], [0.816, 0.816], [True, True])
    """
    if max_group_size < 2:
        raise ValueError(f"max_group_size={max_group_size}: a leave-one-out baseline needs groups of >= 2")
    prompt_ids = np.asarray(prompt_ids, dtype=np.int64)
    outcomes = np.asarray(outcomes, dtype=np.float64)
    alpha = np.asarray(alpha, dtype=np.float64)
    beta = np.asarray(beta, dtype=np.float64)
    if not (prompt_ids.shape == outcomes.shape == alpha.shape == beta.shape) or prompt_ids.ndim != 1:
        raise ValueError("prompt_ids, outcomes, alpha and beta need one entry per rollout, 1-D")
    unique, first, groups, sizes = np.unique(prompt_ids, return_index=True, return_inverse=True, return_counts=True)
    if not (np.array_equal(alpha, alpha[first][groups]) and np.array_equal(beta, beta[first][groups])):
        raise ValueError("alpha and beta must be the same for every rollout of a prompt")
    rows = sizes[groups] <= max_group_size
    kept = np.flatnonzero(sizes <= max_group_size)
    remap = np.full(unique.size, -1, dtype=np.int64)
    remap[kept] = np.arange(kept.size)
    selected_groups = remap[groups[rows]]
    advantages = posterior_advantages(
        outcomes[rows], selected_groups, alpha[first][kept], beta[first][kept], scale=scale
    )
    correct = np.bincount(selected_groups, weights=outcomes[rows], minlength=kept.size)
    size = sizes[kept].astype(np.float64)
    all_equal = ((correct == 0) | (correct == size))[selected_groups]
    return SmallGroupAdvantages(rows=rows, advantages=advantages, all_equal=all_equal)
