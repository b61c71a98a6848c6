"""Typed, frozen configuration of CurES, and its presets.

One dataclass per component, nested under :class:`CuresConfig`. These classes are the single source
of truth: the Hydra ``cures:`` block (``cures_verl/verl_adapter/config/cures_trainer.yaml``) mirrors
them key for key, and a test keeps the two equal. This module imports only the standard library, so
it can be used without numpy, torch or verl.

Every field carries an attribute docstring; ``docs/configuration.md`` lists them all. Validation
errors name the full Hydra key (``cures.sampler.temperature``) and say how to fix the value.

Presets (``cures.preset``):

* ``paper``: faithful to the paper (arXiv 2510.01037, Algorithm 1). The paper gives no value for the
  sampling temperature tau; we default to 0.1 (a 148x weight ratio between p=0.5 and p in {0, 1}).
* ``official_code``: mimics the released code (github.com/ZexuSun/CurES): per-prompt temperature
  100 * (alpha + 1) (near-uniform sampling), zero-variance prompts dropped, rollout counts from the
  cold-start counts only (no online posterior update), maximum-likelihood accuracy in sigma_i.
* ``recommended``: our own configuration, beyond the paper (see docs/beyond_the_paper.md).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any, Literal, TypeVar, get_args

__all__ = [
    "PosteriorConfig",
    "SamplerConfig",
    "AllocationConfig",
    "ScheduleConfig",
    "CuresConfig",
    "PRESETS",
    "preset_config",
    "preset_values",
    "config_from_overrides",
    "flatten_keys",
    "changed_keys",
]

RewardRule = Literal["binary", "threshold", "fractional"]
SamplingScore = Literal["mean", "thompson", "expected_std", "informative"]
TemperatureRule = Literal["constant", "count_scaled"]
GradStdSource = Literal["accuracy", "gradient_norms"]
AccuracyEstimate = Literal["posterior_mean", "mle"]
ZeroVariancePolicy = Literal["floor", "drop"]
LossWeighting = Literal["prompt", "rollout"]
ScheduleMode = Literal["iterations", "continuous"]
SubsetSplit = Literal["contiguous", "shuffled", "field"]
PriorSource = Literal["uniform", "dataset", "checkpoint"]
ForgettingRule = Literal["constant", "adaptive"]
AllocationRule = Literal["proportional", "marginal_value"]
AdvantageBaseline = Literal["group", "posterior"]
LossNormalizer = Literal["all", "informative"]
AdvantageScale = Literal["posterior_std", "none"]


def _fail(key: str, value: object, fix: str) -> ValueError:
    return ValueError(f"cures.{key}={value!r} is invalid: {fix}")


def _check_choice(key: str, value: object, literal: Any) -> None:
    choices = get_args(literal)
    if value not in choices:
        raise _fail(key, value, f"choose one of {', '.join(map(repr, choices))}")


def _check_positive(key: str, value: float, *, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(key, value, "expected a finite number")
    if value < 0 or (value == 0 and not allow_zero):
        raise _fail(key, value, "must be >= 0" if allow_zero else "must be > 0")


def _check_int(key: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(key, value, "expected an integer")
    if value < minimum:
        raise _fail(key, value, f"must be >= {minimum}")


@dataclass(frozen=True, kw_only=True)
class PosteriorConfig:
    """Per-prompt Beta posterior of accuracy (CurES Eqs. 22-24)."""

    prior_correct: float = 1.0
    """alpha_0, pseudo-count of correct rollouts in the Beta prior. The paper states no prior; the official
    code uses Beta(1, 1). Must be > 0."""

    prior_incorrect: float = 1.0
    """beta_0, pseudo-count of incorrect rollouts in the Beta prior. Must be > 0."""

    prior_source: PriorSource = "uniform"
    """Where priors come from: ``uniform`` uses prior_correct/prior_incorrect for every prompt; ``dataset``
    centres each prompt's prior on its pass rate in the data (``extra_info.<prior_field>``); ``checkpoint``
    centres it on the posterior mean of an earlier run (prior_path). Both keep the total strength
    prior_correct + prior_incorrect; prompts without a value get the uniform prior. No cold start is then
    needed."""

    prior_path: str | None = None
    """The earlier run's sampler state for prior_source=checkpoint: a verl checkpoint's ``data.pt`` or an
    ``.npz`` with ``stable_ids`` and ``accuracy`` (scripts/export_posterior.py)."""

    prior_field: str = "pass_rate"
    """The ``extra_info`` field of the training data that holds each prompt's pass rate in [0, 1], read when
    prior_source=dataset."""

    online_update: bool = True
    """Update the posterior with the rewards of every training step (Algorithm 1, line 12). The released code
    only uses the cold-start counts (False)."""

    forgetting: float = 0.0
    """Fraction of the observed counts forgotten after each training step (exponential decay toward the prior,
    for non-stationary training). 0 disables it (the paper resets per iteration instead). In [0, 1). With
    forgetting_rule=adaptive it is the largest fraction a step may forget."""

    forgetting_rule: ForgettingRule = "constant"
    """``constant`` forgets the fraction ``forgetting`` every step. ``adaptive`` sets it from the observed
    prediction error: when realised group accuracies deviate from the posterior predictive by more than its
    variance allows (policy drift), the counts shrink until the predictive variance matches (capped at
    ``forgetting``)."""

    drift: bool = False
    """Staleness correction (beyond the paper, core/shared.py): one logistic model of how the population's accuracy
    drifts, fitted after each step on the prompts seen again (one damped Newton step); every prompt's posterior
    mean is read moved by the drift since its last observation, in logit space, its strength kept. Per feature
    when the sampler has prompt features (in verl: feature_field), one drift for all prompts otherwise. Needs
    forgetting=0 and allocation.accuracy_estimate=posterior_mean; the sampling weights are then recomputed over
    the pool each step."""

    feature_prior: bool = False
    """Predict never-observed prompts from their features (beyond the paper, core/shared.py): a logistic model of
    first observations on the prompt features moves each unseen prompt's prior mean (its strength kept), so
    prompts are drawn by what similar prompts showed. Needs prompt features (in verl: feature_field)."""

    feature_field: str | None = None
    """The ``extra_info`` field of the training data holding each prompt's features (a list of numbers, the same
    length on every row, scaled to about unit size), read by drift and feature_prior. null: no features (drift then
    learns one drift for all prompts; feature_prior needs features)."""

    shared_rate: float = 0.5
    """Damping of each Newton step of the drift and feature-prior models, in (0, 1]."""

    shared_ridge: float = 1.0
    """Ridge added to those models' Hessian (pseudo-observations at no shift), > 0."""

    reward_rule: RewardRule = "binary"
    """How rewards become Beta counts: ``binary`` requires rewards in {0, 1}; ``threshold`` counts a rollout as
    correct when reward >= reward_threshold; ``fractional`` adds r to the correct and 1 - r to the incorrect
    count (rewards must lie in [0, 1])."""

    reward_threshold: float = 0.5
    """Threshold of the ``threshold`` reward rule."""

    def __post_init__(self) -> None:
        _check_positive("posterior.prior_correct", self.prior_correct)
        _check_positive("posterior.prior_incorrect", self.prior_incorrect)
        _check_choice("posterior.prior_source", self.prior_source, PriorSource)
        _check_choice("posterior.forgetting_rule", self.forgetting_rule, ForgettingRule)
        if self.prior_source == "checkpoint" and not self.prior_path:
            raise _fail("posterior.prior_path", self.prior_path, "prior_source=checkpoint needs an earlier run's state")
        if not isinstance(self.prior_field, str) or not self.prior_field:
            raise _fail("posterior.prior_field", self.prior_field, "expected the name of an extra_info field")
        _check_positive("posterior.forgetting", self.forgetting, allow_zero=True)
        if self.forgetting >= 1:
            raise _fail("posterior.forgetting", self.forgetting, "must be < 1 (1 would forget every observation)")
        if not isinstance(self.shared_rate, int | float) or not 0 < self.shared_rate <= 1:
            raise _fail("posterior.shared_rate", self.shared_rate, "must lie in (0, 1]")
        _check_positive("posterior.shared_ridge", self.shared_ridge)
        if self.feature_field is not None and (not isinstance(self.feature_field, str) or not self.feature_field):
            raise _fail(
                "posterior.feature_field", self.feature_field, "expected the name of an extra_info field or null"
            )
        if self.feature_field is not None and not (self.drift or self.feature_prior):
            raise _fail(
                "posterior.feature_field",
                self.feature_field,
                "nothing reads the features; set posterior.drift=true or posterior.feature_prior=true, or null",
            )
        if self.drift and self.forgetting > 0:
            raise _fail(
                "posterior.drift",
                self.drift,
                "drift and forgetting both correct stale estimates and do not combine (forgetting decays toward a "
                "prior that does not move with the drift); set posterior.forgetting=0 or posterior.drift=false",
            )
        _check_choice("posterior.reward_rule", self.reward_rule, RewardRule)
        if not isinstance(self.reward_threshold, int | float) or not 0 < self.reward_threshold <= 1:
            raise _fail("posterior.reward_threshold", self.reward_threshold, "must lie in (0, 1]")


