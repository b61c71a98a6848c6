"""Run strategies over seeds on the simulated learner and summarise sample efficiency.

For each (strategy, seed) the learner starts from the same seed-determined dataset and parameters; the strategy
takes steps of at most B = m x n rollouts until it has spent ``steps x B``. The mean true accuracy over the whole
dataset is recorded after every step, against the cumulative rollouts spent.

Summary metrics (per strategy, over seeds; "paired" means computed within a seed, then summarised):

* ``rollouts_to_target``: rollouts spent when the mean accuracy first reaches the target. Each seed has its own
  dataset, so each seed has its own target, ``start + target_fraction * (uniform's final - start)`` on that seed,
  unless ``--target`` fixes one absolute value for all seeds.
* ``rollouts_vs_uniform``: paired ratio of the above to uniform GRPO's (below 1 = fewer rollouts needed).
* ``final_accuracy`` and ``gain``: accuracy at the fixed total budget, and its rise from the start.
* ``oracle_fraction``: paired gain / the oracle's gain at the fixed budget (the fraction of the oracle's
  efficiency reached).
* ``informative_fraction``: rollouts in informative groups (both outcomes) that were trained on, divided by all
  rollouts spent (cold-start, screening and discarded rollouts count in the denominator).
* ``gain_at_equal_updates``: rise of the mean accuracy after U optimiser steps, U being the fewest updates any
  strategy made in any seed. It compares the quality of the updates apart from what each update cost in rollouts.
* ``oracle_rollouts_ratio``: paired ratio of the oracle's rollouts to the target over the strategy's (1 = as fast
  as the oracle; the rollout-count reading of "fraction of the oracle's efficiency").
* ``coverage``: fraction of the dataset's prompts trained on at least once (how concentrated a curriculum is).
* ``rank_corr`` (strategies that predict accuracies: the CurES variants, MoPPS, Knapsack-RL): per run, the mean over
  steps of the Spearman correlation between the predicted accuracy of the step's prompts and their realised group
  accuracy; ``rank_corr_true`` the same against their true accuracy. ``calibration``: rollout-weighted sums of
  predicted, realised and true accuracy per bin of predicted accuracy, pooled over seeds (the reliability plot), and
  ``calibration_error``, the rollout-weighted mean over bins of |mean predicted - mean realised|.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from cures_verl.experiments.curriculum.simulator import FloatArray, Learner, LearnerConfig, Problem, make_problem
from cures_verl.experiments.strategies import (
    CALIBRATION_BINS,
    DEFAULT_STRATEGIES,
    STRATEGIES,
    Environment,
    StepRecord,
    StrategyContext,
    StrategyOptions,
    StrategySpec,
    cures_strategy_spec,
)

logger = logging.getLogger(__name__)

__all__ = [
    "RunResult",
    "SimulationConfig",
    "StrategySummary",
    "resolve_specs",
    "run_simulation",
    "run_simulations",
    "run_strategy",
    "summarise",
]

#: Stop a run that has not spent its total budget after this many times the nominal number of steps.
_MAX_STEP_FACTOR = 4


@dataclass(frozen=True, kw_only=True)
class SimulationConfig:
    """Everything a simulation run needs (each field is a CLI option; see docs/benchmark.md for the defaults)."""

    learner: LearnerConfig = field(default_factory=LearnerConfig)
    """The dataset and learner."""

    options: StrategyOptions = field(default_factory=StrategyOptions)
    """Strategy hyperparameters."""

    batch_size: int = 64
    """m, prompts per step of the fixed-size strategies (the budget's unit)."""

    rollouts_per_prompt: int = 8
    """n, the nominal group size (paper: budget 8 x 1024); B = m x n rollouts per step."""

    steps: int = 225
    """Steps of budget B: 15 subsets x (5 cold-start + 10 training) steps, one paper epoch of CurES."""

    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    """Seeds (each gives its own dataset; strategies are paired by seed)."""

    strategies: tuple[str, ...] = DEFAULT_STRATEGIES
    """Registered strategy names to run, in table order."""

    cures_variants: tuple[tuple[str, str, dict[str, Any]], ...] = ()
    """Extra CurES strategies: (name, preset, nested overrides)."""

    target: float | None = None
    """Absolute target mean accuracy for every seed; None derives a per-seed target from uniform GRPO."""

    target_fraction: float = 0.8
    """Per-seed target = start + this x (uniform's final accuracy - start) on that seed."""

    loss_normalization: str = "rollouts"
    """``rollouts``: each update's loss is averaged over its rollouts (verl's token-mean, per response in the
    batch); ``budget``: divided by the step budget B whatever the update holds (a loss normalised per budget)."""

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.rollouts_per_prompt < 1 or self.steps < 1:
            raise ValueError("--batch-size, --rollouts-per-prompt and --steps must be >= 1")
        if not self.seeds:
            raise ValueError("--num-seeds must be >= 1")
        if not 0.0 < self.target_fraction <= 1.0:
            raise ValueError(f"--target-fraction={self.target_fraction} must lie in (0, 1]")
        if self.target is not None and not 0.0 < self.target < 1.0:
            raise ValueError(f"--target={self.target} must lie in (0, 1)")
        if self.batch_size > self.learner.num_prompts:
            raise ValueError(f"--batch-size={self.batch_size} exceeds --num-prompts={self.learner.num_prompts}")
        if self.loss_normalization not in ("rollouts", "budget"):
            raise ValueError(f"--loss-normalization={self.loss_normalization!r}: choose 'rollouts' or 'budget'")
        if self.target is None and "uniform" not in self.strategies:
            raise ValueError("the default target is derived from uniform GRPO: include 'uniform' or pass --target")

    @property
    def budget(self) -> int:
        """B, rollouts per step."""
        return self.batch_size * self.rollouts_per_prompt

    @property
    def total_budget(self) -> int:
        """Rollouts every strategy spends in a run."""
        return self.steps * self.budget

    def context(self, seed: int, problem: Problem | None = None) -> StrategyContext:
        """The strategy context of one seed, with the cluster labels of the seed's problem (``problem`` when the
        caller has built it already) as prompt groups."""
        problem = problem if problem is not None else problem_for(self, seed)
        return StrategyContext(
            num_prompts=self.learner.num_prompts,
            batch_size=self.batch_size,
            rollouts_per_prompt=self.rollouts_per_prompt,
            seed=seed,
            options=self.options,
            prompt_groups=problem.clusters,
        )


def resolve_specs(config: SimulationConfig) -> dict[str, StrategySpec]:
    """The specs of every strategy to run: registered names plus the config's CurES variants, in table order.

    Every strategy is built once for the first seed here, so a strategy that cannot run on the config's batch
    shape (e.g. Speed-RL's screen of 4 with 4 rollouts per prompt) fails before any worker starts, with its name.

    Raises:
        ValueError: For an unknown strategy name, a variant name that clashes, or a strategy that cannot be built
            for this config.
    """
    variants = {name: cures_strategy_spec(name, preset, overrides) for name, preset, overrides in config.cures_variants}
    specs: dict[str, StrategySpec] = {}
    for name in config.strategies:
        if name in variants:
            continue
        if name not in STRATEGIES:
            raise ValueError(f"unknown strategy {name!r}; registered: {', '.join(STRATEGIES)}")
        specs[name] = STRATEGIES[name]
    for name, spec in variants.items():
        if name in STRATEGIES:
            raise ValueError(f"--cures-variant name {name!r} clashes with a registered strategy; rename it")
        specs[name] = spec
    if config.seeds:
        context = config.context(config.seeds[0])
        for name, spec in specs.items():
            try:
                spec.factory(context)
            except ValueError as exc:
                raise ValueError(
                    f"strategy {name!r} cannot run with this config: {exc}. Leave it out with --strategies "
                    "(comma-separated names) or change the option it names"
                ) from exc
    return specs


@dataclass(frozen=True)
class RunResult:
    """One (strategy, seed) run, one entry per step (arrays of shape ``(num_steps,)``) plus the start.

    Attributes:
        strategy: Strategy name.
        seed: Seed.
        start_accuracy: Mean accuracy before any step.
        accuracy: Mean accuracy after each step.
        spent: Rollouts spent in each step.
        num_updates: Optimiser steps in each step.
        trained: Rollouts trained on in each step.
        informative: Trained rollouts in informative groups in each step.
        rank_corr: Spearman correlation of predicted and realised group accuracy in each step (NaN: no prediction).
        rank_corr_true: The same against the true accuracy.
        calibration: Shape ``(CALIBRATION_BINS, 4)``: per bin of predicted accuracy, rollouts and the
            rollout-weighted sums of predicted, realised and true accuracy (all zero for a strategy that predicts
            nothing).
        coverage: Fraction of the dataset's prompts trained on at least once.
    """

    strategy: str
    seed: int
    start_accuracy: float
    accuracy: FloatArray
    spent: FloatArray
    num_updates: FloatArray
    trained: FloatArray
    informative: FloatArray
    rank_corr: FloatArray = field(default_factory=lambda: np.zeros(0))
    rank_corr_true: FloatArray = field(default_factory=lambda: np.zeros(0))
    calibration: FloatArray = field(default_factory=lambda: np.zeros((CALIBRATION_BINS, 4)))
    coverage: float = math.nan

    def mean_rank_corr(self, *, against: str = "realised") -> float | None:
        """Mean over steps of the per-step rank correlation (``realised`` or ``true``); None if never defined."""
        values = self.rank_corr if against == "realised" else self.rank_corr_true
        defined = values[np.isfinite(values)]
        return float(defined.mean()) if defined.size else None

    @property
    def cumulative(self) -> FloatArray:
        """Rollouts spent up to and including each step."""
        result: FloatArray = np.cumsum(self.spent)
        return result

    def on_grid(self, budget: int, steps: int) -> FloatArray:
        """Accuracy available after spending j x budget rollouts, j = 0..steps (the last step within the spend).

        Returns:
            Shape ``(steps + 1,)``.
        """
        grid = np.arange(steps + 1, dtype=np.float64) * budget
        # steps finished with cumulative <= grid point; 0 means only the start is available
        done = np.searchsorted(self.cumulative, grid, side="right")
        values = np.concatenate([[self.start_accuracy], self.accuracy])
        result: FloatArray = values[done]
        return result

    def accuracy_after_updates(self, num_updates: int) -> float:
        """Mean accuracy right after the ``num_updates``-th optimiser step (the start accuracy for 0).

        Raises:
            ValueError: If the run made fewer updates.
        """
        if num_updates == 0:
            return self.start_accuracy
        done = np.cumsum(self.num_updates)
        if done.size == 0 or done[-1] < num_updates:
            raise ValueError(f"run {self.strategy}/{self.seed} made fewer than {num_updates} updates")
        return float(self.accuracy[int(np.searchsorted(done, num_updates))])

    def rollouts_to(self, target: float) -> float | None:
        """Rollouts spent when the mean accuracy first reached ``target``; None if it never did (0 if at the start)."""
        if self.start_accuracy >= target:
            return 0.0
        hit = np.flatnonzero(self.accuracy >= target)
        return float(self.cumulative[hit[0]]) if hit.size else None


def problem_for(config: SimulationConfig, seed: int) -> Problem:
    """The seed's simulated dataset (the same for every strategy)."""
    return make_problem(config.learner, np.random.default_rng([seed, 101]))


def run_strategy(spec: StrategySpec, seed: int, config: SimulationConfig) -> RunResult:
    """Run ``spec`` on the seed's problem until ``config.total_budget`` rollouts are spent.

    Raises:
        RuntimeError: If the strategy overspends a step, or spends too little to finish within
            4 x ``config.steps`` steps.
    """
    problem = problem_for(config, seed)
    per_budget = config.loss_normalization == "budget"
    learner = Learner(
        problem, replace(config.learner, loss_denominator=config.budget) if per_budget else config.learner
    )
    env = Environment(
        learner,
        batch_size=config.batch_size,
        rollouts_per_prompt=config.rollouts_per_prompt,
        rng=np.random.default_rng([seed, 202]),
    )
    strategy = spec.factory(config.context(seed, problem))
    start = learner.mean_accuracy()
    records: list[StepRecord] = []
    total = 0
    while total < config.total_budget:
        if len(records) >= _MAX_STEP_FACTOR * config.steps:
            raise RuntimeError(
                f"strategy {spec.name!r} spent only {total} of {config.total_budget} rollouts in {len(records)} steps"
            )
        record = env.run_step(strategy)
        records.append(record)
        total += record.spent

    def column(attr: str) -> FloatArray:
        return np.array([getattr(r, attr) for r in records], dtype=np.float64)

    return RunResult(
        strategy=spec.name,
        seed=seed,
        start_accuracy=start,
        accuracy=column("accuracy"),
        spent=column("spent"),
        num_updates=column("num_updates"),
        trained=column("trained"),
        informative=column("informative"),
        rank_corr=column("rank_corr"),
        rank_corr_true=column("rank_corr_true"),
        calibration=env.calibration.copy(),
        coverage=float(env.trained_prompts.mean()),
    )


def _run_job(job: tuple[str, int, SimulationConfig]) -> RunResult:
    name, seed, config = job
    return run_strategy(resolve_specs(config)[name], seed, config)


def run_simulation(config: SimulationConfig, *, workers: int = 1) -> dict[str, list[RunResult]]:
    """Run every strategy of ``config`` on every seed, in ``workers`` processes (1 = in this process).

    Returns:
        ``{strategy: [RunResult per seed]}`` in table order.
    """
    return run_simulations([config], workers=workers)[0]


def run_simulations(configs: Sequence[SimulationConfig], *, workers: int = 1) -> list[dict[str, list[RunResult]]]:
    """:func:`run_simulation` for several configs, all their runs sharing one pool of ``workers`` processes.

    Returns:
        One ``{strategy: [RunResult per seed]}`` per config, in order.
    """
    jobs: list[tuple[str, int, SimulationConfig]] = []
    owner: list[int] = []  # index of each job's config
    outs: list[dict[str, list[RunResult]]] = []
    for index, config in enumerate(configs):
        specs = resolve_specs(config)
        jobs += [(name, seed, config) for name in specs for seed in config.seeds]
        owner += [index] * (len(specs) * len(config.seeds))
        outs.append({name: [] for name in specs})
    logger.info("simulation: %d runs in %d config(s) on %d worker(s)", len(jobs), len(configs), workers)
    if workers <= 1:
        results = [_run_job(job) for job in jobs]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_run_job, jobs))
    for index, result in zip(owner, results, strict=True):
        outs[index][result.strategy].append(result)
    return outs


