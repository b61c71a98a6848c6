"""Real-loop comparison: CurES arms against plain GRPO at equal rollouts, in verl's own trainer, exactly evaluated.

``python -m cures_verl.experiments.trainer.demo compare`` (what ``recipes/compare_cpu.sh`` calls) runs, for every
setting, seed and
arm, ``python -m cures_verl.main profile=cpu ...`` on the digit-sums task:

* **arms**: ``grpo`` (plain verl GRPO through the same entry point, ``cures.enable=false``), ``paper``,
  ``official_code``, ``recommended``, or any ``NAME=OVERRIDE[,OVERRIDE...]`` given on the command line;
* **same start**: per seed, every arm gets the same task sample, the same warm-started model and the same seeds;
* **equal rollouts**: each arm runs until it has spent the setting's rollout budget, cold-start rollouts
  included (an arm whose steps may spend less than the nominal budget, ``allocation.zero_variance=drop``, gets
  more steps; every arm is then read at the budget);
* **exact evaluation**: verl saves the policy after every step (``trainer.save_freq=1``, ``hf_model`` only);
  each checkpoint is scored by :func:`~cures_verl.experiments.trainer.exact.exact_accuracy`, each problem's exact
  probability of a rewarded response under the rollout sampling, on every training problem and on every
  problem of the task not in the training set (held out), so the curves carry no sampling noise. The policy
  at R rollouts is the one after the last update whose cumulative rollouts are <= R.

Population accuracy = the mean over problems, equally weighted (train); for held-out problems, the mean per
difficulty tier weighted by the setting's tier mix, so it measures the task distribution the pool was drawn
from. The settings are fixed in :data:`SETTINGS` and documented, before any result, in
``docs/results/real_loop/README.md``.

This module starts verl only in subprocesses; it imports no verl itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from cures_verl.config import config_from_overrides
from cures_verl.core.schedule import Schedule
from cures_verl.experiments.watchdog import RunTimeout, run_with_watchdog

from .assets import DemoAssets, build_demo_assets
from .recipe import demo_overrides
from .task import DEFAULT_TIER_WEIGHTS, DigitSumProblem, all_problems

__all__ = [
    "ARMS",
    "SETTINGS",
    "ArmPlan",
    "Setting",
    "parse_arm",
    "plan_arm",
    "run_comparison",
    "summarise",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Setting:
    """One comparison setting: the task, the batch shape and the rollout budget every arm spends."""

    name: str
    description: str
    num_prompts: int
    """Training prompts (the pool)."""
    tier_weights: Mapping[int, float]
    """Share of each difficulty tier (operand count) in the pool and in the held-out population."""
    warm_start_steps: int
    """Supervised warm-start steps of the initial model (tiers 1-2 only; tier 3 is never taught)."""
    batch_size: int = 16
    """Prompts per step (``data.train_batch_size``)."""
    rollout_n: int = 8
    """Nominal rollouts per prompt: a step's budget is ``batch_size * rollout_n``."""
    budget_rollouts: int = 54 * 16 * 8
    """Total rollouts of every arm, cold starts included."""
    eval_every_rollouts: int = 512
    """Grid of the reported curves."""
    target_gain_fraction: float = 0.8
    """Rollouts-to-target: the target is the initial held-out accuracy plus this fraction of GRPO's mean gain."""
    num_val_prompts: int = 16
    """Prompts of verl's ``data.val_files`` (verl needs the file; validation is off, ``trainer.test_freq=-1``)."""

    @property
    def step_rollouts(self) -> int:
        """Rollouts of one full training step."""
        return self.batch_size * self.rollout_n


SETTINGS: dict[str, Setting] = {
    "default": Setting(
        name="default",
        description=(
            "The CPU demo's default: 64 prompts (tiers 1/2/3 = 5/65/30%), model warm-started 120 steps "
            "(p(correct) about 0.88/0.61/0.12 per tier), 16 prompts x 8 rollouts a step, 6912 rollouts "
            "(54 full steps), each prompt revisited every 4 steps."
        ),
        num_prompts=64,
        tier_weights=dict(DEFAULT_TIER_WEIGHTS),
        warm_start_steps=120,
    ),
    "large_pool": Setting(
        name="large_pool",
        description=(
            "A pool much larger than the batch, skewed difficulty: 512 prompts (tiers 1/2/3 = 1.5/15.5/83%), "
            "model warm-started 300 steps so tiers 1-2 are nearly always solved (p about 0.99) and most tier-3 "
            "problems nearly never (86% below p = 0.05); 16 x 8 rollouts a step, 6912 rollouts (54 full steps), "
            "so each prompt is drawn 1.7 times on average."
        ),
        num_prompts=512,
        tier_weights={1: 0.015, 2: 0.155, 3: 0.83},
        warm_start_steps=300,
    ),
}
"""The pre-registered settings (docs/results/real_loop/README.md). Do not tune them to a result."""

ARMS: dict[str, tuple[str, ...]] = {
    "grpo": ("cures.enable=false",),
    "paper": ("cures.preset=paper",),
    "official_code": ("cures.preset=official_code",),
    "recommended": ("cures.preset=recommended",),
}
"""The default arms: name -> ``python -m cures_verl.main`` overrides."""

