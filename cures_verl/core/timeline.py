"""When estimates start afresh or fade: the position in the schedule, resets at subset entry, forgetting.

* Resets (CurES Sec. 4.3, Algorithm 1): when an iteration starts, the posterior (Eqs. 22-24) of its subset returns to
  the prior (``schedule.reset_each_iteration``); cold-start steps initialise it with N' rollouts per prompt.
* Forgetting (beyond the paper, for the continuous schedule): after each training step the observed counts shrink by
  a fraction, ``posterior.forgetting`` (constant) or the rate that makes the posterior predictive as wide as the
  observed errors (adaptive, :meth:`Timeline.forgetting_rate`).
* Online updates (Algorithm 1, line 12): training rewards update the posterior only with ``posterior.online_update``;
  cold-start rewards always do.

:class:`Timeline` decides these; the :class:`~cures_verl.core.curriculum.CurriculumSampler` applies them to the
posterior, the sampling policy and the allocator.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cures_verl.config import PosteriorConfig
from cures_verl.core._typing import IntArray
from cures_verl.core.difficulty import BetaAccuracyTracker
from cures_verl.core.grouping import PromptCounts
from cures_verl.core.schedule import COLD_START, Phase, Schedule

__all__ = ["Timeline"]


class Timeline:
    """The schedule position of a sampler and its reset and forgetting decisions.

    Args:
        schedule: The step -> phase map (built from ``cures.schedule``, whose reset and cold-start keys it reads).
        posterior: The ``cures.posterior`` section (forgetting and online updates).

    Example:
        >>> from cures_verl.config import PosteriorConfig, ScheduleConfig
        >>> t = Timeline(Schedule(10, 2, ScheduleConfig(num_iterations=2)), PosteriorConfig())
        >>> phase = t.phase()
        >>> phase.kind, t.resets(phase).tolist()  # the first step of iteration 0: subset 0 starts afresh
        ('cold_start', [0, 1, 2, 3, 4])
    """

    def __init__(self, schedule: Schedule, posterior: PosteriorConfig) -> None:
        self.schedule, self.config, self.posterior = schedule, schedule.config, posterior
        self.step = 0
        self.last_phase: str | None = None  # phase of the last plan (kept across a restore)
        self.residual_ratio = 1.0  # running mean of squared prediction errors / predictive variance

    @property
    def forgets(self) -> bool:
        """Whether training steps forget part of the observed counts (every posterior then moves each step)."""
        return self.posterior.forgetting > 0

    def phase(self) -> Phase:
        """The phase of the next step."""
        return self.schedule.phase(self.step)

    def resets(self, phase: Phase) -> IntArray | None:
        """The prompts whose estimates return to the prior as ``phase`` starts (its subset), or None."""
        if phase.starts_iteration and self.config.reset_each_iteration and not self.schedule.continuous:
            return self.schedule.subset(phase.subset)
        return None

    def cold_start(self, phase: Phase) -> tuple[IntArray, IntArray, bool]:
        """A cold-start step's prompts, their N' rollouts each, and whether the policy trains on them."""
        prompts = self.schedule.cold_start_prompts(phase)
        rollouts = np.full(prompts.size, self.config.cold_start_rollouts, dtype=np.int64)
        return prompts, rollouts, self.config.train_on_cold_start

    def advance(self, phase: Phase) -> None:
        """The step of ``phase`` was planned."""
        self.step += 1
        self.last_phase = phase.kind

    @property
    def learns(self) -> bool:
        """Whether the last planned step's rewards update the posterior (cold start, or online updates)."""
        return self.last_phase == COLD_START or self.posterior.online_update

    def forgetting_rate(self, counts: PromptCounts, tracker: BetaAccuracyTracker) -> float | None:
        """The fraction of the counts to forget after the last planned step, or None where nothing is forgotten
        (a cold-start step, or forgetting off). ``counts`` are its observations, read against the posterior before
        they are added."""
        post = self.posterior
        if self.last_phase == COLD_START or post.forgetting <= 0:
            return None
        return post.forgetting if post.forgetting_rule == "constant" else self._adaptive_rate(counts, tracker)

    def _adaptive_rate(self, counts: PromptCounts, tracker: BetaAccuracyTracker) -> float:
        """Forgetting rate that makes the posterior predictive as wide as the observed errors (drift model).

        For prompt i with posterior Beta(a, b), n = a + b, a group of k rollouts has a realised accuracy with
        predictive variance v = p(1-p)/k (n + k)/(n + 1) (Beta-Binomial). Under a stationary policy the mean of
        z^2 = (acc - p)^2 / v is 1; a running mean rho > 1 says the policy moved. Shrinking the observed counts
        until p(1-p)(1/k + 1/n') = rho p(1-p)(1/k + 1/n) (typical k and n of the batch) gives the rate
        1 - n'/n, capped at ``posterior.forgetting``.
        """
        keep = counts.num_total > 0
        if not keep.any():
            return 0.0
        idx = counts.prompt_indices[keep]
        a, b = tracker.alpha_beta(idx)
        n, k = a + b, counts.num_total[keep]
        p = a / n
        variance = p * (1 - p) / k * (n + k) / (n + 1)
        z2 = (counts.accuracy[keep] - p) ** 2 / np.maximum(variance, 1e-12)
        self.residual_ratio = 0.9 * self.residual_ratio + 0.1 * float(np.mean(z2))
        rho = max(self.residual_ratio, 1.0)
        k_typ, n_typ = float(np.median(k)), float(np.median(n))
        inverse = rho * (1 / k_typ + 1 / n_typ) - 1 / k_typ
        n_new = 1 / inverse if inverse > 0 else n_typ
        return float(np.clip(1 - n_new / n_typ, 0.0, self.posterior.forgetting))

    @property
    def nbytes(self) -> int:
        """Bytes of the schedule's subset order."""
        return self.schedule.nbytes

    def state_dict(self) -> dict[str, Any]:
        """The position and the adaptive forgetting's running error ratio."""
        return {"step": self.step, "last_plan_phase": self.last_phase, "residual_ratio": self.residual_ratio}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`."""
        self.step = int(state["step"])
        self.last_phase = state.get("last_plan_phase")
        self.residual_ratio = float(state.get("residual_ratio", 1.0))
