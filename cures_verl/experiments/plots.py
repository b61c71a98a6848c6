"""The paper's figures from a run's records: curriculum violins, allocation, calibration, accuracy curves.

Inputs are what a run writes:

* ``cures.dump_dir/cures_steps.jsonl``: one record per step from the verl adapter (prompt ids, rollouts,
  predicted and realised accuracy, a 20-bin histogram of the eligible pool's estimated accuracy);
* verl's ``file`` logger (``trainer.logger=['console','file']``): ``{"step": N, "data": {metric: value}}``
  per line, under ``$VERL_FILE_LOGGER_ROOT/<project>/<experiment>.jsonl``.

Figures (CurES Sec. 5 / App. B):

* :func:`plot_accuracy_violins`: distribution of estimated accuracy per iteration (Fig. 3), from the
  pool histogram after each iteration's cold start (or its first training step without a cold start);
* :func:`plot_rollouts_vs_accuracy`: rollouts allocated versus estimated accuracy (Fig. 4);
* :func:`plot_calibration`: reliability of the predicted accuracy (beyond the paper);
* :func:`plot_accuracy_curves`: a metric of two or more runs against steps (or rollouts), with the paper's
  steps-to-peak ratio (Fig. 6: steps the method needs to first reach the baseline's peak).
* :func:`plot_accuracy_by_bucket`: accuracy per difficulty bucket over steps (the CPU demo).

matplotlib is imported lazily (the ``plot`` extra); the loaders and :func:`steps_to_peak` need numpy only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "PeakComparison",
    "cumulative_rollouts",
    "progress_at",
    "draws_by_bucket",
    "load_metric_log",
    "load_step_records",
    "plot_accuracy_by_bucket",
    "plot_accuracy_curves",
    "plot_accuracy_violins",
    "plot_calibration",
    "plot_rollouts_vs_accuracy",
    "steps_to_peak",
]

_REQUIRED = (
    "global_step",
    "step",
    "iteration",
    "phase",
    "prompt_ids",
    "rollouts",
    "predicted_accuracy",
    "realised_accuracy",
)


def load_step_records(path: str | Path) -> list[dict[str, Any]]:
    """Read ``cures_steps.jsonl``; every line must be a complete record.

    A step recorded twice (a run resumed from a checkpoint replays the steps after it; the trainer drops those
    records when it resumes, older versions did not) keeps its latest record, the one the resumed run wrote;
    records come back ordered by ``global_step``.

    Raises:
        ValueError: On a malformed line (naming the line number and the missing field).
    """
    records = []
    with open(path) as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not JSON ({exc.msg})") from exc
            missing = [k for k in _REQUIRED if k not in record]
            if missing:
                raise ValueError(f"{path}:{number}: record lacks {', '.join(missing)}")
            records.append(record)
    if not records:
        raise ValueError(f"{path}: no step records")
    latest = {int(record["global_step"]): record for record in records}
    return [latest[step] for step in sorted(latest)]


def load_metric_log(path: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read a verl ``file``-logger JSONL into ``{metric: (steps, values)}`` (steps ascending).

    Raises:
        ValueError: On a malformed line.
    """
    series: dict[str, list[tuple[float, float]]] = {}
    with open(path) as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                step, data = entry["step"], entry["data"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: not a verl file-logger line ({exc})") from exc
            for key, value in data.items():
                if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                    series.setdefault(key, []).append((float(step), float(value)))
    out = {}
    for key, points in series.items():
        arr = np.array(sorted(points))
        out[key] = (arr[:, 0], arr[:, 1])
    return out


def cumulative_rollouts(records: Sequence[Mapping[str, Any]]) -> dict[int, int]:
    """``{global_step: rollouts spent in steps 1..global_step}`` from a run's ``cures_steps.jsonl`` records, with
    step 0 (before training) at 0; cold-start steps count. The x axis of curves at equal rollouts.

    Example:
        >>> cumulative_rollouts([{"global_step": 1, "rollouts": [4, 4]}, {"global_step": 2, "rollouts": [9, 7]}])
        {0: 0, 1: 8, 2: 24}
    """
    out = {0: 0}
    total = 0
    for record in sorted(records, key=lambda r: int(r["global_step"])):
        total += int(sum(record["rollouts"]))
        out[int(record["global_step"])] = total
    return out


PROGRESS_AXES = ("rollouts", "updates", "response_tokens")


def progress_at(
    log: Mapping[str, tuple[np.ndarray, np.ndarray]], steps: np.ndarray, quantity: str
) -> np.ndarray | None:
    """Cumulative ``progress/<quantity>`` (logged every step by every run of ``cures_verl.main``) at ``steps``,
    step 0 (before training) at 0; None when the log has no such metric (a run from before it was logged).

    Raises:
        ValueError: For an unknown quantity, or a step the log has no count for.

    Example:
        >>> log = {"progress/updates": (np.array([1.0, 2.0, 3.0]), np.array([0.0, 0.0, 1.0]))}
        >>> progress_at(log, np.array([0.0, 3.0]), "updates").tolist()
        [0.0, 1.0]
    """
    if quantity not in PROGRESS_AXES:
        raise ValueError(f"unknown progress quantity {quantity!r}; choose one of {PROGRESS_AXES}")
    key = f"progress/{quantity}"
    if key not in log:
        return None
    table = {0.0: 0.0, **dict(zip(log[key][0].tolist(), log[key][1].tolist(), strict=True))}
    missing = [float(s) for s in steps if float(s) not in table]
    if missing:
        raise ValueError(f"{key} was not logged at step(s) {missing[:5]}")
    return np.array([table[float(s)] for s in steps], dtype=np.float64)


def draws_by_bucket(records: Sequence[Mapping[str, Any]], bucket_of: Mapping[int, str]) -> dict[str, tuple[int, int]]:
    """``{bucket: (draws, rollouts)}`` over the training steps of a run's records, a prompt's bucket looked up by its
    stable id (e.g. the demo's difficulty tier); cold-start steps are left out.

    Example:
        >>> rec = [{"phase": "train", "prompt_ids": [0, 1, 0], "rollouts": [2, 6, 4]}, {"phase": "cold_start"}]
        >>> draws_by_bucket(rec, {0: "easy", 1: "hard"})
        {'easy': (2, 6), 'hard': (1, 6)}
    """
    out: dict[str, tuple[int, int]] = {}
    for record in records:
        if record["phase"] != "train":
            continue
        for pid, n in zip(record["prompt_ids"], record["rollouts"], strict=True):
            draws, rollouts = out.get(bucket_of[int(pid)], (0, 0))
            out[bucket_of[int(pid)]] = (draws + 1, rollouts + int(n))
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class PeakComparison:
    """The paper's speed-up measure (Fig. 6): steps to the baseline's peak.

    Attributes:
        peak: The baseline's best value over its run.
        baseline_step: First step at which the baseline reaches its peak.
        method_step: First step at which the method reaches the baseline's peak (None if never).
        ratio: baseline_step / method_step (None if the method never reaches the peak).
    """

    peak: float
    baseline_step: float
    method_step: float | None
    ratio: float | None


def steps_to_peak(baseline: tuple[np.ndarray, np.ndarray], method: tuple[np.ndarray, np.ndarray]) -> PeakComparison:
    """Compare two (steps, values) curves the way the paper does (higher is better).

    Example:
        >>> base = (np.array([5, 10, 15, 20]), np.array([0.5, 0.6, 0.7, 0.65]))
        >>> ours = (np.array([5, 10, 15, 20]), np.array([0.6, 0.72, 0.7, 0.74]))
        >>> steps_to_peak(base, ours)
        PeakComparison(peak=0.7, baseline_step=15.0, method_step=10.0, ratio=1.5)
    """
    b_steps, b_values = (np.asarray(a, dtype=np.float64) for a in baseline)
    m_steps, m_values = (np.asarray(a, dtype=np.float64) for a in method)
    if b_steps.size == 0 or m_steps.size == 0:
        raise ValueError("both curves need at least one point")
    peak = float(b_values.max())
    baseline_step = float(b_steps[np.argmax(b_values >= peak)])
    reached = np.flatnonzero(m_values >= peak)
    if reached.size == 0:
        return PeakComparison(peak, baseline_step, None, None)
    method_step = float(m_steps[reached[0]])
    return PeakComparison(peak, baseline_step, method_step, baseline_step / method_step if method_step else None)


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as error:
        raise ImportError(
            "plotting needs matplotlib: pip install 'cures-verl[plot]' (the gpu and all extras include it), "
            "or pip install matplotlib"
        ) from error

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _iteration_snapshots(records: Sequence[Mapping[str, Any]]) -> dict[int, np.ndarray]:
    """Pool histogram per iteration: after its cold start, else at its first training step."""
    chosen: dict[int, Mapping[str, Any]] = {}
    for record in records:
        if "pool_accuracy_histogram" not in record:
            continue
        it = int(record["iteration"])
        current = chosen.get(it)
        if record["phase"] == "cold_start":
            chosen[it] = record  # the last cold-start record wins
        elif current is None:
            chosen[it] = record
    return {it: np.asarray(r["pool_accuracy_histogram"], dtype=np.float64) for it, r in sorted(chosen.items())}


def plot_accuracy_violins(records: Sequence[Mapping[str, Any]], out: str | Path) -> Path:
    """Fig. 3: violins of the estimated accuracy of each iteration's prompts (from the pool histograms)."""
    snapshots = _iteration_snapshots(records)
    if not snapshots:
        raise ValueError("no record carries pool_accuracy_histogram (was cures.dump_dir set?)")
    plt = _pyplot()
    stats = []
    grid = np.linspace(0.0, 1.0, 201)
    for hist in snapshots.values():
        edges = np.linspace(0.0, 1.0, hist.size + 1)
        centres = (edges[:-1] + edges[1:]) / 2
        # kernel density of the binned values (Gaussian kernel one bin wide)
        width = 1.0 / hist.size
        kernel = np.exp(-0.5 * ((grid[:, None] - centres[None, :]) / width) ** 2)
        density = kernel @ hist
        density /= max(density.sum() * (grid[1] - grid[0]), 1e-12)
        cum = np.cumsum(hist) / max(hist.sum(), 1.0)
        nonzero = np.flatnonzero(hist)
        stats.append(
            {
                "coords": grid,
                "vals": density,
                "mean": float((centres * hist).sum() / max(hist.sum(), 1.0)),
                "median": float(centres[np.searchsorted(cum, 0.5)]),
                "min": float(edges[nonzero[0]]) if nonzero.size else 0.0,
                "max": float(edges[nonzero[-1] + 1]) if nonzero.size else 1.0,
            }
        )
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(stats) + 2), 4))
    ax.violin(stats, positions=list(snapshots), showmeans=True, showextrema=False, widths=0.8)
    ax.set_xticks(list(snapshots))
    ax.set_xlabel("iteration")
    ax.set_ylabel("estimated accuracy (posterior mean)")
    ax.set_ylim(0, 1)
    ax.set_title("Estimated accuracy of each iteration's prompts")
    return _save(fig, out)