# verl's rollout sampling, passed to the trainer and used by the exact evaluation (kept equal by construction)
ROLLOUT_TEMPERATURE = 1.0
ROLLOUT_TOP_P = 1.0
ROLLOUT_TOP_K = -1
MAX_RESPONSE_LENGTH = 8
# steps an arm that may spend less than a full step's budget gets, relative to the nominal count
DROP_STEP_MARGIN = 2.0


def parse_arm(text: str) -> tuple[str, tuple[str, ...]]:
    """``NAME`` (a default arm) or ``NAME=OVERRIDE[,OVERRIDE...]`` -> (name, overrides).

    Raises:
        ValueError: On an unknown default arm or an override that is not ``key=value``.

    Example:
        >>> parse_arm("hot=cures.preset=paper,cures.sampler.temperature=1.0")
        ('hot', ('cures.preset=paper', 'cures.sampler.temperature=1.0'))
    """
    name, sep, rest = text.partition("=")
    name = name.strip()
    if not sep:
        if name not in ARMS:
            raise ValueError(f"--arm {text!r}: unknown arm; use one of {', '.join(ARMS)} or NAME=OVERRIDE,...")
        return name, ARMS[name]
    overrides = tuple(item.strip() for item in rest.split(",") if item.strip())
    bad = [item for item in overrides if "=" not in item]
    if not name or not overrides or bad:
        raise ValueError(f"--arm {text!r}: write NAME=key=value[,key=value...] (bad: {bad or 'empty'})")
    return name, overrides


@dataclass(frozen=True)
class ArmPlan:
    """How an arm spends the budget: trainer steps, the cold start, and the overrides that follow from them."""

    total_steps: int
    cold_start_steps: int
    cold_start_rollouts: int
    train_steps: int
    may_underspend: bool
    """True when a step can spend less than its nominal budget (``zero_variance=drop`` with a
    ``max_per_prompt``): extra steps run, and the arm is read at the budget."""
    extra_overrides: tuple[str, ...] = ()


