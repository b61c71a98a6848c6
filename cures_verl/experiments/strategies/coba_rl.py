"""CoBA-RL: a capability-oriented value curve over the pass rate and a heap-greedy rollout allocation.

CoBA-RL, Yao et al. 2026, "CoBA-RL: Capability-Oriented Budget Allocation for Reinforcement Learning in LLMs",
arXiv 2602.03048 (code announced at github.com/Within-yao/CoBA-RL; at the time of writing that repository holds only
a README, so everything here is written from the paper's description).

What the paper describes, and what we had to assume:

* **Capability-oriented value.** A prompt's training value is a Beta-shaped curve over its pass rate p whose shape
  parameters (alpha_t, beta_t) follow the model's *global failure rate* (a moving average of the batch's failure
  rate): early, when most rollouts fail, the curve favours easy prompts (consolidate, "exploit"); later, as the
  failure rate falls, it moves towards hard ones ("explore"). The exact map from the failure rate to (alpha_t,
  beta_t) was not available to us. We assume the curve's mode sits at the failure rate F:
  ``alpha_t = 1 + kappa F``, ``beta_t = 1 + kappa (1 - F)`` (mode (alpha_t - 1) / (alpha_t + beta_t - 2) = F) with a
  concentration ``kappa`` = :data:`COBA_CONCENTRATION`. With F = 0.66 (the default simulator's start) the curve
  peaks at p = 0.66; with F = 0.3 at p = 0.3.
* **Saturation.** The paper couples the curve to the budget with a "saturation factor" whose form we could not
  read; we assume the probability that k rollouts give a GRPO group with both outcomes, ``1 - p^k - (1 - p)^k``
  (the factor Knapsack-RL uses), so ``value(p, k) = V(p) (1 - p^k - (1 - p)^k)``. Its increment
  ``V(p) (p^k (1 - p) + (1 - p)^k p)`` never increases with k, which is what makes the greedy allocation exact.
* **Heap-based greedy allocation.** Every prompt starts at the minimum (2); the remaining budget is handed out one
  rollout at a time to the prompt whose next rollout adds the most value, kept in a max-heap (O(B log m)). With
  concave per-prompt values this equals the exact optimum (tests compare with brute force).
* **Pass rates.** As for Knapsack-RL here: the posterior mean of a Beta(1, 1) prior updated with the strategy's own
  earlier rollouts on the prompt (an unseen prompt is at 0.5); prompts come from verl's shuffled loader. The global
  failure rate is an exponential moving average (factor :data:`COBA_FAILURE_MOMENTUM`) of each step's share of
  failed rollouts, starting at 0.5 (our choice).
"""

from __future__ import annotations

import heapq
import math

import numpy as np

from cures_verl.core.difficulty import BetaAccuracyTracker
from cures_verl.experiments.curriculum.simulator import FloatArray, IntArray
from cures_verl.experiments.strategies.base import Strategy, StrategyContext
from cures_verl.experiments.strategies.environment import Environment, EpochStream
from cures_verl.experiments.strategies.rules import check_budget_bounds

__all__ = [
    "COBA_CONCENTRATION",
    "COBA_FAILURE_MOMENTUM",
    "CoBARL",
    "coba_allocation",
    "coba_shape",
    "coba_value",
    "coba_value_curve",
]

#: kappa: concentration of the value curve around its mode (our assumption; see the module docstring).
COBA_CONCENTRATION = 6.0

#: Momentum of the moving average of the global failure rate (our assumption).
COBA_FAILURE_MOMENTUM = 0.9


def coba_shape(failure_rate: float, *, concentration: float = COBA_CONCENTRATION) -> tuple[float, float]:
    """(alpha_t, beta_t) of the value curve for a global failure rate F: mode at F (module docstring).

    Raises:
        ValueError: If F is outside [0, 1] or the concentration is not positive.

    Example:
        >>> coba_shape(0.5, concentration=4.0)
        (3.0, 3.0)
    """
    if not 0.0 <= failure_rate <= 1.0:
        raise ValueError(f"failure_rate={failure_rate} must lie in [0, 1]")
    if not concentration > 0:
        raise ValueError(f"concentration={concentration} must be > 0")
    return 1.0 + concentration * failure_rate, 1.0 + concentration * (1.0 - failure_rate)


def coba_value_curve(
    accuracy: FloatArray, failure_rate: float, *, concentration: float = COBA_CONCENTRATION
) -> FloatArray:
    """V(p): the Beta(alpha_t, beta_t) density at each pass rate p, for the global failure rate F.

    Args:
        accuracy: Pass rates p in [0, 1], any shape.
        failure_rate: F in [0, 1].
        concentration: kappa > 0.

    Returns:
        Values >= 0, float64, the shape of ``accuracy``.

    Example:
        >>> p = np.array([0.2, 0.5, 0.8])
        >>> coba_value_curve(p, 0.8).argmax(), coba_value_curve(p, 0.2).argmax()  # easy early, hard later
        (np.int64(2), np.int64(0))
    """
    p = np.asarray(accuracy, dtype=np.float64)
    if not np.all((p >= 0) & (p <= 1)):
        raise ValueError("accuracy must lie in [0, 1]")
    a, b = coba_shape(failure_rate, concentration=concentration)
    log_norm = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    # powers, not logs: at F = 0 or 1 an exponent is 0 and 0^0 = 1 (a log would give 0 x -inf = NaN)
    result: FloatArray = p ** (a - 1.0) * (1.0 - p) ** (b - 1.0) * math.exp(log_norm)
    return result


