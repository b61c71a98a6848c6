"""The CurES algorithm in pure numpy (no torch, verl or ray import; a test enforces it).

Modules, each named after what it holds:

* :mod:`~cures_verl.core.difficulty`: per-prompt Beta posterior of accuracy (Eqs. 22-24).
* :mod:`~cures_verl.core.sampling`: what to sample: rho (Eq. 14), distinct draws, :class:`SamplingPolicy`.
* :mod:`~cures_verl.core.allocation`: how many rollouts: n_i under a budget (Eqs. 20-21), :class:`RolloutAllocator`.
* :mod:`~cures_verl.core.schedule`: the iteration schedule (Sec. 4.3) and a continuous one; :class:`StepPlan`.
* :mod:`~cures_verl.core.timeline`: when to reset or forget: the schedule position, resets, forgetting.
* :mod:`~cures_verl.core.report`: what to report: calibration, sampling probabilities, metrics.
* :mod:`~cures_verl.core.grouping`: per-rollout rewards -> per-prompt counts.
* :mod:`~cures_verl.core.curriculum`: :class:`CurriculumSampler`, Algorithm 1 as a coordinator over the above.
* :mod:`~cures_verl.core.advantage`: posterior-baseline advantages for small GRPO groups (beyond the paper).
* :mod:`~cures_verl.core.screening`: optional cheap screening of drawn prompts from the posterior (beyond the paper).
* :mod:`~cures_verl.core.sumtree`: the O(k log N) weighted-sampling structure behind it.
* :mod:`~cures_verl.core.bounds`: weight bounds that stay valid under forgetting, so that forgetting and Thompson
  draws also cost O(prompts touched) per step on large pools (thinned draws).
"""

from __future__ import annotations

from cures_verl.core.advantage import posterior_advantages, small_group_advantages
from cures_verl.core.allocation import (
    RolloutAllocator,
    advantage_weights,
    allocate_rollouts,
    grad_std_from_gradient_norms,
    informative_scale,
    round_preserving_sum,
)
from cures_verl.core.curriculum import CurriculumSampler
from cures_verl.core.difficulty import (
    BetaAccuracyTracker,
    beta_mean,
    beta_variance,
    expected_reward_std,
    informative_probability,
)
from cures_verl.core.grouping import PromptCounts, count_rollouts, rewards_to_outcomes
from cures_verl.core.report import CurriculumReport
from cures_verl.core.sampling import (
    SamplingPolicy,
    draw_distinct,
    gumbel_top_k,
    prompt_scores,
    reward_std,
    sampling_probabilities,
)
from cures_verl.core.schedule import Phase, Schedule, StepPlan
from cures_verl.core.screening import needs_screening, reallocate_after_screening, screening_verdict
from cures_verl.core.sumtree import SumTree
from cures_verl.core.timeline import Timeline

__all__ = [
    "BetaAccuracyTracker",
    "CurriculumReport",
    "CurriculumSampler",
    "Phase",
    "PromptCounts",
    "RolloutAllocator",
    "SamplingPolicy",
    "Schedule",
    "StepPlan",
    "SumTree",
    "Timeline",
    "advantage_weights",
    "informative_scale",
    "allocate_rollouts",
    "beta_mean",
    "beta_variance",
    "count_rollouts",
    "draw_distinct",
    "expected_reward_std",
    "grad_std_from_gradient_norms",
    "gumbel_top_k",
    "informative_probability",
    "posterior_advantages",
    "needs_screening",
    "prompt_scores",
    "reallocate_after_screening",
    "reward_std",
    "rewards_to_outcomes",
    "round_preserving_sum",
    "sampling_probabilities",
    "screening_verdict",
    "small_group_advantages",
]
