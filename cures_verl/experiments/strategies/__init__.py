"""Prompt-selection and rollout-allocation strategies run side by side on the simulated learner.

One module per family, each citing its paper; :mod:`.registry` registers them, :mod:`.environment` holds the
simulated learner's budget, :mod:`.base` the options and the base class, :mod:`.rules` the peers' allocation rules.

Every strategy is a small class with one method, ``step(env)``: it asks the :class:`Environment` for rollouts
(``env.generate``), which charges them to the step's budget B = batch_size x rollouts_per_prompt, and trains
(``env.train``) on whatever it chooses. The environment enforces the accounting: a step may never spend more
than B, every rollout generated is charged (cold-start, screening and discarded rollouts included), and only
``env.train`` changes the policy. With the default settings every strategy spends exactly B in every step.

Strategies are registered by name in :data:`STRATEGIES` (name -> :class:`StrategySpec` with a factory taking a
:class:`StrategyContext`). Any :class:`~cures_verl.config.CuresConfig` runs as a strategy through
:func:`cures_strategy_spec` (a preset plus nested overrides); ``--cures-variant`` on the command line registers
one. The built-in strategies and their sources (each in the module of its name, the three ``cures_*`` in
:mod:`.cures`, ``dapo``'s class ``DynamicSampling``):

========================  ===============================================================================
``uniform``               GRPO with a fixed group size n on uniformly drawn prompts (Shao et al. 2024).
``dapo``                  DAPO dynamic sampling: refill until m informative groups (Yu et al. 2025).
``speed_rl``              Speed-RL screening + continuation (Zhang et al. 2025).
``gvm``                   GVM allocation n_i ~ 1 / sqrt(p + a / p) after a cold start (Yao et al. 2025).
``knapsack``              Knapsack-RL exact budget allocation (Li et al. 2025).
``mopps``                 MoPPS Thompson draws nearest 0.5 (Qu et al. 2025).
``cures_paper``           CurES, ``paper`` preset, through ``CurriculumSampler`` (Zeng et al. 2025).
``cures_official_code``   CurES, ``official_code`` preset (the released code's behaviour).
``cures_recommended``     CurES beyond the paper (docs/beyond_the_paper.md).
``oracle``                Knows the true accuracies; no estimation cost (a reference, not a method).
========================  ===============================================================================

Registered but not run by default (``--strategies``; docs/benchmark.md, "2026 peers"):

===============================  ========================================================================
``coba_rl``                      CoBA-RL value curve + heap-greedy allocation (Yao et al. 2026).
``mapp``                         MaPP-style: MoPPS selection + posterior-baseline advantages (issue 19).
``dps``                          DPS-style Markov prediction of the partially solved state (Mao et al. 2026).
``cures_recommended_posterior``  ``cures_recommended`` with ``allocation.advantage_baseline=posterior``.
===============================  ========================================================================
"""

from __future__ import annotations

from cures_verl.experiments.strategies.base import Strategy, StrategyContext, StrategyOptions, StrategySpec
from cures_verl.experiments.strategies.coba_rl import CoBARL, coba_allocation, coba_value, coba_value_curve
from cures_verl.experiments.strategies.cures import (
    CuresStrategy,
    cures_config_for,
    cures_strategy_spec,
    parse_cures_variant,
)
from cures_verl.experiments.strategies.dapo import DynamicSampling
from cures_verl.experiments.strategies.dps import DPS, SolvingStateModel, solving_states
from cures_verl.experiments.strategies.environment import (
    CALIBRATION_BINS,
    Environment,
    EpochStream,
    Rollouts,
    StepRecord,
    spearman,
)
from cures_verl.experiments.strategies.gvm import GVM, SubsetSchedule
from cures_verl.experiments.strategies.knapsack import KnapsackRL
from cures_verl.experiments.strategies.mapp import MaPP
from cures_verl.experiments.strategies.mopps import MoPPS
from cures_verl.experiments.strategies.oracle import Oracle
from cures_verl.experiments.strategies.registry import DEFAULT_STRATEGIES, STRATEGIES, register_strategy
from cures_verl.experiments.strategies.speed_rl import SpeedRL
from cures_verl.experiments.strategies.uniform import UniformGRPO

__all__ = [
    "CALIBRATION_BINS",
    "DEFAULT_STRATEGIES",
    "DPS",
    "GVM",
    "STRATEGIES",
    "CoBARL",
    "CuresStrategy",
    "DynamicSampling",
    "Environment",
    "EpochStream",
    "KnapsackRL",
    "MaPP",
    "MoPPS",
    "Oracle",
    "Rollouts",
    "SolvingStateModel",
    "SpeedRL",
    "StepRecord",
    "Strategy",
    "StrategyContext",
    "StrategyOptions",
    "StrategySpec",
    "SubsetSchedule",
    "UniformGRPO",
    "coba_allocation",
    "coba_value",
    "coba_value_curve",
    "cures_config_for",
    "cures_strategy_spec",
    "parse_cures_variant",
    "register_strategy",
    "solving_states",
    "spearman",
]
