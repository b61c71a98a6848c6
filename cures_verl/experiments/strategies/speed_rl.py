"""Speed-RL: screen candidates with a few rollouts, continue only those with both outcomes.

Speed-RL, Zhang et al. 2025, "SPEED-RL: Faster Training of Reasoning Models via Online Curriculum Learning",
arXiv 2506.09016.
"""

from __future__ import annotations

import numpy as np

from cures_verl.experiments.strategies.base import Strategy, StrategyContext
from cures_verl.experiments.strategies.environment import Environment, EpochStream, Rollouts
from cures_verl.experiments.strategies.rules import zero_variance_groups

__all__ = ["SpeedRL"]


class SpeedRL(Strategy):
    """Speed-RL screening and continuation (Zhang et al. 2025, arXiv 2506.09016), pipelined as in its paper.

    Each step's budget first runs the continuation phase of prompts accepted by earlier screening (n - s more
    rollouts each, FIFO, at most m prompts, as Speed-RL trains on batches of a fixed number of prompts, and at most
    B / (n - s)), then screens new uniform candidates with s rollouts each
    (any remainder below s adds one rollout to the first candidates). A candidate is accepted when its screening
    accuracy is strictly between 0 and 1. The step trains on the prompts whose continuation ran: screening plus
    continuation rollouts form one group of n. Screening rollouts come from the previous step's policy; the
    one-step staleness is ignored (the importance ratio is ~1).
    """

    name = "speed_rl"

    def __init__(self, ctx: StrategyContext) -> None:
        self.s = ctx.options.speed_screen_rollouts
        self.cont = ctx.rollouts_per_prompt - self.s
        if self.cont < 1:
            raise ValueError(
                f"speed_rl needs rollouts_per_prompt > --speed-screen-rollouts={self.s} (continuation rollouts per "
                f"kept prompt = n - s), got n={ctx.rollouts_per_prompt}"
            )
        self.budget = ctx.budget
        self.m = ctx.batch_size
        if self.budget < self.s:
            raise ValueError(f"speed_rl needs a budget >= {self.s} screening rollouts")
        self.stream = EpochStream(ctx.num_prompts, ctx.rng(1))
        self.queue: list[Rollouts] = []  # screening rollouts of accepted prompts, one entry per prompt

    def step(self, env: Environment) -> None:
        # At most m prompts: without this cap, when n - s > s the queue alternates between full steps of
        # continuation and steps that train on a handful of prompts (n = 12: 96 prompts, then 3).
        take = self.queue[: min(self.m, self.budget // self.cont)]
        self.queue = self.queue[len(take) :]
        counts = np.full(len(take), self.cont, dtype=np.int64)
        leftover = self.budget - int(counts.sum())
        if 0 < leftover < self.s:  # too little left to screen: spread it over the continuations instead
            counts += leftover // counts.size + (np.arange(counts.size) < leftover % counts.size)
            leftover = 0
        prompts = np.array([r.prompt_ids[0] for r in take], dtype=np.int64)
        groups = np.array([r.group_ids[0] for r in take], dtype=np.int64)
        continuation = env.generate(prompts, counts, group_ids=groups)
        num_candidates = leftover // self.s
        if num_candidates:
            screen_counts = np.full(num_candidates, self.s, dtype=np.int64)
            screen_counts[: leftover - num_candidates * self.s] += 1
            screened = env.generate(self.stream.next(num_candidates), screen_counts)
            ids, _, flat = zero_variance_groups(screened.group_ids, screened.rewards)
            for group in ids[flat == 0]:
                self.queue.append(screened.select_groups(np.array([group])))
        env.train(Rollouts.concat([*take, continuation]))