@dataclass(frozen=True, kw_only=True)
class SamplerConfig:
    """Prompt-sampling distribution rho(x) proportional to exp(score(x) / tau) (CurES Eq. 14)."""

    temperature: float = 0.1
    """tau in Eq. 14. The paper gives no value; 0.1 puts 148x more weight on p=0.5 than on p in {0, 1}. Large
    values approach uniform sampling. Must lie in [1e-3, 1e3]."""

    temperature_rule: TemperatureRule = "constant"
    """``constant`` uses tau for every prompt (paper). ``count_scaled`` uses tau * (num_correct + 1) per prompt,
    as the released code does with tau = 100."""

    score: SamplingScore = "mean"
    """The prompt score in the exponent. ``mean``: sqrt(p(1-p)) at the posterior mean (paper). ``thompson``:
    sqrt(p(1-p)) at a posterior draw. ``expected_std``: E[sqrt(p(1-p))] under the posterior. ``informative``:
    probability that a group of informative_group_size rollouts is not all-equal, 1 - E[p^n] - E[(1-p)^n]."""

    informative_group_size: int = 8
    """n in the ``informative`` score (the group size a prompt is expected to get). Must be >= 2."""

    screening_rollouts: int = 0
    """s, screening rollouts per drawn prompt (beyond the paper; the benchmark and the core only, the verl adapter
    refuses it). 0 disables screening. Otherwise a drawn prompt planned more than s rollouts whose posterior
    probability of an informative group (as for the ``informative`` score, with informative_group_size) is below
    screening_threshold first gets s rollouts; it is trained on only if they have both outcomes, with its
    allocation minus s as continuation (screen and continuation form one group), and the allocation of a dropped
    prompt goes to the others. Every screening rollout counts toward the budget. Must be 0 or >= 2 (a screen of
    one rollout never has both outcomes) and below the nominal rollouts per prompt."""

    screening_threshold: float = 0.9
    """Screen a drawn prompt iff its posterior probability of an informative group is below this; prompts at or
    above it are trained directly. Used when screening_rollouts > 0. In (0, 1]."""

    def __post_init__(self) -> None:
        _check_positive("sampler.temperature", self.temperature)
        if not 1e-3 <= self.temperature <= 1e3:
            raise _fail("sampler.temperature", self.temperature, "must lie in [1e-3, 1e3]")
        _check_choice("sampler.temperature_rule", self.temperature_rule, TemperatureRule)
        _check_choice("sampler.score", self.score, SamplingScore)
        _check_int("sampler.informative_group_size", self.informative_group_size, minimum=2)
        _check_int("sampler.screening_rollouts", self.screening_rollouts, minimum=0)
        if self.screening_rollouts == 1:
            raise _fail(
                "sampler.screening_rollouts",
                1,
                "use 0 (no screening) or >= 2: a screen of one rollout never has both outcomes",
            )
        _check_positive("sampler.screening_threshold", self.screening_threshold)
        if self.screening_threshold > 1:
            raise _fail("sampler.screening_threshold", self.screening_threshold, "must lie in (0, 1]")


