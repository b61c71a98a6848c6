"""The CurES step loop (Algorithm 1), framework-free: a short coordinator over the parts that follow the paper's seams.

* what to sample: :class:`~cures_verl.core.sampling.SamplingPolicy`, rho of Eq. 14 (scores, temperatures, sum tree,
  weight bounds and thinned or Thompson draws), reading ``cures.sampler``;
* how many rollouts: :class:`~cures_verl.core.allocation.RolloutAllocator`, n_i of Eqs. 20-21 under the budget
  N = m x n, reading ``cures.allocation``;
* when to reset or forget: :class:`~cures_verl.core.timeline.Timeline`, the schedule position (Sec. 4.3), resets at
  subset entry, constant or adaptive forgetting, reading ``cures.schedule`` and the forgetting keys of
  ``cures.posterior``;
* what to report: :class:`~cures_verl.core.report.CurriculumReport`, metrics, calibration, sampling probabilities;
* what is known: the posterior of every prompt (Eqs. 22-24), :class:`~cures_verl.core.difficulty.BetaAccuracyTracker`,
  built from ``cures.posterior``.

:class:`CurriculumSampler` runs Algorithm 1 over them:

1. :meth:`~CurriculumSampler.plan_step` returns the next step's prompts and per-prompt rollout counts:
   during a cold start the next chunk of the subset with N' rollouts each; otherwise m distinct
   prompts drawn from rho (Eq. 14) with n_i from Eq. 20 under the budget N = m x nominal n.
2. The trainer generates and scores the rollouts, then calls :meth:`~CurriculumSampler.observe` with
   one (prompt id, reward) pair per rollout; the posterior is updated (Eq. 23) and the sampling
   weights of the touched prompts are refreshed.

A step costs O(m log N) (sum tree), whatever the dataset size, with forgetting and Thompson draws too (bounds and
thinned draws on pools above ``dense_pool_max``, see :mod:`cures_verl.core.sampling` and :mod:`cures_verl.core.bounds`).
Only the reporting (:meth:`metrics`, :meth:`sampling_probabilities`) reads the whole pool.

:meth:`~CurriculumSampler.state_dict` composes the parts' states, the generator and the bounds included, so a resumed
run continues with exactly the same draws; states of format 1 (before the split) still load.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from cures_verl.config import CuresConfig, changed_keys, flatten_keys
from cures_verl.core._typing import FloatArray, IntArray
from cures_verl.core.allocation import RolloutAllocator
from cures_verl.core.difficulty import BetaAccuracyTracker
from cures_verl.core.grouping import PromptCounts, count_rollouts
from cures_verl.core.report import CurriculumReport
from cures_verl.core.sampling import SamplingPolicy
from cures_verl.core.schedule import COLD_START, Schedule, StepPlan
from cures_verl.core.shared import SharedPrediction
from cures_verl.core.timeline import Timeline

__all__ = ["CurriculumSampler", "StepPlan"]

STATE_FORMAT = 2
# Config keys that do not change the sampler's decisions after a restore: where records go, and where the prior
# came from (the restored state carries the prior itself).
_RESUME_IGNORED_KEYS = frozenset({"dump_dir", "posterior.prior_path"})
# Redraws of a batch whose prompts would all be dropped (zero_variance=drop) before giving up.
_MAX_EMPTY_REDRAWS = 100


class CurriculumSampler:
    """CurES prompt selection and rollout allocation over a dataset of ``num_prompts`` prompts.

    Args:
        num_prompts: Dataset size N_data; prompt ids are ``0 .. num_prompts - 1`` (a trainer maps its stable
            dataset index to these).
        batch_size: Prompts per step m (verl's ``data.train_batch_size``).
        rollouts_per_prompt: Nominal rollouts per prompt n; the step budget is N = m * n (verl's
            ``actor_rollout_ref.rollout.n``), so a trainer's batch arithmetic is unchanged.
        config: CurES settings (see :mod:`cures_verl.config`).
        prior_accuracy: Per-prompt pass rates in [0, 1], shape ``(num_prompts,)``, required when
            ``config.posterior.prior_source == "dataset"`` and rejected otherwise.
        subset_ids: Per-prompt subset ids, shape ``(num_prompts,)``, required when
            ``config.schedule.split == "field"``.
        prompt_features: Per-prompt features, shape ``(num_prompts, d)``, for ``posterior.drift`` (a drift per
            feature) and ``posterior.feature_prior`` (required there); rejected when neither is on.

    Raises:
        ValueError: If the budget is infeasible for the allocation bounds, a subset is smaller than a batch,
            ``sampler.screening_rollouts`` is not below ``rollouts_per_prompt``, the prior arguments do not
            match ``prior_source``, or ``prompt_features`` do not match the shared-prediction keys.

    Example:
        >>> from cures_verl.config import preset_config
        >>> cfg = preset_config("paper", {"schedule": {"mode": "continuous", "cold_start_rollouts": 0}})
        >>> sampler = CurriculumSampler(100, batch_size=4, rollouts_per_prompt=8, config=cfg)
        >>> plan = sampler.plan_step()
        >>> plan.prompt_indices.size, plan.total_rollouts, int(plan.rollouts.min()) >= 2
        (4, 32, True)
        >>> rewards = np.zeros(plan.total_rollouts)
        >>> metrics = sampler.observe(np.repeat(plan.prompt_indices, plan.rollouts), rewards)
        >>> float(sampler.tracker.num_observed().sum())
        32.0
    """

    def __init__(
        self,
        num_prompts: int,
        *,
        batch_size: int,
        rollouts_per_prompt: int,
        config: CuresConfig | None = None,
        prior_accuracy: FloatArray | None = None,
        subset_ids: IntArray | None = None,
        prompt_features: FloatArray | None = None,
    ) -> None:
        self.config = cfg = config if config is not None else CuresConfig()
        if num_prompts < 1:
            raise ValueError(f"num_prompts must be >= 1, got {num_prompts}")
        if batch_size < 1 or rollouts_per_prompt < 1:
            raise ValueError(
                f"batch_size and rollouts_per_prompt must be >= 1, got {batch_size}, {rollouts_per_prompt}"
            )
        self.num_prompts = int(num_prompts)
        self.batch_size = int(batch_size)
        self.rollouts_per_prompt = int(rollouts_per_prompt)
        SamplingPolicy.check(cfg.sampler, self.rollouts_per_prompt)
        self.allocator = RolloutAllocator(
            cfg.allocation,
            num_prompts=self.num_prompts,
            batch_size=self.batch_size,
            rollouts_per_prompt=self.rollouts_per_prompt,
        )
        schedule = Schedule(self.num_prompts, self.batch_size, cfg.schedule, seed=cfg.seed, subset_ids=subset_ids)
        self.timeline = Timeline(schedule, cfg.posterior)
        self.tracker = BetaAccuracyTracker.from_config(self.num_prompts, cfg.posterior, prior_accuracy)
        post = cfg.posterior
        if post.drift or post.feature_prior:
            self.tracker.shared = SharedPrediction(
                self.num_prompts,
                features=prompt_features,
                drift=post.drift,
                feature_prior=post.feature_prior,
                rate=post.shared_rate,
                ridge=post.shared_ridge,
            )
        elif prompt_features is not None:
            raise ValueError(
                "prompt_features were given but nothing reads them; set cures.posterior.drift=true (a drift per "
                "feature) or cures.posterior.feature_prior=true, or do not pass them"
            )
        self.policy = SamplingPolicy(
            cfg.sampler, self.tracker, batch_size=self.batch_size, seed=cfg.seed, decays=self.timeline.forgets
        )
        self.report = CurriculumReport(self.tracker, self.policy, self.allocator)
        self.last_plan: StepPlan | None = None

    # ------------------------------------------------------------------ the parts' faces
    @property
    def schedule(self) -> Schedule:
        """The step -> phase map."""
        return self.timeline.schedule

    @property
    def step(self) -> int:
        """The next step (0-based)."""
        return self.timeline.step

    @property
    def budget(self) -> int:
        """Rollouts per training step N = m x n."""
        return self.allocator.budget

    @property
    def rng(self) -> np.random.Generator:
        """The generator of the prompt and Thompson draws (the sampling policy's)."""
        return self.policy.rng

    @property
    def num_prior_unknown(self) -> int:
        """Prompts given no pass rate by ``prior_accuracy`` (they keep the uniform prior)."""
        return self.tracker.num_prior_unknown

    @property
    def dense_pool_max(self) -> int:
        """See :attr:`SamplingPolicy.dense_pool_max`; set it before the first draw."""
        return self.policy.dense_pool_max

    @dense_pool_max.setter
    def dense_pool_max(self, value: int) -> None:
        self.policy.dense_pool_max = int(value)

    # ------------------------------------------------------------------ the step (Algorithm 1)
    def plan_step(self) -> StepPlan:
        """Choose the next step's prompts and rollout counts, and advance the step counter.

        Returns:
            The plan: m distinct prompts with their n_i (summing to the budget, except under ``drop``).
        """
        phase = self.timeline.phase()
        reset = self.timeline.resets(phase)
        if reset is not None:
            self.tracker.reset(reset)
            self.allocator.forget(reset)
        self.policy.enter(phase, self.schedule)
        if phase.kind == COLD_START:
            prompts, rollouts, is_training = self.timeline.cold_start(phase)
        else:
            prompts, rollouts = self._draw_and_allocate()
            is_training = True
        plan = StepPlan(
            step=phase.step,
            iteration=phase.iteration,
            phase=phase.kind,
            prompt_indices=prompts,
            rollouts=rollouts,
            is_training=is_training,
            predicted_accuracy=self.tracker.posterior_mean(prompts),
        )
        self.timeline.advance(phase)
        self.last_plan = plan
        return plan

    def _draw_and_allocate(self) -> tuple[IntArray, IntArray]:
        """Draw m prompts (Eq. 14) and allocate the budget (Eq. 20); under ``drop`` a batch in which every prompt
        would be dropped is skipped and drawn again, as the released code skips an empty batch (at most
        _MAX_EMPTY_REDRAWS times)."""
        thompson = self.policy.prepare()
        for _ in range(_MAX_EMPTY_REDRAWS):
            prompts = self.policy.draw(thompson)
            rollouts = self.allocator.allocate(prompts, self.tracker)
            if rollouts.any():
                return prompts, rollouts
        raise RuntimeError(
            f"{_MAX_EMPTY_REDRAWS} batches in a row had every prompt at sigma = 0 under "
            "cures.allocation.zero_variance=drop (all-correct or all-wrong estimates); use zero_variance=floor, "
            "accuracy_estimate=posterior_mean, or a larger batch"
        )

    def observe(self, prompt_indices: IntArray, rewards: FloatArray) -> dict[str, float]:
        """Update the posterior with one (prompt id, reward) pair per rollout (CurES Eq. 23).

        During training steps the update only happens with ``posterior.online_update``; cold-start rollouts
        always initialise the estimates. Forgetting, when enabled, is applied after each training step.

        Args:
            prompt_indices: Prompt id of every rollout, shape ``(k,)``.
            rewards: Reward of every rollout, shape ``(k,)`` (see ``posterior.reward_rule``).

        Returns:
            Namespace-relative metrics of the batch (prediction quality, zero-variance groups, ...).
        """
        post = self.config.posterior
        counts = count_rollouts(prompt_indices, rewards, rule=post.reward_rule, threshold=post.reward_threshold)
        if counts.prompt_indices.size and counts.prompt_indices.max() >= self.num_prompts:
            raise ValueError(f"prompt ids must be < num_prompts={self.num_prompts}")
        return self.observe_counts(counts)

    def observe_counts(self, counts: PromptCounts) -> dict[str, float]:
        """:meth:`observe` for counts already grouped by prompt."""
        metrics = self.report.observation(counts, self.tracker.posterior_mean(counts.prompt_indices))
        rate = self.timeline.forgetting_rate(counts, self.tracker)
        if rate is not None:
            metrics["posterior/forgetting"] = rate
        if self.timeline.learns:
            self.tracker.update(counts.prompt_indices, counts.num_correct, counts.num_total)
        shared = self.tracker.shared
        if shared is not None:  # the shared models' intercepts: the population's drift, the unseen prompts' offset
            metrics["posterior/drift_intercept"] = float(shared.w_drift[0])
            metrics["posterior/feature_prior_intercept"] = float(shared.w_level[0])
        if rate:
            # bounded: lazy, O(1), the bounds of the other prompts cover it until they expire; dense: eager, O(N)
            self.tracker.decay(1.0 - rate, lazy=self.policy.bounded)
        # forgetting, or a shared drift / feature prior just refitted, moves every prompt's weight
        moved = bool(rate) or (shared is not None and self.timeline.learns)
        self.policy.observed(counts.prompt_indices, all_moved=moved)
        return metrics

    @property
    def set_gradient_norm_stats(self) -> Callable[..., None]:
        """Store per-prompt gradient-norm statistics for sigma_i of Eq. 21 (``grad_std=gradient_norms``): the
        allocator's :meth:`~cures_verl.core.allocation.RolloutAllocator.set_gradient_norm_stats`, called as
        ``sampler.set_gradient_norm_stats(prompt_indices, sq_norm_correct, sq_norm_incorrect, gap_sq=None)``."""
        return self.allocator.set_gradient_norm_stats

    # ------------------------------------------------------------------ reporting
    def pool(self) -> IntArray:
        """Prompt ids eligible at the next step, shape ``(pool_size,)``."""
        return self.schedule.subset(self.timeline.phase().subset)

    def sampling_probabilities(self, indices: IntArray | None = None) -> FloatArray:
        """Current rho over the eligible pool (Eq. 14), for ``indices`` or the whole pool; O(pool).

        Reporting never consumes the sampler's generator: with Thompson draws this is the distribution given a
        throwaway posterior draw of every prompt (seeded by the step).
        """
        pool = self.pool()
        prob = self.report.sampling_probabilities(pool, self.timeline.phase().subset, self.step)
        if indices is None:
            return prob
        out = np.zeros(self.num_prompts)
        out[pool] = prob
        selected: FloatArray = out[indices]
        return selected

    def metrics(self, plan: StepPlan | None = None) -> dict[str, float]:
        """Namespace-relative metrics of the pool and of ``plan`` (default: the last plan); O(pool).

        Keys: ``sampler/*`` (pool accuracy, entropy of rho, unseen fraction), ``alloc/*`` (rollout counts),
        ``schedule/*``.
        """
        plan = plan if plan is not None else self.last_plan
        return self.report.metrics(self.pool(), self.sampling_probabilities(), plan)

    @property
    def nbytes(self) -> int:
        """Bytes held by the per-prompt state (posterior, sum tree, optional statistics)."""
        return self.tracker.nbytes + self.policy.nbytes + self.allocator.nbytes + self.timeline.nbytes

    # ------------------------------------------------------------------ checkpointing
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly (plain types and arrays): a header (format, sizes, config, and the
        next step for readers of a checkpoint), the posterior (``tracker``, read by ``verl_adapter.priors``) and each
        part's own state."""
        return {
            "format": STATE_FORMAT,
            "num_prompts": self.num_prompts,
            "batch_size": self.batch_size,
            "rollouts_per_prompt": self.rollouts_per_prompt,
            "config": self.config.to_dict(),
            "step": self.step,
            "tracker": self.tracker.state_dict(),
            "timeline": self.timeline.state_dict(),
            "policy": self.policy.state_dict(),
            "allocator": self.allocator.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict` (this format, or format 1 written before the sampler was split).

        Raises:
            ValueError: If the format is unknown, or the dataset size, batch size, budget or config differ from the
                saved ones (a run must resume with the settings it was saved with).
        """
        state = _upgrade(state)
        for key in ("num_prompts", "batch_size", "rollouts_per_prompt"):
            if int(state[key]) != getattr(self, key):
                raise ValueError(
                    f"checkpoint was saved with {key}={state[key]} but this run has {getattr(self, key)}; "
                    "resume with the same data and batch settings"
                )
        # a key added after the state was saved ran with its default then: missing keys compare as the default
        saved = {**flatten_keys(CuresConfig().to_dict()), **flatten_keys(dict(state["config"]))}
        changed = changed_keys(saved, self.config.to_dict())
        diff = {key: values for key, values in changed.items() if key not in _RESUME_IGNORED_KEYS}
        if diff:
            raise ValueError(f"checkpoint was saved with a different cures config: {diff}; resume with the same config")
        self.tracker.load_state_dict(state["tracker"])
        self.timeline.load_state_dict(state["timeline"])
        self.allocator.load_state_dict(state["allocator"])
        self.policy.load_state_dict(state["policy"], self.schedule)
        self.last_plan = None


def _upgrade(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` in the current format: format 1 (one flat dict, before the split into parts) is regrouped."""
    version = state.get("format")
    if version == STATE_FORMAT:
        return state
    if version != 1:
        raise ValueError(
            f"unsupported sampler state format {version!r}: this version of cures_verl reads formats 1 and "
            f"{STATE_FORMAT}; resume with the cures_verl version that saved the checkpoint, or start afresh"
        )
    parts = {
        "timeline": {
            "step": state["step"],
            "last_plan_phase": state.get("last_plan_phase"),
            "residual_ratio": state.get("residual_ratio", 1.0),
        },
        "policy": {"rng": state["rng"], "bounds": state.get("bounds"), "acceptance": state.get("acceptance", 1.0)},
        "allocator": {"grad_stats": state.get("grad_stats")},
    }
    common = ("num_prompts", "batch_size", "rollouts_per_prompt", "config", "step", "tracker")
    return {"format": STATE_FORMAT, **{key: state[key] for key in common}, **parts}
