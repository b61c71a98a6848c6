"""The evidence behind ``cures.preset=recommended``: the pre-registered suites of docs/beyond_the_paper.md.

Two suites, each a list of cells (a setting x an optimiser), every cell a :class:`SimulationConfig` of the
simulated learner run over its seeds:

* ``beyond`` (``python -m cures_verl.experiments.curriculum --suite beyond``): the reported settings, fixed before any
  result was
  looked at (:data:`REPORTED_SETTINGS`: the benchmark's default, a harder dataset, strong transfer, a larger
  budget per prompt), seeds 0-9, ``normalized`` and ``sgd``. Every registered strategy (the peers, CurES ``paper``
  and ``official_code``, ``cures_recommended`` and the oracle) and the recommended configuration's one-at-a-time
  ablations (:func:`reported_variants`) run in every cell.
* ``dev`` (``--suite dev``): the development setting on which the recommended configuration was chosen
  (:data:`DEV_SETTINGS`, seeds 1000-1011), with the candidates compared there (:func:`dev_variants`).

For each cell the suite reports rollouts to the target relative to uniform, accuracy at the fixed budget, the
fraction of the oracle's efficiency (gain and rollouts), the rank correlation of predicted and realised group
accuracy and the coverage, and checks the issue's goal (:class:`Verdict`): at least 0.90 of the oracle's gain and
ahead of every peer. It writes ``<suite>.md`` (the tables), ``<suite>.json`` (every number), a reliability plot
and one accuracy plot per cell.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from cures_verl.experiments.curriculum.experiment import (
    SimulationConfig,
    StrategySummary,
    config_to_dict,
    run_simulations,
    summarise,
)
from cures_verl.experiments.curriculum.recommended import (
    ABLATIONS,
    EXTRA_VARIANTS,
    RECOMMENDED_NAME,
    RECOMMENDED_OVERRIDES,
    ablation_overrides,
    merge_overrides,
)
from cures_verl.experiments.curriculum.report import _pyplot, draw_reliability, plot_curves, write_json
from cures_verl.experiments.curriculum.simulator import LearnerConfig
from cures_verl.experiments.strategies import DEFAULT_STRATEGIES

logger = logging.getLogger(__name__)

__all__ = [
    "DEV_SEEDS",
    "DEV_SETTINGS",
    "PEERS",
    "REPORTED_OPTIMIZERS",
    "REPORTED_SEEDS",
    "REPORTED_SETTINGS",
    "SUITES",
    "Cell",
    "Setting",
    "Verdict",
    "dev_variants",
    "judge",
    "reported_variants",
    "run_suite",
    "suite_cells",
]


@dataclass(frozen=True)
class Setting:
    """A named set of simulator options (a row of docs/beyond_the_paper.md, section 1.1).

    Attributes:
        name: Short name used in tables and file names.
        description: What the setting probes.
        options: The equivalent ``python -m cures_verl.experiments.curriculum`` options, for the docs.
        learner: :class:`LearnerConfig` fields changed from the defaults.
        simulation: :class:`SimulationConfig` fields changed from the defaults (batch shape, steps).
        learning_rates: Learning rate per optimiser where it differs from the benchmark's default
            (:data:`~cures_verl.experiments.curriculum.simulator.DEFAULT_LR`).
    """

    name: str
    description: str
    options: str
    learner: Mapping[str, Any] = field(default_factory=dict)
    simulation: Mapping[str, Any] = field(default_factory=dict)
    learning_rates: Mapping[str, float] = field(default_factory=dict)


#: The reported settings, pre-registered in docs/beyond_the_paper.md (section 1.1) before any result was seen.
REPORTED_SETTINGS: tuple[Setting, ...] = (
    Setting("default", "the benchmark's default settings", ""),
    Setting(
        "hard",
        "difficulty skew: a harder dataset (mean starting logit -2.5 instead of -1.3)",
        "--difficulty-mean -2.5",
        learner={"difficulty_mean": -2.5},
    ),
    Setting(
        "transfer",
        "strong transfer within clusters (0.9 instead of 0.5); learning rates calibrated on uniform GRPO alone",
        "--transfer 0.9 --lr 0.075 (normalized) / --lr 1.4 (sgd)",
        learner={"transfer": 0.9},
        learning_rates={"normalized": 0.075, "sgd": 1.4},
    ),
    Setting(
        "budget",
        "twice the rollouts per prompt (B = 64 x 16) and half the steps, about the same total",
        "--rollouts-per-prompt 16 --steps 112",
        simulation={"rollouts_per_prompt": 16, "steps": 112},
    ),
)

#: Optimisers of the reported cells.
REPORTED_OPTIMIZERS: tuple[str, ...] = ("normalized", "sgd")

#: Seeds of the reported cells.
REPORTED_SEEDS: tuple[int, ...] = tuple(range(10))

#: The strategies the recommended configuration must be ahead of (every registered one but itself and the oracle).
PEERS: tuple[str, ...] = tuple(n for n in DEFAULT_STRATEGIES if n not in (RECOMMENDED_NAME, "oracle"))

_DEV_LEARNER: dict[str, Any] = {
    "num_prompts": 4800,
    "num_clusters": 24,
    "difficulty_mean": -0.8,
    "difficulty_std": 2.2,
    "cluster_difficulty_share": 0.3,
    "transfer": 0.6,
}

#: The development settings (docs/beyond_the_paper.md, section 1.3): every choice of the preset was made here.
DEV_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "dev",
        "development: 4,800 prompts, 24 clusters, logit N(-0.8, 2.2^2), cluster share 0.3, transfer 0.6",
        "--num-prompts 4800 --num-clusters 24 --difficulty-mean -0.8 --difficulty-std 2.2 "
        "--cluster-difficulty-share 0.3 --transfer 0.6 --steps 150",
        learner=_DEV_LEARNER,
        simulation={"steps": 150},
    ),
    Setting(
        "dev_n12",
        "development with 12 rollouts per prompt",
        "the same with --rollouts-per-prompt 12 --steps 100",
        learner=_DEV_LEARNER,
        simulation={"rollouts_per_prompt": 12, "steps": 100},
    ),
)

#: Seeds of the development cells (disjoint from the reported ones).
DEV_SEEDS: tuple[int, ...] = tuple(range(1000, 1012))

#: Peers run on the development setting (the others were far behind on the benchmark already).
_DEV_PEERS: tuple[str, ...] = ("uniform", "knapsack", "mopps", "speed_rl", "cures_paper", RECOMMENDED_NAME, "oracle")

_DEV_PEER_NAMES = tuple(p for p in _DEV_PEERS if p not in (RECOMMENDED_NAME, "oracle"))

_ABLATION_NAMES = {
    "schedule": "rec_paper_schedule",
    "score": "rec_paper_score",
    "temperature": "rec_paper_tau",
    "forgetting": "rec_no_forgetting",
    "no_alloc": "rec_no_allocation",
    "marginal_value": "rec_marginal_value",
    "screening": "rec_screening",
}


def reported_variants() -> tuple[tuple[str, str, dict[str, Any]], ...]:
    """The recommended configuration's one-at-a-time ablations and extra variants, as ``(name, preset, overrides)``.

    Example:
        >>> [name for name, _, _ in reported_variants()][:2]
        ['rec_paper_schedule', 'rec_paper_score']
    """
    return tuple(
        (_ABLATION_NAMES[ingredient], "paper", ablation_overrides(ingredient))
        for ingredient in (*ABLATIONS, *EXTRA_VARIANTS)
    )


def dev_variants() -> tuple[tuple[str, str, dict[str, Any]], ...]:
    """The candidates compared on the development setting, as ``(name, preset, overrides)``.

    The first group builds the recommended configuration from the paper's one ingredient at a time; the second
    changes one value of the recommended configuration.
    """
    online = {"schedule": {"mode": "continuous", "cold_start_rollouts": 0}}
    rec = RECOMMENDED_OVERRIDES
    build = {
        "online": online,
        "online_expected_std": merge_overrides(online, {"sampler": {"score": "expected_std"}}),
        "online_thompson": merge_overrides(online, {"sampler": {"score": "thompson"}}),
        "online_informative": merge_overrides(online, {"sampler": {"score": "informative"}}),
        "online_informative_tau003": merge_overrides(
            online, {"sampler": {"score": "informative", "temperature": 0.03}}
        ),
        "paper_train_on_cold_start": {"schedule": {"train_on_cold_start": True}},
    }
    change = {
        "rec_tau002": {"sampler": {"temperature": 0.02}},
        "rec_tau004": {"sampler": {"temperature": 0.04}},
        "rec_tau005": {"sampler": {"temperature": 0.05}},
        "rec_no_forgetting": {"posterior": {"forgetting": 0.0, "forgetting_rule": "constant"}},
        "rec_forget_constant": {"posterior": {"forgetting_rule": "constant"}},
        "rec_forget_cap005": {"posterior": {"forgetting": 0.05}},
        "rec_forget_cap02": {"posterior": {"forgetting": 0.2}},
        "rec_no_allocation": {"allocation": {"enable": False}},
        "rec_marginal_value": {"allocation": {"rule": "marginal_value"}},
        "rec_rollout_weighting": {"allocation": {"loss_weighting": "rollout"}},
        "rec_jeffreys_prior": {"posterior": {"prior_correct": 0.5, "prior_incorrect": 0.5}},
        "rec_group12": {"sampler": {"informative_group_size": 12}},
        "rec_screening": {"sampler": {"screening_rollouts": 2}},
        "rec_screening4": {"sampler": {"screening_rollouts": 4}},
    }
    return tuple((name, "paper", overrides) for name, overrides in build.items()) + tuple(
        (name, "paper", merge_overrides(rec, overrides)) for name, overrides in change.items()
    )


@dataclass(frozen=True)
class Cell:
    """One setting under one optimiser.

    Attributes:
        setting: The setting.
        optimizer: ``normalized``, ``adam`` or ``sgd``.
        config: The simulation to run.
    """

    setting: Setting
    optimizer: str
    config: SimulationConfig

    @property
    def name(self) -> str:
        """``<setting>_<optimizer>``."""
        return f"{self.setting.name}_{self.optimizer}"


def _quick(config: SimulationConfig) -> SimulationConfig:
    """A seconds-long version of a cell for tests: 640 prompts in 8 clusters, batch 16, 2 seeds, 30 steps or fewer."""
    learner = replace(config.learner, num_prompts=640, num_clusters=8)
    return replace(config, learner=learner, batch_size=16, steps=min(30, config.steps), seeds=config.seeds[:2])


def suite_cells(suite: str, *, quick: bool = False, only: Sequence[str] | None = None) -> list[Cell]:
    """The cells of ``suite`` (``beyond`` or ``dev``); ``quick`` shrinks each to seconds (for tests).

    Args:
        suite: ``beyond`` or ``dev``.
        quick: Shrink every cell (640 prompts, batch 16, 2 seeds, at most 30 steps).
        only: Names of the settings to keep (default: all).

    Raises:
        ValueError: For an unknown suite or setting name.
    """
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; choose one of {', '.join(SUITES)}")
    if suite == "beyond":
        settings, seeds, strategies, variants = (
            REPORTED_SETTINGS,
            REPORTED_SEEDS,
            DEFAULT_STRATEGIES,
            reported_variants(),
        )
    else:
        settings, seeds, strategies, variants = DEV_SETTINGS, DEV_SEEDS, _DEV_PEERS, dev_variants()
    if only is not None:
        unknown = set(only) - {s.name for s in settings}
        if unknown:
            raise ValueError(
                f"unknown setting(s) {', '.join(sorted(unknown))} in suite {suite!r}; "
                f"choose from {', '.join(s.name for s in settings)}"
            )
        settings = tuple(s for s in settings if s.name in only)
    cells = []
    for setting in settings:
        for optimizer in REPORTED_OPTIMIZERS:
            learner = LearnerConfig(
                **{**setting.learner, "optimizer": optimizer, "lr": setting.learning_rates.get(optimizer)}
            )
            config = SimulationConfig(
                learner=learner,
                seeds=seeds,
                strategies=tuple(strategies) + tuple(v[0] for v in variants),
                cures_variants=variants,
                **setting.simulation,
            )
            cells.append(Cell(setting, optimizer, _quick(config) if quick else config))
    return cells


@dataclass(frozen=True)
class Verdict:
    """The issue's goal checked in one cell (docs/beyond_the_paper.md, section 1.3).

    Attributes:
        oracle_fraction: Mean paired gain of the recommended configuration over the oracle's.
        meets_oracle_goal: ``oracle_fraction >= 0.90``.
        best_peer: The peer with the largest mean gain at the fixed budget.
        margin: Mean paired gain of the recommended configuration minus the best peer's.
        wins: Seeds in which the recommended configuration's gain exceeds the best peer's.
        seeds: Seeds in the cell.
        ahead_of_every_peer: Whether its mean gain exceeds every peer's.
    """

    oracle_fraction: float | None
    meets_oracle_goal: bool
    best_peer: str
    margin: float
    wins: int
    seeds: int
    ahead_of_every_peer: bool


def judge(summaries: Mapping[str, StrategySummary], peers: Sequence[str] = PEERS) -> Verdict | None:
    """Check the goal for ``cures_recommended`` against ``peers`` (those present); None if it did not run.

    Example:
        >>> judge({}) is None
        True
    """
    if RECOMMENDED_NAME not in summaries:
        return None
    mine = np.array(summaries[RECOMMENDED_NAME].gain.values, dtype=np.float64)
    present = [p for p in peers if p in summaries]
    if not present:
        raise ValueError(f"none of the peers {', '.join(peers)} ran; cannot judge {RECOMMENDED_NAME}")
    gains = {p: np.array(summaries[p].gain.values, dtype=np.float64) for p in present}
    best = max(present, key=lambda p: float(gains[p].mean()))
    fraction = summaries[RECOMMENDED_NAME].oracle_fraction.mean
    return Verdict(
        oracle_fraction=fraction,
        meets_oracle_goal=fraction is not None and fraction >= 0.90,
        best_peer=best,
        margin=float((mine - gains[best]).mean()),
        wins=int(np.sum(mine > gains[best])),
        seeds=int(mine.size),
        ahead_of_every_peer=all(float(mine.mean()) > float(g.mean()) for g in gains.values()),
    )


def _num(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None or not math.isfinite(value) else format(value, spec)


def _to_target(summary: StrategySummary, bound: float | None) -> str:
    spread = summary.rollouts_vs_uniform
    if spread.count == 0:
        return f"> {bound:.2f}" if bound else "never"
    missing = len(spread.values) - spread.count
    return _num(spread.median, ".2f") + (f" ({missing} n/r)" if missing else "")


def format_cell(cell: Cell, summaries: Mapping[str, StrategySummary]) -> str:
    """The markdown table of one cell."""
    config = cell.config
    learner = config.learner
    uniform = summaries.get("uniform")
    bound = (
        config.total_budget / uniform.rollouts_to_target.median
        if uniform is not None and uniform.rollouts_to_target.median
        else None
    )
    lines = [
        f"#### `{cell.setting.name}`, {cell.optimizer} (lr {learner.learning_rate:g}), {len(config.seeds)} seeds",
        "",
        f"{cell.setting.description}. {learner.num_prompts:,} prompts, batch {config.batch_size} x "
        f"{config.rollouts_per_prompt}, {config.steps} steps = {config.total_budget:,} rollouts per run.",
        "",
        "| strategy | rollouts to target vs uniform | accuracy at budget | of oracle gain | oracle / this (rollouts) "
        "| rank corr | calibration error | coverage |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries.values():
        name = f"**{s.name}**" if s.name == RECOMMENDED_NAME else s.name
        rank = f"{_num(s.rank_corr.mean, '.2f')}" if s.predicts else "-"
        lines.append(
            f"| {name} | {_to_target(s, bound)} | {_num(s.final_accuracy.mean)} | "
            f"{_num(s.oracle_fraction.mean, '.2f')} +- {_num(s.oracle_fraction.std, '.2f')} | "
            f"{_num(s.oracle_rollouts_ratio.median, '.2f')} | {rank} | "
            f"{_num(s.calibration_error) if s.predicts else '-'} | {_num(s.coverage.mean, '.2f')} |"
        )
    return "\n".join(lines)


def format_verdicts(cells: Sequence[Cell], verdicts: Mapping[str, Verdict | None]) -> str:
    """The markdown table of the goal per cell."""
    lines = [
        "| setting | optimizer | recommended: of oracle gain | >= 0.90 | best peer | gain margin over it "
        "| seeds won | ahead of every peer |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for cell in cells:
        v = verdicts.get(cell.name)
        if v is None:
            continue
        lines.append(
            f"| {cell.setting.name} | {cell.optimizer} | {_num(v.oracle_fraction, '.2f')} | "
            f"{'yes' if v.meets_oracle_goal else 'no'} | {v.best_peer} | {v.margin:+.4f} | {v.wins}/{v.seeds} | "
            f"{'yes' if v.ahead_of_every_peer else 'no'} |"
        )
    return "\n".join(lines)


def plot_reliability_grid(
    cells: Sequence[Cell], summaries: Mapping[str, Mapping[str, StrategySummary]], path: Path
) -> Path:
    """One reliability panel per cell: ``cures_recommended``, ``cures_paper`` and ``mopps`` (see draw_reliability)."""
    plt = _pyplot()
    cols = min(4, len(cells))
    rows = -(-len(cells) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 4.2 * rows), squeeze=False)
    for ax, cell in zip(axes.ravel(), cells, strict=False):
        draw_reliability(ax, dict(summaries[cell.name]), [RECOMMENDED_NAME, "cures_paper", "mopps"])
        ax.set_title(f"{cell.setting.name}, {cell.optimizer}", fontsize=9)
        ax.legend(fontsize=6, loc="upper left")
        ax.set_xlabel("predicted accuracy (bin mean)", fontsize=8)
        ax.set_ylabel("realised (solid) / true (dotted)", fontsize=8)
    for ax in axes.ravel()[len(cells) :]:
        ax.axis("off")
    fig.suptitle("Calibration of the posterior mean when a prompt is chosen, pooled over seeds", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


@dataclass(frozen=True)
class SuiteResult:
    """What :func:`run_suite` produced.

    Attributes:
        text: The markdown report (also written to ``<suite>.md``).
        verdicts: The goal per cell name (None where ``cures_recommended`` did not run).
        summaries: Per cell name, per strategy.
        files: Paths written.
    """

    text: str
    verdicts: dict[str, Verdict | None]
    summaries: dict[str, dict[str, StrategySummary]]
    files: list[Path]


def run_suite(
    suite: str,
    *,
    out: Path,
    workers: int = 1,
    quick: bool = False,
    plot: bool = True,
    only: Sequence[str] | None = None,
) -> SuiteResult:
    """Run every cell of ``suite`` (or of the settings named in ``only``), write the report, the JSON and the plots.

    Raises:
        ValueError: For an unknown suite or setting.
    """
    cells = suite_cells(suite, quick=quick, only=only)
    results = run_simulations([c.config for c in cells], workers=workers)
    summaries: dict[str, dict[str, StrategySummary]] = {}
    verdicts: dict[str, Verdict | None] = {}
    payload: dict[str, Any] = {"suite": suite, "quick": quick, "cells": {}}
    sections = []
    files: list[Path] = []
    for cell, result in zip(cells, results, strict=True):
        targets, cell_summaries = summarise(cell.config, result)
        summaries[cell.name] = cell_summaries
        verdicts[cell.name] = judge(cell_summaries, PEERS if suite == "beyond" else _DEV_PEER_NAMES)
        sections.append(format_cell(cell, cell_summaries))
        payload["cells"][cell.name] = {
            "setting": cell.setting.name,
            "options": cell.setting.options,
            "optimizer": cell.optimizer,
            "config": config_to_dict(cell.config),
            "targets": {str(k): v for k, v in targets.items()},
            "verdict": None if verdicts[cell.name] is None else vars(verdicts[cell.name]),
            "strategies": {n: _without_curves(s.to_dict()) for n, s in cell_summaries.items()},
        }
        if plot:
            shown = {n: cell_summaries[n] for n in DEFAULT_STRATEGIES if n in cell_summaries}
            files.append(
                plot_curves(cell.config, targets, shown, out / f"{suite}_{cell.name}_accuracy.png", title=cell.name)
            )
    text = "\n\n".join(
        [
            f"### Suite `{suite}`{' (quick)' if quick else ''}: the goal per cell",
            format_verdicts(cells, verdicts),
            *sections,
        ]
    )
    files.insert(0, write_json(payload, out / f"{suite}.json"))
    markdown = out / f"{suite}.md"
    markdown.write_text(text + "\n", encoding="utf-8")
    files.insert(0, markdown)
    if plot:
        files.append(plot_reliability_grid(cells, summaries, out / f"{suite}_reliability.png"))
    return SuiteResult(text=text, verdicts=verdicts, summaries=summaries, files=files)


def _without_curves(summary: dict[str, Any]) -> dict[str, Any]:
    """A summary's dict without its per-seed curves (kept: the mean and the min-max band)."""
    return {k: v for k, v in summary.items() if k != "curves"}


#: The suites :func:`run_suite` knows.
SUITES = ("beyond", "dev")
