"""The CurES benchmark: ``python -m cures_verl.bench`` (or ``cures-bench``).

Two parts, each printing ratios measured side by side in one run:

1. :mod:`~cures_verl.bench.overhead`: the cost of one :class:`~cures_verl.core.CurriculumSampler` step on datasets
   of 10k to 1M prompts against a dense numpy reference step, plus the O(N) modes.
2. :mod:`~cures_verl.bench.experiment`: sample efficiency of prompt-selection and rollout-allocation strategies
   (:mod:`~cures_verl.bench.strategies`) on a simulated GRPO learner (:mod:`~cures_verl.bench.simulator`), at an
   equal rollout budget per step, over several seeds.

docs/benchmark.md describes the model, every option and its default, and the measured results. This package
imports numpy and the core only; matplotlib is imported lazily for the plot.
"""

from __future__ import annotations

from cures_verl.bench.experiment import SimulationConfig, run_simulation, run_strategy, summarise
from cures_verl.bench.overhead import OverheadConfig, run_overhead
from cures_verl.bench.simulator import Learner, LearnerConfig, grpo_advantages, make_problem
from cures_verl.bench.strategies import (
    STRATEGIES,
    Environment,
    Strategy,
    StrategyContext,
    StrategySpec,
    cures_strategy_spec,
    register_strategy,
)

__all__ = [
    "STRATEGIES",
    "Environment",
    "Learner",
    "LearnerConfig",
    "OverheadConfig",
    "SimulationConfig",
    "Strategy",
    "StrategyContext",
    "StrategySpec",
    "cures_strategy_spec",
    "grpo_advantages",
    "make_problem",
    "register_strategy",
    "run_overhead",
    "run_simulation",
    "run_strategy",
    "summarise",
]