def _train_points(records: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    acc, n, realised, iteration = [], [], [], []
    for record in records:
        if record["phase"] != "train":
            continue
        acc.extend(record["predicted_accuracy"])
        n.extend(record["rollouts"])
        realised.extend(record["realised_accuracy"])
        iteration.extend([record["iteration"]] * len(record["rollouts"]))
    if not acc:
        raise ValueError("no training-step records")
    return np.array(acc), np.array(n, dtype=np.float64), np.array(realised), np.array(iteration)


def plot_rollouts_vs_accuracy(records: Sequence[Mapping[str, Any]], out: str | Path, *, bins: int = 10) -> Path:
    """Fig. 4: rollouts allocated per prompt against its estimated accuracy, with the binned mean."""
    acc, n, _, iteration = _train_points(records)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    jitter = np.random.default_rng(0).uniform(-0.15, 0.15, n.size)
    if np.unique(iteration).size > 1:
        scatter = ax.scatter(acc, n + jitter, c=iteration, s=6, alpha=0.35, cmap="viridis")
        fig.colorbar(scatter, ax=ax, label="iteration")
    else:
        ax.scatter(acc, n + jitter, s=6, alpha=0.35, label="drawn prompt (jittered)")
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(acc, edges) - 1, 0, bins - 1)
    means = [n[which == b].mean() if np.any(which == b) else np.nan for b in range(bins)]
    ax.plot((edges[:-1] + edges[1:]) / 2, means, color="black", marker="o", label="mean per accuracy bin")
    ax.set_xlabel("estimated accuracy when drawn")
    ax.set_ylabel("rollouts allocated")
    ax.set_xlim(0, 1)
    ax.legend(loc="upper right")
    ax.set_title("Rollout allocation versus accuracy")
    return _save(fig, out)


