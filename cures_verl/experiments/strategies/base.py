"""What every strategy is built from: its options, its context, the :class:`Strategy` base class and its spec.

A strategy is a small class with one method, ``step(env)`` (see :mod:`~cures_verl.experiments.strategies.environment`);
a :class:`StrategySpec` names it, builds it from a :class:`StrategyContext` and cites its source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from cures_verl.experiments.curriculum.simulator import IntArray
from cures_verl.experiments.strategies.environment import Environment

__all__ = ["Strategy", "StrategyContext", "StrategyOptions", "StrategySpec"]


@dataclass(frozen=True, kw_only=True)
class StrategyOptions:
    """Hyperparameters of the strategies (every field is a CLI option; defaults from the cited papers)."""

    dapo_max_rounds: int = 10
    """DAPO: generation rounds (of m prompts x n) allowed per update before training on what was collected (the
    DAPO recipe's max_num_gen_batches)."""

    speed_screen_rollouts: int = 4
    """Speed-RL: screening rollouts per candidate; kept candidates get n - this many continuation rollouts."""

    gvm_a: float = 1e-3
    """GVM: a in n_i ~ 1 / sqrt(p + a / p^(b-1)) (GVM code)."""

    gvm_b: float = 2.0
    """GVM: b (GVM code)."""

    knapsack_min: int = 2
    """Knapsack-RL: minimum rollouts per prompt."""

    knapsack_max: int = 128
    """Knapsack-RL: maximum rollouts per prompt."""

    mopps_candidate_ratio: int = 4
    """MoPPS: uniformly drawn candidates per selected prompt (the selection keeps m of ratio x m)."""

    mopps_decay: float = 0.5
    """MoPPS: lambda in alpha <- lambda alpha + (1 - lambda) alpha_0 + successes, applied to a prompt's posterior
    each time it is trained on (old evidence comes from an older policy)."""

    cures_subset_batches: int = 10
    """CurES and GVM: prompts per iteration subset, in batches (paper: ~10k prompts / 1024 per batch ~ 10)."""

    cures_steps_per_iteration: int = 10
    """CurES and GVM: training steps per subset (paper: M = 10)."""

    cold_start_rollouts: int = 4
    """CurES and GVM: N', cold-start rollouts per prompt of each subset (paper: 4)."""

    def __post_init__(self) -> None:
        checks = (
            ("dapo_max_rounds", self.dapo_max_rounds >= 1),
            ("speed_screen_rollouts", self.speed_screen_rollouts >= 2),
            ("gvm_a", self.gvm_a >= 0),
            ("knapsack_min", self.knapsack_min >= 0),
            ("knapsack_max", self.knapsack_max >= max(self.knapsack_min, 1)),
            ("mopps_candidate_ratio", self.mopps_candidate_ratio >= 1),
            ("mopps_decay", 0.0 <= self.mopps_decay <= 1.0),
            ("cures_subset_batches", self.cures_subset_batches >= 1),
            ("cures_steps_per_iteration", self.cures_steps_per_iteration >= 1),
            ("cold_start_rollouts", self.cold_start_rollouts >= 2),
        )
        for name, ok in checks:
            if not ok:
                raise ValueError(f"--{name.replace('_', '-')}={getattr(self, name)!r} is out of range; see --help")


@dataclass(frozen=True, kw_only=True)
class StrategyContext:
    """What a strategy factory gets: the problem's size, the batch shape, a seed and the options."""

    num_prompts: int
    """Dataset size; prompt ids are ``0 .. num_prompts - 1``."""

    batch_size: int
    """m, prompts per step for fixed-size strategies."""

    rollouts_per_prompt: int
    """n, the nominal group size; the step budget is B = m x n."""

    seed: int
    """The run's seed (:meth:`rng` derives every generator of the strategy from it)."""

    options: StrategyOptions = field(default_factory=StrategyOptions)
    """The strategies' hyperparameters."""

    prompt_groups: IntArray | None = None
    """Per-prompt metadata a dataset would carry (the simulator's cluster, like a topic or skill label), shape
    ``(num_prompts,)``; None where the runner gives none. Strategies that use prompt features read it."""

    def rng(self, stream: int) -> np.random.Generator:
        """An independent generator for this seed (``stream`` tells a strategy's generators apart)."""
        return np.random.default_rng([self.seed, 7919, stream])

    @property
    def budget(self) -> int:
        """B = batch_size x rollouts_per_prompt."""
        return self.batch_size * self.rollouts_per_prompt

    @property
    def num_iterations(self) -> int:
        """Subsets of ``cures_subset_batches`` batches that fit in the dataset (at least 1)."""
        return max(1, self.num_prompts // (self.options.cures_subset_batches * self.batch_size))


class Strategy:
    """Base class: a named object whose :meth:`step` spends at most one step's budget through ``env``."""

    name = "strategy"

    def step(self, env: Environment) -> None:
        """Generate (and usually train on) at most ``env.budget`` rollouts."""
        raise NotImplementedError


@dataclass(frozen=True)
class StrategySpec:
    """A registered strategy.

    Attributes:
        name: Registry key (also the CLI name).
        factory: Builds the strategy for one run.
        description: One line for the tables and the JSON.
        citation: The source (paper and arXiv id).
    """

    name: str
    factory: Callable[[StrategyContext], Strategy]
    description: str
    citation: str