@dataclass(frozen=True, kw_only=True)
class AllocationConfig:
    """Rollouts per sampled prompt, n_i proportional to sigma_i under a fixed budget (CurES Eq. 20)."""

    enable: bool = True
    """Allocate rollouts by Eq. 20. False gives every sampled prompt the nominal number of rollouts (the
    sampler-only ablation)."""

    rule: AllocationRule = "proportional"
    """``proportional``: n_i proportional to sigma_i under the bounds (Eq. 20). ``marginal_value`` (beyond the
    paper): the exact integer allocation maximising sum_i E[sqrt(p(1-p)) (1 - p^n_i - (1-p)^n_i)] under the
    posterior, i.e. the paper's potential counted only when the group is not all-equal; it gives no prompt zero
    rollouts, so zero_variance, grad_std and accuracy_estimate do not apply."""

    grad_std: GradStdSource = "accuracy"
    """Source of sigma_i: ``accuracy`` uses sqrt(p(1-p)) (Eq. 21 with equal gradient norms);
    ``gradient_norms`` uses Eq. 21 with per-prompt gradient-norm statistics supplied by the caller."""

    accuracy_estimate: AccuracyEstimate = "posterior_mean"
    """Which accuracy goes into sigma_i: the posterior mean (paper) or the maximum-likelihood estimate
    num_correct / num_observed (released code; it makes sigma_i = 0 for all-correct or all-wrong prompts). A
    prompt with no observation has no MLE and uses its prior mean."""

    min_per_prompt: int = 2
    """Minimum rollouts per kept prompt. GRPO needs 2: verl gives a group of size 1 its raw reward as
    advantage. Must be >= 1."""

    max_per_prompt: int | None = None
    """Optional maximum rollouts per prompt (water-filling redistributes the excess). null = no maximum."""

    zero_variance: ZeroVariancePolicy = "floor"
    """Prompts with sigma_i = 0: ``floor`` gives them min_per_prompt rollouts; ``drop`` gives them none (the
    released code), so the rest of the batch shares the budget."""

    multiple_of: int = 1
    """The step's total number of rollouts is a multiple of this (e.g. the data-parallel size). The budget must
    be a multiple of it; under ``drop`` a smaller total is rounded down to it."""

    loss_weighting: LossWeighting = "prompt"
    """How prompts are weighted in the policy loss. ``prompt``: every prompt counts equally whatever its n_i, as
    in the paper's estimator (Eq. 16: each group is averaged over its own n_i), by scaling prompt i's advantages by
    nominal_n / n_i under verl's token-mean loss. ``rollout``: every rollout counts equally, so a prompt weighs in
    proportion to n_i (what verl does by default and what the released code does)."""

    loss_normalizer: LossNormalizer = "all"
    """Which rollouts the policy loss's mean counts (beyond the paper, docs/screening.md). ``all``: every rollout of
    the step (verl). ``informative``: only rollouts with a nonzero advantage; the advantages are scaled by
    (rollouts) / (rollouts with a nonzero advantage), as if the step's batch held only groups with both outcomes,
    which is what a two-round screen (Speed-RL) or DAPO's filtering gives, without a second generation round."""

    advantage_baseline: AdvantageBaseline = "group"
    """The GRPO baseline. ``group``: each group's own mean and std (verl, paper). ``posterior`` (beyond the paper,
    docs/posterior_advantage.md): rollouts of a prompt with at most posterior_baseline_max_group rollouts in the step
    get (o_j - b_j) / s_j with b_j the leave-one-out posterior mean of the prompt's accuracy (the posterior before
    this step's rewards) instead: an unbiased direction with less variance for small groups, and a signal from
    all-equal groups. Needs algorithm.adv_estimator=grpo and no KL in the reward."""

    posterior_baseline_max_group: int = 4
    """Groups of at most this many rollouts use the posterior baseline (advantage_baseline=posterior); larger groups
    keep GRPO's own. Must be >= 2."""

    posterior_baseline_scale: AdvantageScale = "posterior_std"
    """Divisor of the posterior-baseline advantage: ``posterior_std`` sqrt(b_j (1 - b_j)) (GRPO divides by the
    group's std), or ``none`` (as with algorithm.norm_adv_by_std_in_grpo=false)."""

    def __post_init__(self) -> None:
        _check_choice("allocation.rule", self.rule, AllocationRule)
        _check_choice("allocation.grad_std", self.grad_std, GradStdSource)
        _check_choice("allocation.accuracy_estimate", self.accuracy_estimate, AccuracyEstimate)
        _check_int("allocation.min_per_prompt", self.min_per_prompt, minimum=1)
        if self.max_per_prompt is not None:
            _check_int("allocation.max_per_prompt", self.max_per_prompt, minimum=1)
            if self.max_per_prompt < self.min_per_prompt:
                raise _fail(
                    "allocation.max_per_prompt",
                    self.max_per_prompt,
                    f"must be >= cures.allocation.min_per_prompt={self.min_per_prompt}",
                )
        _check_choice("allocation.zero_variance", self.zero_variance, ZeroVariancePolicy)
        _check_int("allocation.multiple_of", self.multiple_of, minimum=1)
        _check_choice("allocation.loss_weighting", self.loss_weighting, LossWeighting)
        _check_choice("allocation.loss_normalizer", self.loss_normalizer, LossNormalizer)
        _check_choice("allocation.advantage_baseline", self.advantage_baseline, AdvantageBaseline)
        _check_int("allocation.posterior_baseline_max_group", self.posterior_baseline_max_group, minimum=2)
        _check_choice("allocation.posterior_baseline_scale", self.posterior_baseline_scale, AdvantageScale)