def plot_calibration(records: Sequence[Mapping[str, Any]], out: str | Path, *, bins: int = 10) -> Path:
    """Reliability plot: realised group accuracy against the predicted (posterior-mean) accuracy."""
    acc, n, realised, _ = _train_points(records)
    keep = n > 0
    acc, n, realised = acc[keep], n[keep], realised[keep]
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(acc, edges) - 1, 0, bins - 1)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect calibration")
    xs, ys, sizes = [], [], []
    for b in range(bins):
        mask = which == b
        if mask.any():
            xs.append(np.average(acc[mask], weights=n[mask]))
            ys.append(np.average(realised[mask], weights=n[mask]))
            sizes.append(n[mask].sum())
    ax.scatter(xs, ys, s=20 + 200 * np.array(sizes) / max(sizes), zorder=3, label="bins (area = rollouts)")
    ax.plot(xs, ys, zorder=2)
    ax.set_xlabel("predicted accuracy")
    ax.set_ylabel("realised group accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    ax.set_title("Calibration of the posterior")
    return _save(fig, out)


def plot_accuracy_curves(
    runs: Mapping[str, tuple[np.ndarray, np.ndarray]],
    out: str | Path,
    *,
    metric: str,
    baseline: str | None = None,
    xlabel: str = "training step",
) -> tuple[Path, dict[str, PeakComparison]]:
    """Fig. 6: a metric of several runs, with each run's steps-to-peak ratio against ``baseline``.

    Returns:
        The PNG path and ``{run: PeakComparison}`` for every run but the baseline.
    """
    if not runs:
        raise ValueError("no runs to plot")
    baseline = baseline or next(iter(runs))
    if baseline not in runs:
        raise ValueError(f"baseline {baseline!r} is not one of the runs {list(runs)}")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    comparisons: dict[str, PeakComparison] = {}
    for name, (x, y) in runs.items():
        label = name
        if name != baseline:
            comparisons[name] = cmp = steps_to_peak(runs[baseline], (x, y))
            label += f" ({cmp.ratio:.2f}x to the baseline's peak)" if cmp.ratio else " (never reaches the peak)"
        ax.plot(x, y, marker="o", markersize=3, label=label)
    peak = steps_to_peak(runs[baseline], runs[baseline])
    ax.axhline(peak.peak, color="grey", linestyle="--", linewidth=1, label=f"{baseline} peak")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(metric)
    ax.legend(fontsize=8)
    ax.set_title(metric)
    return _save(fig, out), comparisons


def plot_accuracy_by_bucket(
    records: Sequence[Mapping[str, Any]],
    bucket_of_prompt: Mapping[int, Any],
    out: str | Path,
    *,
    window: int = 10,
    title: str = "Training accuracy per difficulty bucket",
) -> tuple[Path, dict[str, list[float]]]:
    """Rollout-weighted training accuracy per bucket (e.g. operand count) over steps, as a moving mean.

    Returns:
        The PNG path and ``{bucket: [accuracy per window]}`` (consecutive non-overlapping windows of steps).
    """
    plt = _pyplot()
    per_bucket: dict[str, list[tuple[int, float, float]]] = {}
    for record in records:
        if record["phase"] != "train":
            continue
        for pid, n, acc in zip(record["prompt_ids"], record["rollouts"], record["realised_accuracy"], strict=True):
            if n:
                key = str(bucket_of_prompt[int(pid)])
                per_bucket.setdefault(key, []).append((int(record["step"]), acc * n, float(n)))
    if not per_bucket:
        raise ValueError("no training-step records")
    fig, ax = plt.subplots(figsize=(6.5, 4))
    windows: dict[str, list[float]] = {}
    for key in sorted(per_bucket):
        points = np.array(per_bucket[key])
        steps = points[:, 0]
        first = steps.min()
        block = ((steps - first) // window).astype(int)
        sums = np.bincount(block, weights=points[:, 1])
        counts = np.bincount(block, weights=points[:, 2])
        with np.errstate(invalid="ignore"):
            means = sums / counts
        windows[key] = [float(v) for v in means]
        centres = first + (np.arange(means.size) + 0.5) * window
        ax.plot(centres, means, marker="o", label=f"{key}")
    ax.set_xlabel(f"step (mean over windows of {window} steps)")
    ax.set_ylabel("training accuracy (rollout-weighted)")
    ax.set_ylim(0, 1)
    ax.legend(title="bucket")
    ax.set_title(title)
    return _save(fig, out), windows


def _save(fig: Any, out: str | Path) -> Path:
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
