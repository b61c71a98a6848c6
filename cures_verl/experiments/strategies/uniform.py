"""Uniform GRPO: the baseline every strategy is measured against.

GRPO, Shao et al. 2024, "DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open Language Models",
arXiv 2402.03300: m prompts per step from verl's shuffled loader, n rollouts each.
"""

from __future__ import annotations

import numpy as np

from cures_verl.experiments.strategies.base import Strategy, StrategyContext
from cures_verl.experiments.strategies.environment import Environment, EpochStream

__all__ = ["UniformGRPO"]


class UniformGRPO(Strategy):
    """m prompts from a shuffled epoch stream, n rollouts each, one GRPO update (Shao et al. 2024, arXiv 2402.03300)."""

    name = "uniform"

    def __init__(self, ctx: StrategyContext) -> None:
        self.m, self.n = ctx.batch_size, ctx.rollouts_per_prompt
        self.stream = EpochStream(ctx.num_prompts, ctx.rng(1))

    def step(self, env: Environment) -> None:
        prompts = self.stream.next(self.m)
        env.train(env.generate(prompts, np.full(self.m, self.n)))
