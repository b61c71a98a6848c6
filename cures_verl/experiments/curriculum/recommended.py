"""The ``recommended`` CurES configuration as the benchmark runs it, and its one-at-a-time ablations.

:data:`RECOMMENDED_OVERRIDES` is the nested override of the ``paper`` preset that docs/beyond_the_paper.md chose on
the benchmark's development setting (never on the reported settings). It is read from
``cures_verl.config.PRESETS["recommended"]``, where the preset is declared once. Each ingredient differs from the
paper for a stated reason:

* ``schedule``: the whole dataset is eligible at every step and there is no cold-start pass
  (``mode=continuous``, ``cold_start_rollouts=0``): every rollout trains the policy. The paper's per-subset cold
  start spends about a third of the rollouts without training.
* ``score``: the sampling score is the posterior probability that a group of 8 rollouts is not all-equal
  (``sampler.score=informative``), instead of sqrt(p(1-p)) at the posterior mean: an all-equal GRPO group carries
  no gradient, and the probability uses the posterior's spread (an unseen prompt scores below a prompt known to
  sit near p = 0.5, a prompt seen failing every rollout far below both).
* ``temperature``: tau = 0.03 on that score (its range is [0, 1], twice sqrt(p(1-p))'s).
* ``forgetting``: the posterior forgets up to 10% of its counts per step, at a rate set from the observed
  prediction error (``forgetting_rule=adaptive``): with no reset per subset, old evidence from an older policy
  must fade.

Allocation (Eq. 20) and the loss weighting (Eq. 16) stay the paper's.

Example:
    >>> from cures_verl.config import preset_config
    >>> cfg = preset_config("paper", RECOMMENDED_OVERRIDES)
    >>> cfg.schedule.mode, cfg.sampler.score, cfg.allocation.rule
    ('continuous', 'informative', 'proportional')
    >>> sorted(ABLATIONS)
    ['forgetting', 'schedule', 'score', 'temperature']
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from cures_verl.config import PRESETS

__all__ = [
    "ABLATIONS",
    "EXTRA_VARIANTS",
    "RECOMMENDED_NAME",
    "RECOMMENDED_OVERRIDES",
    "ablation_overrides",
    "merge_overrides",
]

#: Strategy name of the recommended configuration in the benchmark.
RECOMMENDED_NAME = "cures_recommended"

#: Overrides of the ``paper`` preset that make the recommended configuration (docs/beyond_the_paper.md): a copy of
#: :data:`cures_verl.config.PRESETS` ``["recommended"]``, where the preset is declared once (the ``paper`` preset is the
#: dataclass defaults, so its overrides are the whole difference).
RECOMMENDED_OVERRIDES: dict[str, Any] = copy.deepcopy(PRESETS["recommended"])

#: One-at-a-time ablations: ingredient -> the paper's values for that ingredient only (merged over the recommended
#: overrides). ``schedule`` restores the paper's subsets with their 4-rollout cold start (the simulator maps the
#: subset sizes as for ``cures_paper``).
ABLATIONS: dict[str, dict[str, Any]] = {
    "schedule": {"schedule": {"mode": "iterations", "cold_start_rollouts": 4}},
    "score": {"sampler": {"score": "mean"}},
    "temperature": {"sampler": {"temperature": 0.1}},
    "forgetting": {"posterior": {"forgetting": 0.0, "forgetting_rule": "constant"}},
}

#: Variants that are not ablations but answer a question of the issue: how much the allocation adds (``no_alloc``:
#: n rollouts each), whether the exact marginal-value allocation adds anything (``marginal_value``), and whether a
#: cheap screen of the prompts the posterior is unsure about pays for its rollouts (``screening``: s = 2, only below
#: the informative-group probability 0.9; :mod:`cures_verl.core.screening`).
EXTRA_VARIANTS: dict[str, dict[str, Any]] = {
    "no_alloc": {"allocation": {"enable": False}},
    "marginal_value": {"allocation": {"rule": "marginal_value"}},
    "screening": {"sampler": {"screening_rollouts": 2}},
}


def merge_overrides(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Nested merge of two override mappings; ``extra`` wins (neither input is modified).

    Example:
        >>> merge_overrides({"sampler": {"score": "informative", "temperature": 0.03}}, {"sampler": {"score": "mean"}})
        {'sampler': {'score': 'mean', 'temperature': 0.03}}
    """
    out: dict[str, Any] = copy.deepcopy(dict(base))
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_overrides(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def ablation_overrides(ingredient: str) -> dict[str, Any]:
    """The recommended overrides with one ingredient (a key of :data:`ABLATIONS` or :data:`EXTRA_VARIANTS`) changed.

    Raises:
        ValueError: For an unknown ingredient.
    """
    table = {**ABLATIONS, **EXTRA_VARIANTS}
    if ingredient not in table:
        raise ValueError(f"unknown ingredient {ingredient!r}; choose one of {', '.join(table)}")
    return merge_overrides(RECOMMENDED_OVERRIDES, table[ingredient])
