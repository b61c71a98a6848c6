"""The CurES step loop, framework-free: which prompts, how many rollouts each, and what was learned.

:class:`CurriculumSampler` ties the pieces together (CurES Algorithm 1):

1. :meth:`~CurriculumSampler.plan_step` returns the next step's prompts and per-prompt rollout counts:
   during a cold start the next chunk of the subset with N' rollouts each; otherwise m distinct
   prompts drawn from rho (Eq. 14) with n_i from Eq. 20 under the budget N = m x nominal n.
2. The trainer generates and scores the rollouts, then calls :meth:`~CurriculumSampler.observe` with
   one (prompt id, reward) pair per rollout; the posterior is updated (Eq. 23) and the sampling
   weights of the touched prompts are refreshed.

A step costs O(m log N) (sum tree), whatever the dataset size. Without forgetting and Thompson draws the tree holds
the exact weights of Eq. 14 and only the observed prompts' weights change. With forgetting (every posterior moves each
step) or Thompson draws (every weight is random each step) on a pool above ``dense_pool_max`` prompts the tree holds
upper bounds of the weights that stay valid while the posterior is forgotten, and the draw accepts a proposal with
probability weight / bound (:mod:`cures_verl.core.bounds`, :func:`~cures_verl.core.sampling.draw_distinct_thinned`):
the same sampling distribution as recomputing every weight (Thompson: as drawing every prompt's posterior sample
first), in O(m / acceptance log N) plus the bounds of the prompts observed or whose bound's window ran out;
forgetting is then lazy (:class:`~cures_verl.core.difficulty.BetaAccuracyTracker`). Smaller pools recompute every
weight before each draw, O(pool) and cheaper there, exactly as earlier versions did. Only the reporting
(:meth:`metrics`, :meth:`sampling_probabilities`) reads the whole pool.

:meth:`~CurriculumSampler.state_dict` captures everything, the generator and the bounds included, so a resumed run
continues with exactly the same draws.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cures_verl.config import CuresConfig
from cures_verl.core._typing import FloatArray, IntArray
from cures_verl.core.allocation import allocate_by_marginal_value, allocate_rollouts, grad_std_from_gradient_norms
from cures_verl.core.bounds import MASS_FLOOR_SHARE, ExpiryQueue, log_weight_bounds, windowed_bounds
from cures_verl.core.difficulty import BetaAccuracyTracker
from cures_verl.core.grouping import PromptCounts, count_rollouts
from cures_verl.core.sampling import (
    draw_distinct,
    draw_distinct_thinned,
    gumbel_top_k,
    prompt_scores,
    prompt_temperatures,
    reward_std,
)
from cures_verl.core.schedule import COLD_START, Phase, Schedule
from cures_verl.core.sumtree import SumTree

__all__ = ["CurriculumSampler", "StepPlan"]

STATE_FORMAT = 1
# Rebuild the tree when a refreshed log-weight exceeds the current shift by this much, keeping weights <= e^50.
_SHIFT_SLACK = 50.0
# Clip dataset pass rates into [eps, 1 - eps] so the Beta prior stays proper.
_PRIOR_EPS = 1e-3
# Config keys that do not change the sampler's decisions after a restore: where records go, and where the prior
# came from (the restored state carries the prior itself).
_RESUME_IGNORED_KEYS = frozenset({"dump_dir", "posterior.prior_path"})
# Redraws of a batch whose prompts would all be dropped (zero_variance=drop) before giving up.
_MAX_EMPTY_REDRAWS = 100


class _ThompsonDraws:
    """The posterior draws theta_i of one step, made lazily the first time prompt i is looked at (sorted ids)."""

    def __init__(self, tracker: BetaAccuracyTracker, rng: np.random.Generator) -> None:
        self.tracker, self.rng = tracker, rng
        self.ids = np.empty(0, dtype=np.int64)
        self.theta = np.empty(0)

    def __call__(self, indices: IntArray) -> FloatArray:
        """theta of every index (repeats allowed); unseen prompts are drawn in order of first appearance."""
        _, first = np.unique(indices, return_index=True)
        distinct = indices[np.sort(first)]
        pos = np.minimum(np.searchsorted(self.ids, distinct), max(self.ids.size - 1, 0))
        known = (self.ids[pos] == distinct) if self.ids.size else np.zeros(distinct.size, dtype=bool)
        new = distinct[~known]
        if new.size:
            ids = np.concatenate([self.ids, new])
            theta = np.concatenate([self.theta, self.tracker.sample(self.rng, new)])
            order = np.argsort(ids)
            self.ids, self.theta = ids[order], theta[order]
        result: FloatArray = self.theta[np.searchsorted(self.ids, indices)]
        return result


@dataclass(frozen=True)
class StepPlan:
    """What one step trains on.

    Attributes:
        step: Global 0-based step.
        iteration: Global 0-based iteration of the schedule.
        phase: ``cold_start`` or ``train``.
        prompt_indices: Prompt ids, shape ``(m,)``, distinct, in draw order.
        rollouts: Rollouts per prompt n_i, shape ``(m,)``; 0 for prompts dropped under ``zero_variance=drop``.
        is_training: Whether the policy should be updated on this step's rollouts.
        predicted_accuracy: Posterior mean of each prompt when it was drawn, shape ``(m,)``.
    """

    step: int
    iteration: int
    phase: str
    prompt_indices: IntArray
    rollouts: IntArray
    is_training: bool
    predicted_accuracy: FloatArray = field(repr=False)

    @property
    def total_rollouts(self) -> int:
        """sum_i n_i."""
        return int(self.rollouts.sum())


def _pearson(x: FloatArray, y: FloatArray) -> float:
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])


def _ranks(x: FloatArray) -> FloatArray:
    """Average ranks (ties share their mean rank), as Spearman's correlation needs."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(x.size)
    ranks[order] = np.arange(x.size, dtype=np.float64)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / counts)[inverse]


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

    Raises:
        ValueError: If the budget is infeasible for the allocation bounds, a subset is smaller than a batch,
            ``sampler.screening_rollouts`` is not below ``rollouts_per_prompt``, or the prior arguments do not
            match ``prior_source``.

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

    #: With forgetting or Thompson draws, pools up to this size recompute every weight before each draw (O(pool),
    #: cheaper there, and the draws of earlier versions); larger ones use bounds and thinned draws (the same
    #: distribution, O(prompts touched)). A tuning knob, not a setting: set it on an instance before its first draw.
    dense_pool_max = 30_000

    def __init__(
        self,
        num_prompts: int,
        *,
        batch_size: int,
        rollouts_per_prompt: int,
        config: CuresConfig | None = None,
        prior_accuracy: FloatArray | None = None,
        subset_ids: IntArray | None = None,
    ) -> None:
        self.config = config if config is not None else CuresConfig()
        if num_prompts < 1:
            raise ValueError(f"num_prompts must be >= 1, got {num_prompts}")
        if batch_size < 1 or rollouts_per_prompt < 1:
            raise ValueError(
                f"batch_size and rollouts_per_prompt must be >= 1, got {batch_size}, {rollouts_per_prompt}"
            )
        self.num_prompts = int(num_prompts)
        self.batch_size = int(batch_size)
        self.rollouts_per_prompt = int(rollouts_per_prompt)
        self.budget = self.batch_size * self.rollouts_per_prompt
        self._check_budget()
        cfg = self.config
        self.schedule = Schedule(self.num_prompts, self.batch_size, cfg.schedule, seed=cfg.seed, subset_ids=subset_ids)
        self.tracker = BetaAccuracyTracker(self.num_prompts, **self._priors(prior_accuracy))
        self.rng = np.random.default_rng(cfg.seed)
        self.tree = SumTree(self.num_prompts)
        # Forgetting or Thompson draws move every weight each step: on a pool larger than dense_pool_max the tree
        # holds upper bounds of the weights (see the module docstring), on a smaller one every weight is recomputed
        # before each draw. Decided at each full rebuild of the tree.
        self._volatile = cfg.posterior.forgetting > 0 or cfg.sampler.score == "thompson"
        self._bounded = False
        self._bound_log = np.zeros(0)  # per-prompt arrays of the bounded mode, allocated when first used
        self._expiry = ExpiryQueue(0)
        self._pending: list[IntArray] = []  # observed prompts whose bound is refreshed before the next draw
        self._acceptance = 1.0  # share of proposals the last thinned draw accepted (sizes the next one)
        self.step = 0
        self._tree_subset: int | None = None
        self._weights_stale = True  # the tree needs a full rebuild before the next draw
        self._shift = 0.0
        self._pool = np.empty(0, dtype=np.int64)
        self._eligible = np.zeros(self.num_prompts, dtype=bool)  # membership of _pool, 1 byte per prompt
        self._grad_stats: FloatArray | None = None  # (3, N): E||g||^2 correct, incorrect, gap^2; NaN = unknown
        self.last_plan: StepPlan | None = None
        self._last_phase: str | None = None  # phase of the last plan (kept across a restore)
        self._residual_ratio = 1.0  # running mean of squared prediction errors / predictive variance

    # ------------------------------------------------------------------ set-up
    def _check_budget(self) -> None:
        alloc = self.config.allocation
        m, n_min, n_max = self.batch_size, alloc.min_per_prompt, alloc.max_per_prompt
        screen = self.config.sampler.screening_rollouts
        if screen and screen >= self.rollouts_per_prompt:
            raise ValueError(
                f"cures.sampler.screening_rollouts={screen} must be below the nominal rollouts per prompt "
                f"{self.rollouts_per_prompt} (a screen as large as a group saves nothing); lower it or raise rollout.n"
            )
        if not alloc.enable:
            return
        if self.budget % alloc.multiple_of:
            raise ValueError(
                f"rollout budget {self.budget} (= {m} prompts x {self.rollouts_per_prompt}) is not a multiple of "
                f"cures.allocation.multiple_of={alloc.multiple_of}; change rollout.n or multiple_of"
            )
        if self.budget < m * n_min:
            raise ValueError(
                f"rollout budget {self.budget} (= {m} prompts x {self.rollouts_per_prompt}) is below "
                f"{m} x cures.allocation.min_per_prompt={n_min}; raise rollout.n or lower min_per_prompt"
            )
        if n_max is not None and self.budget > m * n_max and alloc.zero_variance == "floor":
            raise ValueError(
                f"rollout budget {self.budget} (= {m} prompts x {self.rollouts_per_prompt}) exceeds {m} x "
                f"cures.allocation.max_per_prompt={n_max}; raise max_per_prompt or lower rollout.n"
            )

    def _priors(self, prior_accuracy: FloatArray | None) -> dict[str, Any]:
        post = self.config.posterior
        if post.prior_source == "uniform":
            if prior_accuracy is not None:
                raise ValueError(
                    "per-prompt prior accuracies were given but cures.posterior.prior_source=uniform ignores them; "
                    "set prior_source=dataset to use them"
                )
            return {"prior_correct": post.prior_correct, "prior_incorrect": post.prior_incorrect}
        if prior_accuracy is None:
            raise ValueError(
                f"cures.posterior.prior_source={post.prior_source} needs per-prompt pass rates (a dataset column or "
                "an earlier run's posterior); pass prior_accuracy or set prior_source=uniform"
            )
        rates = np.asarray(prior_accuracy, dtype=np.float64)
        known = ~np.isnan(rates)
        if rates.shape != (self.num_prompts,) or not np.all((rates[known] >= 0) & (rates[known] <= 1)):
            raise ValueError(f"prior_accuracy must have shape ({self.num_prompts},) with values in [0, 1] or NaN")
        # NaN = no information about that prompt: it keeps the uniform prior (centre prior_correct / strength)
        strength = post.prior_correct + post.prior_incorrect
        centre = np.where(known, np.clip(rates, _PRIOR_EPS, 1 - _PRIOR_EPS), post.prior_correct / strength)
        self.num_prior_unknown = int(np.count_nonzero(~known))
        return {"prior_correct": strength * centre, "prior_incorrect": strength * (1 - centre)}

    # ------------------------------------------------------------------ weights
    def _log_weights(self, indices: IntArray, rng: np.random.Generator | None = None) -> FloatArray:
        """score_i / tau_i of Eq. 14 for ``indices`` (Thompson draws come from ``rng``, default the sampler's)."""
        s = self.config.sampler
        rng = self.rng if rng is None else rng
        scores = prompt_scores(self.tracker, indices, s.score, rng=rng, group_size=s.informative_group_size)
        result: FloatArray = scores / prompt_temperatures(self.tracker, indices, s.temperature, s.temperature_rule)
        return result

    def _log_bounds(self, indices: IntArray) -> FloatArray:
        """Upper bounds of the log-weights of ``indices`` that hold until their expiry, which is set here (Eq. 14;
        see :mod:`cures_verl.core.bounds`)."""
        s = self.config.sampler
        if self.config.posterior.forgetting == 0:  # nothing decays: the bound without decay holds for ever
            bounds: FloatArray = log_weight_bounds(
                self.tracker, indices, np.ones(1), s.score, s.temperature, s.temperature_rule, s.informative_group_size
            )[0]
            return bounds
        floor = None  # a rebuild: the mean weight of the pool being bounded
        if not self._weights_stale and self.tree.total > 0:  # a refresh: the mean bound in the tree
            floor = self._shift + math.log(MASS_FLOOR_SHARE * self.tree.total / max(self._pool.size, 1))
        bounds, windows = windowed_bounds(
            self.tracker,
            indices,
            s.score,
            s.temperature,
            s.temperature_rule,
            s.informative_group_size,
            log_mass_floor=floor,
        )
        self._expiry.set(indices, self.tracker.log_scale - windows)
        return bounds

    def _pool_log_weights(self, thompson: _ThompsonDraws | None) -> Callable[[IntArray], FloatArray]:
        """The exact log-weights of given prompts (Thompson: this step's draws) for the thinned draw's finish."""
        s = self.config.sampler

        def log_weights(indices: IntArray) -> FloatArray:
            if thompson is None:
                return self._log_weights(indices)
            temps = prompt_temperatures(self.tracker, indices, s.temperature, s.temperature_rule)
            result: FloatArray = reward_std(thompson(indices)) / temps
            return result

        return log_weights

    def _rebuild_weights(self) -> None:
        """Recompute every eligible prompt's weight (or bound), O(N). Only called when drawing, so that the generator
        is consumed (Thompson draws on a dense pool) at the same points whether or not a run was restored."""
        weights = np.zeros(self.num_prompts)
        self._bounded = self._volatile and self._pool.size > self.dense_pool_max
        if self._bounded:
            self._allocate_bounds()
            self._expiry.clear()
            log_w = self._log_bounds(self._pool)
            self._bound_log[self._pool] = log_w
        else:
            log_w = self._log_weights(self._pool)
        self._shift = float(log_w.max())
        weights[self._pool] = np.exp(log_w - self._shift)
        self.tree.rebuild(weights)
        self._weights_stale = False

    def _allocate_bounds(self) -> None:
        if self._bound_log.size != self.num_prompts:
            self._bound_log = np.zeros(self.num_prompts)
            self._expiry = ExpiryQueue(self.num_prompts)

    def _refresh_weights(self, indices: IntArray) -> None:
        """Recompute the weights (or bounds) of the distinct ``indices`` only, O(k log N) (eligible ones; others
        stay 0)."""
        if self._weights_stale or (self.config.sampler.score == "thompson" and not self._bounded):
            return  # the next draw rebuilds every weight anyway (Thompson: fresh posterior draws)
        indices = indices[self._eligible[indices]]
        if indices.size == 0:
            return
        if self._bounded:
            log_w = self._log_bounds(indices)
            self._bound_log[indices] = log_w
        else:
            log_w = self._log_weights(indices)
        if log_w.max() > self._shift + _SHIFT_SLACK:
            self._weights_stale = True
            return
        self.tree.update(indices, np.exp(log_w - self._shift))
        if self.tree.total < 1e-250:
            self._weights_stale = True

    def _enter_subset(self, phase: Phase) -> None:
        if phase.starts_iteration and self.config.schedule.reset_each_iteration and not self.schedule.continuous:
            members = self.schedule.subset(phase.subset)
            self.tracker.reset(members)
            if self._grad_stats is not None:
                self._grad_stats[:, members] = np.nan
        if self._tree_subset != phase.subset or phase.starts_iteration:
            self._eligible[self._pool] = False
            self._pool = self.schedule.subset(phase.subset)
            self._eligible[self._pool] = True
            self._tree_subset = phase.subset
            self._weights_stale = True

    def _draw(self, thompson: _ThompsonDraws | None = None) -> IntArray:
        """m distinct prompts by successive sampling from Eq. 14 (``thompson``: the step's posterior draws)."""
        if self._bounded:
            log_weights = self._pool_log_weights(thompson)

            def log_acceptance(leaves: IntArray) -> FloatArray:
                result: FloatArray = log_weights(leaves) - self._bound_log[leaves]
                return result

            prompts, self._acceptance = draw_distinct_thinned(
                self.tree, self.batch_size, self.rng, log_acceptance, self._pool, log_weights, self._acceptance
            )
            return prompts
        try:
            return draw_distinct(self.tree, self.batch_size, self.rng)
        except ValueError:
            # Fewer than m eligible prompts have a weight above float64's underflow (only at extreme tau):
            # draw exactly in log space instead.
            return self._pool[gumbel_top_k(self._log_weights(self._pool), self.batch_size, self.rng)]

    # ------------------------------------------------------------------ allocation
    def _grad_stds(self, prompts: IntArray) -> FloatArray:
        alloc = self.config.allocation
        if alloc.accuracy_estimate == "mle":
            accuracy = self.tracker.mle_accuracy(prompts)
        else:
            accuracy = self.tracker.posterior_mean(prompts)
        if alloc.grad_std == "accuracy":
            return reward_std(accuracy)
        stats = self._grad_stats[:, prompts] if self._grad_stats is not None else np.full((3, prompts.size), np.nan)
        missing = np.isnan(stats[:2]).any(axis=0)
        if missing.any():
            raise ValueError(
                f"{int(missing.sum())} of the {prompts.size} drawn prompts have no gradient-norm statistics; call "
                "set_gradient_norm_stats for them or use cures.allocation.grad_std=accuracy"
            )
        gap = np.nan_to_num(stats[2], nan=0.0)
        return grad_std_from_gradient_norms(accuracy, stats[0], stats[1], gap)

    def set_gradient_norm_stats(
        self,
        prompt_indices: IntArray,
        sq_norm_correct: FloatArray,
        sq_norm_incorrect: FloatArray,
        mean_gradient_gap_sq: FloatArray | None = None,
    ) -> None:
        """Store per-prompt gradient-norm statistics for sigma_i from Eq. 21 (``grad_std=gradient_norms``).

        Args:
            prompt_indices: Prompt ids, shape ``(k,)``.
            sq_norm_correct: E||grad log pi||^2 over correct rollouts, shape ``(k,)``.
            sq_norm_incorrect: The same over incorrect rollouts, shape ``(k,)``.
            mean_gradient_gap_sq: ||E_correct[grad] - E_incorrect[grad]||^2, shape ``(k,)``; None = unknown
                (the term is then dropped).
        """
        idx = np.asarray(prompt_indices, dtype=np.int64)
        if self._grad_stats is None:
            self._grad_stats = np.full((3, self.num_prompts), np.nan)
        gap = np.full(idx.size, np.nan) if mean_gradient_gap_sq is None else mean_gradient_gap_sq
        values = np.stack(
            [np.asarray(a, dtype=np.float64).reshape(-1) for a in (sq_norm_correct, sq_norm_incorrect, gap)]
        )
        if values.shape != (3, idx.size):
            raise ValueError("gradient statistics must have one entry per prompt index")
        self._grad_stats[:, idx] = values

    def _draw_and_allocate(self) -> tuple[IntArray, IntArray]:
        """Draw m prompts and allocate the budget; under ``drop`` a batch in which every prompt would be dropped is
        skipped and drawn again, as the released code skips an empty batch (at most _MAX_EMPTY_REDRAWS times)."""
        cfg = self.config
        # one posterior draw per prompt and step, shared by redraws (as when every prompt was drawn up front)
        thompson = _ThompsonDraws(self.tracker, self.rng) if self._bounded and cfg.sampler.score == "thompson" else None
        for _ in range(_MAX_EMPTY_REDRAWS):
            prompts = self._draw(thompson)
            if not cfg.allocation.enable:
                return prompts, np.full(prompts.size, self.rollouts_per_prompt, dtype=np.int64)
            if cfg.allocation.rule == "marginal_value":
                rollouts = allocate_by_marginal_value(
                    self.tracker.alpha(prompts),
                    self.tracker.beta(prompts),
                    self.budget,
                    min_per_prompt=cfg.allocation.min_per_prompt,
                    max_per_prompt=cfg.allocation.max_per_prompt,
                )
                return prompts, rollouts
            rollouts = allocate_rollouts(
                self._grad_stds(prompts),
                self.budget,
                min_per_prompt=cfg.allocation.min_per_prompt,
                max_per_prompt=cfg.allocation.max_per_prompt,
                zero_variance=cfg.allocation.zero_variance,
                multiple_of=cfg.allocation.multiple_of,
            )
            if rollouts.any():
                return prompts, rollouts
        raise RuntimeError(
            f"{_MAX_EMPTY_REDRAWS} batches in a row had every prompt at sigma = 0 under "
            "cures.allocation.zero_variance=drop (all-correct or all-wrong estimates); use zero_variance=floor, "
            "accuracy_estimate=posterior_mean, or a larger batch"
        )

    # ------------------------------------------------------------------ the step
    def plan_step(self) -> StepPlan:
        """Choose the next step's prompts and rollout counts, and advance the step counter.

        Returns:
            The plan: m distinct prompts with their n_i (summing to the budget, except under ``drop``).
        """
        phase = self.schedule.phase(self.step)
        self._enter_subset(phase)
        cfg = self.config
        if phase.kind == COLD_START:
            prompts = self.schedule.cold_start_prompts(phase)
            rollouts = np.full(prompts.size, cfg.schedule.cold_start_rollouts, dtype=np.int64)
            is_training = cfg.schedule.train_on_cold_start
        else:
            if self._bounded and not self._weights_stale:
                # the observed prompts, and those whose bound's window the forgetting has used up
                expired = self._expiry.pop_expired(self.tracker.log_scale)
                self._refresh_weights(np.unique(np.concatenate([expired, *self._pending])))
            self._pending = []
            if self._weights_stale or (cfg.sampler.score == "thompson" and not self._bounded):
                self._rebuild_weights()  # Thompson on a dense pool: fresh posterior draws every step
            prompts, rollouts = self._draw_and_allocate()
            is_training = True
        plan = StepPlan(
            step=self.step,
            iteration=phase.iteration,
            phase=phase.kind,
            prompt_indices=prompts,
            rollouts=rollouts,
            is_training=is_training,
            predicted_accuracy=self.tracker.posterior_mean(prompts),
        )
        self.step += 1
        self.last_plan = plan
        self._last_phase = plan.phase
        return plan

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
        post = self.config.posterior
        predicted = self.tracker.posterior_mean(counts.prompt_indices)
        realised = counts.accuracy
        metrics = {
            "batch/num_rollouts": float(counts.num_total.sum()),
            "batch/num_prompts": float(counts.prompt_indices.size),
            "batch/accuracy_mean": float(counts.num_correct.sum() / max(counts.num_total.sum(), 1.0)),
            "batch/frac_zero_variance": float(np.mean((realised == 0) | (realised == 1))) if realised.size else 0.0,
            "posterior/pred_realised_corr": _pearson(predicted, realised),
            "posterior/pred_realised_rank_corr": _pearson(_ranks(predicted), _ranks(realised)),
            "posterior/pred_abs_error": float(np.mean(np.abs(predicted - realised))) if realised.size else math.nan,
        }
        cold = self._last_phase == COLD_START
        rate = 0.0
        if not cold and post.forgetting > 0:
            rate = post.forgetting if post.forgetting_rule == "constant" else self._adaptive_forgetting(counts)
            metrics["posterior/forgetting"] = rate
        if cold or post.online_update:
            self.tracker.update(counts.prompt_indices, counts.num_correct, counts.num_total)
        if rate > 0:
            # bounded: lazy, O(1), the bounds of the other prompts cover it until they expire; dense: eager, O(N)
            self.tracker.decay(1.0 - rate, lazy=self._bounded)
        if self._bounded:
            self._pending.append(counts.prompt_indices)  # refreshed with the expired ones at the next draw
        elif rate > 0:
            self._weights_stale = True  # a dense pool: every weight moved
        else:
            self._refresh_weights(counts.prompt_indices)
        return metrics

    def _adaptive_forgetting(self, counts: PromptCounts) -> float:
        """Forgetting rate that makes the posterior predictive as wide as the observed errors (drift model).

        For prompt i with posterior Beta(a, b), n = a + b, a group of k rollouts has a realised accuracy with
        predictive variance v = p(1-p)/k (n + k)/(n + 1) (Beta-Binomial). Under a stationary policy the mean of
        z^2 = (acc - p)^2 / v is 1; a running mean rho > 1 says the policy moved. Shrinking the observed counts
        until p(1-p)(1/k + 1/n') = rho p(1-p)(1/k + 1/n) (typical k and n of the batch) gives the rate
        1 - n'/n, capped at ``posterior.forgetting``.
        """
        post = self.config.posterior
        keep = counts.num_total > 0
        if not keep.any():
            return 0.0
        idx = counts.prompt_indices[keep]
        a, b = self.tracker.alpha_beta(idx)
        n, k = a + b, counts.num_total[keep]
        p = a / n
        variance = p * (1 - p) / k * (n + k) / (n + 1)
        z2 = (counts.accuracy[keep] - p) ** 2 / np.maximum(variance, 1e-12)
        self._residual_ratio = 0.9 * self._residual_ratio + 0.1 * float(np.mean(z2))
        rho = max(self._residual_ratio, 1.0)
        k_typ, n_typ = float(np.median(k)), float(np.median(n))
        inverse = rho * (1 / k_typ + 1 / n_typ) - 1 / k_typ
        n_new = 1 / inverse if inverse > 0 else n_typ
        return float(np.clip(1 - n_new / n_typ, 0.0, post.forgetting))

    # ------------------------------------------------------------------ reporting
    def pool(self) -> IntArray:
        """Prompt ids eligible at the next step, shape ``(pool_size,)``."""
        return self.schedule.subset(self.schedule.phase(self.step).subset)

    def sampling_probabilities(self, indices: IntArray | None = None) -> FloatArray:
        """Current rho over the eligible pool (Eq. 14), for ``indices`` or the whole pool; O(pool).

        Reporting never consumes the sampler's generator: with Thompson draws this is the distribution given a
        throwaway posterior draw of every prompt (seeded by the step).
        """
        pool = self.pool()
        prob: FloatArray
        synced = (
            not self._bounded and self._tree_subset == self.schedule.phase(self.step).subset and not self._weights_stale
        )
        if synced and self.tree.total > 0:
            prob = self.tree.weights(pool)
        else:
            log_w = self._log_weights(pool, rng=np.random.default_rng(self.step))
            prob = np.exp(log_w - log_w.max())
        prob = prob / prob.sum()
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
        pool = self.pool()
        accuracy = self.tracker.posterior_mean(pool)
        prob = self.sampling_probabilities()
        entropy = float(-(prob * np.log(np.where(prob > 0, prob, 1.0))).sum())
        out = {
            "sampler/pool_size": float(pool.size),
            "sampler/pool_accuracy_mean": float(accuracy.mean()),
            "sampler/pool_accuracy_std": float(accuracy.std()),
            "sampler/frac_unseen": float(np.mean(self.tracker.num_observed(pool) == 0)),
            "sampler/weight_entropy": entropy / math.log(pool.size) if pool.size > 1 else 0.0,
            "sampler/effective_pool_size": math.exp(entropy),
        }
        plan = plan if plan is not None else self.last_plan
        if plan is not None:
            kept = plan.rollouts > 0
            n = plan.rollouts[kept] if kept.any() else np.zeros(1)
            alloc = self.config.allocation
            out.update(
                {
                    "sampler/accuracy_mean": float(plan.predicted_accuracy.mean()),
                    "alloc/budget": float(self.budget),
                    "alloc/total": float(plan.total_rollouts),
                    "alloc/rollouts_min": float(n.min()),
                    "alloc/rollouts_mean": float(n.mean()),
                    "alloc/rollouts_max": float(n.max()),
                    "alloc/frac_at_min": float(np.mean(n == alloc.min_per_prompt)),
                    "alloc/num_dropped": float(np.count_nonzero(~kept)),
                    "schedule/iteration": float(plan.iteration),
                    "schedule/is_cold_start": float(plan.phase == COLD_START),
                }
            )
        return out

    @property
    def nbytes(self) -> int:
        """Bytes held by the per-prompt state (posterior, sum tree, optional statistics)."""
        extra = 0 if self._grad_stats is None else self._grad_stats.nbytes
        order = self.schedule._order
        order_bytes = 0 if order is None else order.nbytes
        bounds = self._bound_log.nbytes + self._expiry.key.nbytes
        return self.tracker.nbytes + self.tree.nbytes + self._eligible.nbytes + extra + order_bytes + bounds

    # ------------------------------------------------------------------ checkpointing
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: counts, generator state, position (plain types and arrays)."""
        return {
            "format": STATE_FORMAT,
            "num_prompts": self.num_prompts,
            "batch_size": self.batch_size,
            "rollouts_per_prompt": self.rollouts_per_prompt,
            "config": self.config.to_dict(),
            "step": self.step,
            "rng": copy.deepcopy(self.rng.bit_generator.state),
            "tracker": self.tracker.state_dict(),
            "grad_stats": None if self._grad_stats is None else self._grad_stats.copy(),
            "last_plan_phase": self._last_phase,
            "residual_ratio": self._residual_ratio,
            "bounds": self._bounds_state(),
            "acceptance": self._acceptance,
        }

    def _bounds_state(self) -> dict[str, Any] | None:
        """The weight bounds and their expiry: history-dependent, so saved for an exact resume (None: rebuilt)."""
        if not self._bounded or self._weights_stale or self._tree_subset is None:
            return None
        return {
            "subset": self._tree_subset,
            "shift": self._shift,
            "log_bound": self._bound_log.copy(),
            "expiry": self._expiry.key.copy(),
            "pending": np.unique(np.concatenate([np.empty(0, dtype=np.int64), *self._pending])),
        }

    def _load_bounds(self, bounds: dict[str, Any] | None) -> None:
        if not self._volatile or bounds is None:
            return
        log_bound = np.array(bounds["log_bound"], dtype=np.float64)
        if log_bound.shape != (self.num_prompts,):
            raise ValueError(f"saved bounds have shape {log_bound.shape}, expected ({self.num_prompts},)")
        self._bounded = True
        self._eligible[self._pool] = False
        self._tree_subset = int(bounds["subset"])
        self._pool = self.schedule.subset(self._tree_subset)
        self._eligible[self._pool] = True
        self._allocate_bounds()
        self._bound_log = log_bound
        self._expiry.load(bounds["expiry"])
        self._pending = [np.asarray(bounds["pending"], dtype=np.int64)]
        self._shift = float(bounds["shift"])
        weights = np.zeros(self.num_prompts)
        weights[self._pool] = np.exp(log_bound[self._pool] - self._shift)
        self.tree.rebuild(weights)  # the same leaves, so the same tree, as the saved run's
        self._weights_stale = False

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`.

        Raises:
            ValueError: If the dataset size, batch size, budget or config differ from the saved ones (a run must
                resume with the settings it was saved with).
        """
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"unsupported sampler state format {state.get('format')!r} (expected {STATE_FORMAT})")
        for key in ("num_prompts", "batch_size", "rollouts_per_prompt"):
            if int(state[key]) != getattr(self, key):
                raise ValueError(
                    f"checkpoint was saved with {key}={state[key]} but this run has {getattr(self, key)}; "
                    "resume with the same data and batch settings"
                )
        diff = {
            key: values
            for key, values in _diff(dict(state["config"]), self.config.to_dict()).items()
            if key not in _RESUME_IGNORED_KEYS
        }
        if diff:
            raise ValueError(f"checkpoint was saved with a different cures config: {diff}; resume with the same config")
        self.tracker.load_state_dict(state["tracker"])
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])
        self.step = int(state["step"])
        grad_stats = state.get("grad_stats")
        self._grad_stats = None if grad_stats is None else np.array(grad_stats, dtype=np.float64)
        self._tree_subset = None  # weights are derived state: rebuilt at the next draw
        self._weights_stale = True
        self._last_phase = state.get("last_plan_phase")
        self._residual_ratio = float(state.get("residual_ratio", 1.0))
        self.last_plan = None
        self._bounded = False
        self._pending = []
        self._acceptance = float(state.get("acceptance", 1.0))
        self._load_bounds(state.get("bounds"))


def _diff(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> dict[str, tuple[Any, Any]]:
    out: dict[str, tuple[Any, Any]] = {}
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out.update(_diff(va, vb, f"{prefix}{key}."))
        elif va != vb:
            out[f"{prefix}{key}"] = (va, vb)
    return out
