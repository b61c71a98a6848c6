"""Which prompts are eligible at each step: the paper's iteration schedule and a continuous one.

Paper (CurES Sec. 4.3, Algorithm 1, following GVM): the dataset is split into T disjoint subsets; in
iteration t every prompt of subset t first gets N' cold-start rollouts that initialise its estimates,
then the model trains for M steps on prompts sampled from that subset only; all estimates are reset
at the start of each iteration. The paper trains T=15 iterations of M=10 steps on Numina-Math.

The cold start is expressed as ordinary steps of ``batch_size`` prompts with N' rollouts each, so a
trainer runs it through its normal loop: ceil(|subset| / batch_size) cold-start steps, the last one
topped up with prompts from the start of the subset (which then get their cold start twice). Whether
the policy trains on cold-start rollouts is the caller's choice (``train_on_cold_start``).

Continuous schedule (beyond the paper): the whole dataset is eligible at every step, with an optional
cold start over the whole dataset first; estimates are never reset (pair it with forgetting).

After the last iteration the iteration schedule starts again at subset 0 (a second epoch).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cures_verl.config import ScheduleConfig
from cures_verl.core._typing import FloatArray, IntArray

__all__ = ["Phase", "Schedule", "StepPlan"]

COLD_START = "cold_start"
TRAIN = "train"


@dataclass(frozen=True)
class Phase:
    """Where a step sits in the schedule.

    Attributes:
        step: Global 0-based step.
        iteration: Global 0-based iteration (keeps counting across epochs); always 0 when continuous.
        subset: Subset index of that iteration (``iteration % num_iterations``); 0 when continuous.
        kind: ``cold_start`` or ``train``.
        index: 0-based position of the step within its kind in this iteration.
        starts_iteration: True for the first step of an iteration (estimates are reset there).
    """

    step: int
    iteration: int
    subset: int
    kind: str
    index: int
    starts_iteration: bool


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


class Schedule:
    """The step -> phase map of a dataset of ``num_prompts`` prompts with ``batch_size`` prompts per step.

    Args:
        num_prompts: Dataset size.
        batch_size: Prompts per step (m).
        config: The schedule settings.
        seed: Seed of the subset shuffle (``split="shuffled"``).
        subset_ids: Subset id of every prompt, shape ``(num_prompts,)``, required when ``split="field"``:
            subsets run in increasing id order, prompts within a subset in prompt-id order.

    Raises:
        ValueError: If a subset is smaller than ``batch_size`` (no step could draw m distinct prompts), or the
            subset ids are missing or do not make ``num_iterations`` subsets.

    Example:
        >>> from cures_verl.config import ScheduleConfig
        >>> s = Schedule(10, 2, ScheduleConfig(num_iterations=2, steps_per_iteration=3, cold_start_rollouts=4))
        >>> [(p.iteration, p.kind, p.index) for p in map(s.phase, range(7))]  # 3 cold-start + 3 train steps
        ... # doctest: +NORMALIZE_WHITESPACE
        [(0, 'cold_start', 0), (0, 'cold_start', 1), (0, 'cold_start', 2),
         (0, 'train', 0), (0, 'train', 1), (0, 'train', 2), (1, 'cold_start', 0)]
        >>> s.subset(1).tolist()
        [5, 6, 7, 8, 9]
    """

    def __init__(
        self,
        num_prompts: int,
        batch_size: int,
        config: ScheduleConfig,
        *,
        seed: int = 0,
        subset_ids: IntArray | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.num_prompts = int(num_prompts)
        self.batch_size = int(batch_size)
        self.config = config
        self.continuous = config.mode == "continuous"
        num_subsets = 1 if self.continuous else config.num_iterations
        self._order: IntArray | None = None
        by_field = config.split == "field" and not self.continuous
        if by_field:
            sizes = self._field_subsets(subset_ids, num_subsets)
        else:
            # np.array_split sizes: the first (N mod T) subsets get one extra prompt
            sizes = np.full(num_subsets, self.num_prompts // num_subsets, dtype=np.int64)
            sizes[: self.num_prompts % num_subsets] += 1
        self._bounds = np.concatenate([[0], np.cumsum(sizes)])
        if sizes.min() < self.batch_size:
            where = "the dataset" if self.continuous else f"subset {int(sizes.argmin())} of {num_subsets}"
            raise ValueError(
                f"{where} holds {int(sizes.min())} prompts, fewer than the {self.batch_size} prompts a step draws; "
                "lower cures.schedule.num_iterations or data.train_batch_size, or use a larger dataset"
            )
        if config.split == "shuffled" and not self.continuous:
            self._order = np.random.default_rng(seed).permutation(self.num_prompts).astype(np.int64)
        cold = config.cold_start_rollouts > 0
        self._cold_steps = -(-sizes // self.batch_size) if cold else np.zeros_like(sizes)
        train_steps = 0 if self.continuous else config.steps_per_iteration
        self._iteration_lengths = self._cold_steps + train_steps
        self._iteration_starts = np.concatenate([[0], np.cumsum(self._iteration_lengths)])

    def _field_subsets(self, subset_ids: IntArray | None, num_subsets: int) -> IntArray:
        """Order prompts by (subset id, prompt id) and return the subset sizes."""
        if subset_ids is None:
            raise ValueError(
                "cures.schedule.split=field needs each prompt's subset id (extra_info.<subset_field>); "
                "use split=contiguous for data without subsets"
            )
        ids = np.asarray(subset_ids)
        if ids.shape != (self.num_prompts,) or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"subset ids must be integers of shape ({self.num_prompts},)")
        values, sizes = np.unique(ids, return_counts=True)
        if values.size != num_subsets:
            raise ValueError(
                f"the data has {values.size} subsets ({values.min()}..{values.max()}) but "
                f"cures.schedule.num_iterations={num_subsets}; set num_iterations={values.size}"
            )
        self._order = np.lexsort((np.arange(self.num_prompts), ids)).astype(np.int64)
        return sizes.astype(np.int64)

    @property
    def num_subsets(self) -> int:
        """T (1 when continuous)."""
        return len(self._bounds) - 1

    @property
    def steps_per_epoch(self) -> int | None:
        """Steps to go through every subset once (cold starts included); None when continuous."""
        return None if self.continuous else int(self._iteration_starts[-1])

    @property
    def nbytes(self) -> int:
        """Bytes of the per-prompt subset order (``shuffled`` and ``field`` splits; 0 for ``contiguous``)."""
        return 0 if self._order is None else int(self._order.nbytes)

    def num_cold_start_steps(self, subset: int) -> int:
        """Cold-start steps of ``subset``."""
        return int(self._cold_steps[subset])

    def subset(self, subset: int) -> IntArray:
        """Prompt ids of subset ``subset``, shape ``(subset_size,)``."""
        lo, hi = int(self._bounds[subset]), int(self._bounds[subset + 1])
        if self._order is None:
            return np.arange(lo, hi, dtype=np.int64)
        return self._order[lo:hi]

    def phase(self, step: int) -> Phase:
        """The phase of global step ``step`` (0-based).

        Raises:
            ValueError: If ``step`` is negative.
        """
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        if self.continuous:
            cold = int(self._cold_steps[0])
            if step < cold:
                return Phase(step, 0, 0, COLD_START, step, step == 0)
            return Phase(step, 0, 0, TRAIN, step - cold, step == 0)
        epoch, offset = divmod(step, int(self._iteration_starts[-1]))
        subset = int(np.searchsorted(self._iteration_starts, offset, side="right") - 1)
        within = offset - int(self._iteration_starts[subset])
        iteration = epoch * self.num_subsets + subset
        cold = int(self._cold_steps[subset])
        if within < cold:
            return Phase(step, iteration, subset, COLD_START, within, within == 0)
        return Phase(step, iteration, subset, TRAIN, within - cold, within == 0)

    def planned_rollouts(self, num_steps: int, rollouts_per_prompt: int) -> IntArray:
        """Rollouts of each of the first ``num_steps`` steps as planned: ``batch_size * cold_start_rollouts`` on a
        cold-start step, ``batch_size * rollouts_per_prompt`` (the Eq. 20 budget N) on a training step.

        Under ``allocation.zero_variance=drop`` a training step may spend less; the values are then upper bounds.

        Returns:
            int64 array, shape ``(num_steps,)``.

        Example:
            >>> from cures_verl.config import ScheduleConfig
            >>> s = Schedule(10, 2, ScheduleConfig(num_iterations=2, steps_per_iteration=3, cold_start_rollouts=4))
            >>> s.planned_rollouts(7, 8).tolist()
            [8, 8, 8, 16, 16, 16, 8]
        """
        cold = np.array([self.phase(step).kind == COLD_START for step in range(num_steps)], dtype=bool)
        per_prompt = np.where(cold, self.config.cold_start_rollouts, rollouts_per_prompt)
        return (per_prompt * self.batch_size).astype(np.int64)

    def num_updates(self, num_steps: int) -> int:
        """Steps among the first ``num_steps`` that update the policy: training steps, plus cold-start steps when
        ``train_on_cold_start``. The optimizer's schedule horizon (warm-up, decay) counts these, not steps.

        Example:
            >>> from cures_verl.config import ScheduleConfig
            >>> s = Schedule(10, 2, ScheduleConfig(num_iterations=2, steps_per_iteration=3, cold_start_rollouts=4))
            >>> s.num_updates(12), s.num_updates(3)  # 2 iterations of 3 cold-start + 3 training steps
            (6, 0)
        """
        if num_steps < 0:
            raise ValueError(f"num_steps must be >= 0, got {num_steps}")
        if self.config.train_on_cold_start:
            return num_steps
        return sum(self.phase(step).kind != COLD_START for step in range(num_steps))

    def cold_start_prompts(self, phase: Phase) -> IntArray:
        """The ``batch_size`` prompt ids of a cold-start step, in subset order.

        The last chunk of a subset is topped up from the subset's start, so every cold-start step has exactly
        ``batch_size`` distinct prompts.
        """
        if phase.kind != COLD_START:
            raise ValueError(f"step {phase.step} is a {phase.kind} step, not a cold-start step")
        members = self.subset(phase.subset)
        start = phase.index * self.batch_size
        # wrap around: [.., s_{S-2}, s_{S-1}] + [s_0, s_1, ..] when the subset is not a multiple of batch_size
        return members[(start + np.arange(self.batch_size)) % members.size]