@dataclass(frozen=True, kw_only=True)
class ScheduleConfig:
    """Which prompts are eligible at each step, and when estimates start afresh (CurES Sec. 4.3)."""

    mode: ScheduleMode = "iterations"
    """``iterations``: the paper's schedule, the dataset split into num_iterations subsets trained for
    steps_per_iteration steps each, estimates reset per subset. ``continuous``: the whole dataset is eligible at
    every step, the posterior is updated online (use posterior.forgetting for drift)."""

    num_iterations: int = 15
    """T, the number of subsets the dataset is split into (paper: 15). Used by mode=iterations."""

    steps_per_iteration: int = 10
    """M, training steps per subset (paper: 10). Used by mode=iterations."""

    cold_start_rollouts: int = 4
    """N', rollouts per prompt in the cold-start pass over each subset (mode=iterations) or over the whole
    dataset (mode=continuous) before training on it. 0 disables the cold start. Cold-start rollouts count
    toward the rollout total."""

    train_on_cold_start: bool = False
    """Whether the policy is also updated on the cold-start rollouts. The paper and the released code only use
    them to initialise the estimates (False)."""

    reset_each_iteration: bool = True
    """Reset the posterior of a subset to its prior when its iteration starts (paper). Matters when the schedule
    wraps around the dataset more than once."""

    split: SubsetSplit = "contiguous"
    """How prompts are assigned to subsets: ``contiguous`` equal blocks in the order of the stable prompt id,
    ``shuffled`` equal blocks of a seeded permutation, or ``field``: the data's own subsets, read from
    ``extra_info.<subset_field>`` (e.g. the 15 Numina subsets written by scripts/prepare_data.py)."""

    subset_field: str = "subset"
    """The ``extra_info`` field holding each prompt's subset id when split=field (subsets run in increasing id
    order; their number must equal num_iterations)."""

    def __post_init__(self) -> None:
        _check_choice("schedule.mode", self.mode, ScheduleMode)
        _check_int("schedule.num_iterations", self.num_iterations, minimum=1)
        _check_int("schedule.steps_per_iteration", self.steps_per_iteration, minimum=1)
        _check_int("schedule.cold_start_rollouts", self.cold_start_rollouts, minimum=0)
        if self.cold_start_rollouts == 1:
            raise _fail(
                "schedule.cold_start_rollouts",
                1,
                "use 0 (no cold start) or >= 2: a GRPO group of one rollout has no baseline",
            )
        _check_choice("schedule.split", self.split, SubsetSplit)
        if not isinstance(self.subset_field, str) or not self.subset_field:
            raise _fail("schedule.subset_field", self.subset_field, "expected the name of an extra_info field")


