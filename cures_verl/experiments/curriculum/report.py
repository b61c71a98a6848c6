"""Tables, JSON and the accuracy-versus-rollouts plot of the benchmark.

Functions here return strings or write files; only ``__main__`` prints.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from cures_verl.experiments.curriculum.experiment import SimulationConfig, Spread, StrategySummary
from cures_verl.experiments.curriculum.overhead import OVERHEAD_MODES, baseline_name

__all__ = [
    "format_overhead",
    "format_prediction_quality",
    "format_simulation",
    "plot_curves",
    "plot_reliability",
    "write_json",
]


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "n/a" if value is None or not math.isfinite(value) else format(value, spec)


def _kilo(value: float | None) -> str:
    return "n/a" if value is None else f"{value / 1000:.1f}k"


def format_overhead(result: dict[str, Any]) -> str:
    """Part 1 table from :func:`~cures_verl.experiments.curriculum.overhead.run_overhead`'s result."""
    cfg = result["config"]
    m, n = cfg["batch_size"], cfg["rollouts_per_prompt"]
    lines = [
        f"Part 1 - one sampler step: draw {m} prompts, allocate {m * n} rollouts, update the posteriors",
        "  median and 10th-90th percentile over interleaved repetitions; 'vs dense' = dense reference median / median",
        f"  (load average before/after: {result['load_before'][0]:.2f} / {result['load_after'][0]:.2f} on "
        f"{result['cpu_count']} CPUs)",
        "",
        f"  {'prompts':>9}  {'variant':<22} {'median ms':>9}  {'p10-p90 ms':>13}  {'cpu ms':>7}  {'reps':>4}  "
        f"{'bytes/prompt':>12}  {'vs dense':>8}",
    ]
    for row in result["rows"]:
        spread = f"{row['p10_ms']:.2f}-{row['p90_ms']:.2f}"
        lines.append(
            f"  {row['num_prompts']:>9,}  {row['mode']:<22} {row['median_ms']:>9.2f}  {spread:>13}  "
            f"{row['cpu_median_ms']:>7.2f}  {row['repeats']:>4}  {row['bytes_per_prompt']:>12.1f}  "
            f"{row['reference_ratio']:>7.1f}x"
        )
    ref = cfg.get("baseline_ref")
    by_key = {(r["num_prompts"], r["mode"]): r for r in result["rows"]}
    if ref is not None:
        lines += ["", f"  before/after (median at {ref} -> median now, same interleaved loop; wall, then CPU time):"]
        for (size, mode), row in by_key.items():
            before = by_key.get((size, baseline_name(mode, ref)))
            if before is not None:
                lines.append(
                    f"  {size:>9,}  {mode:<22} {before['median_ms']:>9.2f} -> {row['median_ms']:.2f} ms "
                    f"({before['median_ms'] / row['median_ms']:.1f}x);  cpu {before['cpu_median_ms']:.2f} -> "
                    f"{row['cpu_median_ms']:.2f} ms ({before['cpu_median_ms'] / row['cpu_median_ms']:.1f}x)"
                )
    largest = max((r["num_prompts"] for r in result["rows"]), default=0)
    modes = [r for r in result["rows"] if r["num_prompts"] == largest and r["mode"] in OVERHEAD_MODES]
    if modes:
        worst = max(modes, key=lambda r: r["median_ms"])
        verdict = "met" if worst["median_ms"] < 5.0 else "NOT met"
        lines += [
            "",
            f"  goal (every CurES variant, median < 5 ms at the largest size, {largest:,} prompts): {verdict} "
            f"(slowest: {worst['mode']} {worst['median_ms']:.2f} ms)",
        ]
    return "\n".join(lines)


def _range(spread: Spread, fmt: Any, never: str = "never") -> str:
    if spread.count == 0:
        return never
    text = f"{fmt(spread.median)} [{fmt(spread.low)}-{fmt(spread.high)}]"
    missing = len(spread.values) - spread.count
    return text + (f" ({missing} n/r)" if missing else "")