def plan_arm(overrides: Sequence[str], setting: Setting) -> ArmPlan:
    """Trainer steps that make an arm spend ``setting.budget_rollouts``, cold-start rollouts included.

    A CurES arm with the paper's schedule runs one subset (the whole pool): its cold start is
    ceil(pool / batch) steps of ``cold_start_rollouts`` per prompt, then training steps of the full budget.

    Raises:
        ValueError: If the cold start alone exceeds the budget.

    Example:
        >>> plan = plan_arm(ARMS["paper"], SETTINGS["default"])
        >>> plan.cold_start_steps, plan.cold_start_rollouts, plan.train_steps
        (4, 256, 52)
        >>> plan_arm(ARMS["grpo"], SETTINGS["default"]).total_steps
        54
    """
    step = setting.step_rollouts
    cfg = config_from_overrides(overrides)
    if cfg is None:
        return ArmPlan(setting.budget_rollouts // step, 0, 0, setting.budget_rollouts // step, False)
    # the whole pool is one subset (one iteration, or the continuous schedule's single pool)
    pool = Schedule(
        setting.num_prompts, setting.batch_size, replace(cfg.schedule, num_iterations=1, split="contiguous")
    )
    cold_steps = pool.num_cold_start_steps(0)
    cold_rollouts = cold_steps * setting.batch_size * cfg.schedule.cold_start_rollouts
    train_steps = (setting.budget_rollouts - cold_rollouts) // step
    if train_steps < 1:
        raise ValueError(
            f"setting {setting.name!r}: the cold start ({cold_rollouts} rollouts) leaves no training step within the "
            f"budget of {setting.budget_rollouts} rollouts; raise budget_rollouts or lower cold_start_rollouts"
        )
    # under drop a step spends less than its budget only when the kept prompts cannot absorb it within
    # max_per_prompt (core.allocation.allocate_rollouts); without a maximum the budget is always spent
    may_underspend = cfg.allocation.zero_variance == "drop" and cfg.allocation.max_per_prompt is not None
    run_train = math.ceil(train_steps * DROP_STEP_MARGIN) if may_underspend else train_steps
    extra: tuple[str, ...] = ()
    if cfg.schedule.mode == "iterations":
        # the whole pool is one subset: its cold start, then the training steps (no second iteration)
        extra = ("cures.schedule.num_iterations=1", f"cures.schedule.steps_per_iteration={run_train}")
    return ArmPlan(cold_steps + run_train, cold_steps, cold_rollouts, train_steps, may_underspend, extra)


# ----------------------------------------------------------------------------------------- evaluation


def _parse_question(question: str) -> DigitSumProblem:
    # "3 + 4 =" -> DigitSumProblem((3, 4))
    return DigitSumProblem(tuple(int(d) for d in question.removesuffix("=").split("+")))


@dataclass
class Population:
    """The problems a run is evaluated on: its training pool and every other problem of the task's tiers."""

    train: list[DigitSumProblem]
    heldout: list[DigitSumProblem]
    heldout_tiers: np.ndarray
    tier_weights: dict[int, float]

    @classmethod
    def from_assets(cls, assets: DemoAssets, setting: Setting) -> Population:
        import pyarrow.parquet as pq

        table = pq.read_table(assets.train_parquet, columns=["prompt", "extra_info"])
        rows = zip(table.column("prompt").to_pylist(), table.column("extra_info").to_pylist(), strict=True)
        by_index = {int(info["index"]): _parse_question(prompt[0]["content"]) for prompt, info in rows}
        if sorted(by_index) != list(range(len(by_index))):
            raise ValueError(f"{assets.train_parquet}: extra_info.index must number the rows 0..n-1")
        train = [by_index[i] for i in range(len(by_index))]
        seen = set(train)
        heldout = [p for tier in sorted(setting.tier_weights) for p in all_problems(tier) if p not in seen]
        tiers = np.array([p.difficulty for p in heldout], dtype=np.int64)
        present = {t: w for t, w in setting.tier_weights.items() if w > 0 and np.any(tiers == t)}
        total = sum(present.values())
        return cls(train, heldout, tiers, {t: w / total for t, w in present.items()})

    def score(self, model_path: Path, tokenizer: Any) -> dict[str, Any]:
        from .exact import exact_accuracy, load_policy

        model = load_policy(model_path)
        kwargs = {
            "temperature": ROLLOUT_TEMPERATURE,
            "top_k": ROLLOUT_TOP_K,
            "top_p": ROLLOUT_TOP_P,
            "max_response_length": MAX_RESPONSE_LENGTH,
        }
        train = exact_accuracy(model, tokenizer, self.train, **kwargs)
        held = exact_accuracy(model, tokenizer, self.heldout, **kwargs)
        by_tier = {t: float(held.probability[self.heldout_tiers == t].mean()) for t in self.tier_weights}
        train_tiers = np.array([p.difficulty for p in self.train])
        return {
            "train": float(train.probability.mean()),
            "heldout": float(sum(self.tier_weights[t] * by_tier[t] for t in by_tier)),
            "heldout_by_tier": {str(t): v for t, v in by_tier.items()},
            "train_by_tier": {
                str(t): float(train.probability[train_tiers == t].mean()) for t in sorted(set(train_tiers.tolist()))
            },
            "unresolved_max": float(max(train.unresolved.max(initial=0), held.unresolved.max(initial=0))),
        }


# ----------------------------------------------------------------------------------------- one run


def _step_records(run_dir: Path, is_cures: bool) -> list[dict[str, Any]]:
    """The run's per-step CurES records (``cures.dump_dir``); none for plain GRPO."""
    from cures_verl.experiments.plots import load_step_records

    return load_step_records(run_dir / "cures" / "cures_steps.jsonl") if is_cures else []


def _cumulative_rollouts(records: list[dict[str, Any]], steps: int, setting: Setting) -> np.ndarray:
    """Rollouts spent in steps 1..k for k = 0..steps: from the CurES step records, or full steps for plain GRPO
    (no filtering, no refill: every step generates batch_size x rollout_n responses)."""
    if not records:
        return np.arange(steps + 1, dtype=np.int64) * setting.step_rollouts
    from cures_verl.experiments.plots import cumulative_rollouts

    table = cumulative_rollouts(records)
    return np.array([table[k] for k in range(steps + 1)], dtype=np.int64)


def _last_checkpoint(ckpt_dir: Path) -> int:
    """The step of verl's latest checkpoint (``latest_checkpointed_iteration.txt``), 0 when there is none."""
    marker = ckpt_dir / "latest_checkpointed_iteration.txt"
    return int(marker.read_text().strip()) if marker.exists() else 0


def _checkpoint_wall(ckpt_dir: Path, step: int, started: float) -> float:
    return (ckpt_dir / f"global_step_{step}" / "data.pt").stat().st_mtime - started


def training_command(
    setting: Setting,
    arm: str,
    overrides: Sequence[str],
    plan: ArmPlan,
    seed: int,
    assets: DemoAssets,
    run_dir: Path,
) -> list[str]:
    """The ``python -m cures_verl.main profile=cpu ...`` command of one arm on one seed (the arm's overrides last)."""
    ckpt = run_dir / "checkpoints"
    return [
        sys.executable,
        "-m",
        "cures_verl.main",
        "profile=cpu",
        *demo_overrides(
            assets,
            total_training_steps=plan.total_steps,
            train_batch_size=setting.batch_size,
            rollout_n=setting.rollout_n,
            max_response_length=MAX_RESPONSE_LENGTH,
            seed=seed,
        ),
        f"actor_rollout_ref.rollout.temperature={ROLLOUT_TEMPERATURE}",
        f"actor_rollout_ref.rollout.top_p={ROLLOUT_TOP_P}",
        f"actor_rollout_ref.rollout.top_k={ROLLOUT_TOP_K}",
        "trainer.save_freq=1",
        "actor_rollout_ref.actor.checkpoint.save_contents=[hf_model]",
        f"trainer.default_local_dir={ckpt}",
        "trainer.logger=[console,file]",
        "trainer.project_name=cures_compare",
        f"trainer.experiment_name={setting.name}_{arm}_seed{seed}",
        # verl's fit loop also ends after trainer.total_epochs epochs (trainer_base.py:467); an epoch is at least one
        # step, so this many never ends a run before its steps, whatever batch size an arm sets
        f"trainer.total_epochs={plan.total_steps}",
        *overrides,
        *plan.extra_overrides,
        f"cures.seed={seed}",
        f"cures.dump_dir={run_dir / 'cures'}",
    ]


def run_arm(
    setting: Setting,
    arm: str,
    overrides: Sequence[str],
    seed: int,
    assets: DemoAssets,
    population: Population,
    out: Path,
    *,
    timeout_s: float,
    keep_checkpoints: bool = False,
    reuse: bool = True,
    report_only: bool = False,
) -> dict[str, Any]:
    """Train one arm on one seed through verl's trainer, then score the saved policies exactly.

    Only the policies the curves read are scored: for each grid point R, the one after the last update within R
    rollouts (plus the initial model). With ``reuse``, a run directory holding a finished run of the same
    command is read back instead of trained again, so an interrupted comparison resumes where it stopped; with
    ``report_only`` every run is read back whatever its command (nothing is trained).

    Raises:
        RuntimeError: If the trainer fails or times out (its log path is named).
    """
    from .assets import MAX_OPERANDS
    from .tokenizer import build_tokenizer

    plan = plan_arm(overrides, setting)
    run_dir = out / setting.name / arm / f"seed_{seed}"
    ckpt = run_dir / "checkpoints"
    is_cures = config_from_overrides(overrides) is not None
    command = training_command(setting, arm, overrides, plan, seed, assets, run_dir)
    command_text = " ".join(command) + "\n"
    finished = (run_dir / "run.json").exists()
    if report_only and not finished:
        raise RuntimeError(f"{setting.name}/{arm}/seed {seed}: no finished run in {run_dir} (--report-only)")
    if report_only or (reuse and finished and (run_dir / "command.txt").read_text() == command_text):
        logger.info("reusing %s (same command, or --report-only; pass --fresh to rerun)", run_dir)
        run = dict(json.loads((run_dir / "run.json").read_text()))
        run.setdefault("timing", _timing(run_dir / "metrics.jsonl", None))
        if is_cures:
            run["curriculum"] = _curriculum_stats(_step_records(run_dir, is_cures), len(population.train))
        return run
    if run_dir.exists():
        shutil.rmtree(run_dir)
    (run_dir / "cures").mkdir(parents=True)
    (run_dir / "command.txt").write_text(command_text)
    started = time.time()
    try:
        done = run_with_watchdog(
            command,
            timeout_s=timeout_s,
            log_path=run_dir / "train.log",
            extra_env={"VERL_FILE_LOGGER_PATH": str(run_dir / "metrics.jsonl")},
        )
    except RunTimeout:
        raise RuntimeError(f"{setting.name}/{arm}/seed {seed}: timed out after {timeout_s} s; log {run_dir}") from None
    if done.returncode != 0:
        raise RuntimeError(
            f"{setting.name}/{arm}/seed {seed}: exit code {done.returncode}; log {run_dir / 'train.log'}"
        )
    train_wall = time.time() - started
    last = _last_checkpoint(ckpt)
    if last != plan.total_steps:
        raise RuntimeError(
            f"{setting.name}/{arm}/seed {seed}: verl stopped after step {last} of {plan.total_steps} (an arm's "
            f"trainer.total_epochs or data settings ended it early); log {run_dir / 'train.log'}"
        )
    first_checkpoint_wall = _checkpoint_wall(ckpt, 1, started)

    tokenizer = build_tokenizer(9 * MAX_OPERANDS)
    records = _step_records(run_dir, is_cures)
    cumulative = _cumulative_rollouts(records, plan.total_steps, setting)
    points = [dict(step=0, rollouts=0, wall_s=0.0, **population.score(assets.model_dir, tokenizer))]
    for step in _steps_to_score(cumulative, setting):
        path = ckpt / f"global_step_{step}" / "actor" / "huggingface"
        points.append(
            dict(
                step=step,
                rollouts=int(cumulative[step]),
                wall_s=round(_checkpoint_wall(ckpt, step, started), 2),
                **population.score(path, tokenizer),
            )
        )
    if not keep_checkpoints:
        shutil.rmtree(ckpt, ignore_errors=True)
    final = points[-1]
    run = {
        "seed": seed,
        "final_accuracy": final["heldout"],
        "final_train_accuracy": final["train"],
        "rollouts_at_final": final["rollouts"],
        "budget_reached": bool(final["rollouts"] + setting.step_rollouts > setting.budget_rollouts),
        "trainer_steps": plan.total_steps,
        "updates": _updates_until(records, final["step"]),
        "train_wall_s": round(train_wall, 1),
        "curve": {key: [p[key] for p in points] for key in points[0]},
        "grid": _on_grid(points, setting),
        "draws_by_tier": _draws_by_tier(records, population) if is_cures else None,
        "timing": _timing(run_dir / "metrics.jsonl", first_checkpoint_wall),
        "curriculum": _curriculum_stats(records, len(population.train)) if is_cures else None,
    }
    (run_dir / "run.json").write_text(json.dumps(run, indent=1))
    return run


def _steps_to_score(cumulative: np.ndarray, setting: Setting) -> list[int]:
    """Steps whose policy a grid point reads: for each R, the last step with cumulative rollouts <= R (step 0, the
    initial model, is scored separately).

    Example:
        >>> s = SETTINGS["default"]
        >>> _steps_to_score(np.array([0, 64, 128, 256, 384, 512, 640]), _replace(s, budget_rollouts=640))
        [5, 6]
    """
    steps = {int(np.searchsorted(cumulative, r, side="right") - 1) for r in _grid(setting)}
    return sorted(step for step in steps if step > 0)


def _grid(setting: Setting) -> list[int]:
    grid = list(range(0, setting.budget_rollouts + 1, setting.eval_every_rollouts))
    if grid[-1] != setting.budget_rollouts:
        grid.append(setting.budget_rollouts)
    return grid


TIMERS = ("step", "gen", "old_log_prob", "ref", "adv", "update_actor", "update_weights", "save_checkpoint")


def _timing(metrics_path: Path, first_checkpoint_wall: float | None) -> dict[str, float]:
    """Median seconds per step of verl's timers (``timing_s/*`` from its file logger), and the start-up: launch to
    the first checkpoint minus that step's own time."""
    from cures_verl.experiments.plots import load_metric_log

    log = load_metric_log(metrics_path)
    out = {name: round(float(np.median(log[f"timing_s/{name}"][1])), 3) for name in TIMERS if f"timing_s/{name}" in log}
    if "timing_s/step" in log:
        out["total_step_s"] = round(float(log["timing_s/step"][1].sum()), 1)
        if first_checkpoint_wall is not None:
            out["startup_s"] = round(first_checkpoint_wall - float(log["timing_s/step"][1][0]), 1)
    return out


def _updates_until(records: list[dict[str, Any]], step: int) -> int:
    """Policy updates in trainer steps 1..step: every step for plain GRPO (no records), the training steps of a
    CurES run (its cold-start steps do not update)."""
    if not records:
        return step
    return sum(1 for r in records if r["phase"] == "train" and int(r["global_step"]) <= step)


def _on_grid(points: list[dict[str, Any]], setting: Setting) -> dict[str, list[float]]:
    """Held-out/train accuracy at R = 0, every ``eval_every_rollouts``, and the budget: the policy after the last
    update whose cumulative rollouts are <= R."""
    grid = _grid(setting)
    rollouts = np.array([p["rollouts"] for p in points])
    idx = [int(np.searchsorted(rollouts, r, side="right") - 1) for r in grid]
    return {
        "rollouts": grid,
        "heldout": [points[i]["heldout"] for i in idx],
        "train": [points[i]["train"] for i in idx],
    }


def _curriculum_stats(records: list[dict[str, Any]], pool_size: int) -> dict[str, float]:
    """What a CurES arm's training steps drew: the share of the pool ever drawn, the share of draws that got no
    rollout (dropped), the share of generated groups whose rollouts were all correct or all wrong (no GRPO
    gradient), and the mean rollouts per generated group."""
    records = [r for r in records if r["phase"] == "train"]
    drawn = {int(pid) for r in records for pid in r["prompt_ids"]}
    realised = np.array([a for r in records for a in r["realised_accuracy"]], dtype=np.float64)
    rollouts = np.array([n for r in records for n in r["rollouts"]], dtype=np.float64)
    generated = rollouts > 0  # under zero_variance=drop a drawn prompt can get no rollout
    flat = (realised[generated] == 0) | (realised[generated] == 1)
    return {
        "coverage": round(len(drawn) / pool_size, 3),
        "frac_draws_dropped": round(float(np.mean(~generated)), 3) if rollouts.size else 0.0,
        "frac_zero_variance_groups": round(float(np.mean(flat)), 3) if flat.size else 0.0,
        "mean_rollouts_per_group": round(float(rollouts[generated].mean()), 2) if generated.any() else 0.0,
    }


def _draws_by_tier(records: list[dict[str, Any]], population: Population) -> dict[str, float]:
    """Share of the training draws per difficulty tier."""
    from cures_verl.experiments.plots import draws_by_bucket

    drawn = draws_by_bucket(records, {i: str(p.difficulty) for i, p in enumerate(population.train)})
    total = sum(draws for draws, _ in drawn.values()) or 1
    return {tier: round(draws / total, 3) for tier, (draws, _) in drawn.items()}


# ----------------------------------------------------------------------------------------- the whole comparison


@dataclass
class ComparisonSpec:
    settings: list[Setting]
    arms: dict[str, tuple[str, ...]]
    seeds: list[int]
    out: Path
    jobs: int = 1
    timeout_s: float = 1800.0
    keep_checkpoints: bool = False
    reuse: bool = True
    report_only: bool = False
    budget_rollouts: int | None = None
    eval_every_rollouts: int | None = None


def run_comparison(spec: ComparisonSpec, *, progress: Any = print) -> dict[str, Any]:
    """Run every setting x seed x arm (``spec.jobs`` at a time) and return the results document.

    Raises:
        RuntimeError: If a run fails (the others still finish first; every failure is listed), or another comparison
            is running in the same ``spec.out`` (the two would train into, and delete, the same run directories).
    """
    if spec.report_only:  # reads finished runs only
        return _run_comparison(spec, progress)
    spec.out.mkdir(parents=True, exist_ok=True)
    with _exclusive(spec.out / ".compare.lock"):
        return _run_comparison(spec, progress)


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (released when the process ends, even when killed)."""
    with open(lock_path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise RuntimeError(
                f"another comparison ({holder}) is running in {lock_path.parent}; wait for it, or give this one "
                "another --out"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run_comparison(spec: ComparisonSpec, progress: Any) -> dict[str, Any]:
    results: dict[str, Any] = {"settings": {}}
    tasks = []
    for setting in spec.settings:
        if spec.budget_rollouts is not None:
            setting = _replace(setting, budget_rollouts=spec.budget_rollouts)
        if spec.eval_every_rollouts is not None:
            setting = _replace(setting, eval_every_rollouts=spec.eval_every_rollouts)
        entry = results["settings"].setdefault(
            setting.name,
            {
                "setting": _setting_json(setting),
                "arms": {a: {"overrides": list(o), "runs": []} for a, o in spec.arms.items()},
            },
        )
        for overrides in spec.arms.values():
            plan_arm(overrides, setting)  # refuse an arm that cannot run before anything starts
        for seed in spec.seeds:
            assets_dir = spec.out / setting.name / "assets" / f"seed_{seed}"
            assets = build_demo_assets(
                assets_dir,
                num_prompts=setting.num_prompts,
                num_val_prompts=setting.num_val_prompts,
                tier_weights=setting.tier_weights,
                warm_start_steps=setting.warm_start_steps,
                seed=seed,
            )
            population = Population.from_assets(assets, setting)
            for arm, overrides in spec.arms.items():
                tasks.append((setting, arm, overrides, seed, assets, population, entry))
    progress(
        f"{len(tasks)} runs ({len(spec.settings)} settings x {len(spec.seeds)} seeds x {len(spec.arms)} arms), "
        f"{spec.jobs} at a time"
    )
    started = time.monotonic()
    failures = []

    def one(task: tuple[Any, ...]) -> None:
        setting, arm, overrides, seed, assets, population, entry = task
        t0 = time.monotonic()
        try:
            run = run_arm(
                setting,
                arm,
                overrides,
                seed,
                assets,
                population,
                spec.out,
                timeout_s=spec.timeout_s,
                keep_checkpoints=spec.keep_checkpoints,
                reuse=spec.reuse,
                report_only=spec.report_only,
            )
        except RuntimeError as error:
            failures.append(str(error))
            progress(f"FAILED {error}")
            return
        entry["arms"][arm]["runs"].append(run)
        progress(
            f"{setting.name:<11} {arm:<14} seed {seed}: held-out {run['curve']['heldout'][0]:.3f} -> "
            f"{run['final_accuracy']:.3f} at {run['rollouts_at_final']} rollouts, {time.monotonic() - t0:.0f} s"
        )

    with ThreadPoolExecutor(max_workers=max(1, spec.jobs)) as pool:
        list(pool.map(one, tasks))
    for entry in results["settings"].values():
        for arm in entry["arms"].values():
            arm["runs"].sort(key=lambda r: r["seed"])
    results["wall_s"] = round(time.monotonic() - started, 1)
    results["jobs"] = spec.jobs
    if failures:
        raise RuntimeError("some runs failed:\n  " + "\n  ".join(failures))
    return results


def _replace(setting: Setting, **changes: Any) -> Setting:
    return Setting(**{**asdict(setting), **changes})


def _setting_json(setting: Setting) -> dict[str, Any]:
    out = asdict(setting)
    out["tier_weights"] = {str(k): v for k, v in setting.tier_weights.items()}
    return out


# ----------------------------------------------------------------------------------------- summary


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0


def _rollouts_to(target: float, grid: Mapping[str, list[float]], key: str) -> float | None:
    for r, acc in zip(grid["rollouts"], grid[key], strict=True):
        if acc >= target:
            return float(r)
    return None


_FINAL = {"heldout": "final_accuracy", "train": "final_train_accuracy"}


def summarise(results: Mapping[str, Any], baseline: str = "grpo") -> dict[str, Any]:
    """Per setting and arm, for held-out and training-pool accuracy: the value at the budget (mean, sd, min, max
    over seeds), the paired difference to the baseline (same seed), and rollouts to a target relative to the
    baseline's on the same seed.

    The target is the initial accuracy plus ``target_gain_fraction`` of the baseline's mean gain; it is undefined
    (``None``) when the baseline did not improve. Held-out keys are ``final_heldout_*``, ``diff_vs_baseline_*``,
    ``rollouts_to_target_vs_baseline*``; training-pool keys carry a ``train_`` prefix.
    """
    summary: dict[str, Any] = {}
    for name, entry in results["settings"].items():
        fraction = entry["setting"]["target_gain_fraction"]
        arms = entry["arms"]
        base_runs = {r["seed"]: r for r in arms.get(baseline, {}).get("runs", [])}
        targets: dict[str, float | None] = {}
        for key in _FINAL:
            targets[key] = None
            if base_runs:
                start = float(np.mean([r["grid"][key][0] for r in base_runs.values()]))
                gain = float(np.mean([r[_FINAL[key]] for r in base_runs.values()])) - start
                targets[key] = start + fraction * gain if gain > 0 else None
        rows: dict[str, Any] = {}
        for arm, data in arms.items():
            runs = data["runs"]
            if not runs:
                continue
            row: dict[str, Any] = {
                "seeds": len(runs),
                "train_wall_s_mean": round(float(np.mean([r["train_wall_s"] for r in runs])), 1),
            }
            for key, final_key in _FINAL.items():
                prefix = "" if key == "heldout" else "train_"
                finals = [r[final_key] for r in runs]
                mean, sd = _mean_sd(finals)
                row[f"final_{key}_mean"] = round(mean, 4)
                row[f"final_{key}_sd"] = round(sd, 4)
                row[f"final_{key}_min"] = round(min(finals), 4)
                row[f"final_{key}_max"] = round(max(finals), 4)
                paired = [r[final_key] - base_runs[r["seed"]][final_key] for r in runs if r["seed"] in base_runs]
                if paired and arm != baseline:
                    d_mean, d_sd = _mean_sd(paired)
                    row[f"{prefix}diff_vs_baseline_mean"] = round(d_mean, 4)
                    row[f"{prefix}diff_vs_baseline_sd"] = round(d_sd, 4)
                    row[f"{prefix}seeds_above_baseline"] = int(sum(d > 0 for d in paired))
                target = targets[key]
                row[f"target_{key}"] = None if target is None else round(target, 4)
                if target is None:
                    continue
                ratios = []
                for r in runs:
                    mine = _rollouts_to(target, r["grid"], key)
                    base = base_runs.get(r["seed"])
                    theirs = _rollouts_to(target, base["grid"], key) if base is not None else None
                    ratios.append(None if mine is None or not theirs else round(mine / theirs, 3))
                reached = [x for x in ratios if x is not None]
                row[f"{prefix}rollouts_to_target_vs_baseline"] = ratios
                row[f"{prefix}rollouts_to_target_vs_baseline_median"] = (
                    round(float(np.median(reached)), 3) if reached else None
                )
            rows[arm] = row
        summary[name] = rows
    return summary


_LABEL = {"heldout": "held-out population accuracy", "train": "training-pool accuracy"}


def _cells(row: Mapping[str, Any], key: str) -> dict[str, str]:
    """One arm's formatted numbers for ``key`` (``heldout`` or ``train``)."""
    prefix = "" if key == "heldout" else "train_"
    value = (
        f"{row[f'final_{key}_mean']:.3f} +- {row[f'final_{key}_sd']:.3f} "
        f"[{row[f'final_{key}_min']:.3f}, {row[f'final_{key}_max']:.3f}]"
    )
    diff = "-"
    above = "-"
    if f"{prefix}diff_vs_baseline_mean" in row:
        diff = f"{row[f'{prefix}diff_vs_baseline_mean']:+.3f} +- {row[f'{prefix}diff_vs_baseline_sd']:.3f}"
        above = f"{row[f'{prefix}seeds_above_baseline']} of {row['seeds']}"
    ratios = row.get(f"{prefix}rollouts_to_target_vs_baseline")
    if ratios is None:
        ratio = "undefined"
    else:
        median = row[f"{prefix}rollouts_to_target_vs_baseline_median"]
        missed = sum(x is None for x in ratios)
        ratio = ("never" if median is None else f"{median:.2f}x") + (f" ({missed} never)" if missed else "")
    return {"value": value, "diff": diff, "above": above, "ratio": ratio}


def format_summary(summary: Mapping[str, Any], baseline: str = "grpo") -> str:
    """The summary as plain-text tables: per setting, held-out then training-pool accuracy at the budget."""
    lines = []
    for name, rows in summary.items():
        for key, label in _LABEL.items():
            target = next(iter(rows.values())).get(f"target_{key}")
            target_text = "undefined: the baseline did not improve" if target is None else f"{target:.3f}"
            lines.append(f"setting {name}: {label} at the common rollout budget (target {target_text})")
            lines.append(
                f"  {'arm':<14} {'seeds':>5}  {'mean +- sd [min, max]':<28} {'vs ' + baseline + ' (paired)':<18} "
                f"{'above':<8} rollouts to target vs {baseline}"
            )
            for arm, row in rows.items():
                c = _cells(row, key)
                lines.append(
                    f"  {arm:<14} {row['seeds']:>5}  {c['value']:<28} {c['diff']:<18} {c['above']:<8} {c['ratio']}"
                )
    return "\n".join(lines)


def markdown_summary(results: Mapping[str, Any], baseline: str = "grpo") -> str:
    """The summary as markdown tables, one per setting and measure (what docs/results/real_loop/ shows)."""
    out = []
    for name, rows in summarise(results, baseline).items():
        entry = results["settings"][name]
        setting = entry["setting"]
        runs = [r for a in entry["arms"].values() for r in a["runs"]]
        initial = {key: float(np.mean([r["grid"][key][0] for r in runs])) for key in _LABEL}
        out.append(f"### `{name}`: {setting['budget_rollouts']} rollouts per arm")
        out.append("")
        for key, label in _LABEL.items():
            target = next(iter(rows.values())).get(f"target_{key}")
            target_text = (
                f"undefined ({baseline} did not improve)"
                if target is None
                else f"{target:.3f} (initial + {setting['target_gain_fraction']:.0%} of {baseline}'s mean gain)"
            )
            out.append(f"**{label.capitalize()}**, initially {initial[key]:.3f}; target {target_text}:")
            out.append("")
            out.append(
                f"| arm | seeds | at the budget: mean +- sd [min, max] | vs {baseline}, paired by seed | "
                f"seeds above {baseline} | rollouts to target vs {baseline} (median) | training wall per run |"
            )
            out.append("|---|---|---|---|---|---|---|")
            for arm, row in rows.items():
                c = _cells(row, key)
                out.append(
                    f"| `{arm}` | {row['seeds']} | {c['value']} | {c['diff']} | {c['above']} | {c['ratio']} | "
                    f"{row['train_wall_s_mean']:.0f} s |"
                )
            out.append("")
    return "\n".join(out)


# ----------------------------------------------------------------------------------------- figures


def plot_comparison(results: Mapping[str, Any], out_dir: Path, baseline: str = "grpo") -> list[Path]:
    """One PNG per setting: held-out and training-pool accuracy vs rollouts (mean, min-max band over seeds), each
    arm's held-out accuracy minus the baseline's on the same seed, and held-out accuracy per run vs wall time."""
    from cures_verl.experiments.plots import _pyplot, _save

    plt = _pyplot()
    written = []
    for name, entry in results["settings"].items():
        fig, axes = plt.subplots(1, 4, figsize=(21, 4.6))
        base = {r["seed"]: np.array(r["grid"]["heldout"]) for r in entry["arms"].get(baseline, {}).get("runs", [])}
        for arm, data in entry["arms"].items():
            runs = data["runs"]
            if not runs:
                continue
            grid = np.array(runs[0]["grid"]["rollouts"])
            for ax, key in ((axes[0], "heldout"), (axes[1], "train")):
                values = np.array([r["grid"][key] for r in runs])
                line = ax.plot(grid, values.mean(axis=0), label=f"{arm} (n={len(runs)})")[0]
                ax.fill_between(grid, values.min(axis=0), values.max(axis=0), color=line.get_color(), alpha=0.15)
            paired = [np.array(r["grid"]["heldout"]) - base[r["seed"]] for r in runs if r["seed"] in base]
            if paired:
                diff = np.array(paired)
                axes[2].plot(grid, diff.mean(axis=0), color=line.get_color(), label=arm)
                axes[2].fill_between(grid, diff.min(axis=0), diff.max(axis=0), color=line.get_color(), alpha=0.12)
            for i, r in enumerate(runs):
                axes[3].plot(
                    np.array(r["curve"]["wall_s"]) / 60,
                    r["curve"]["heldout"],
                    color=line.get_color(),
                    alpha=0.7,
                    label=arm if i == 0 else None,
                )
        axes[0].set(xlabel="cumulative rollouts", ylabel="held-out population accuracy (exact)", title="held-out")
        axes[1].set(xlabel="cumulative rollouts", ylabel="training-pool accuracy (exact)", title="training pool")
        axes[2].axhline(0.0, color="grey", linewidth=1)
        axes[2].set(
            xlabel="cumulative rollouts", ylabel=f"held-out accuracy minus {baseline}'s", title="paired by seed"
        )
        axes[3].set(xlabel="wall time since launch (min)", ylabel="held-out accuracy (exact)", title="per run")
        for ax in axes:
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.suptitle(
            f"{name}: mean over seeds, band = min..max; accuracy = each problem's exact probability of reward",
        )
        written.append(_save(fig, out_dir / f"{name}.png"))
    return written


def write_results(results: dict[str, Any], results_dir: Path) -> dict[str, Any]:
    """Write results.json (with the summary), summary.md and the figures into ``results_dir``."""
    results_dir.mkdir(parents=True, exist_ok=True)
    results["summary"] = summarise(results)
    (results_dir / "results.json").write_text(json.dumps(results, indent=1))
    (results_dir / "summary.md").write_text(markdown_summary(results))
    plot_comparison(results, results_dir)
    return results


def merge_results(base: dict[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Add the runs of ``new`` into ``base`` (a run of the same setting, arm and seed is replaced)."""
    for name, entry in new["settings"].items():
        target = base.setdefault("settings", {}).setdefault(name, {"setting": entry["setting"], "arms": {}})
        target["setting"] = entry["setting"]
        for arm, data in entry["arms"].items():
            slot = target["arms"].setdefault(arm, {"overrides": data["overrides"], "runs": []})
            slot["overrides"] = data["overrides"]
            seeds = {r["seed"] for r in data["runs"]}
            slot["runs"] = sorted(
                [r for r in slot["runs"] if r["seed"] not in seeds] + data["runs"], key=lambda r: r["seed"]
            )
    base["wall_s"] = round(float(base.get("wall_s", 0.0)) + float(new.get("wall_s", 0.0)), 1)
    return base


def default_jobs() -> int:
    """Runs in parallel by default: one per two cores (a CPU run keeps about two cores busy)."""
    return max(1, (os.cpu_count() or 2) // 2)
