"""Prompt-selection and rollout-allocation strategies run side by side on the simulated learner.

Every strategy is a small class with one method, ``step(env)``: it asks the :class:`Environment` for rollouts
(``env.generate``), which charges them to the step's budget B = batch_size x rollouts_per_prompt, and trains
(``env.train``) on whatever it chooses. The environment enforces the accounting: a step may never spend more
than B, every rollout generated is charged (cold-start, screening and discarded rollouts included), and only
``env.train`` changes the policy. With the default settings every strategy spends exactly B in every step.

Strategies are registered by name in :data:`STRATEGIES` (name -> :class:`StrategySpec` with a factory taking a
:class:`StrategyContext`). Any :class:`~cures_verl.config.CuresConfig` runs as a strategy through
:func:`cures_strategy_spec` (a preset plus nested overrides); ``--cures-variant`` on the command line registers
one. The built-in strategies and their sources:

========================  ===============================================================================
``uniform``               GRPO with a fixed group size n on uniformly drawn prompts (Shao et al. 2024).
``dapo``                  DAPO dynamic sampling: refill until m informative groups (Yu et al. 2025).
``speed_rl``              Speed-RL screening + continuation (Zhang et al. 2025).
``gvm``                   GVM allocation n_i ~ 1 / sqrt(p + a / p) after a cold start (Yao et al. 2025).
``knapsack``              Knapsack-RL exact budget allocation (Li et al. 2025).
``mopps``                 MoPPS Thompson draws nearest 0.5 (Qu et al. 2025).
``cures_paper``           CurES, ``paper`` preset, through ``CurriculumSampler`` (Zeng et al. 2025).
``cures_official_code``   CurES, ``official_code`` preset (the released code's behaviour).
``cures_recommended``     CurES beyond the paper (:mod:`~cures_verl.bench.recommended`, docs/beyond_the_paper.md).
``oracle``                Knows the true accuracies; no estimation cost (a reference, not a method).
========================  ===============================================================================
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cures_verl.bench.recommended import RECOMMENDED_NAME, RECOMMENDED_OVERRIDES, merge_overrides
from cures_verl.bench.rules import gvm_weights, knapsack_allocation, nearest_to_target, zero_variance_groups
from cures_verl.bench.simulator import FloatArray, IntArray, Learner
from cures_verl.config import PRESETS, CuresConfig, ScheduleConfig, preset_config
from cures_verl.core.allocation import advantage_weights, allocate_rollouts
from cures_verl.core.curriculum import CurriculumSampler, StepPlan
from cures_verl.core.difficulty import BetaAccuracyTracker
from cures_verl.core.schedule import COLD_START, Schedule
from cures_verl.core.screening import needs_screening, reallocate_after_screening, screening_verdict

__all__ = [
    "CALIBRATION_BINS",
    "DEFAULT_STRATEGIES",
    "STRATEGIES",
    "Environment",
    "EpochStream",
    "Rollouts",
    "StepRecord",
    "Strategy",
    "StrategyContext",
    "StrategyOptions",
    "StrategySpec",
    "cures_strategy_spec",
    "parse_cures_variant",
    "register_strategy",
    "spearman",
]

#: Bins of predicted accuracy in the calibration (reliability) record of a run.
CALIBRATION_BINS = 10


# ---------------------------------------------------------------------------------------------- rollouts and env
@dataclass(frozen=True)
class Rollouts:
    """A batch of scored rollouts, one entry per rollout.

    Attributes:
        prompt_ids: Prompt of each rollout, shape ``(k,)``.
        group_ids: GRPO group of each rollout (verl's ``uid``), shape ``(k,)``.
        rewards: 0/1 reward of each rollout, shape ``(k,)``.
    """

    prompt_ids: IntArray
    group_ids: IntArray
    rewards: FloatArray

    @property
    def size(self) -> int:
        """Number of rollouts."""
        return int(self.prompt_ids.size)

    @staticmethod
    def concat(parts: list[Rollouts]) -> Rollouts:
        """The rollouts of ``parts`` one after the other."""
        if not parts:
            return Rollouts(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
        return Rollouts(
            np.concatenate([p.prompt_ids for p in parts]),
            np.concatenate([p.group_ids for p in parts]),
            np.concatenate([p.rewards for p in parts]),
        )

    def select_groups(self, group_ids: IntArray) -> Rollouts:
        """The rollouts whose group is in ``group_ids``, in their original order."""
        keep = np.isin(self.group_ids, group_ids)
        return Rollouts(self.prompt_ids[keep], self.group_ids[keep], self.rewards[keep])


@dataclass(frozen=True)
class StepRecord:
    """What one step cost and did.

    Attributes:
        spent: Rollouts generated in the step (<= budget).
        num_updates: Optimiser steps taken in the step.
        trained: Rollouts in those updates' losses.
        informative: Of those, rollouts in groups with both outcomes (non-zero advantage).
        accuracy: Mean true accuracy over the dataset after the step.
        rank_corr: Spearman correlation between the accuracy the strategy predicted for the step's prompts and their
            realised group accuracy (NaN when the strategy predicted nothing or fewer than 2 distinct values).
        rank_corr_true: The same against the prompts' true accuracy when generated (the simulator knows it).
    """

    spent: int
    num_updates: int
    trained: int
    informative: int
    accuracy: float
    rank_corr: float = math.nan
    rank_corr_true: float = math.nan


def _average_ranks(values: FloatArray) -> FloatArray:
    """Ranks 0..k-1 with ties sharing their mean rank (what Spearman's correlation needs)."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(values.size)
    ranks[order] = np.arange(values.size, dtype=np.float64)
    # [0.2, 0.5, 0.2] -> unique [0.2, 0.5], inverse [0, 1, 0]: tied ranks 0 and 1 both become 0.5
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    result: FloatArray = (np.bincount(inverse, weights=ranks) / counts)[inverse]
    return result


def spearman(x: FloatArray, y: FloatArray) -> float:
    """Spearman's rank correlation of two samples (average ranks for ties); NaN if either is constant or k < 2.

    Args:
        x: Shape ``(k,)``.
        y: Shape ``(k,)``.

    Example:
        >>> spearman(np.array([0.1, 0.4, 0.3]), np.array([0.0, 1.0, 0.5]))
        1.0
        >>> math.isnan(spearman(np.array([0.1, 0.4]), np.array([0.5, 0.5])))
        True
    """
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    b = np.asarray(y, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"spearman needs samples of equal length, got {a.size} and {b.size}")
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(np.corrcoef(_average_ranks(a), _average_ranks(b))[0, 1])


class Environment:
    """The simulated learner behind a per-step rollout budget.

    Args:
        learner: The policy.
        batch_size: m, prompts per step for fixed-size strategies.
        rollouts_per_prompt: n; the budget per step is B = m * n.
        rng: Generator for the rewards.
    """

    def __init__(self, learner: Learner, *, batch_size: int, rollouts_per_prompt: int, rng: np.random.Generator):
        self.learner = learner
        self.batch_size = int(batch_size)
        self.rollouts_per_prompt = int(rollouts_per_prompt)
        self.budget = self.batch_size * self.rollouts_per_prompt
        self.rng = rng
        self.spent = 0
        self._next_group = 0
        self._updates = 0
        self._trained = 0
        self._informative = 0
        self.trained_prompts = np.zeros(learner.problem.num_prompts, dtype=bool)
        """Whether each prompt has been in at least one update's loss."""
        self.calibration = np.zeros((CALIBRATION_BINS, 4))
        """Per bin of predicted accuracy: rollouts, and their rollout-weighted sums of predicted, realised and true
        accuracy, over every :meth:`record_prediction` of the run."""
        self._predictions: list[FloatArray] = []  # this step's (3, k) blocks: predicted, realised, true

    @property
    def remaining(self) -> int:
        """Rollouts still available in this step."""
        return self.budget - self.spent

    def generate(self, prompt_ids: IntArray, counts: IntArray, *, group_ids: IntArray | None = None) -> Rollouts:
        """Generate and score ``counts[i]`` rollouts of ``prompt_ids[i]``, charging them to the step's budget.

        Args:
            prompt_ids: Prompts, shape ``(k,)``.
            counts: Rollouts per prompt, shape ``(k,)``, >= 0.
            group_ids: GRPO group of each prompt's rollouts, shape ``(k,)`` (to extend an earlier group, as
                Speed-RL's continuation does); None gives each prompt a fresh group.

        Returns:
            The rollouts, prompt by prompt.

        Raises:
            RuntimeError: If the step's budget would be exceeded.
            ValueError: On shape mismatches or negative counts.
        """
        ids = np.asarray(prompt_ids, dtype=np.int64).reshape(-1)
        n = np.asarray(counts, dtype=np.int64).reshape(-1)
        if ids.shape != n.shape or np.any(n < 0):
            raise ValueError("prompt_ids and counts must have the same length and counts must be >= 0")
        total = int(n.sum())
        if total > self.remaining:
            raise RuntimeError(
                f"a strategy asked for {total} rollouts with {self.remaining} of the step's budget {self.budget} left"
            )
        if group_ids is None:
            groups = self._next_group + np.arange(ids.size, dtype=np.int64)
            self._next_group += ids.size
        else:
            groups = np.asarray(group_ids, dtype=np.int64).reshape(-1)
            if groups.shape != ids.shape:
                raise ValueError("group_ids must have one entry per prompt")
        per_rollout = np.repeat(ids, n)
        rewards = self.learner.sample(per_rollout, self.rng)
        self.spent += total
        return Rollouts(per_rollout, np.repeat(groups, n), rewards)

    def train(self, rollouts: Rollouts, loss_weights: FloatArray | None = None) -> None:
        """One policy update on ``rollouts`` (GRPO loss averaged over all of them); no-op when empty."""
        if rollouts.size == 0:
            return
        stats = self.learner.update(rollouts.prompt_ids, rollouts.group_ids, rollouts.rewards, loss_weights)
        self._updates += 1
        self._trained += stats.num_rollouts
        self._informative += stats.num_informative
        self.trained_prompts[rollouts.prompt_ids] = True

    def record_prediction(self, prompt_ids: IntArray, predicted: FloatArray, rollouts: Rollouts) -> None:
        """Log what a strategy predicted for prompts it just generated, for the prediction-quality metrics.

        Call it after :meth:`generate` and before :meth:`train` (the true accuracy is read now). The realised
        accuracy of a prompt is the mean reward of its rollouts in ``rollouts``; prompts without a rollout there
        (dropped ones) are skipped. Costs no rollouts and does not change the policy.

        Args:
            prompt_ids: Distinct prompts, shape ``(k,)``.
            predicted: The strategy's accuracy estimate for each when it chose them, shape ``(k,)``, in [0, 1].
            rollouts: The rollouts generated for them (other prompts' rollouts may be mixed in).

        Raises:
            ValueError: On shape mismatches, repeated prompts or predictions outside [0, 1].
        """
        ids = np.asarray(prompt_ids, dtype=np.int64).reshape(-1)
        pred = np.asarray(predicted, dtype=np.float64).reshape(-1)
        if ids.shape != pred.shape or np.unique(ids).size != ids.size:
            raise ValueError("record_prediction needs distinct prompt_ids and one prediction per prompt")
        if not np.all((pred >= 0) & (pred <= 1)):
            raise ValueError("predicted accuracies must lie in [0, 1]")
        # rollouts' prompts [7, 7, 3, 7] -> unique [3, 7], counts [1, 3], correct [r3, r7a + r7b + r7c]
        unique, inverse, counts = np.unique(rollouts.prompt_ids, return_inverse=True, return_counts=True)
        correct = np.bincount(inverse, weights=rollouts.rewards, minlength=unique.size)
        position = np.searchsorted(unique, ids)
        found = (position < unique.size) & (unique[np.minimum(position, unique.size - 1)] == ids)
        if not found.any():
            return
        ids, pred, position = ids[found], pred[found], position[found]
        weight = counts[position].astype(np.float64)
        realised = correct[position] / weight
        true = self.learner.accuracy(ids)
        self._predictions.append(np.stack([pred, realised, true]))
        which = np.clip((pred * CALIBRATION_BINS).astype(np.int64), 0, CALIBRATION_BINS - 1)
        for column, values in enumerate((np.ones_like(pred), pred, realised, true)):
            self.calibration[:, column] += np.bincount(which, weights=weight * values, minlength=CALIBRATION_BINS)

    def true_accuracy(self) -> FloatArray:
        """The exact accuracy of every prompt. Only the oracle may call this."""
        return self.learner.accuracy()

    def run_step(self, strategy: Strategy) -> StepRecord:
        """Run one step of ``strategy`` and account for it.

        Raises:
            RuntimeError: If the strategy spent more than the budget (cannot happen through :meth:`generate`).
        """
        self.spent = 0
        self._updates = self._trained = self._informative = 0
        self._predictions = []
        strategy.step(self)
        if self.spent > self.budget:
            raise RuntimeError(f"strategy {strategy.name!r} spent {self.spent} > budget {self.budget}")
        rank_corr = rank_corr_true = math.nan
        if self._predictions:
            pred, realised, true = np.concatenate(self._predictions, axis=1)
            rank_corr, rank_corr_true = spearman(pred, realised), spearman(pred, true)
        return StepRecord(
            spent=self.spent,
            num_updates=self._updates,
            trained=self._trained,
            informative=self._informative,
            accuracy=self.learner.mean_accuracy(),
            rank_corr=rank_corr,
            rank_corr_true=rank_corr_true,
        )


class EpochStream:
    """Uniformly shuffled prompts without replacement within an epoch (verl's shuffled loader, ``drop_last``).

    Args:
        num_prompts: Dataset size.
        rng: Generator of the shuffles.

    Example:
        >>> stream = EpochStream(5, np.random.default_rng(0))
        >>> first = stream.next(2).tolist() + stream.next(2).tolist()
        >>> len(set(first))  # no repeat within an epoch
        4
    """

    def __init__(self, num_prompts: int, rng: np.random.Generator) -> None:
        self.num_prompts = int(num_prompts)
        self.rng = rng
        self._order = np.zeros(0, dtype=np.int64)
        self._pos = 0

    def next(self, k: int) -> IntArray:
        """The next ``k`` prompts (distinct); starts a new epoch when fewer than ``k`` remain in this one.

        Raises:
            ValueError: If ``k`` exceeds the dataset size.
        """
        if k > self.num_prompts:
            raise ValueError(f"cannot draw {k} distinct prompts from a dataset of {self.num_prompts}")
        if self._pos + k > self._order.size:
            self._order = self.rng.permutation(self.num_prompts).astype(np.int64)
            self._pos = 0
        out = self._order[self._pos : self._pos + k]
        self._pos += k
        return out


# ---------------------------------------------------------------------------------------------- context, registry
@dataclass(frozen=True, kw_only=True)
class StrategyOptions:
    """Hyperparameters of the strategies (every field is a CLI option; defaults from the cited papers)."""

    dapo_max_rounds: int = 10
    """DAPO: generation rounds (of m prompts x n) allowed per update before training on what was collected (the
    DAPO recipe's max_num_gen_batches)."""

    speed_screen_rollouts: int = 4
    """Speed-RL: screening rollouts per candidate; kept candidates get n - this many continuation rollouts."""

    gvm_a: float = 1e-3
    """GVM: a in n_i ~ 1 / sqrt(p + a / p^(b-1)) (GVM code)."""

    gvm_b: float = 2.0
    """GVM: b (GVM code)."""

    knapsack_min: int = 2
    """Knapsack-RL: minimum rollouts per prompt."""

    knapsack_max: int = 128
    """Knapsack-RL: maximum rollouts per prompt."""

    mopps_candidate_ratio: int = 4
    """MoPPS: uniformly drawn candidates per selected prompt (the selection keeps m of ratio x m)."""

    mopps_decay: float = 0.5
    """MoPPS: lambda in alpha <- lambda alpha + (1 - lambda) alpha_0 + successes, applied to a prompt's posterior
    each time it is trained on (old evidence comes from an older policy)."""

    cures_subset_batches: int = 10
    """CurES and GVM: prompts per iteration subset, in batches (paper: ~10k prompts / 1024 per batch ~ 10)."""

    cures_steps_per_iteration: int = 10
    """CurES and GVM: training steps per subset (paper: M = 10)."""

    cold_start_rollouts: int = 4
    """CurES and GVM: N', cold-start rollouts per prompt of each subset (paper: 4)."""

    def __post_init__(self) -> None:
        checks = (
            ("dapo_max_rounds", self.dapo_max_rounds >= 1),
            ("speed_screen_rollouts", self.speed_screen_rollouts >= 2),
            ("gvm_a", self.gvm_a >= 0),
            ("knapsack_min", self.knapsack_min >= 0),
            ("knapsack_max", self.knapsack_max >= max(self.knapsack_min, 1)),
            ("mopps_candidate_ratio", self.mopps_candidate_ratio >= 1),
            ("mopps_decay", 0.0 <= self.mopps_decay <= 1.0),
            ("cures_subset_batches", self.cures_subset_batches >= 1),
            ("cures_steps_per_iteration", self.cures_steps_per_iteration >= 1),
            ("cold_start_rollouts", self.cold_start_rollouts >= 2),
        )
        for name, ok in checks:
            if not ok:
                raise ValueError(f"--{name.replace('_', '-')}={getattr(self, name)!r} is out of range; see --help")


@dataclass(frozen=True, kw_only=True)
class StrategyContext:
    """What a strategy factory gets: the problem's size, the batch shape, a seed and the options."""

    num_prompts: int
    batch_size: int
    rollouts_per_prompt: int
    seed: int
    options: StrategyOptions = field(default_factory=StrategyOptions)

    @property
    def budget(self) -> int:
        """B = batch_size x rollouts_per_prompt."""
        return self.batch_size * self.rollouts_per_prompt

    @property
    def num_iterations(self) -> int:
        """Subsets of ``cures_subset_batches`` batches that fit in the dataset (at least 1)."""
        return max(1, self.num_prompts // (self.options.cures_subset_batches * self.batch_size))

    def rng(self, stream: int) -> np.random.Generator:
        """An independent generator for this seed (``stream`` tells a strategy's generators apart)."""
        return np.random.default_rng([self.seed, 7919, stream])


class Strategy:
    """Base class: a named object whose :meth:`step` spends at most one step's budget through ``env``."""

    name = "strategy"

    def step(self, env: Environment) -> None:
        """Generate (and usually train on) at most ``env.budget`` rollouts."""
        raise NotImplementedError


@dataclass(frozen=True)
class StrategySpec:
    """A registered strategy.

    Attributes:
        name: Registry key (also the CLI name).
        factory: Builds the strategy for one run.
        description: One line for the tables and the JSON.
        citation: The source (paper and arXiv id).
    """

    name: str
    factory: Callable[[StrategyContext], Strategy]
    description: str
    citation: str


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


# ---------------------------------------------------------------------------------------------- baselines
class UniformGRPO(Strategy):
    """m prompts from a shuffled epoch stream, n rollouts each, one GRPO update (Shao et al. 2024, arXiv 2402.03300)."""

    name = "uniform"

    def __init__(self, ctx: StrategyContext) -> None:
        self.m, self.n = ctx.batch_size, ctx.rollouts_per_prompt
        self.stream = EpochStream(ctx.num_prompts, ctx.rng(1))

    def step(self, env: Environment) -> None:
        prompts = self.stream.next(self.m)
        env.train(env.generate(prompts, np.full(self.m, self.n)))


class DynamicSampling(Strategy):
    """DAPO dynamic sampling (Yu et al. 2025, arXiv 2503.14476).

    Each step generates one round of m uniform prompts x n rollouts and keeps the groups whose rewards are not all
    equal. When m informative groups have accumulated, the policy trains on the first m (the surplus of the last
    round is discarded, as DAPO does); after ``dapo_max_rounds`` rounds without reaching m, it trains on what it
    has. Every generated rollout counts, so an update costs as many steps of budget as rounds it needed.
    """

    name = "dapo"

    def __init__(self, ctx: StrategyContext) -> None:
        self.m, self.n = ctx.batch_size, ctx.rollouts_per_prompt
        self.max_rounds = ctx.options.dapo_max_rounds
        self.stream = EpochStream(ctx.num_prompts, ctx.rng(1))
        self.buffer: list[Rollouts] = []
        self.rounds = 0

    def step(self, env: Environment) -> None:
        batch = env.generate(self.stream.next(self.m), np.full(self.m, self.n))
        groups, _, flat = zero_variance_groups(batch.group_ids, batch.rewards)
        self.buffer.append(batch.select_groups(groups[flat == 0]))
        self.rounds += 1
        pooled = Rollouts.concat(self.buffer)
        kept = np.unique(pooled.group_ids)  # group ids grow with generation order
        if kept.size >= self.m:
            env.train(pooled.select_groups(kept[: self.m]))
        elif self.rounds >= self.max_rounds:
            env.train(pooled)
        else:
            return
        self.buffer, self.rounds = [], 0


class SpeedRL(Strategy):
    """Speed-RL screening and continuation (Zhang et al. 2025, arXiv 2506.09016), pipelined as in its paper.

    Each step's budget first runs the continuation phase of prompts accepted by earlier screening (n - s more
    rollouts each, FIFO, at most m prompts, as Speed-RL trains on batches of a fixed number of prompts, and at most
    B / (n - s)), then screens new uniform candidates with s rollouts each
    (any remainder below s adds one rollout to the first candidates). A candidate is accepted when its screening
    accuracy is strictly between 0 and 1. The step trains on the prompts whose continuation ran: screening plus
    continuation rollouts form one group of n. Screening rollouts come from the previous step's policy; the
    one-step staleness is ignored (the importance ratio is ~1).
    """

    name = "speed_rl"

    def __init__(self, ctx: StrategyContext) -> None:
        self.s = ctx.options.speed_screen_rollouts
        self.cont = ctx.rollouts_per_prompt - self.s
        if self.cont < 1:
            raise ValueError(
                f"speed_rl needs rollouts_per_prompt > --speed-screen-rollouts={self.s} (continuation rollouts per "
                f"kept prompt = n - s), got n={ctx.rollouts_per_prompt}"
            )
        self.budget = ctx.budget
        self.m = ctx.batch_size
        if self.budget < self.s:
            raise ValueError(f"speed_rl needs a budget >= {self.s} screening rollouts")
        self.stream = EpochStream(ctx.num_prompts, ctx.rng(1))
        self.queue: list[Rollouts] = []  # screening rollouts of accepted prompts, one entry per prompt

    def step(self, env: Environment) -> None:
        # At most m prompts: without this cap, when n - s > s the queue alternates between full steps of
        # continuation and steps that train on a handful of prompts (n = 12: 96 prompts, then 3).
        take = self.queue[: min(self.m, self.budget // self.cont)]
        self.queue = self.queue[len(take) :]
        counts = np.full(len(take), self.cont, dtype=np.int64)
        leftover = self.budget - int(counts.sum())
        if 0 < leftover < self.s:  # too little left to screen: spread it over the continuations instead
            counts += leftover // counts.size + (np.arange(counts.size) < leftover % counts.size)
            leftover = 0
        prompts = np.array([r.prompt_ids[0] for r in take], dtype=np.int64)
        groups = np.array([r.group_ids[0] for r in take], dtype=np.int64)
        continuation = env.generate(prompts, counts, group_ids=groups)
        num_candidates = leftover // self.s
        if num_candidates:
            screen_counts = np.full(num_candidates, self.s, dtype=np.int64)
            screen_counts[: leftover - num_candidates * self.s] += 1
            screened = env.generate(self.stream.next(num_candidates), screen_counts)
            ids, _, flat = zero_variance_groups(screened.group_ids, screened.rewards)
            for group in ids[flat == 0]:
                self.queue.append(screened.select_groups(np.array([group])))
        env.train(Rollouts.concat([*take, continuation]))


class SubsetSchedule:
    """The paper's (and GVM's) iteration schedule for a baseline: subsets, a cold start, M training steps.

    Cold-start steps take ``budget // N'`` prompts of the current subset with N' rollouts each, so a cold-start
    step spends the whole budget when N' divides it. Counts are reset at the start of each subset.
    """

    def __init__(self, ctx: StrategyContext) -> None:
        self.cold = ctx.options.cold_start_rollouts
        if self.cold > ctx.budget:
            raise ValueError(f"--cold-start-rollouts={self.cold} exceeds the step budget {ctx.budget}")
        config = ScheduleConfig(
            num_iterations=ctx.num_iterations,
            steps_per_iteration=ctx.options.cures_steps_per_iteration,
            cold_start_rollouts=self.cold,
        )
        self.schedule = Schedule(ctx.num_prompts, max(1, ctx.budget // self.cold), config)
        self.step = 0
        self.correct = np.zeros(ctx.num_prompts)
        self.observed = np.zeros(ctx.num_prompts)


class GVM(Strategy):
    """GVM allocation (Yao et al. 2025, arXiv 2505.02391) on the paper's iteration schedule.

    As in GVM's pipeline (which CurES forked): every subset starts with N' cold-start rollouts per prompt (no
    training on them); then each training step draws m prompts uniformly (distinct within a step) from the subset
    and splits the budget B in proportion to :func:`~cures_verl.bench.rules.gvm_weights` of the cold-start
    accuracy s / N' (largest-remainder rounding; p = 0 gets none), fixed for the iteration. If every drawn
    prompt has p = 0, the step falls back to n rollouts each.
    """

    name = "gvm"

    def __init__(self, ctx: StrategyContext) -> None:
        self.m, self.n, self.budget = ctx.batch_size, ctx.rollouts_per_prompt, ctx.budget
        self.a, self.b = ctx.options.gvm_a, ctx.options.gvm_b
        self.plan = SubsetSchedule(ctx)
        self.rng = ctx.rng(2)

    def step(self, env: Environment) -> None:
        plan = self.plan
        phase = plan.schedule.phase(plan.step)
        plan.step += 1
        members = plan.schedule.subset(phase.subset)
        if phase.starts_iteration:
            plan.correct[members] = 0.0
            plan.observed[members] = 0.0
        if phase.kind == COLD_START:
            prompts = plan.schedule.cold_start_prompts(phase)
            out = env.generate(prompts, np.full(prompts.size, plan.cold))
            np.add.at(plan.correct, out.prompt_ids, out.rewards)
            np.add.at(plan.observed, out.prompt_ids, 1.0)
            return
        prompts = self.rng.choice(members, self.m, replace=False)
        accuracy = plan.correct[prompts] / np.maximum(plan.observed[prompts], 1.0)
        weights = gvm_weights(accuracy, a=self.a, b=self.b)
        if weights.max() > 0:
            counts = allocate_rollouts(weights, self.budget, min_per_prompt=1, zero_variance="drop")
        else:
            counts = np.full(self.m, self.n, dtype=np.int64)
        keep = counts > 0
        env.train(env.generate(prompts[keep], counts[keep]))


class KnapsackRL(Strategy):
    """Knapsack-RL allocation (Li et al. 2025, arXiv 2509.25849) on uniformly drawn prompts.

    Each step draws m prompts from a shuffled epoch stream and allocates exactly B rollouts with
    :func:`~cures_verl.bench.rules.knapsack_allocation` (min 2, max 128 per prompt). The success rates are the
    posterior means of a Beta(1, 1) prior updated with all of the strategy's own earlier rollouts on the prompt
    (Knapsack-RL uses the previous epoch's success rate; an unseen prompt gets 0.5). No extra rollouts are spent
    on estimation.
    """

    name = "knapsack"

    def __init__(self, ctx: StrategyContext) -> None:
        self.m, self.budget = ctx.batch_size, ctx.budget
        self.lo, self.hi = ctx.options.knapsack_min, ctx.options.knapsack_max
        self.stream = EpochStream(ctx.num_prompts, ctx.rng(1))
        self.tracker = BetaAccuracyTracker(ctx.num_prompts)

    def step(self, env: Environment) -> None:
        prompts = self.stream.next(self.m)
        counts = knapsack_allocation(
            self.tracker.posterior_mean(prompts), self.budget, min_per_prompt=self.lo, max_per_prompt=self.hi
        )
        keep = counts > 0
        out = env.generate(prompts[keep], counts[keep])
        env.record_prediction(prompts[keep], self.tracker.posterior_mean(prompts[keep]), out)
        env.train(out)
        self.tracker.update(out.prompt_ids, out.rewards, np.ones(out.size))


class MoPPS(Strategy):
    """MoPPS (Qu et al. 2025, arXiv 2507.04632): Thompson draws from decayed Beta posteriors, keep those nearest 0.5.

    Each step draws ratio x m candidates from a shuffled epoch stream (free: no rollout is spent on them), samples
    p ~ Beta(alpha, beta) for each, keeps the m draws nearest 0.5, and gives each n rollouts. After training, a kept
    prompt's posterior becomes alpha <- lambda alpha + (1 - lambda) alpha_0 + successes (beta alike) with the
    Beta(1, 1) prior alpha_0 = beta_0 = 1.
    """

    name = "mopps"

    def __init__(self, ctx: StrategyContext) -> None:
        self.m, self.n = ctx.batch_size, ctx.rollouts_per_prompt
        self.ratio = ctx.options.mopps_candidate_ratio
        self.decay = ctx.options.mopps_decay
        if self.ratio * self.m > ctx.num_prompts:
            raise ValueError(
                f"--mopps-candidate-ratio={self.ratio} x batch size {self.m} exceeds the {ctx.num_prompts} prompts"
            )
        self.stream = EpochStream(ctx.num_prompts, ctx.rng(1))
        self.rng = ctx.rng(2)
        self.alpha = np.ones(ctx.num_prompts)
        self.beta = np.ones(ctx.num_prompts)

    def step(self, env: Environment) -> None:
        candidates = self.stream.next(self.ratio * self.m)
        draws = self.rng.beta(self.alpha[candidates], self.beta[candidates])
        chosen = candidates[nearest_to_target(draws, self.m)]
        out = env.generate(chosen, np.full(self.m, self.n))
        # the prediction is the posterior mean (MoPPS logs the same); the selection used a draw from the posterior
        env.record_prediction(chosen, self.alpha[chosen] / (self.alpha[chosen] + self.beta[chosen]), out)
        env.train(out)
        successes = np.zeros(self.alpha.size)
        np.add.at(successes, out.prompt_ids, out.rewards)
        lam = self.decay
        self.alpha[chosen] = lam * self.alpha[chosen] + (1.0 - lam) + successes[chosen]
        self.beta[chosen] = lam * self.beta[chosen] + (1.0 - lam) + (self.n - successes[chosen])


class Oracle(Strategy):
    """Reference that knows every true accuracy (not a method: no estimation, no cost for knowing).

    Each step takes the m prompts of the whole dataset with the largest p(1 - p) (ties to the lower index) and
    splits B in proportion to sqrt(p(1 - p)) with at least 2 rollouts each (CurES's Eq. 20 allocation with exact
    accuracies). It is a strong heuristic, not a proven optimum: another strategy may beat it.
    """

    name = "oracle"

    def __init__(self, ctx: StrategyContext) -> None:
        self.m, self.budget = ctx.batch_size, ctx.budget

    def step(self, env: Environment) -> None:
        p = env.true_accuracy()
        score = p * (1.0 - p)
        top = np.lexsort((np.arange(p.size), -score))[: self.m]
        counts = allocate_rollouts(np.sqrt(score[top]), self.budget, min_per_prompt=2)
        env.train(env.generate(top, counts))


# ---------------------------------------------------------------------------------------------- CurES
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

    Args:
        ctx: Problem size, batch shape, seed.
        config: The CurES settings (its ``seed`` is replaced by the run's seed).
        name: The registry name.

    Raises:
        ValueError: If a cold-start step (m x N') does not fit in the budget.
    """

    def __init__(self, ctx: StrategyContext, config: CuresConfig, name: str = "cures") -> None:
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
            env.train(out, loss_weights=np.repeat(weights, counts))
        self.sampler.observe(out.prompt_ids, out.rewards)

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
            env.train(batch, loss_weights=weights[position])
        self.sampler.observe(generated.prompt_ids, generated.rewards)


def cures_config_for(ctx: StrategyContext, preset: str, overrides: Mapping[str, Any] | None = None) -> CuresConfig:
    """The CurES config of ``preset`` mapped onto the simulator: the paper's schedule at the simulator's size.

    The schedule gets ``num_iterations = num_prompts // (cures_subset_batches * batch_size)`` subsets,
    ``steps_per_iteration = cures_steps_per_iteration`` and ``cold_start_rollouts`` from the options (the paper's
    T=15 subsets of ~10k prompts, 10 steps of 1024 prompts each, N'=4), and the run's seed. ``overrides`` (nested,
    as for :func:`~cures_verl.config.preset_config`) win over all of these.
    """
    schedule = {
        "num_iterations": ctx.num_iterations,
        "steps_per_iteration": ctx.options.cures_steps_per_iteration,
        "cold_start_rollouts": ctx.options.cold_start_rollouts,
    }
    merged = merge_overrides({"seed": ctx.seed, "schedule": schedule}, overrides or {})
    return preset_config(preset, merged)


def cures_strategy_spec(
    name: str, preset: str, overrides: Mapping[str, Any] | None = None, *, description: str | None = None
) -> StrategySpec:
    """A :class:`StrategySpec` running CurES with ``preset`` plus nested ``overrides`` (not registered).

    The overrides are validated now, so a bad key fails before any run.

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
    preset_config(preset, frozen)  # validate early: unknown keys and bad values raise here

    def factory(ctx: StrategyContext) -> Strategy:
        return CuresStrategy(ctx, cures_config_for(ctx, preset, frozen), name=name)

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
    overrides: Any = {}
    if colon:
        try:
            overrides = json.loads(payload)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--cures-variant {text!r}: the overrides are not valid JSON ({exc})") from exc
        if not isinstance(overrides, dict):
            raise ValueError(f"--cures-variant {text!r}: the overrides must be a JSON object")
    return name.strip(), preset.strip(), overrides


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

#: The strategies ``python -m cures_verl.bench`` runs by default, in table order.
DEFAULT_STRATEGIES = tuple(STRATEGIES)
