"""The selection and allocation rules of the peer methods, as pure functions (each cites its paper).

The strategies in :mod:`cures_verl.experiments.strategies` wire these rules to the simulator; keeping the rules here
lets the tests check them on hand-computed inputs.

* :func:`gvm_weights` - GVM (Yao et al. 2025, "Optimizing Chain-of-Thought Reasoners via Gradient Variance
  Minimization in Rejection Sampling and RL", arXiv 2505.02391): n_i proportional to G_i / sqrt(p_i + a / p_i^(b-1)),
  n_i = 0 when p_i = 0 (rule as in github.com/RLHFlow/GVM ``em/stage_2_calc_sample_size.py``).
* :func:`knapsack_value` and :func:`knapsack_allocation` - Knapsack-RL (Li et al. 2025, "Knapsack RL: Unlocking
  Exploration of LLMs via Optimizing Budget Allocation", arXiv 2509.25849): the value of k rollouts on a prompt
  with success rate p is (1 - p^k - (1 - p)^k) * p (1 - p)^2, maximised exactly under sum_i k_i = budget.
* :func:`nearest_to_target` - MoPPS (Qu et al. 2025, "Can Prompt Difficulty be Online Predicted for
  Accelerating RL Finetuning of Reasoning Models?", arXiv 2507.04632): keep the prompts whose posterior draws
  are nearest the target success rate 0.5.
* :func:`zero_variance_groups` - the all-equal-rewards test behind DAPO's dynamic sampling (Yu et al. 2025,
  arXiv 2503.14476) and Speed-RL's screening (Zhang et al. 2025, arXiv 2506.09016).
"""

from __future__ import annotations

import numpy as np

from cures_verl.experiments.curriculum.simulator import FloatArray, IntArray

__all__ = [
    "gvm_weights",
    "knapsack_allocation",
    "knapsack_value",
    "nearest_to_target",
    "zero_variance_groups",
]


def gvm_weights(accuracy: FloatArray, *, a: float = 1e-3, b: float = 2.0, grad_norm: float = 1.0) -> FloatArray:
    """GVM's per-prompt allocation weight G / sqrt(p + a / p^(b-1)), and 0 where p = 0 (arXiv 2505.02391).

    With b = 2 the weight is G / sqrt(p + a / p): it decreases as p rises (hard prompts get more rollouts),
    except that p = 0 gets nothing. The benchmark assumes equal gradient norms G.

    Args:
        accuracy: Estimated success rates p in [0, 1], shape ``(m,)``.
        a: GVM's alpha (1e-3 in the GVM code).
        b: GVM's beta (2 in the GVM code).
        grad_norm: G, the same for every prompt.

    Returns:
        Weights >= 0, shape ``(m,)``.

    Raises:
        ValueError: If an accuracy lies outside [0, 1].

    Example:
        >>> gvm_weights(np.array([0.0, 0.25, 1.0])).round(4).tolist()
        [0.0, 1.9842, 0.9995]
    """
    p = np.asarray(accuracy, dtype=np.float64)
    if not np.all((p >= 0) & (p <= 1)):
        raise ValueError("accuracy must lie in [0, 1]")
    safe = np.where(p > 0, p, 1.0)
    weights = grad_norm / np.sqrt(safe + a / safe ** (b - 1.0))
    result: FloatArray = np.where(p > 0, weights, 0.0)
    return result


def knapsack_value(accuracy: FloatArray, rollouts: IntArray) -> FloatArray:
    """Knapsack-RL's value of giving ``rollouts`` rollouts to prompts of success rate ``accuracy`` (arXiv 2509.25849).

    value = P(the group is not all-equal) * information gain = (1 - p^k - (1 - p)^k) * p (1 - p)^2.

    Args:
        accuracy: p, any shape broadcastable with ``rollouts``.
        rollouts: k >= 0, same.

    Returns:
        Values >= 0, float64.

    Example:
        >>> knapsack_value(np.array([0.5, 0.0]), np.array([2, 8])).tolist()  # (1 - 1/4 - 1/4) * 1/8, and 0
        [0.0625, 0.0]
    """
    p = np.asarray(accuracy, dtype=np.float64)
    k = np.asarray(rollouts, dtype=np.float64)
    result: FloatArray = (1.0 - p**k - (1.0 - p) ** k) * p * (1.0 - p) ** 2
    return result


def check_budget_bounds(num_prompts: int, budget: int, min_per_prompt: int, max_per_prompt: int, fix: str) -> None:
    """Refuse per-prompt bounds that are inconsistent or cannot spend ``budget`` exactly (``fix`` says what to change).

    Raises:
        ValueError: If not 0 <= min <= max, or the budget lies outside [m x min, m x max].
    """
    if not 0 <= min_per_prompt <= max_per_prompt:
        raise ValueError(f"need 0 <= min_per_prompt <= max_per_prompt, got {min_per_prompt} and {max_per_prompt}")
    if not num_prompts * min_per_prompt <= budget <= num_prompts * max_per_prompt:
        raise ValueError(
            f"budget {budget} is infeasible for {num_prompts} prompts with {min_per_prompt} <= k <= {max_per_prompt}; "
            f"{fix}"
        )


