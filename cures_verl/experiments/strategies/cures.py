"""CurES itself, any preset or variant, through the core's :class:`~cures_verl.core.CurriculumSampler`.

CurES, Zeng et al. 2025, "CurES: From Gradient Analysis to Efficient Curriculum Learning for Reasoning LLMs",
arXiv 2510.01037 (ICLR 2026). Any :class:`~cures_verl.config.CuresConfig` runs as a strategy through
:func:`cures_strategy_spec` (a preset plus nested overrides); ``--cures-variant`` on the command line registers one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from cures_verl.config import PRESETS, CuresConfig, preset_config
from cures_verl.core.advantage import small_group_advantages
from cures_verl.core.allocation import advantage_weights, informative_scale
from cures_verl.core.curriculum import CurriculumSampler, StepPlan
from cures_verl.core.schedule import COLD_START
from cures_verl.core.screening import needs_screening, reallocate_after_screening, screening_verdict
from cures_verl.experiments.curriculum.recommended import merge_overrides
from cures_verl.experiments.curriculum.simulator import FloatArray, grpo_advantages
from cures_verl.experiments.strategies.base import Strategy, StrategyContext, StrategySpec
from cures_verl.experiments.strategies.environment import Environment, Rollouts

__all__ = [
    "FEATURES_KEY",
    "CuresStrategy",
    "cures_config_for",
    "cures_strategy_spec",
    "group_features",
    "parse_cures_variant",
]


class CuresStrategy(Strategy):
    """Any :class:`~cures_verl.config.CuresConfig`, run through :class:`~cures_verl.core.CurriculumSampler`.

    Training steps follow the sampler's plan: n_i rollouts for each drawn prompt (none for dropped ones), one update
    with the config's loss weighting (``prompt``: advantages scaled by n / n_i, CurES Eq. 16; ``rollout``: as verl),
    then ``observe``. The sampler plans cold-start steps of m prompts x N' rollouts; one simulator step packs as
    many of them as fit in the budget B (two with the defaults, so a cold-start step also spends exactly B).

    With ``sampler.screening_rollouts = s > 0`` (beyond the paper, :mod:`cures_verl.core.screening`) a training
    step screens first: every planned prompt with n_i > s whose posterior probability of an informative group
    (group size ``sampler.informative_group_size``) is below ``sampler.screening_threshold`` gets s rollouts. A
    screened prompt is kept iff its screen has both outcomes; it then gets its group size minus s as continuation
    rollouts in the same GRPO group, as in Speed-RL. The other planned prompts are generated directly. What a
    dropped prompt's plan no longer needs (n_i - s) goes to the kept and direct prompts in proportion to their
    n_i (:func:`~cures_verl.core.screening.reallocate_after_screening`), so the step spends its plan's total
    exactly; only when every planned prompt is screened and dropped does it spend just the screens. Every
    rollout, dropped screens included, is charged to the budget and updates the posterior (one ``observe`` per
    step, so forgetting is applied once). Cold-start steps are never screened.

    With ``allocation.advantage_baseline=posterior`` an update's rollouts of prompts with at most
    ``allocation.posterior_baseline_max_group`` rollouts in it take the posterior-baseline advantage with the
    posterior before the step's rewards, exactly as the verl trainer does (:meth:`_advantages`).

    Args:
        ctx: Problem size, batch shape, seed.
        config: The CurES settings (its ``seed`` is replaced by the run's seed).
        name: The registry name.

    Raises:
        ValueError: If a cold-start step (m x N') does not fit in the budget.
    """

    def __init__(
        self, ctx: StrategyContext, config: CuresConfig, name: str = "cures", *, use_features: bool = False
    ) -> None:
        self.name = name
        self.config = config
        self.n = ctx.rollouts_per_prompt
        self.budget = ctx.budget
        self.cold_cost = ctx.batch_size * config.schedule.cold_start_rollouts
        if config.schedule.cold_start_rollouts and self.cold_cost > self.budget:
            raise ValueError(
                f"{name}: a cold-start step (batch {ctx.batch_size} x {config.schedule.cold_start_rollouts} rollouts) "
                f"exceeds the step budget {self.budget}; lower cures.schedule.cold_start_rollouts or raise n"
            )
        self.sampler = CurriculumSampler(
            ctx.num_prompts,
            batch_size=ctx.batch_size,
            rollouts_per_prompt=ctx.rollouts_per_prompt,
            config=config,
            prompt_features=group_features(ctx) if use_features else None,
        )

    def _is_cold_start(self) -> bool:
        return self.sampler.schedule.phase(self.sampler.step).kind == COLD_START

    def step(self, env: Environment) -> None:
        if self._is_cold_start():
            while self._is_cold_start() and env.remaining >= self.cold_cost:
                self._run_plan(env)
        else:
            self._run_plan(env)

    def _run_plan(self, env: Environment) -> None:
        plan = self.sampler.plan_step()
        if self.config.sampler.screening_rollouts and plan.phase != COLD_START:
            self._run_screened_plan(env, plan)
            return
        keep = plan.rollouts > 0
        counts = plan.rollouts[keep]
        out = env.generate(plan.prompt_indices[keep], counts)
        if plan.phase != COLD_START:  # a cold start predicts nothing: every prompt is at its prior
            env.record_prediction(plan.prompt_indices[keep], plan.predicted_accuracy[keep], out)
        if plan.is_training and out.size:
            weights = advantage_weights(counts, self.n, loss_weighting=self.config.allocation.loss_weighting)
            self._train(env, out, np.repeat(weights, counts))
        self.sampler.observe(out.prompt_ids, out.rewards)

    def _train(self, env: Environment, batch: Rollouts, loss_weights: FloatArray) -> None:
        """One update; under ``allocation.loss_normalizer=informative`` the weights are scaled by
        :func:`~cures_verl.core.allocation.informative_scale` of the rows with a nonzero advantage, as the verl
        trainer does."""
        advantages = self._advantages(batch)
        if self.config.allocation.loss_normalizer == "informative":
            if advantages is None:
                advantages = grpo_advantages(batch.group_ids, batch.rewards)
            loss_weights = loss_weights * informative_scale(advantages != 0)
        env.train(batch, loss_weights=loss_weights, advantages=advantages)

    def _advantages(self, batch: Rollouts) -> FloatArray | None:
        """The update's advantages: None (verl's GRPO) unless ``allocation.advantage_baseline=posterior``, where the
        rollouts of prompts with at most ``allocation.posterior_baseline_max_group`` rollouts in the update get the
        posterior-baseline advantage (:func:`~cures_verl.core.advantage.small_group_advantages`, the posterior
        before this step's rewards, as the verl trainer computes it) and the others keep GRPO's."""
        alloc = self.config.allocation
        if alloc.advantage_baseline != "posterior":
            return None
        alpha, beta = self.sampler.tracker.alpha_beta(batch.prompt_ids)
        chosen = small_group_advantages(
            batch.prompt_ids,
            batch.rewards,  # the simulator's rewards are 0/1 outcomes already
            alpha,
            beta,
            max_group_size=alloc.posterior_baseline_max_group,
            scale=alloc.posterior_baseline_scale,
        )
        advantages = grpo_advantages(batch.group_ids, batch.rewards)
        advantages[chosen.rows] = chosen.advantages
        return advantages

    def _run_screened_plan(self, env: Environment, plan: StepPlan) -> None:
        """A training step with screening (see the class docstring)."""
        cfg = self.config
        s = cfg.sampler.screening_rollouts
        prompts, planned = plan.prompt_indices, plan.rollouts
        alpha, beta = self.sampler.tracker.alpha(prompts), self.sampler.tracker.beta(prompts)
        group_size, threshold = cfg.sampler.informative_group_size, cfg.sampler.screening_threshold
        uncertain = needs_screening(alpha, beta, group_size, threshold=threshold)
        screened = uncertain & (planned > s)  # a plan of <= s rollouts is no dearer than its screen: no screen
        screen = env.generate(prompts[screened], np.full(int(screened.sum()), s, dtype=np.int64))
        # screen rewards [r00, r01, r10, r11] (s = 2) -> per screened prompt [r00 + r01, r10 + r11]
        screen_correct = screen.rewards.reshape(-1, s).sum(axis=1)
        passed = screening_verdict(screen_correct, np.full(screen_correct.size, s))
        dropped = np.zeros(prompts.size, dtype=bool)
        dropped[np.flatnonzero(screened)[~passed]] = True
        groups = reallocate_after_screening(
            planned, dropped, screening_rollouts=s, max_per_prompt=cfg.allocation.max_per_prompt
        )
        kept_screened = screened & ~dropped
        kept_groups = screen.group_ids.reshape(-1, s)[passed, 0]  # one group id per kept screened prompt
        continued = env.generate(prompts[kept_screened], groups[kept_screened] - s, group_ids=kept_groups)
        direct = ~screened & (groups > 0)
        fresh = env.generate(prompts[direct], groups[direct])
        generated = Rollouts.concat([screen, continued, fresh])
        env.record_prediction(prompts[screened | direct], plan.predicted_accuracy[screened | direct], generated)
        trained_groups = np.concatenate([kept_groups, np.unique(fresh.group_ids)])
        batch = generated.select_groups(trained_groups)
        if batch.size:
            trained = groups > 0
            weights = advantage_weights(groups[trained], self.n, loss_weighting=cfg.allocation.loss_weighting)
            # rollout prompt ids -> position among the trained prompts -> that prompt's loss weight
            ids = prompts[trained]
            order = np.argsort(ids)
            position = order[np.searchsorted(ids[order], batch.prompt_ids)]
            self._train(env, batch, weights[position])
        self.sampler.observe(generated.prompt_ids, generated.rewards)


def cures_config_for(ctx: StrategyContext, preset: str, overrides: Mapping[str, Any] | None = None) -> CuresConfig:
    """The CurES config of ``preset`` mapped onto the simulator: the paper's schedule at the simulator's size.

    The schedule gets ``num_iterations = num_prompts // (cures_subset_batches * batch_size)`` subsets,
    ``steps_per_iteration = cures_steps_per_iteration`` and ``cold_start_rollouts`` from the options (the paper's
    T=15 subsets of ~10k prompts, 10 steps of 1024 prompts each, N'=4), and the run's seed; a schedule key the
    preset itself sets (``recommended``: no cold start) keeps the preset's value. ``overrides`` (nested, as for
    :func:`~cures_verl.config.preset_config`) win over all of these.

    Example:
        >>> ctx = StrategyContext(num_prompts=9600, batch_size=64, rollouts_per_prompt=8, seed=0)
        >>> cures_config_for(ctx, "recommended").schedule.cold_start_rollouts
        0
        >>> cures_config_for(ctx, "paper").schedule.cold_start_rollouts
        4
    """
    defaults = {
        "num_iterations": ctx.num_iterations,
        "steps_per_iteration": ctx.options.cures_steps_per_iteration,
        "cold_start_rollouts": ctx.options.cold_start_rollouts,
    }
    preset_schedule = PRESETS[preset].get("schedule", {})
    schedule = {key: value for key, value in defaults.items() if key not in preset_schedule}
    merged = merge_overrides({"seed": ctx.seed, "schedule": schedule}, overrides or {})
    return preset_config(preset, merged)


def group_features(ctx: StrategyContext) -> FloatArray:
    """One-hot features of the context's prompt groups (the simulator's clusters: a topic label per prompt).

    Raises:
        ValueError: If the runner gave no groups.
    """
    if ctx.prompt_groups is None:
        raise ValueError("prompt features were asked for but this runner gives no prompt groups")
    groups = np.asarray(ctx.prompt_groups, dtype=np.int64)
    features: FloatArray = np.zeros((groups.size, int(groups.max()) + 1))
    features[np.arange(groups.size), groups] = 1.0
    return features


#: The top-level key of a variant's overrides that gives the sampler the prompts' group labels as features (it is
#: not a CurES config key: features come with the data).
FEATURES_KEY = "prompt_features"


def cures_strategy_spec(
    name: str, preset: str, overrides: Mapping[str, Any] | None = None, *, description: str | None = None
) -> StrategySpec:
    """A :class:`StrategySpec` running CurES with ``preset`` plus nested ``overrides`` (not registered).

    The overrides are validated now, so a bad key fails before any run. A top-level ``"prompt_features":
    "groups"`` is not a config key: it passes the prompts' group labels (one-hot) to the sampler as
    ``prompt_features`` (for ``posterior.drift`` per feature and ``posterior.feature_prior``).

    Raises:
        ValueError: If the preset or an override is invalid.

    Example:
        >>> spec = cures_strategy_spec("cures_thompson", "paper", {"sampler": {"score": "thompson"}})
        >>> spec.name, spec.citation.startswith("CurES")
        ('cures_thompson', True)
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown CurES preset {preset!r}; choose one of {', '.join(PRESETS)}")
    frozen = json.loads(json.dumps(dict(overrides or {})))  # a private, plain copy
    features = frozen.pop(FEATURES_KEY, None)
    if features not in (None, "groups"):
        raise ValueError(f'{name}: {FEATURES_KEY}={features!r} is invalid; the only source is "groups"')
    preset_config(preset, frozen)  # validate early: unknown keys and bad values raise here

    def factory(ctx: StrategyContext) -> Strategy:
        config = cures_config_for(ctx, preset, frozen)
        return CuresStrategy(ctx, config, name=name, use_features=features is not None)

    text = description or f"CurES preset {preset!r}" + (f" with {json.dumps(frozen, sort_keys=True)}" if frozen else "")
    return StrategySpec(name, factory, text, "CurES, Zeng et al. 2025, arXiv 2510.01037")


def parse_cures_variant(text: str) -> tuple[str, str, dict[str, Any]]:
    """Parse ``NAME=PRESET`` or ``NAME=PRESET:JSON`` (the ``--cures-variant`` syntax).

    Raises:
        ValueError: If the text does not have that form or the JSON is not an object.

    Example:
        >>> parse_cures_variant('cures_tau1=paper:{"sampler": {"temperature": 1.0}}')
        ('cures_tau1', 'paper', {'sampler': {'temperature': 1.0}})
    """
    name, sep, rest = text.partition("=")
    if not sep or not name.strip() or not rest.strip():
        raise ValueError(f"--cures-variant {text!r} must look like NAME=PRESET or NAME=PRESET:JSON")
    preset, colon, payload = rest.partition(":")
    if not colon:
        return name.strip(), preset.strip(), {}
    try:
        overrides = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--cures-variant {text!r}: the overrides are not valid JSON ({exc})") from exc
    if isinstance(overrides, dict):
        return name.strip(), preset.strip(), overrides
    raise ValueError(f"--cures-variant {text!r}: the overrides must be a JSON object")
