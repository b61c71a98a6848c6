"""The oracle: a reference that knows every true accuracy (not a method).

CurES's Eq. 14 selection and Eq. 20 allocation with exact accuracies (Zeng et al. 2025, arXiv 2510.01037).
"""

from __future__ import annotations

import numpy as np

from cures_verl.core.allocation import allocate_rollouts
from cures_verl.experiments.strategies.base import Strategy, StrategyContext
from cures_verl.experiments.strategies.environment import Environment

__all__ = ["Oracle"]


class Oracle(Strategy):
    """Reference that knows every true accuracy (not a method: no estimation, no cost for knowing).

    Each step takes the m prompts of the whole dataset with the largest p(1 - p) (ties to the lower index) and
    splits B in proportion to sqrt(p(1 - p)) with at least 2 rollouts each (CurES's Eq. 20 allocation with exact
    accuracies). It is a strong heuristic, not a proven optimum: another strategy may beat it.
    """

    name = "oracle"

    def __init__(self, ctx: StrategyContext) -> None:
        self.m, self.budget = ctx.batch_size, ctx.budget

    def step(self, env: Environment) -> None:
        p = env.true_accuracy()
        score = p * (1.0 - p)
        top = np.lexsort((np.arange(p.size), -score))[: self.m]
        counts = allocate_rollouts(np.sqrt(score[top]), self.budget, min_per_prompt=2)
        env.train(env.generate(top, counts))
