"""Rollout allocation n_i = N sigma_i / sum_j sigma_j under a fixed budget (CurES Sec. 4.2, Eqs. 20-21).

Minimising the trace of the variance of the gradient estimator under sum_i n_i = N gives n_i
proportional to sigma_i, the standard deviation of prompt i's per-rollout gradient term (Eq. 20).
sigma_i^2 has a closed form in p_i and the expected squared log-prob gradient norms of correct and
incorrect rollouts (Eq. 21); with equal norms everywhere it reduces to sigma_i proportional to
sqrt(p_i(1-p_i)).

The paper gives no rounding rule and no bounds. We make both explicit:

* continuous optimum with bounds: n_i = clip(lambda sigma_i, lo, hi) with lambda chosen so the sum is
  N (water-filling); prompts with sigma_i = 0 sit at the floor (``floor``) or get nothing (``drop``,
  as the released code does);
* largest-remainder rounding, so the integer counts sum to exactly N and each is within one of its
  continuous value;
* infeasible settings (N < m * min, N > m * max) raise an error naming the numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cures_verl.config import AllocationConfig
from cures_verl.core._typing import FloatArray, IntArray
from cures_verl.core.difficulty import BetaAccuracyTracker
from cures_verl.core.grouping import sorted_distinct
from cures_verl.core.sampling import reward_std

__all__ = [
    "RolloutAllocator",
    "advantage_weights",
    "allocate_by_marginal_value",
    "allocate_rollouts",
    "grad_std_from_gradient_norms",
    "informative_scale",
    "informative_value_gains",
    "round_preserving_sum",
]


def grad_std_from_gradient_norms(
    accuracy: FloatArray,
    sq_norm_correct: FloatArray,
    sq_norm_incorrect: FloatArray,
    mean_gradient_gap_sq: FloatArray | None = None,
) -> FloatArray:
    """sigma_i from gradient-norm statistics (CurES Eq. 21).

    sigma^2 = p (1-p)^2 E_{r=1}||g||^2 + p^2 (1-p) E_{r=0}||g||^2 - p^2 (1-p)^2 ||E_{r=1}[g] - E_{r=0}[g]||^2,
    with g the gradient of the log-probability of a rollout. Negative values from noisy estimates are clipped
    to zero. With equal norms c and no gap term this is c sqrt(p(1-p)).

    Args:
        accuracy: p_i in [0, 1], shape ``(m,)``.
        sq_norm_correct: E||g||^2 over correct rollouts, shape ``(m,)``, >= 0.
        sq_norm_incorrect: E||g||^2 over incorrect rollouts, shape ``(m,)``, >= 0.
        mean_gradient_gap_sq: ||E_{r=1}[g] - E_{r=0}[g]||^2, shape ``(m,)``, >= 0; None drops the term.
            (The released code approximates it by the squared difference of the mean norms.)

    Returns:
        sigma_i >= 0, float64, shape ``(m,)``.

    Raises:
        ValueError: On shape mismatch, NaN, negative norms or accuracies outside [0, 1].

    Example:
        >>> grad_std_from_gradient_norms(np.array([0.5, 0.5]), np.array([4.0, 1.0]), np.array([4.0, 1.0])).tolist()
        [1.0, 0.5]
    """
    p = np.asarray(accuracy, dtype=np.float64)
    e1 = np.asarray(sq_norm_correct, dtype=np.float64)
    e0 = np.asarray(sq_norm_incorrect, dtype=np.float64)
    gap = np.zeros_like(p) if mean_gradient_gap_sq is None else np.asarray(mean_gradient_gap_sq, dtype=np.float64)
    if not (p.shape == e1.shape == e0.shape == gap.shape) or p.ndim != 1:
        raise ValueError("accuracy and the gradient statistics must be 1-D arrays of the same length")
    if not np.all((p >= 0) & (p <= 1)):
        raise ValueError("accuracy must lie in [0, 1]")
    for name, arr in (("sq_norm_correct", e1), ("sq_norm_incorrect", e0), ("mean_gradient_gap_sq", gap)):
        if not np.all(np.isfinite(arr) & (arr >= 0)):
            raise ValueError(f"{name} must be finite and >= 0")
    q = 1.0 - p
    variance = p * q * q * e1 + p * p * q * e0 - p * p * q * q * gap
    return np.sqrt(np.maximum(variance, 0.0))


def _water_fill(weights: FloatArray, total: float, lo: float, hi: float) -> FloatArray:
    """x_i = clip(lam * w_i, lo, hi) with sum x = total, for w_i > 0 and m lo <= total <= m hi.

    f(lam) = sum_i clip(lam w_i, lo, hi) is piecewise linear and non-decreasing with kinks at lo / w_i and
    hi / w_i. A binary search over the sorted kinks finds the bracket [a, b] holding the solution; inside it
    every prompt is at the floor, at the ceiling or proportional, so lam solves a linear equation. O(m log m).
    """
    if total <= lo * weights.size:
        return np.full(weights.size, lo)
    # Scale to max 1 and lift weights below 1e-15 of the largest (denormals would overflow lo / w); this moves
    # any continuous count by at most total * 1e-15, far below the rounding step.
    weights = np.maximum(weights / weights.max(), 1e-15)
    floor_kinks = lo / weights  # lam below which prompt i sits at the floor
    ceiling_kinks = hi / weights  # lam above which it sits at the ceiling (inf without a maximum)
    kinks = sorted_distinct(np.concatenate([floor_kinks, ceiling_kinks[np.isfinite(ceiling_kinks)]]))

    def filled(lam: float) -> float:
        return float(np.clip(lam * weights, lo, hi).sum())

    if filled(float(kinks[-1])) <= total:
        a, b = float(kinks[-1]), np.inf
    else:
        left, right = 0, kinks.size - 1  # invariant: filled(kinks[left]) <= total < filled(kinks[right])
        while right - left > 1:
            mid = (left + right) // 2
            if filled(float(kinks[mid])) <= total:
                left = mid
            else:
                right = mid
        a, b = float(kinks[left]), float(kinks[right])
    # compare against the kinks themselves (not lam * w) so a prompt whose kink bounds the bracket is classified
    # exactly, whatever the rounding of the product
    at_floor = floor_kinks >= b
    at_ceiling = ceiling_kinks <= a
    middle = ~(at_floor | at_ceiling)
    free = total - lo * np.count_nonzero(at_floor) - (hi * np.count_nonzero(at_ceiling) if at_ceiling.any() else 0.0)
    slope = float(weights[middle].sum())
    lam = free / slope if slope > 0 else a
    return np.clip(lam * weights, lo, hi)


def round_preserving_sum(values: FloatArray, total: int, *, lo: int, hi: int | None) -> IntArray:
    """Round ``values`` to integers in [lo, hi] that sum to ``total`` (largest-remainder method).

    Each result is floor(v) or ceil(v) of its value (clipped to the bounds); ties go to the lower index.

    Args:
        values: Continuous counts, shape ``(m,)``, with sum close to ``total`` and entries within bounds.
        total: The exact integer sum wanted.
        lo: Lower bound of every count.
        hi: Upper bound of every count, or None.

    Returns:
        Integer counts, int64, shape ``(m,)``, summing to ``total``.

    Raises:
        ValueError: If no rounding within the bounds can reach ``total``.

    Example:
        >>> round_preserving_sum(np.array([2.5, 2.5, 3.0]), 8, lo=2, hi=None).tolist()
        [3, 2, 3]
    """
    values = np.asarray(values, dtype=np.float64)
    upper = np.inf if hi is None else hi
    counts = np.clip(np.floor(values + 1e-9), lo, upper).astype(np.int64)
    remainder = total - int(counts.sum())
    frac = values - counts
    if remainder > 0:
        eligible = np.flatnonzero(counts < upper)
        order = eligible[np.lexsort((eligible, -frac[eligible]))]
        if order.size < remainder:
            raise ValueError(f"cannot reach a total of {total} with counts in [{lo}, {hi}]")
        counts[order[:remainder]] += 1
    elif remainder < 0:
        eligible = np.flatnonzero(counts > lo)
        order = eligible[np.lexsort((eligible, frac[eligible]))]
        if order.size < -remainder:
            raise ValueError(f"cannot reach a total of {total} with counts in [{lo}, {hi}]")
        counts[order[:-remainder]] -= 1
    return counts


def allocate_rollouts(
    grad_stds: FloatArray,
    budget: int,
    *,
    min_per_prompt: int = 2,
    max_per_prompt: int | None = None,
    zero_variance: str = "floor",
    multiple_of: int = 1,
) -> IntArray:
    """Split ``budget`` rollouts across prompts in proportion to ``grad_stds`` (CurES Eq. 20).

    n_i = clip(lambda sigma_i, min, max) with lambda set so that sum n_i = budget, then largest-remainder
    rounding. Prompts with sigma_i = 0 get ``min_per_prompt`` (``floor``) or 0 (``drop``). When the
    positive-sigma prompts are all at the maximum, the rest of the budget is shared equally among the
    others (the limit of sigma_i -> 0+); when every sigma_i is 0 under ``floor`` the split is uniform.

    Under ``drop`` the budget is an upper bound: if the kept prompts cannot absorb it within
    ``max_per_prompt``, they all get the maximum (the total is then smaller, rounded down to
    ``multiple_of``); if no prompt is kept, every count is 0.

    Args:
        grad_stds: sigma_i >= 0, shape ``(m,)``.
        budget: Total rollouts N >= 0; a multiple of ``multiple_of``.
        min_per_prompt: Minimum per kept prompt (GRPO needs 2).
        max_per_prompt: Optional maximum per prompt.
        zero_variance: ``floor`` or ``drop`` (see above).
        multiple_of: The total is a multiple of this.

    Returns:
        Integer counts, int64, shape ``(m,)``; they sum to ``budget`` except under ``drop`` as described.

    Raises:
        ValueError: If ``grad_stds`` is not 1-D or has negatives/NaNs, or the budget is infeasible
            (N < m * min, N > m * max, or N not a multiple of ``multiple_of``).

    Example:
        >>> allocate_rollouts(np.array([1.0, 1.0, 2.0]), budget=8, min_per_prompt=0).tolist()
        [2, 2, 4]
        >>> allocate_rollouts(np.array([0.0, 0.1, 0.5]), budget=12).tolist()  # floor for sigma = 0
        [2, 2, 8]
        >>> allocate_rollouts(np.array([0.0, 0.1, 0.5]), budget=12, zero_variance="drop").tolist()
        [0, 2, 10]
    """
    sigma = np.asarray(grad_stds, dtype=np.float64)
    if sigma.ndim != 1:
        raise ValueError(f"grad_stds must be 1-D, got shape {sigma.shape}")
    if not np.all(np.isfinite(sigma) & (sigma >= 0)):
        raise ValueError("grad_stds must be finite and >= 0")
    if zero_variance not in ("floor", "drop"):
        raise ValueError(f"zero_variance must be 'floor' or 'drop', got {zero_variance!r}")
    if min_per_prompt < 0 or (max_per_prompt is not None and max_per_prompt < max(min_per_prompt, 1)):
        raise ValueError(f"need 0 <= min_per_prompt <= max_per_prompt, got {min_per_prompt} and {max_per_prompt}")
    if multiple_of < 1 or budget < 0 or budget % multiple_of:
        raise ValueError(f"budget {budget} must be a non-negative multiple of multiple_of={multiple_of}")
    num_prompts = sigma.size
    counts = np.zeros(num_prompts, dtype=np.int64)
    kept = np.flatnonzero(sigma > 0) if zero_variance == "drop" else np.arange(num_prompts)
    hi = np.inf if max_per_prompt is None else float(max_per_prompt)
    target = budget
    if zero_variance == "drop":
        if kept.size == 0:
            return counts
        target = int(min(budget, kept.size * hi) // multiple_of * multiple_of)
    if target < kept.size * min_per_prompt:
        raise ValueError(
            f"rollout budget {target} is below {kept.size} prompts x min_per_prompt {min_per_prompt} = "
            f"{kept.size * min_per_prompt}; raise the budget (rollout.n) or lower cures.allocation.min_per_prompt"
        )
    if target > kept.size * hi:
        raise ValueError(
            f"rollout budget {target} exceeds {kept.size} prompts x max_per_prompt {max_per_prompt} = "
            f"{kept.size * hi:.0f}; raise cures.allocation.max_per_prompt or lower the budget"
        )
    weights = sigma[kept]
    continuous = np.full(kept.size, float(min_per_prompt))
    positive = weights > 0
    if positive.any():
        share = float(min(target - min_per_prompt * np.count_nonzero(~positive), positive.sum() * hi))
        continuous[positive] = _water_fill(weights[positive], share, float(min_per_prompt), hi)
    spare = target - continuous.sum()
    if spare > 1e-9 * max(target, 1):
        # positive-sigma prompts are saturated (or there are none): share the rest equally among the others
        others = ~positive if positive.any() else np.ones(kept.size, dtype=bool)
        continuous[others] = _water_fill(
            np.ones(int(others.sum())), float(continuous[others].sum() + spare), float(min_per_prompt), hi
        )
    counts[kept] = round_preserving_sum(continuous, target, lo=min_per_prompt, hi=max_per_prompt)
    return counts


def informative_scale(nonzero_rows: np.ndarray) -> float:
    """The factor on a step's advantages under ``allocation.loss_normalizer=informative``: rollouts over rollouts with
    a nonzero advantage, so a loss averaged over all rollouts weighs the informative ones as a loss averaged over
    them alone would (rows with a zero advantage add nothing to the gradient, only to the mean's count). 1 when no
    row is informative (nothing to scale) or every row is.

    Example:
        >>> informative_scale(np.array([True, True, False, False, False, False, True, True]))  # 4 of 8
        2.0
        >>> informative_scale(np.zeros(3, dtype=bool))
        1.0
    """
    rows = np.asarray(nonzero_rows, dtype=bool)
    informative = int(np.count_nonzero(rows))
    return float(rows.size) / informative if informative else 1.0


def advantage_weights(
    rollouts: IntArray, nominal: float | None = None, *, loss_weighting: str = "prompt"
) -> FloatArray:
    """Per-prompt factor on the advantages so the policy loss weighs prompts as the config says.

    Under a loss averaged over all rollouts of a batch (verl's ``token-mean`` with equal lengths), prompt i
    weighs n_i. The paper's estimator (CurES Eq. 16) averages each group over its own n_i, i.e. every prompt
    weighs the same: scaling prompt i's advantages by n_bar / n_i restores that (a positive factor on the
    advantage is exactly a per-sample loss weight under PPO clipping). With n_bar the step's mean rollouts per
    prompt (the default), the factors average exactly 1 over the step's rollouts, so the policy-gradient scale
    is the unweighted one whatever the step's total (a cold-start step trained on, prompts dropped with zero
    rollouts). ``rollout`` weighting returns ones.

    Args:
        rollouts: n_i per prompt, shape ``(m,)``; prompts with n_i = 0 get weight 0.
        nominal: n_bar; default (None): sum(n_i) / #{i: n_i > 0}, the step's actual mean.
        loss_weighting: ``prompt`` (paper) or ``rollout``.

    Returns:
        Factors, float64, shape ``(m,)``.

    Raises:
        ValueError: For an unknown weighting, nominal < 1 or negative counts.

    Example:
        >>> advantage_weights(np.array([2, 8, 14]), 8).tolist()
        [4.0, 1.0, 0.5714285714285714]
        >>> advantage_weights(np.array([2, 4, 0])).tolist()  # mean of the sampled prompts: 3
        [1.5, 0.75, 0.0]
    """
    n = np.asarray(rollouts, dtype=np.float64)
    if np.any(n < 0):
        raise ValueError("rollout counts must be >= 0")
    if nominal is None:
        sampled = n[n > 0]
        nominal = float(sampled.mean()) if sampled.size else 1.0
    if nominal < 1:
        raise ValueError(f"nominal must be >= 1, got {nominal}")
    if loss_weighting == "rollout":
        return np.where(n > 0, 1.0, 0.0)
    if loss_weighting == "prompt":
        result: FloatArray = np.where(n > 0, nominal / np.maximum(n, 1.0), 0.0)
        return result
    raise ValueError(f"unknown loss weighting {loss_weighting!r}; choose 'prompt' or 'rollout'")


def informative_value_gains(alpha: FloatArray, beta: FloatArray, counts: IntArray) -> FloatArray:
    """Gain of one more rollout, V_i(k + 1) - V_i(k), at k = ``counts`` (beyond the paper).

    V_i(k) = E[sqrt(p(1-p)) (1 - p^k - (1-p)^k)] under p ~ Beta(alpha_i, beta_i): the paper's per-prompt
    potential sqrt(p(1-p)) (Eq. 12), counted only when a group of k rollouts has both outcomes (an all-equal
    GRPO group has zero advantage and delivers nothing). The gain is
    E[sqrt(p(1-p)) (p^k (1-p) + (1-p)^k p)], positive and decreasing in k, so V_i is concave.

    Args:
        alpha: Beta parameters, shape ``(m,)``.
        beta: Beta parameters, shape ``(m,)``.
        counts: k per prompt, shape ``(m,)``, >= 0.

    Returns:
        Gains, float64, shape ``(m,)``.

    Example:
        >>> g = informative_value_gains(np.array([1.0, 1.0]), np.array([1.0, 1.0]), np.array([1, 5]))
        >>> bool(g[0] > g[1] > 0)
        True
    """
    from cures_verl.core.difficulty import log_beta_moment

    k = np.asarray(counts, dtype=np.float64)
    first = log_beta_moment(alpha, beta, k + 0.5, 1.5)
    second = log_beta_moment(alpha, beta, 1.5, k + 0.5)
    gains: FloatArray = np.exp(first) + np.exp(second)
    return gains


def _gain_table(alpha: FloatArray, beta: FloatArray, first_k: int, length: int) -> FloatArray:
    """informative_value_gains at k = first_k .. first_k + length - 1, shape ``(m, length)``.

    Uses log Gamma(x + 1) = log Gamma(x) + log x along k, so only a few log-Gamma calls per prompt are needed.
    """
    from cures_verl.core.difficulty import log_gamma

    a, b = alpha[:, None], beta[:, None]
    steps = np.arange(length - 1, dtype=np.float64)[None, :]

    def log_gamma_run(start: FloatArray) -> FloatArray:
        # log Gamma(start + j) for j = 0 .. length-1
        head = log_gamma(start)
        tail = np.cumsum(np.log(start + steps), axis=1)
        return np.concatenate([head, head + tail], axis=1)

    k0 = float(first_k)
    const = log_gamma(a + b) - log_gamma(a) - log_gamma(b)
    denominator = log_gamma_run(a + b + k0 + 2.0)
    first = log_gamma_run(a + k0 + 0.5) + log_gamma(b + 1.5) - denominator + const
    second = log_gamma(a + 1.5) + log_gamma_run(b + k0 + 0.5) - denominator + const
    table: FloatArray = np.exp(first) + np.exp(second)
    return table


def allocate_by_marginal_value(
    alpha: FloatArray,
    beta: FloatArray,
    budget: int,
    *,
    min_per_prompt: int = 2,
    max_per_prompt: int | None = None,
) -> IntArray:
    """Split ``budget`` to maximise sum_i V_i(n_i), exactly (beyond the paper; next to Eq. 20).

    With V_i concave (see :func:`informative_value_gains`), the optimum over integers with
    min <= n_i <= max and sum n_i = budget gives the extra rollouts to the largest marginal gains overall
    (the greedy knapsack is exact for separable concave values). We take the largest gains from a table of
    the first L gains per prompt, doubling L while some prompt uses its whole row (a longer row could then
    hold a larger gain), so the result is exact. Ties go to the lower prompt index.

    Args:
        alpha: Beta parameters of the drawn prompts, shape ``(m,)``.
        beta: Beta parameters, shape ``(m,)``.
        budget: Total rollouts N.
        min_per_prompt: Minimum per prompt.
        max_per_prompt: Optional maximum per prompt.

    Returns:
        Integer counts, int64, shape ``(m,)``, summing to ``budget``.

    Raises:
        ValueError: If the budget is infeasible for the bounds.

    Example:
        >>> n = allocate_by_marginal_value(np.array([1.0, 5.0, 50.0]), np.array([1.0, 5.0, 1.0]), 24)
        >>> int(n.sum()), bool(n[2] < n[1])  # the near-certain prompt (p ~ 0.98) gets the fewest
        (24, True)
    """
    alpha = np.asarray(alpha, dtype=np.float64)
    beta = np.asarray(beta, dtype=np.float64)
    m = alpha.size
    if alpha.shape != beta.shape or alpha.ndim != 1:
        raise ValueError("alpha and beta must be 1-D arrays of the same length")
    room = budget - m * min_per_prompt  # extra rollouts above the floor
    cap = room if max_per_prompt is None else max_per_prompt - min_per_prompt
    if room < 0 or (max_per_prompt is not None and room > m * cap):
        raise ValueError(
            f"rollout budget {budget} is infeasible for {m} prompts with min_per_prompt={min_per_prompt} and "
            f"max_per_prompt={max_per_prompt}"
        )
    counts = np.full(m, min_per_prompt, dtype=np.int64)
    if room == 0:
        return counts
    length = min(cap, max(8, 2 * (-(-room // m)) + 2))
    while True:
        gains = _gain_table(alpha, beta, min_per_prompt, length).reshape(-1)
        prompt_of = np.repeat(np.arange(m), length)
        # largest gains first; ties by prompt index then by k (rows are decreasing, so each prompt takes a prefix)
        order = np.lexsort((np.tile(np.arange(length), m), prompt_of, -gains))[:room]
        taken = np.bincount(prompt_of[order], minlength=m)
        if length >= cap or not np.any(taken == length):
            return counts + taken
        length = min(cap, 2 * length)


class RolloutAllocator:
    """How many rollouts each drawn prompt gets: Eq. 20 (or the marginal-value rule) under the step budget
    N = m x n, with sigma_i from Eq. 21; the only reader of ``cures.allocation`` in a step, and the owner of the
    per-prompt gradient-norm statistics of ``grad_std=gradient_norms``.

    Args:
        config: The ``cures.allocation`` section.
        num_prompts: Dataset size.
        batch_size: Prompts per step m.
        rollouts_per_prompt: Nominal rollouts per prompt n (the budget is N = m x n).

    Raises:
        ValueError: If the budget is infeasible for the bounds (not a multiple of ``multiple_of``, below
            m x ``min_per_prompt``, or above m x ``max_per_prompt`` under ``floor``), naming the keys to change.

    Example:
        >>> from cures_verl.config import AllocationConfig
        >>> allocator = RolloutAllocator(AllocationConfig(), num_prompts=3, batch_size=2, rollouts_per_prompt=8)
        >>> tracker = BetaAccuracyTracker(3)
        >>> _ = tracker.update(np.array([0]), np.array([0]), np.array([30]))  # prompt 0 is (nearly) always wrong
        >>> allocator.allocate(np.array([0, 1]), tracker).tolist()  # prompt 1 (p = 1/2) gets the most
        [4, 12]
    """

    def __init__(
        self, config: AllocationConfig, *, num_prompts: int, batch_size: int, rollouts_per_prompt: int
    ) -> None:
        self.config = config
        self.num_prompts, self.batch_size, self.rollouts_per_prompt = num_prompts, batch_size, rollouts_per_prompt
        self.budget = batch_size * rollouts_per_prompt
        self.grad_stats: FloatArray | None = None  # (3, N): E||g||^2 correct, incorrect, gap^2; NaN = unknown
        self._check_budget()

    def _check_budget(self) -> None:
        alloc = self.config
        m, n_min, n_max = self.batch_size, alloc.min_per_prompt, alloc.max_per_prompt
        if not alloc.enable:
            return
        where = f"rollout budget {self.budget} (= {m} prompts x {self.rollouts_per_prompt})"
        if self.budget % alloc.multiple_of:
            raise ValueError(
                f"{where} is not a multiple of cures.allocation.multiple_of={alloc.multiple_of}; "
                "change rollout.n or multiple_of"
            )
        if self.budget < m * n_min:
            raise ValueError(
                f"{where} is below {m} x cures.allocation.min_per_prompt={n_min}; raise rollout.n or lower "
                "min_per_prompt"
            )
        if n_max is not None and self.budget > m * n_max and alloc.zero_variance == "floor":
            raise ValueError(
                f"{where} exceeds {m} x cures.allocation.max_per_prompt={n_max}; raise max_per_prompt or lower "
                "rollout.n"
            )

    def allocate(self, prompts: IntArray, tracker: BetaAccuracyTracker) -> IntArray:
        """n_i of the drawn ``prompts`` under the budget; all zero when every prompt is dropped (``drop``)."""
        alloc = self.config
        if not alloc.enable:
            return np.full(prompts.size, self.rollouts_per_prompt, dtype=np.int64)
        if alloc.rule == "marginal_value":
            return allocate_by_marginal_value(
                tracker.alpha(prompts),
                tracker.beta(prompts),
                self.budget,
                min_per_prompt=alloc.min_per_prompt,
                max_per_prompt=alloc.max_per_prompt,
            )
        return allocate_rollouts(
            self._grad_stds(prompts, tracker),
            self.budget,
            min_per_prompt=alloc.min_per_prompt,
            max_per_prompt=alloc.max_per_prompt,
            zero_variance=alloc.zero_variance,
            multiple_of=alloc.multiple_of,
        )

    def _grad_stds(self, prompts: IntArray, tracker: BetaAccuracyTracker) -> FloatArray:
        """sigma_i: sqrt(p(1-p)) (Eq. 21 with equal gradient norms) or Eq. 21 with the stored statistics."""
        alloc = self.config
        if alloc.accuracy_estimate == "mle":
            accuracy = tracker.mle_accuracy(prompts)
        else:
            accuracy = tracker.posterior_mean(prompts)
        if alloc.grad_std == "accuracy":
            return reward_std(accuracy)
        stats = self.grad_stats[:, prompts] if self.grad_stats is not None else np.full((3, prompts.size), np.nan)
        missing = np.isnan(stats[:2]).any(axis=0)
        if missing.any():
            raise ValueError(
                f"{int(missing.sum())} of the {prompts.size} drawn prompts have no gradient-norm statistics; call "
                "set_gradient_norm_stats for them or use cures.allocation.grad_std=accuracy"
            )
        gap = np.nan_to_num(stats[2], nan=0.0)
        return grad_std_from_gradient_norms(accuracy, stats[0], stats[1], gap)

    def set_gradient_norm_stats(
        self,
        prompt_indices: IntArray,
        sq_norm_correct: FloatArray,
        sq_norm_incorrect: FloatArray,
        mean_gradient_gap_sq: FloatArray | None = None,
    ) -> None:
        """Store per-prompt gradient-norm statistics for sigma_i from Eq. 21 (``grad_std=gradient_norms``).

        Args:
            prompt_indices: Prompt ids, shape ``(k,)``.
            sq_norm_correct: E||grad log pi||^2 over correct rollouts, shape ``(k,)``.
            sq_norm_incorrect: The same over incorrect rollouts, shape ``(k,)``.
            mean_gradient_gap_sq: ||E_correct[grad] - E_incorrect[grad]||^2, shape ``(k,)``; None = unknown
                (the term is then dropped).
        """
        idx = np.asarray(prompt_indices, dtype=np.int64)
        if self.grad_stats is None:
            self.grad_stats = np.full((3, self.num_prompts), np.nan)
        gap = np.full(idx.size, np.nan) if mean_gradient_gap_sq is None else mean_gradient_gap_sq
        values = np.stack(
            [np.asarray(a, dtype=np.float64).reshape(-1) for a in (sq_norm_correct, sq_norm_incorrect, gap)]
        )
        if values.shape != (3, idx.size):
            raise ValueError("gradient statistics must have one entry per prompt index")
        self.grad_stats[:, idx] = values

    def forget(self, prompt_indices: IntArray) -> None:
        """Drop the statistics of prompts whose estimates start afresh (an iteration's reset)."""
        if self.grad_stats is not None:
            self.grad_stats[:, prompt_indices] = np.nan

    @property
    def nbytes(self) -> int:
        """Bytes of the gradient-norm statistics (0 until set)."""
        return 0 if self.grad_stats is None else int(self.grad_stats.nbytes)

    def state_dict(self) -> dict[str, Any]:
        """The gradient-norm statistics (a copy; NaN where unknown)."""
        return {"grad_stats": None if self.grad_stats is None else self.grad_stats.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`."""
        grad_stats = state.get("grad_stats")
        self.grad_stats = None if grad_stats is None else np.array(grad_stats, dtype=np.float64)