@dataclass(frozen=True)
class Spread:
    """Centre and range of a per-seed quantity (None entries are seeds where it is undefined)."""

    mean: float | None
    median: float | None
    std: float | None
    low: float | None
    high: float | None
    count: int
    values: tuple[float | None, ...]

    @staticmethod
    def of(values: Sequence[float | None]) -> Spread:
        """Summarise ``values``, ignoring None."""
        defined = np.array([v for v in values if v is not None], dtype=np.float64)
        if defined.size == 0:
            return Spread(None, None, None, None, None, 0, tuple(values))
        return Spread(
            mean=float(defined.mean()),
            median=float(np.median(defined)),
            std=float(defined.std(ddof=1)) if defined.size > 1 else 0.0,
            low=float(defined.min()),
            high=float(defined.max()),
            count=int(defined.size),
            values=tuple(values),
        )


@dataclass(frozen=True)
class StrategySummary:
    """Summary of one strategy over seeds (see the module docstring for each metric)."""

    name: str
    description: str
    citation: str
    rollouts_to_target: Spread
    rollouts_vs_uniform: Spread
    final_accuracy: Spread
    gain: Spread
    oracle_fraction: Spread
    gain_at_equal_updates: Spread
    informative_fraction: Spread
    updates: Spread
    curve_mean: FloatArray
    curve_low: FloatArray
    curve_high: FloatArray
    curves: FloatArray
    oracle_rollouts_ratio: Spread = field(default_factory=lambda: Spread.of([]))
    coverage: Spread = field(default_factory=lambda: Spread.of([]))
    rank_corr: Spread = field(default_factory=lambda: Spread.of([]))
    rank_corr_true: Spread = field(default_factory=lambda: Spread.of([]))
    calibration: FloatArray = field(default_factory=lambda: np.zeros((CALIBRATION_BINS, 4)))

    @property
    def predicts(self) -> bool:
        """Whether the strategy logged accuracy predictions (it has a posterior)."""
        return bool(self.calibration[:, 0].sum() > 0)

    @property
    def calibration_error(self) -> float | None:
        """Rollout-weighted mean over bins of |mean predicted - mean realised accuracy|; None without predictions."""
        weight = self.calibration[:, 0]
        if weight.sum() <= 0:
            return None
        used = weight > 0
        gap = np.abs(self.calibration[used, 1] - self.calibration[used, 2]) / weight[used]
        return float((gap * weight[used]).sum() / weight.sum())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (curves rounded to 6 decimals)."""
        out: dict[str, Any] = {"name": self.name, "description": self.description, "citation": self.citation}
        for key in (
            "rollouts_to_target",
            "rollouts_vs_uniform",
            "final_accuracy",
            "gain",
            "oracle_fraction",
            "oracle_rollouts_ratio",
            "gain_at_equal_updates",
            "informative_fraction",
            "updates",
            "coverage",
            "rank_corr",
            "rank_corr_true",
        ):
            out[key] = asdict(getattr(self, key))
        out["calibration"] = {
            "bins": CALIBRATION_BINS,
            "columns": ["rollouts", "sum_predicted", "sum_realised", "sum_true"],
            "values": np.round(self.calibration, 6).tolist(),
            "error": self.calibration_error,
        }
        out["curve_mean"] = np.round(self.curve_mean, 6).tolist()
        out["curve_low"] = np.round(self.curve_low, 6).tolist()
        out["curve_high"] = np.round(self.curve_high, 6).tolist()
        out["curves"] = np.round(self.curves, 6).tolist()
        return out


def derive_targets(config: SimulationConfig, results: dict[str, list[RunResult]]) -> dict[int, float]:
    """Target accuracy per seed: ``config.target``, or start + fraction x (uniform's final - start) on that seed."""
    if config.target is not None:
        return {seed: float(config.target) for seed in config.seeds}
    targets = {}
    for run in results["uniform"]:
        final = float(run.on_grid(config.budget, config.steps)[-1])
        targets[run.seed] = run.start_accuracy + config.target_fraction * (final - run.start_accuracy)
    return targets


def summarise(
    config: SimulationConfig, results: dict[str, list[RunResult]], specs: dict[str, StrategySpec] | None = None
) -> tuple[dict[int, float], dict[str, StrategySummary]]:
    """Per-strategy summaries and the per-seed targets used.

    Returns:
        ``({seed: target}, {strategy: summary})``.
    """
    specs = specs if specs is not None else resolve_specs(config)
    targets = derive_targets(config, results)
    budget, steps = config.budget, config.steps
    by_seed = {name: {r.seed: r for r in runs} for name, runs in results.items()}

    def paired_ratio(name: str, reference: str, value: Any) -> list[float | None]:
        if reference not in by_seed:
            return [None] * len(config.seeds)
        out: list[float | None] = []
        for seed in config.seeds:
            mine, ref = value(by_seed[name][seed]), value(by_seed[reference][seed])
            out.append(None if mine is None or ref is None or ref == 0 else mine / ref)
        return out

    def gain(run: RunResult) -> float:
        return float(run.on_grid(budget, steps)[-1] - run.start_accuracy)

    equal_updates = int(min(r.num_updates.sum() for runs in results.values() for r in runs))
    summaries: dict[str, StrategySummary] = {}
    for name in results:
        ordered = [by_seed[name][seed] for seed in config.seeds]
        curves = np.stack([r.on_grid(budget, steps) for r in ordered])
        spec = specs[name]
        summaries[name] = StrategySummary(
            name=name,
            description=spec.description,
            citation=spec.citation,
            rollouts_to_target=Spread.of([r.rollouts_to(targets[r.seed]) for r in ordered]),
            rollouts_vs_uniform=Spread.of(paired_ratio(name, "uniform", lambda r: r.rollouts_to(targets[r.seed]))),
            final_accuracy=Spread.of([float(c[-1]) for c in curves]),
            gain=Spread.of([gain(r) for r in ordered]),
            oracle_fraction=Spread.of(paired_ratio(name, "oracle", gain)),
            gain_at_equal_updates=Spread.of(
                [r.accuracy_after_updates(equal_updates) - r.start_accuracy for r in ordered]
            ),
            informative_fraction=Spread.of([float(r.informative.sum() / max(r.spent.sum(), 1.0)) for r in ordered]),
            updates=Spread.of([float(r.num_updates.sum()) for r in ordered]),
            curve_mean=curves.mean(axis=0),
            curve_low=curves.min(axis=0),
            curve_high=curves.max(axis=0),
            curves=curves,
            oracle_rollouts_ratio=Spread.of(
                paired_ratio("oracle", name, lambda r: r.rollouts_to(targets[r.seed])) if "oracle" in by_seed else []
            ),
            coverage=Spread.of([r.coverage for r in ordered]),
            rank_corr=Spread.of([r.mean_rank_corr() for r in ordered]),
            rank_corr_true=Spread.of([r.mean_rank_corr(against="true") for r in ordered]),
            calibration=np.sum([r.calibration for r in ordered], axis=0),
        )
    return targets, summaries


def default_workers() -> int:
    """Processes for the simulation: at most 2 (the CI machine's cores), at most the machine's CPUs."""
    return max(1, min(2, os.cpu_count() or 1))


def config_to_dict(config: SimulationConfig) -> dict[str, Any]:
    """JSON-ready dict of ``config`` (with the learning rate actually used)."""
    out = asdict(config)
    out["learner"]["learning_rate"] = config.learner.learning_rate
    out["budget_per_step"] = config.budget
    out["total_budget"] = config.total_budget
    out["seeds"] = list(config.seeds)
    out["strategies"] = list(config.strategies)
    out["cures_variants"] = [list(v) for v in config.cures_variants]
    return out


def quick_config(config: SimulationConfig) -> SimulationConfig:
    """A few-second version of ``config`` for tests and smoke runs (small dataset, 2 seeds, 30 steps)."""
    learner = replace(config.learner, num_prompts=640, num_clusters=8)
    return replace(config, learner=learner, batch_size=16, steps=30, seeds=(0, 1))


def finite_or_none(value: float | None) -> float | None:
    """``value`` unless it is None or not finite."""
    return value if value is not None and math.isfinite(value) else None
