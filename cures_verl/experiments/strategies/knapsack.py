"""Knapsack-RL: an exact budget allocation that maximises the expected value of informative groups.

Knapsack-RL, Li et al. 2025, "Knapsack RL: Unlocking Exploration of LLMs via Optimizing Budget Allocation",
arXiv 2509.25849.
"""

from __future__ import annotations

import numpy as np

from cures_verl.core.difficulty import BetaAccuracyTracker
from cures_verl.experiments.strategies.base import Strategy, StrategyContext
from cures_verl.experiments.strategies.environment import Environment, EpochStream
from cures_verl.experiments.strategies.rules import knapsack_allocation

__all__ = ["KnapsackRL"]


class KnapsackRL(Strategy):
    """Knapsack-RL allocation (Li et al. 2025, arXiv 2509.25849) on uniformly drawn prompts.

    Each step draws m prompts from a shuffled epoch stream and allocates exactly B rollouts with
    :func:`~cures_verl.experiments.strategies.rules.knapsack_allocation` (min 2, max 128 per prompt). The success
    rates are the
    posterior means of a Beta(1, 1) prior updated with all of the strategy's own earlier rollouts on the prompt
    (Knapsack-RL uses the previous epoch's success rate; an unseen prompt gets 0.5). No extra rollouts are spent
    on estimation.
    """

    name = "knapsack"

    def __init__(self, ctx: StrategyContext) -> None:
        self.m, self.budget = ctx.batch_size, ctx.budget
        self.lo, self.hi = ctx.options.knapsack_min, ctx.options.knapsack_max
        self.stream = EpochStream(ctx.num_prompts, ctx.rng(1))
        self.tracker = BetaAccuracyTracker(ctx.num_prompts)

    def step(self, env: Environment) -> None:
        prompts = self.stream.next(self.m)
        counts = knapsack_allocation(
            self.tracker.posterior_mean(prompts), self.budget, min_per_prompt=self.lo, max_per_prompt=self.hi
        )
        keep = counts > 0
        out = env.generate(prompts[keep], counts[keep])
        env.record_prediction(prompts[keep], self.tracker.posterior_mean(prompts[keep]), out)
        env.train(out)
        self.tracker.update(out.prompt_ids, out.rewards, np.ones(out.size))
