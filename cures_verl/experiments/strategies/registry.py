"""The registry of strategies: name -> :class:`~cures_verl.experiments.strategies.base.StrategySpec`.

The built-in strategies are registered here, in table order; :data:`DEFAULT_STRATEGIES` is what
``python -m cures_verl.experiments.curriculum`` runs by default. The 2026 peers (``coba_rl``, ``mapp``, ``dps``) and
``cures_recommended_posterior`` are registered after it: run them with ``--strategies``.
"""

from __future__ import annotations

from collections.abc import Callable

from cures_verl.experiments.curriculum.recommended import RECOMMENDED_NAME, RECOMMENDED_OVERRIDES, merge_overrides
from cures_verl.experiments.strategies.base import Strategy, StrategyContext, StrategySpec
from cures_verl.experiments.strategies.coba_rl import CoBARL
from cures_verl.experiments.strategies.cures import cures_strategy_spec
from cures_verl.experiments.strategies.dapo import DynamicSampling
from cures_verl.experiments.strategies.dps import DPS
from cures_verl.experiments.strategies.gvm import GVM
from cures_verl.experiments.strategies.knapsack import KnapsackRL
from cures_verl.experiments.strategies.mapp import MaPP
from cures_verl.experiments.strategies.mopps import MoPPS
from cures_verl.experiments.strategies.oracle import Oracle
from cures_verl.experiments.strategies.speed_rl import SpeedRL
from cures_verl.experiments.strategies.uniform import UniformGRPO

__all__ = ["DEFAULT_STRATEGIES", "POSTERIOR_NAME", "POSTERIOR_OVERRIDES", "STRATEGIES", "register_strategy"]

#: Strategy name of the ``recommended`` preset with the posterior baseline for small groups.
POSTERIOR_NAME = "cures_recommended_posterior"

#: What it adds to the recommended overrides (the core option; docs/posterior_advantage.md).
POSTERIOR_OVERRIDES = {"allocation": {"advantage_baseline": "posterior"}}

STRATEGIES: dict[str, StrategySpec] = {}


def register_strategy(
    name: str,
    factory: Callable[[StrategyContext], Strategy],
    *,
    description: str,
    citation: str,
    replace: bool = False,
) -> StrategySpec:
    """Add a strategy to :data:`STRATEGIES`.

    Raises:
        ValueError: If ``name`` is taken (and ``replace`` is False) or is not a simple identifier.
    """
    if not name.replace("-", "_").isidentifier():
        raise ValueError(f"strategy name {name!r} must be an identifier (letters, digits, _ and -)")
    if name in STRATEGIES and not replace:
        raise ValueError(f"strategy {name!r} is already registered; pick another name")
    spec = StrategySpec(name, factory, description, citation)
    STRATEGIES[name] = spec
    return spec


register_strategy(
    "uniform",
    UniformGRPO,
    description="GRPO, uniform prompts, n rollouts each",
    citation="GRPO, Shao et al. 2024, arXiv 2402.03300",
)
register_strategy(
    "dapo",
    DynamicSampling,
    description="uniform rounds, drop all-equal groups, train once m informative groups are in",
    citation="DAPO, Yu et al. 2025, arXiv 2503.14476",
)
register_strategy(
    "speed_rl",
    SpeedRL,
    description="screen with 4 rollouts, keep 0 < acc < 1, continue to n, train on both",
    citation="Speed-RL, Zhang et al. 2025, arXiv 2506.09016",
)
register_strategy(
    "gvm",
    GVM,
    description="cold start per subset, n_i ~ 1/sqrt(p + a/p), p = 0 dropped",
    citation="GVM, Yao et al. 2025, arXiv 2505.02391",
)
register_strategy(
    "knapsack",
    KnapsackRL,
    description="uniform prompts, exact knapsack over (1-p^k-(1-p)^k) p(1-p)^2, 2 <= k <= 128",
    citation="Knapsack-RL, Li et al. 2025, arXiv 2509.25849",
)
register_strategy(
    "mopps",
    MoPPS,
    description="Thompson draws from decayed Beta posteriors, keep the m nearest 0.5",
    citation="MoPPS, Qu et al. 2025, arXiv 2507.04632",
)
for _name, _preset in (("cures_paper", "paper"), ("cures_official_code", "official_code")):
    _spec = cures_strategy_spec(_name, _preset)
    register_strategy(_name, _spec.factory, description=_spec.description, citation=_spec.citation)
_spec = cures_strategy_spec(
    RECOMMENDED_NAME,
    "paper",
    RECOMMENDED_OVERRIDES,
    description="CurES 'recommended': whole dataset, no cold start, informative-group score tau 0.03, adaptive "
    "forgetting",
)
register_strategy(
    RECOMMENDED_NAME,
    _spec.factory,
    description=_spec.description,
    citation="beyond CurES (docs/beyond_the_paper.md), built on Zeng et al. 2025, arXiv 2510.01037",
)
register_strategy(
    "oracle",
    Oracle,
    description="true accuracies: top-m p(1-p), n_i ~ sqrt(p(1-p)), no estimation cost",
    citation="reference (CurES Eq. 14/20 with exact p)",
)

#: The strategies ``python -m cures_verl.experiments.curriculum`` runs by default, in table order.
DEFAULT_STRATEGIES = tuple(STRATEGIES)

# The 2026 peers and the posterior-baseline variant of `recommended` (issue 19): registered, not run by default.
register_strategy(
    "coba_rl",
    CoBARL,
    description="uniform prompts, Beta value curve moving with the failure rate, heap-greedy 2 <= k <= 128",
    citation="CoBA-RL, Yao et al. 2026, arXiv 2602.03048",
)
register_strategy(
    "mapp",
    MaPP,
    description="MoPPS selection + posterior-baseline (leave-one-out Beta mean) advantages for every group",
    citation="MaPP as described in issue 19 (no paper id found); selection from MoPPS, arXiv 2507.04632",
)
register_strategy(
    "dps",
    DPS,
    description="Markov chain over unsolved/partial/solved per visit; top-m predicted P(partial), n each",
    citation="DPS, Mao et al. 2026, arXiv 2603.10887",
)
_spec = cures_strategy_spec(
    POSTERIOR_NAME,
    "paper",
    merge_overrides(RECOMMENDED_OVERRIDES, POSTERIOR_OVERRIDES),
    description="CurES 'recommended' with allocation.advantage_baseline=posterior (groups of <= 4 rollouts)",
)
register_strategy(
    POSTERIOR_NAME,
    _spec.factory,
    description=_spec.description,
    citation="beyond CurES (docs/posterior_advantage.md), built on Zeng et al. 2025, arXiv 2510.01037",
)