def format_simulation(
    config: SimulationConfig, targets: dict[int, float], summaries: dict[str, StrategySummary]
) -> str:
    """Part 2 tables: rollouts to the target, accuracy at the fixed budget, fraction of the oracle's gain."""
    learner = config.learner
    start = np.mean([s.curves[:, 0].mean() for s in summaries.values()])
    lines = [
        f"Part 2 - sample efficiency on the simulated learner ({len(config.seeds)} seeds; median [min-max] over seeds "
        "unless noted)",
        f"  {learner.num_prompts:,} prompts in {learner.num_clusters} clusters, transfer {learner.transfer}, "
        f"difficulty logit N({learner.difficulty_mean}, {learner.difficulty_std}^2); "
        f"optimizer {learner.optimizer} lr {learner.learning_rate:g}",
        f"  budget {config.batch_size} x {config.rollouts_per_prompt} = {config.budget} rollouts per step, "
        f"{config.steps} steps = {config.total_budget:,} rollouts per run; start accuracy {start:.3f}",
        (
            f"  target accuracy {config.target:.3f}"
            if config.target is not None
            else f"  target accuracy per seed: start + {config.target_fraction} x uniform's gain on that seed "
            f"({', '.join(f'{t:.3f}' for t in targets.values())})"
        ),
        "",
        f"  {'strategy':<22} {'rollouts to target':>26}  {'vs uniform':>24}  {'oracle / this':>13}",
    ]
    uniform = summaries.get("uniform")
    uniform_median = uniform.rollouts_to_target.median if uniform is not None else None
    ratio_bound = (
        f"> {config.total_budget / uniform_median:.2f}" if uniform_median else "never"
    )  # not reached within the budget
    for s in summaries.values():
        lines.append(
            f"  {s.name:<22} {_range(s.rollouts_to_target, _kilo, f'> {_kilo(config.total_budget)}'):>26}  "
            f"{_range(s.rollouts_vs_uniform, lambda v: _fmt(v, '.2f'), ratio_bound):>24}  "
            f"{_fmt(s.oracle_rollouts_ratio.median, '.2f') if s.oracle_rollouts_ratio.count else 'n/a':>13}"
        )
    equal = min(int(min(v for v in s.updates.values if v is not None)) for s in summaries.values())
    lines += [
        "",
        f"  at the fixed budget of {config.total_budget:,} rollouts (mean +- sd over seeds):",
        f"  {'strategy':<22} {'final accuracy':>15} {'gain':>15} {'of oracle gain':>15} "
        f"{f'gain @{equal} upd':>15} {'informative':>11} {'updates':>7} {'coverage':>8}",
    ]
    for s in summaries.values():
        final = f"{_fmt(s.final_accuracy.mean)} +- {_fmt(s.final_accuracy.std)}"
        gain = f"{_fmt(s.gain.mean)} +- {_fmt(s.gain.std)}"
        oracle = f"{_fmt(s.oracle_fraction.mean, '.2f')} +- {_fmt(s.oracle_fraction.std, '.2f')}"
        per_update = f"{_fmt(s.gain_at_equal_updates.mean)} +- {_fmt(s.gain_at_equal_updates.std)}"
        lines.append(
            f"  {s.name:<22} {final:>15} {gain:>15} {oracle:>15} {per_update:>15} "
            f"{_fmt(s.informative_fraction.mean, '.2f'):>11} {_fmt(s.updates.mean, '.0f'):>7} "
            f"{_fmt(s.coverage.mean, '.2f'):>8}"
        )
    lines += [
        "",
        "  '> X': not reached within the budget (n/r: seeds that did not). 'oracle / this': the oracle's rollouts to",
        "  the target over this strategy's (paired, median). 'of oracle gain': paired gain over the oracle's.",
        f"  'gain @{equal} upd': gain after {equal} optimiser steps (the fewest any strategy made), i.e. per update",
        "  whatever an update cost. 'informative': rollouts trained on in groups with both outcomes, over all rollouts",
        "  spent (cold-start, screening and discarded ones included). 'updates': optimiser steps. 'coverage': share",
        "  of the dataset's prompts trained on at least once.",
    ]
    quality = format_prediction_quality(summaries)
    if quality:
        lines += ["", quality]
    return "\n".join(lines)


def format_prediction_quality(summaries: dict[str, StrategySummary]) -> str:
    """Prediction quality of the strategies that predict accuracies ("" if none does)."""
    predicting = [s for s in summaries.values() if s.predicts]
    if not predicting:
        return ""
    lines = [
        "  prediction quality (strategies with a posterior; mean +- sd over seeds of the per-run mean over steps):",
        f"  {'strategy':<22} {'rank corr realised':>19} {'rank corr true':>15} {'calibration error':>18}",
    ]
    for s in predicting:
        realised = f"{_fmt(s.rank_corr.mean)} +- {_fmt(s.rank_corr.std)}"
        true = f"{_fmt(s.rank_corr_true.mean)} +- {_fmt(s.rank_corr_true.std)}"
        lines.append(f"  {s.name:<22} {realised:>19} {true:>15} {_fmt(s.calibration_error):>18}")
    lines += [
        "  'rank corr': Spearman correlation, within a step, between the accuracy predicted when a prompt was chosen",
        "  (posterior mean) and its realised group accuracy ('true': its exact accuracy then). 'calibration error':",
        "  rollout-weighted mean over 10 bins of predicted accuracy of |mean predicted - mean realised|.",
    ]
    return "\n".join(lines)


