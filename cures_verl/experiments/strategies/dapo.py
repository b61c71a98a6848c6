"""DAPO's dynamic sampling: drop groups whose rewards are all equal, refill until m informative groups.

DAPO, Yu et al. 2025, "DAPO: An Open-Source LLM Reinforcement Learning System at Scale", arXiv 2503.14476.
"""

from __future__ import annotations

import numpy as np

from cures_verl.experiments.strategies.base import Strategy, StrategyContext
from cures_verl.experiments.strategies.environment import Environment, EpochStream, Rollouts
from cures_verl.experiments.strategies.rules import zero_variance_groups

__all__ = ["DynamicSampling"]


class DynamicSampling(Strategy):
    """DAPO dynamic sampling (Yu et al. 2025, arXiv 2503.14476).

    Each step generates one round of m uniform prompts x n rollouts and keeps the groups whose rewards are not all
    equal. When m informative groups have accumulated, the policy trains on the first m (the surplus of the last
    round is discarded, as DAPO does); after ``dapo_max_rounds`` rounds without reaching m, it trains on what it
    has. Every generated rollout counts, so an update costs as many steps of budget as rounds it needed.
    """

    name = "dapo"

    def __init__(self, ctx: StrategyContext) -> None:
        self.m, self.n = ctx.batch_size, ctx.rollouts_per_prompt
        self.max_rounds = ctx.options.dapo_max_rounds
        self.stream = EpochStream(ctx.num_prompts, ctx.rng(1))
        self.buffer: list[Rollouts] = []
        self.rounds = 0

    def step(self, env: Environment) -> None:
        batch = env.generate(self.stream.next(self.m), np.full(self.m, self.n))
        groups, _, flat = zero_variance_groups(batch.group_ids, batch.rewards)
        self.buffer.append(batch.select_groups(groups[flat == 0]))
        self.rounds += 1
        pooled = Rollouts.concat(self.buffer)
        kept = np.unique(pooled.group_ids)  # group ids grow with generation order
        if kept.size >= self.m:
            env.train(pooled.select_groups(kept[: self.m]))
        elif self.rounds >= self.max_rounds:
            env.train(pooled)
        else:
            return
        self.buffer, self.rounds = [], 0
