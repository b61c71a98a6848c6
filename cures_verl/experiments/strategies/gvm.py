"""GVM: rollouts per prompt from a cold-start accuracy estimate, on the paper's iteration schedule.

GVM, Yao et al. 2025, "Optimizing Chain-of-Thought Reasoners via Gradient Variance Minimization in Rejection
Sampling and RL", arXiv 2505.02391 (allocation rule from github.com/RLHFlow/GVM).
"""

from __future__ import annotations

import numpy as np

from cures_verl.config import ScheduleConfig
from cures_verl.core.allocation import allocate_rollouts
from cures_verl.core.schedule import COLD_START, Schedule
from cures_verl.experiments.strategies.base import Strategy, StrategyContext
from cures_verl.experiments.strategies.environment import Environment
from cures_verl.experiments.strategies.rules import gvm_weights

__all__ = ["GVM", "SubsetSchedule"]


class SubsetSchedule:
    """The paper's (and GVM's) iteration schedule for a baseline: subsets, a cold start, M training steps.

    Cold-start steps take ``budget // N'`` prompts of the current subset with N' rollouts each, so a cold-start
    step spends the whole budget when N' divides it. Counts are reset at the start of each subset.
    """

    def __init__(self, ctx: StrategyContext) -> None:
        self.cold = ctx.options.cold_start_rollouts
        if self.cold > ctx.budget:
            raise ValueError(f"--cold-start-rollouts={self.cold} exceeds the step budget {ctx.budget}")
        config = ScheduleConfig(
            num_iterations=ctx.num_iterations,
            steps_per_iteration=ctx.options.cures_steps_per_iteration,
            cold_start_rollouts=self.cold,
        )
        self.schedule = Schedule(ctx.num_prompts, max(1, ctx.budget // self.cold), config)
        self.step = 0
        self.correct = np.zeros(ctx.num_prompts)
        self.observed = np.zeros(ctx.num_prompts)


class GVM(Strategy):
    """GVM allocation (Yao et al. 2025, arXiv 2505.02391) on the paper's iteration schedule.

    As in GVM's pipeline (which CurES forked): every subset starts with N' cold-start rollouts per prompt (no
    training on them); then each training step draws m prompts uniformly (distinct within a step) from the subset
    and splits the budget B in proportion to :func:`~cures_verl.experiments.strategies.rules.gvm_weights` of the
    cold-start
    accuracy s / N' (largest-remainder rounding; p = 0 gets none), fixed for the iteration. If every drawn
    prompt has p = 0, the step falls back to n rollouts each.
    """

    name = "gvm"

    def __init__(self, ctx: StrategyContext) -> None:
        self.m, self.n, self.budget = ctx.batch_size, ctx.rollouts_per_prompt, ctx.budget
        self.a, self.b = ctx.options.gvm_a, ctx.options.gvm_b
        self.plan = SubsetSchedule(ctx)
        self.rng = ctx.rng(2)

    def step(self, env: Environment) -> None:
        plan = self.plan
        phase = plan.schedule.phase(plan.step)
        plan.step += 1
        members = plan.schedule.subset(phase.subset)
        if phase.starts_iteration:
            plan.correct[members] = 0.0
            plan.observed[members] = 0.0
        if phase.kind == COLD_START:
            prompts = plan.schedule.cold_start_prompts(phase)
            out = env.generate(prompts, np.full(prompts.size, plan.cold))
            np.add.at(plan.correct, out.prompt_ids, out.rewards)
            np.add.at(plan.observed, out.prompt_ids, 1.0)
            return
        prompts = self.rng.choice(members, self.m, replace=False)
        accuracy = plan.correct[prompts] / np.maximum(plan.observed[prompts], 1.0)
        weights = gvm_weights(accuracy, a=self.a, b=self.b)
        if weights.max() > 0:
            counts = allocate_rollouts(weights, self.budget, min_per_prompt=1, zero_variance="drop")
        else:
            counts = np.full(self.m, self.n, dtype=np.int64)
        keep = counts > 0
        env.train(env.generate(prompts[keep], counts[keep]))