def plot_curves(
    config: SimulationConfig,
    targets: dict[int, float],
    summaries: dict[str, StrategySummary],
    path: Path,
    *,
    title: str = "",
) -> Path:
    """Accuracy versus rollouts, one line per strategy (mean over seeds), min-max over seeds shaded.

    Left: the mean accuracy. Right: its gain over the seed's start, paired by seed (each seed is its own dataset,
    so the spread of absolute accuracies mostly shows how the datasets differ, the spread of gains how the runs do).

    Raises:
        ImportError: If matplotlib is missing (install the ``plot`` extra or pass ``--no-plot``).
    """
    plt = _pyplot()
    x = np.arange(config.steps + 1) * config.budget
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 5.5))
    colours = [plt.get_cmap("tab10")(i) for i in range(10)]
    for i, summary in enumerate(summaries.values()):
        style = {"color": colours[i % len(colours)], "linewidth": 2.2 if summary.name.startswith("cures") else 1.4}
        style["linestyle"] = "--" if summary.name == "oracle" else "-"
        left.plot(x, summary.curve_mean, label=summary.name, **style)
        left.fill_between(x, summary.curve_low, summary.curve_high, color=style["color"], alpha=0.12, linewidth=0)
        gains = summary.curves - summary.curves[:, :1]
        right.plot(x, gains.mean(axis=0), label=summary.name, **style)
        right.fill_between(x, gains.min(axis=0), gains.max(axis=0), color=style["color"], alpha=0.12, linewidth=0)
    target = float(np.mean(list(targets.values())))
    target_line = left.axhline(target, color="grey", linestyle=":", linewidth=1, label=f"mean target {target:.3f}")
    left.legend(handles=[target_line], fontsize=8, loc="upper left")
    left.set_ylabel("mean true accuracy over the dataset")
    right.set_ylabel("gain over the seed's start accuracy (paired)")
    for ax in (left, right):
        ax.set_xlabel("rollouts spent (cold-start, screening and discarded rollouts included)")
        ax.grid(alpha=0.3)
    right.legend(fontsize=8, ncol=2, loc="upper left")
    learner = config.learner
    fig.suptitle(
        title
        or f"Simulated GRPO learner: {learner.num_prompts:,} prompts, transfer {learner.transfer}, "
        f"{learner.optimizer} lr {learner.learning_rate:g}, {config.budget} rollouts/step, "
        f"{len(config.seeds)} seeds (min-max shaded)",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_json(payload: dict[str, Any], path: Path) -> Path:
    """Write ``payload`` as indented JSON (NaN and inf become null)."""

    def clean(value: Any) -> Any:
        if isinstance(value, float):
            return value if math.isfinite(value) else None
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        if isinstance(value, np.generic):
            return clean(value.item())
        return value

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(clean(payload), indent=1) + "\n", encoding="utf-8")
    return path


def draw_reliability(ax: Any, summaries: dict[str, StrategySummary], names: list[str] | None = None) -> int:
    """Draw the reliability lines of ``names`` (default: every strategy that predicts) on a matplotlib ``ax``.

    Per bin of predicted accuracy, pooled over seeds: mean realised group accuracy (solid, marker area proportional
    to the bin's rollouts) and mean true accuracy (dotted) against the mean predicted accuracy.

    Returns:
        The number of strategies drawn.
    """
    chosen = [summaries[n] for n in (names or list(summaries)) if n in summaries and summaries[n].predicts]
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
    colours = ["tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple", "tab:brown"]
    for i, summary in enumerate(chosen):
        table = summary.calibration
        used = table[:, 0] > 0
        weight = table[used, 0]
        predicted, realised, true = (table[used, k] / weight for k in (1, 2, 3))
        colour = colours[i % len(colours)]
        label = f"{summary.name} (error {_fmt(summary.calibration_error)})"
        ax.plot(predicted, realised, color=colour, marker="o", markersize=3, label=label)
        ax.scatter(predicted, realised, s=10 + 250 * weight / weight.max(), color=colour, alpha=0.3)
        ax.plot(predicted, true, color=colour, linestyle=":", linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    return len(chosen)


def plot_reliability(
    summaries: dict[str, StrategySummary], path: Path, *, names: list[str] | None = None, title: str = ""
) -> Path:
    """Reliability plot of the strategies that predict accuracies (see :func:`draw_reliability`) to ``path``.

    Raises:
        ValueError: If none of the strategies predicts accuracies.
        ImportError: If matplotlib is missing.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    if draw_reliability(ax, summaries, names) == 0:
        plt.close(fig)
        raise ValueError("no strategy with accuracy predictions to plot")
    ax.set_xlabel("predicted accuracy (posterior mean when chosen), bin mean")
    ax.set_ylabel("realised group accuracy (solid), true accuracy (dotted)")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(title or "Calibration of the predicted accuracy", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "the benchmark plots need matplotlib: pip install 'cures-verl[plot]', or pass --no-plot"
        ) from exc
    return plt
