"""Part 1 of the benchmark: the cost of one CurES sampler step, side by side with a dense numpy reference.

One step = draw m prompts from rho (CurES Eq. 14), allocate the budget N = m x n (Eq. 20), and update the
posteriors with the step's rewards (Eq. 23). The defaults follow the paper: m = 1024, n = 8 (N = 8192).

Measured, for each dataset size, in one interleaved loop (so machine load affects every variant alike; the order
is shuffled each round; Python's garbage collector runs between rounds, not while timing, as in ``timeit``):

* ``paper``: :class:`~cures_verl.core.CurriculumSampler` with the ``paper`` preset on the whole dataset
  (``schedule.mode=continuous``, no cold start): O(m log N_data) per step thanks to the sum tree;
* ``thompson``, ``forgetting`` and ``recommended`` (adaptive forgetting, the ``informative`` score): settings that
  move every prompt's weight each step; on pools above ``CurriculumSampler.dense_pool_max`` the sampler keeps bounds
  of the weights and draws by thinning, O(prompts touched) per step;
* with ``baseline_ref`` (``--baseline-ref HEAD``), the same variants as the code was at that git revision, imported
  side by side (:mod:`cures_verl.experiments.curriculum.baseline`) and timed in the same loop, named ``<variant>
  @<ref>``;
* ``dense reference``: the straightforward implementation: recompute every weight with ``exp``, draw with
  ``rng.choice(N_data, m, replace=False, p=...)``, the same allocation (:func:`~cures_verl.core.allocate_rollouts`),
  and ``np.add.at`` into dense alpha/beta arrays.

Reward generation is outside the timed region. Rewards come from fixed true accuracies drawn like the
simulator's starting difficulties. Before timing, ``warmup`` untimed steps give the posterior some observations.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from cures_verl.config import preset_config
from cures_verl.core.allocation import allocate_rollouts
from cures_verl.core.curriculum import CurriculumSampler
from cures_verl.experiments.curriculum.simulator import FloatArray, IntArray, sigmoid

logger = logging.getLogger(__name__)

__all__ = [
    "OVERHEAD_MODES",
    "DenseReferenceSampler",
    "OverheadConfig",
    "OverheadRow",
    "baseline_name",
    "run_overhead",
]

#: CurES sampler variants timed: a preset and nested config overrides.
OVERHEAD_MODES: dict[str, tuple[str, dict[str, Any]]] = {
    "paper": ("paper", {}),
    "thompson": ("paper", {"sampler": {"score": "thompson"}}),
    "forgetting": ("paper", {"posterior": {"forgetting": 0.01}}),
    "recommended": ("recommended", {}),
}

REFERENCE = "dense reference"


@dataclass(frozen=True, kw_only=True)
class OverheadConfig:
    """Settings of the overhead benchmark (each field is a CLI option)."""

    sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    """Dataset sizes N_data."""

    batch_size: int = 1024
    """m, prompts drawn per step (paper: 1024)."""

    rollouts_per_prompt: int = 8
    """n; the budget is m x n (paper: 8 x 1024 = 8192)."""

    seconds: float = 3.0
    """Wall-clock time spent timing each dataset size (all variants interleaved)."""

    min_repeats: int = 20
    """At least this many timed steps per variant, whatever ``seconds`` says."""

    max_repeats: int = 400
    """At most this many timed steps per variant."""

    warmup: int = 10
    """Untimed steps per variant before timing."""

    seed: int = 0
    """Seed of the true accuracies, the rewards and the samplers."""

    baseline_ref: str | None = None
    """A git revision whose sampler is timed alongside (e.g. ``HEAD``: before/after in one run); None: no baseline."""

    def __post_init__(self) -> None:
        if not self.sizes or min(self.sizes) < 1:
            raise ValueError("--overhead-sizes must list positive dataset sizes")
        if self.batch_size < 1 or self.rollouts_per_prompt < 2:
            raise ValueError("--overhead-batch-size must be >= 1 and --overhead-rollouts >= 2")
        if min(self.sizes) < self.batch_size:
            raise ValueError(f"every --overhead-sizes entry must be >= --overhead-batch-size={self.batch_size}")
        if self.seconds <= 0 or self.min_repeats < 1 or self.max_repeats < self.min_repeats or self.warmup < 0:
            raise ValueError("need --overhead-seconds > 0 and 1 <= min repeats <= max repeats, warmup >= 0")


@dataclass(frozen=True)
class OverheadRow:
    """Timing of one variant at one dataset size.

    Attributes:
        num_prompts: N_data.
        mode: A key of :data:`OVERHEAD_MODES`, the same at the baseline revision (``<mode> @<ref>``), or
            ``dense reference``.
        median_ms: Median step time in milliseconds.
        p10_ms: 10th percentile.
        p90_ms: 90th percentile.
        repeats: Timed steps.
        bytes_per_prompt: Per-prompt state (``CurriculumSampler.nbytes / N_data``; the reference's persistent arrays).
        reference_ratio: Dense reference median / this median (> 1: faster than the reference).
        cpu_median_ms: Median CPU time of the process per step (``time.process_time``): less sensitive than wall
            time to other jobs taking the CPU.
    """

    num_prompts: int
    mode: str
    median_ms: float
    p10_ms: float
    p90_ms: float
    repeats: int
    bytes_per_prompt: float
    reference_ratio: float
    cpu_median_ms: float


class DenseReferenceSampler:
    """The straightforward O(N_data) CurES step, for comparison (not used by the package).

    Args:
        num_prompts: N_data.
        batch_size: m.
        rollouts_per_prompt: n.
        temperature: tau of Eq. 14 (the ``paper`` preset's 0.1).
        min_per_prompt: The allocation's floor (the ``paper`` preset's 2).
        seed: Seed of the draws.

    Example:
        >>> ref = DenseReferenceSampler(100, batch_size=4, rollouts_per_prompt=8)
        >>> prompts, counts = ref.plan()
        >>> prompts.size, int(counts.sum())
        (4, 32)
    """

    def __init__(
        self,
        num_prompts: int,
        *,
        batch_size: int,
        rollouts_per_prompt: int,
        temperature: float = 0.1,
        min_per_prompt: int = 2,
        seed: int = 0,
    ) -> None:
        self.num_prompts, self.batch_size = num_prompts, batch_size
        self.budget = batch_size * rollouts_per_prompt
        self.temperature, self.min_per_prompt = temperature, min_per_prompt
        self.alpha = np.ones(num_prompts)
        self.beta = np.ones(num_prompts)
        self.rng = np.random.default_rng(seed)

    @property
    def nbytes(self) -> int:
        """Persistent per-prompt state (alpha and beta); each step also allocates ~4 transient N_data arrays."""
        return int(self.alpha.nbytes + self.beta.nbytes)

    def plan(self) -> tuple[IntArray, IntArray]:
        """Recompute every weight, draw m distinct prompts, allocate the budget."""
        p = self.alpha / (self.alpha + self.beta)
        std = np.sqrt(p * (1.0 - p))
        weights = np.exp(std / self.temperature)
        prompts = self.rng.choice(self.num_prompts, self.batch_size, replace=False, p=weights / weights.sum())
        counts = allocate_rollouts(std[prompts], self.budget, min_per_prompt=self.min_per_prompt)
        return prompts.astype(np.int64), counts

    def observe(self, prompt_ids: IntArray, rewards: FloatArray) -> None:
        """alpha += rewards, beta += 1 - rewards, per rollout."""
        np.add.at(self.alpha, prompt_ids, rewards)
        np.add.at(self.beta, prompt_ids, 1.0 - rewards)


class _CuresVariant:
    def __init__(
        self,
        num_prompts: int,
        config: OverheadConfig,
        preset: str,
        overrides: dict[str, Any],
        sampler_class: Any = CurriculumSampler,
        make_config: Any = preset_config,
    ) -> None:
        settings = {"seed": config.seed, "schedule": {"mode": "continuous", "cold_start_rollouts": 0}, **overrides}
        self.sampler = sampler_class(
            num_prompts,
            batch_size=config.batch_size,
            rollouts_per_prompt=config.rollouts_per_prompt,
            config=make_config(preset, settings),
        )

    @property
    def nbytes(self) -> int:
        return int(self.sampler.nbytes)

    def plan(self) -> tuple[IntArray, IntArray]:
        plan = self.sampler.plan_step()
        return plan.prompt_indices, plan.rollouts

    def observe(self, prompt_ids: IntArray, rewards: FloatArray) -> None:
        self.sampler.observe(prompt_ids, rewards)


def baseline_name(mode: str, ref: str) -> str:
    """The row name of ``mode`` timed at git revision ``ref``."""
    return f"{mode} @{ref}"


def _timed_step(variant: Any, truth: FloatArray, rng: np.random.Generator) -> tuple[float, float]:
    """Wall and CPU seconds of one plan + observe (the rewards' generation excluded)."""
    start, start_cpu = time.perf_counter(), time.process_time()
    prompts, counts = variant.plan()
    planned, planned_cpu = time.perf_counter(), time.process_time()
    ids = np.repeat(prompts, counts)
    rewards = (rng.random(ids.size) < truth[ids]).astype(np.float64)  # untimed: the "rollouts"
    resumed, resumed_cpu = time.perf_counter(), time.process_time()
    variant.observe(ids, rewards)
    wall = (planned - start) + (time.perf_counter() - resumed)
    return wall, (planned_cpu - start_cpu) + (time.process_time() - resumed_cpu)


def time_size(num_prompts: int, config: OverheadConfig) -> list[OverheadRow]:
    """Time every variant at one dataset size, interleaved step by step."""
    rng = np.random.default_rng([config.seed, num_prompts])
    truth = sigmoid(-1.3 + 2.5 * rng.standard_normal(num_prompts))
    variants: dict[str, Any] = {
        name: _CuresVariant(num_prompts, config, preset, overrides)
        for name, (preset, overrides) in OVERHEAD_MODES.items()
    }
    if config.baseline_ref is not None:
        from cures_verl.experiments.curriculum.baseline import import_baseline

        old_sampler = import_baseline(config.baseline_ref, ".core.curriculum").CurriculumSampler
        old_config = import_baseline(config.baseline_ref, ".config").preset_config
        for name, (preset, overrides) in OVERHEAD_MODES.items():
            variants[baseline_name(name, config.baseline_ref)] = _CuresVariant(
                num_prompts, config, preset, overrides, old_sampler, old_config
            )
    variants[REFERENCE] = DenseReferenceSampler(
        num_prompts, batch_size=config.batch_size, rollouts_per_prompt=config.rollouts_per_prompt, seed=config.seed
    )
    for _ in range(config.warmup):
        for variant in variants.values():
            _timed_step(variant, truth, rng)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    deadline = time.perf_counter() + config.seconds
    names = list(variants)
    order_rng = np.random.default_rng([config.seed, num_prompts, 1])
    # as timeit does: Python's cyclic garbage collector is paused while timing (its pauses land on whichever variant
    # happens to trigger them) and run between rounds
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        while True:
            if len(samples[REFERENCE]) % 10 == 0:
                gc.collect()
            # a new order each round, so that no variant always follows the same one (a variant sweeping a million
            # prompts leaves the caches cold for the next)
            for position in order_rng.permutation(len(names)):
                name = names[position]
                samples[name].append(_timed_step(variants[name], truth, rng))
            done = len(samples[REFERENCE])
            if done >= config.max_repeats or (done >= config.min_repeats and time.perf_counter() > deadline):
                break
    finally:
        if gc_was_enabled:
            gc.enable()
    reference_median = float(np.median([wall for wall, _ in samples[REFERENCE]]))
    rows = []
    for name, values in samples.items():
        ms = np.array([wall for wall, _ in values]) * 1e3
        median = float(np.median(ms))
        rows.append(
            OverheadRow(
                num_prompts=num_prompts,
                mode=name,
                median_ms=median,
                p10_ms=float(np.percentile(ms, 10)),
                p90_ms=float(np.percentile(ms, 90)),
                repeats=int(ms.size),
                bytes_per_prompt=variants[name].nbytes / num_prompts,
                reference_ratio=reference_median * 1e3 / median,
                cpu_median_ms=float(np.median([cpu for _, cpu in values])) * 1e3,
            )
        )
    return rows


def run_overhead(config: OverheadConfig) -> dict[str, Any]:
    """Time all sizes; returns ``{"config", "rows", "load_before", "load_after"}`` (JSON-ready)."""
    load_before = os.getloadavg()
    rows: list[OverheadRow] = []
    for size in config.sizes:
        logger.info("overhead: timing %d prompts", size)
        rows.extend(time_size(size, config))
    return {
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in config.__dict__.items()},
        "rows": [row.__dict__ for row in rows],
        "load_before": list(load_before),
        "load_after": list(os.getloadavg()),
        "cpu_count": os.cpu_count(),
    }
