"""MoPPS: Thompson draws from decayed Beta posteriors, keep the prompts whose draw is nearest 0.5.

MoPPS, Qu et al. 2025, "Can Prompt Difficulty be Online Predicted for Accelerating RL Finetuning of Reasoning
Models?", arXiv 2507.04632.
"""

from __future__ import annotations

import numpy as np

from cures_verl.experiments.curriculum.simulator import FloatArray, IntArray
from cures_verl.experiments.strategies.base import Strategy, StrategyContext
from cures_verl.experiments.strategies.environment import Environment, EpochStream, Rollouts
from cures_verl.experiments.strategies.rules import nearest_to_target

__all__ = ["MoPPS"]


class MoPPS(Strategy):
    """MoPPS (Qu et al. 2025, arXiv 2507.04632): Thompson draws from decayed Beta posteriors, keep those nearest 0.5.

    Each step draws ratio x m candidates from a shuffled epoch stream (free: no rollout is spent on them), samples
    p ~ Beta(alpha, beta) for each, keeps the m draws nearest 0.5, and gives each n rollouts. After training, a kept
    prompt's posterior becomes alpha <- lambda alpha + (1 - lambda) alpha_0 + successes (beta alike) with the
    Beta(1, 1) prior alpha_0 = beta_0 = 1.
    """

    name = "mopps"

    def __init__(self, ctx: StrategyContext) -> None:
        self.m, self.n = ctx.batch_size, ctx.rollouts_per_prompt
        self.ratio = ctx.options.mopps_candidate_ratio
        self.decay = ctx.options.mopps_decay
        if self.ratio * self.m > ctx.num_prompts:
            raise ValueError(
                f"--mopps-candidate-ratio={self.ratio} x batch size {self.m} exceeds the {ctx.num_prompts} prompts"
            )
        self.stream = EpochStream(ctx.num_prompts, ctx.rng(1))
        self.rng = ctx.rng(2)
        self.alpha = np.ones(ctx.num_prompts)
        self.beta = np.ones(ctx.num_prompts)

    def step(self, env: Environment) -> None:
        candidates = self.stream.next(self.ratio * self.m)
        draws = self.rng.beta(self.alpha[candidates], self.beta[candidates])
        chosen = candidates[nearest_to_target(draws, self.m)]
        out = env.generate(chosen, np.full(self.m, self.n))
        # the prediction is the posterior mean (MoPPS logs the same); the selection used a draw from the posterior
        env.record_prediction(chosen, self.alpha[chosen] / (self.alpha[chosen] + self.beta[chosen]), out)
        env.train(out, advantages=self._advantages(chosen, out))
        successes = np.zeros(self.alpha.size)
        np.add.at(successes, out.prompt_ids, out.rewards)
        lam = self.decay
        self.alpha[chosen] = lam * self.alpha[chosen] + (1.0 - lam) + successes[chosen]
        self.beta[chosen] = lam * self.beta[chosen] + (1.0 - lam) + (self.n - successes[chosen])

    def _advantages(self, chosen: IntArray, out: Rollouts) -> FloatArray | None:
        """The advantages of the step's update: None = verl's GRPO advantage (subclasses may replace it)."""
        return None