def knapsack_allocation(
    accuracy: FloatArray, budget: int, *, min_per_prompt: int = 2, max_per_prompt: int = 128
) -> IntArray:
    """Exact maximiser of sum_i knapsack_value(p_i, k_i) subject to sum_i k_i = budget and min <= k_i <= max.

    Each prompt's value is concave in k: its increment value(k + 1) - value(k) = c (p^k (1 - p) + (1 - p)^k p),
    with c = p (1 - p)^2 >= 0, never increases with k. For a separable concave objective under one sum
    constraint, taking the ``budget - m * min`` largest increments over all prompts is optimal (Gross 1956;
    Fox 1966), and since each prompt's increments are non-increasing the chosen ones form a prefix, i.e. a valid
    count. Ties are broken towards lower prompt index, then lower k. The tests compare with brute force.

    Args:
        accuracy: Estimated success rates, shape ``(m,)``.
        budget: Total rollouts; ``m * min_per_prompt <= budget <= m * max_per_prompt``.
        min_per_prompt: Lower bound per prompt (Knapsack-RL: 2).
        max_per_prompt: Upper bound per prompt (Knapsack-RL: 128).

    Returns:
        Counts k_i, int64, shape ``(m,)``, summing to ``budget``.

    Raises:
        ValueError: If the budget is infeasible for the bounds or an accuracy is outside [0, 1].

    Example:
        >>> knapsack_allocation(np.array([0.0, 0.3, 0.9]), 16, max_per_prompt=8).tolist()  # p=0.3 hits the max
        [2, 8, 6]
    """
    p = np.asarray(accuracy, dtype=np.float64).reshape(-1)
    m = p.size
    if not np.all((p >= 0) & (p <= 1)):
        raise ValueError("accuracy must lie in [0, 1]")
    check_budget_bounds(m, budget, min_per_prompt, max_per_prompt, "change --knapsack-min/--knapsack-max or the budget")
    counts = np.full(m, min_per_prompt, dtype=np.int64)
    extra = budget - m * min_per_prompt
    if extra == 0:
        return counts
    levels = np.arange(min_per_prompt, max_per_prompt, dtype=np.float64)  # k -> k + 1 for k in [min, max)
    q = 1.0 - p
    scale = (p * q * q)[:, None]
    gains = scale * (p[:, None] ** levels[None, :] * q[:, None] + q[:, None] ** levels[None, :] * p[:, None])
    # rank increments: larger gain first, then lower prompt, then lower level (so chosen sets are prefixes)
    prompt_of = np.repeat(np.arange(m), levels.size)
    level_of = np.tile(np.arange(levels.size), m)
    order = np.lexsort((level_of, prompt_of, -gains.reshape(-1)))
    chosen = order[:extra]
    counts += np.bincount(prompt_of[chosen], minlength=m)
    return counts


def nearest_to_target(draws: FloatArray, num_select: int, *, target: float = 0.5) -> IntArray:
    """Positions of the ``num_select`` draws nearest ``target`` (MoPPS's selection, arXiv 2507.04632).

    Ties go to the lower position.

    Args:
        draws: Posterior draws of the success rate, shape ``(c,)``.
        num_select: How many to keep, at most ``c``.
        target: The success rate aimed at (MoPPS: 0.5).

    Returns:
        Positions into ``draws``, shape ``(num_select,)``, nearest first.

    Raises:
        ValueError: If ``num_select`` exceeds the number of draws.

    Example:
        >>> nearest_to_target(np.array([0.1, 0.6, 0.9, 0.45, 0.5]), 3).tolist()
        [4, 3, 1]
    """
    d = np.abs(np.asarray(draws, dtype=np.float64) - target)
    if num_select > d.size:
        raise ValueError(f"cannot select {num_select} of {d.size} candidates")
    order: IntArray = np.lexsort((np.arange(d.size), d))[:num_select].astype(np.int64)
    return order


def zero_variance_groups(group_ids: IntArray, rewards: FloatArray) -> tuple[IntArray, FloatArray, FloatArray]:
    """Per group: its id, number of rollouts, and whether its rewards are all equal (zero GRPO advantage).

    Args:
        group_ids: Group of every rollout, shape ``(k,)``.
        rewards: 0/1 reward of every rollout, shape ``(k,)``.

    Returns:
        ``(groups, counts, is_all_equal)``: distinct group ids (sorted), shape ``(g,)``; rollouts per group; and
        1.0 where every reward of the group is equal, else 0.0.

    Example:
        >>> groups, counts, flat = zero_variance_groups(np.array([5, 5, 2, 2]), np.array([1.0, 1.0, 0.0, 1.0]))
        >>> groups.tolist(), counts.tolist(), flat.tolist()
        ([2, 5], [2.0, 2.0], [0.0, 1.0])
    """
    groups, inverse, counts = np.unique(np.asarray(group_ids), return_inverse=True, return_counts=True)
    correct = np.bincount(inverse, weights=np.asarray(rewards, dtype=np.float64), minlength=groups.size)
    flat = ((correct == 0) | (correct == counts)).astype(np.float64)
    return groups.astype(np.int64), counts.astype(np.float64), flat