def coba_value(
    accuracy: FloatArray, rollouts: IntArray, failure_rate: float, *, concentration: float = COBA_CONCENTRATION
) -> FloatArray:
    """value(p, k) = V(p) (1 - p^k - (1 - p)^k): the curve times the saturation factor (module docstring).

    Example:
        >>> round(float(coba_value(np.array([0.5]), np.array([2]), 0.5, concentration=2.0)[0]), 6)  # 1.5 x 0.5
        0.75
    """
    p = np.asarray(accuracy, dtype=np.float64)
    k = np.asarray(rollouts, dtype=np.float64)
    saturation = 1.0 - p**k - (1.0 - p) ** k
    result: FloatArray = coba_value_curve(p, failure_rate, concentration=concentration) * saturation
    return result


def coba_allocation(
    accuracy: FloatArray,
    budget: int,
    failure_rate: float,
    *,
    min_per_prompt: int = 2,
    max_per_prompt: int = 128,
    concentration: float = COBA_CONCENTRATION,
) -> IntArray:
    """CoBA-RL's heap-based greedy: k_i maximising sum_i value(p_i, k_i), sum k_i = budget, min <= k_i <= max.

    Every prompt starts at ``min_per_prompt``; each further rollout goes to the prompt with the largest marginal
    value V(p) (p^k (1 - p) + (1 - p)^k p) (ties: lower prompt index), popped from a max-heap and pushed back with
    its next increment until it reaches ``max_per_prompt``. Each prompt's increments never increase, so this is the
    exact optimum (Gross 1956; the tests compare with brute force).

    Args:
        accuracy: Pass rates, shape ``(m,)``.
        budget: Total rollouts; ``m * min_per_prompt <= budget <= m * max_per_prompt``.
        failure_rate: The global failure rate F that shapes the value curve.
        min_per_prompt: Lower bound per prompt (2: a GRPO group needs two rollouts).
        max_per_prompt: Upper bound per prompt.
        concentration: kappa of the value curve.

    Returns:
        Counts, int64, shape ``(m,)``, summing to ``budget``.

    Raises:
        ValueError: If the budget is infeasible for the bounds or a pass rate is outside [0, 1].

    Example:
        >>> coba_allocation(np.array([0.1, 0.5, 0.9]), 12, 0.9).tolist()  # F = 0.9: the easy prompt gets most
        [2, 2, 8]
    """
    p = np.asarray(accuracy, dtype=np.float64).reshape(-1)
    m = p.size
    check_budget_bounds(
        m, budget, min_per_prompt, max_per_prompt, "lower the batch size or raise the rollouts per prompt"
    )
    curve = coba_value_curve(p, failure_rate, concentration=concentration)
    q = 1.0 - p

    def gain(i: int, k: int) -> float:
        return float(curve[i] * (p[i] ** k * q[i] + q[i] ** k * p[i]))

    counts = np.full(m, min_per_prompt, dtype=np.int64)
    heap = [(-gain(i, min_per_prompt), i) for i in range(m) if min_per_prompt < max_per_prompt]
    heapq.heapify(heap)
    for _ in range(budget - m * min_per_prompt):
        _, i = heapq.heappop(heap)
        counts[i] += 1
        if counts[i] < max_per_prompt:
            heapq.heappush(heap, (-gain(i, int(counts[i])), i))
    return counts


class CoBARL(Strategy):
    """CoBA-RL (Yao et al. 2026, arXiv 2602.03048) on uniformly drawn prompts: see the module docstring.

    Each step draws m prompts from a shuffled epoch stream, allocates exactly B rollouts with
    :func:`coba_allocation` (2 <= k <= 128) at the current global failure rate, trains once on all of them, then
    updates the pass-rate posteriors and the failure rate's moving average. No rollouts are spent on estimation.
    """

    name = "coba_rl"

    def __init__(self, ctx: StrategyContext) -> None:
        self.m, self.budget = ctx.batch_size, ctx.budget
        self.lo, self.hi = ctx.options.knapsack_min, ctx.options.knapsack_max
        self.stream = EpochStream(ctx.num_prompts, ctx.rng(1))
        self.tracker = BetaAccuracyTracker(ctx.num_prompts)
        self.failure_rate = 0.5

    def step(self, env: Environment) -> None:
        prompts = self.stream.next(self.m)
        predicted = self.tracker.posterior_mean(prompts)
        counts = coba_allocation(
            predicted, self.budget, self.failure_rate, min_per_prompt=max(self.lo, 2), max_per_prompt=self.hi
        )
        out = env.generate(prompts, counts)
        env.record_prediction(prompts, predicted, out)
        env.train(out)
        self.tracker.update(out.prompt_ids, out.rewards, np.ones(out.size))
        batch_failure = 1.0 - float(out.rewards.mean())
        self.failure_rate = COBA_FAILURE_MOMENTUM * self.failure_rate + (1.0 - COBA_FAILURE_MOMENTUM) * batch_failure