@dataclass(frozen=True, kw_only=True)
class CuresConfig:
    """Everything CurES needs beyond verl's own settings (the Hydra ``cures:`` block)."""

    enable: bool = True
    """Use CurES. False gives plain verl GRPO through the same entry point."""

    preset: str = "paper"
    """The preset the other values were taken from: ``paper``, ``official_code``, ``recommended`` or
    ``small_groups`` (with verl's rollout.n=2 and 4x the prompts per step; docs/results/real_loop_candidates). Keys
    set explicitly override the preset's values."""

    seed: int = 0
    """Seed of the sampler's random generator (prompt draws, Thompson draws, subset shuffling)."""

    dump_dir: str | None = None
    """Directory for a per-step record of the curriculum (``cures_steps.jsonl``: prompts, rollouts, predicted and
    realised accuracy, histogram of the pool's estimated accuracy) used by scripts/plot_curriculum.py. null
    disables it."""

    posterior: PosteriorConfig = field(default_factory=PosteriorConfig)
    """Per-prompt Beta posterior of accuracy."""

    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    """Prompt-sampling distribution."""

    allocation: AllocationConfig = field(default_factory=AllocationConfig)
    """Rollout allocation."""

    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    """Iteration schedule."""

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise _fail("preset", self.preset, f"choose one of {', '.join(map(repr, PRESETS))}")
        _check_int("seed", self.seed, minimum=0)
        if self.dump_dir is not None and not isinstance(self.dump_dir, str):
            raise _fail("dump_dir", self.dump_dir, "expected a directory path or null")
        shared = self.posterior.drift or self.posterior.feature_prior
        if shared and self.allocation.accuracy_estimate == "mle":
            raise _fail(
                "allocation.accuracy_estimate",
                "mle",
                "posterior.drift and posterior.feature_prior move the posterior, not the raw counts the MLE reads; "
                "use accuracy_estimate=posterior_mean",
            )

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> CuresConfig:
        """Build a config from a nested mapping (e.g. the resolved Hydra ``cures:`` block).

        The named ``preset`` supplies every value the mapping leaves out; the mapping's values win.
        Unknown keys raise ``ValueError`` naming the key.

        Example:
            >>> CuresConfig.from_mapping({"sampler": {"temperature": 0.5}}).sampler.temperature
            0.5
            >>> CuresConfig.from_mapping({"preset": "official_code"}).allocation.zero_variance
            'drop'
        """
        if not isinstance(mapping, Mapping):
            raise TypeError(f"cures config must be a mapping, got {type(mapping).__name__}")
        preset = mapping.get("preset", "paper")
        return preset_config(str(preset), {k: v for k, v in mapping.items() if k != "preset"})

    def to_dict(self) -> dict[str, Any]:
        """The config as a nested plain dict (the inverse of :meth:`from_mapping`)."""
        return dataclasses.asdict(self)

    def differences_from_preset(self) -> dict[str, tuple[Any, Any]]:
        """Flat ``{"sampler.temperature": (preset_value, value)}`` for every key that differs from the preset."""
        changed = changed_keys(preset_config(self.preset).to_dict(), self.to_dict())
        return {key: values for key, values in changed.items() if key != "preset"}

    def describe(self) -> str:
        """The effective config as one block for the start-up log.

        The first line names the preset and how many keys differ from it; then every key follows as a Hydra
        override ``cures.<key>=<value>`` with its effective value, one per line, in the order of the YAML block.
        A key that differs from the preset's value is marked ``*`` and ends with a ``# preset <name>: <value>``
        comment. Strings other than plain words and paths are quoted, so the overrides (without the mark and the
        comment) give this config back through :func:`config_from_overrides` (for strings without quote marks).

        Example:
            >>> text = preset_config("recommended", {"schedule": {"mode": "iterations"}}).describe()
            >>> print(text)  # doctest: +ELLIPSIS
            CurES config: preset recommended, 1 key differs from it (marked *)
              cures.enable=true
              cures.preset=recommended
            ...
            * cures.schedule.mode=iterations  # preset recommended: continuous
              cures.schedule.num_iterations=15
            ...
        """
        differences = self.differences_from_preset()
        count = len(differences)
        lines = [
            f"CurES config: preset {self.preset}, {count} key{'' if count == 1 else 's'} "
            f"differ{'s' if count == 1 else ''} from it (marked *)"
        ]
        for key, value in flatten_keys(self.to_dict()).items():
            line = f"cures.{key}={_render(value)}"
            if key in differences:
                lines.append(f"* {line}  # preset {self.preset}: {_render(differences[key][0])}")
            else:
                lines.append(f"  {line}")
        return "\n".join(lines)


_PLAIN = re.compile(r"[\w./:-]+")


def _render(value: Any) -> str:
    """``value`` as a Hydra command-line value that :func:`_scalar` reads back as ``value``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        if _PLAIN.fullmatch(value) and _scalar(value) == value:
            return value
        return f"'{value}'" if "'" not in value else f'"{value}"'
    return repr(value)


def _scalar(raw: str) -> Any:
    """A Hydra command-line value as Python: true/false, null, int, float, else the (unquoted) string."""
    text = raw.strip()
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("null", "none", "~"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text.strip("'\"")


def config_from_overrides(overrides: Sequence[str]) -> CuresConfig | None:
    """The CurES config that Hydra overrides such as ``cures.preset=recommended cures.sampler.temperature=0.3``
    select, without composing verl's config; ``None`` when they contain ``cures.enable=false``.

    Overrides of other keys are ignored; scalar values only (as every ``cures.*`` key is).

    Raises:
        ValueError: On an unknown ``cures.*`` key or a wrong value (the dataclasses' own messages).

    Example:
        >>> config_from_overrides(["data.x=1", "cures.preset=official_code", "cures.seed=3"]).seed
        3
        >>> config_from_overrides(["cures.enable=false"]) is None
        True
    """
    nested: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.lstrip("+~")
        if not sep or not key.startswith("cures."):
            continue
        node = nested
        *parents, leaf = key[len("cures.") :].split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = _scalar(raw)
    if nested.pop("enable", True) is False:
        return None
    return preset_config(str(nested.pop("preset", "paper")), nested)


_T = TypeVar("_T")


def flatten_keys(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping -> flat dotted keys; anything that is not a mapping (lists too) is a value.

    Example:
        >>> flatten_keys({"sampler": {"temperature": 0.1}, "seed": 0, "xs": [1, 2]})
        {'sampler.temperature': 0.1, 'seed': 0, 'xs': [1, 2]}
    """
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            out.update(flatten_keys(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def changed_keys(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{key: (before, after)}`` for every key whose value differs between two nested config mappings, in key order
    (a key missing on one side reads as None there).

    Example:
        >>> changed_keys({"sampler": {"temperature": 0.1}, "seed": 0}, {"sampler": {"temperature": 0.3}, "seed": 0})
        {'sampler.temperature': (0.1, 0.3)}
    """
    old, new = flatten_keys(before), flatten_keys(after)
    keys = sorted(old.keys() | new.keys())
    return {key: (old.get(key), new.get(key)) for key in keys if old.get(key) != new.get(key)}


def _apply(obj: _T, overrides: Mapping[str, Any], prefix: str) -> _T:
    """Return ``obj`` (a config dataclass) with nested ``overrides`` applied; unknown keys raise."""
    assert is_dataclass(obj) and not isinstance(obj, type)
    known = {f.name: f for f in fields(obj)}
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in known:
            raise ValueError(f"unknown config key cures.{prefix}{key}; valid keys here: {', '.join(sorted(known))}")
        current = getattr(obj, key)
        if is_dataclass(current):
            if not isinstance(value, Mapping):
                raise ValueError(f"cures.{prefix}{key} must be a mapping of sub-keys, got {value!r}")
            changes[key] = _apply(current, value, f"{prefix}{key}.")
        else:
            changes[key] = _coerce(f"{prefix}{key}", current, value)
    return replace(obj, **changes)


def _coerce(key: str, current: object, value: Any) -> Any:
    """Accept ints where floats are expected (YAML writes 1 for 1.0); everything else must match."""
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


# Values that differ from the dataclass defaults (which are the ``paper`` preset).
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "official_code": {
        "posterior": {"online_update": False},
        "sampler": {"temperature": 100.0, "temperature_rule": "count_scaled"},
        "allocation": {"accuracy_estimate": "mle", "zero_variance": "drop", "loss_weighting": "rollout"},
    },
    # Our configuration beyond the paper, chosen on the benchmark's development setting (docs/beyond_the_paper.md);
    # cures_verl.experiments.curriculum.recommended takes its RECOMMENDED_OVERRIDES (and ablations) from here.
    "recommended": {
        "schedule": {"mode": "continuous", "cold_start_rollouts": 0},
        "sampler": {"score": "informative", "temperature": 0.03},
        "posterior": {"forgetting": 0.1, "forgetting_rule": "adaptive"},
    },
    # The cures.* part of the configuration that beat plain GRPO in verl's loop (docs/results/real_loop_candidates):
    # the paper's Eq. 14 without the cold start, adaptive forgetting, and the posterior baseline, which acts on groups
    # of at most allocation.posterior_baseline_max_group rollouts: run it with actor_rollout_ref.rollout.n=2 and 4x
    # the prompts a step (the verl adapter refuses a larger rollout.n with this preset).
    "small_groups": {
        "schedule": {"mode": "continuous", "cold_start_rollouts": 0},
        "posterior": {"forgetting": 0.1, "forgetting_rule": "adaptive"},
        "allocation": {"advantage_baseline": "posterior"},
    },
}


def preset_config(name: str, overrides: Mapping[str, Any] | None = None) -> CuresConfig:
    """The config of preset ``name`` with optional nested ``overrides`` applied.

    Args:
        name: One of ``PRESETS`` (``paper``, ``official_code``, ``recommended``, ``small_groups``).
        overrides: Nested mapping of keys to change, e.g. ``{"sampler": {"temperature": 0.2}}``.

    Raises:
        ValueError: If the preset or a key is unknown, or a value is invalid.

    Example:
        >>> preset_config("official_code").sampler.temperature_rule
        'count_scaled'
        >>> preset_config("paper", {"allocation": {"max_per_prompt": 64}}).allocation.max_per_prompt
        64
    """
    if name not in PRESETS:
        raise _fail("preset", name, f"choose one of {', '.join(map(repr, PRESETS))}")
    config = _apply(CuresConfig(preset=name), PRESETS[name], "")
    return _apply(config, overrides or {}, "")


def preset_values(name: str) -> dict[str, Any]:
    """Flat ``{"sampler.temperature": value, ...}`` of every key of preset ``name`` (used by the Hydra resolver).

    Example:
        >>> preset_values("official_code")["sampler.temperature"]
        100.0
    """
    return flatten_keys(preset_config(name).to_dict())
