"""The paper's figures from fixture run logs (tests/fixtures/run_logs)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from cures_verl.experiments.plots import (  # noqa: E402
    load_metric_log,
    load_step_records,
    plot_accuracy_by_bucket,
    plot_accuracy_curves,
    plot_accuracy_violins,
    plot_calibration,
    plot_rollouts_vs_accuracy,
    steps_to_peak,
)

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / "tests" / "fixtures" / "run_logs"


def _is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 2000


@pytest.fixture
def figures(monkeypatch):
    """Every figure the plot functions save, kept (with its artists) after the PNG is written."""
    from cures_verl.experiments import plots

    saved = []
    save = plots._save

    def keep(fig, out):
        saved.append(fig)
        return save(fig, out)

    monkeypatch.setattr(plots, "_save", keep)
    return saved


def _train_columns(records):
    """Predicted accuracy, rollouts, realised accuracy and iteration of every drawn prompt of the training steps."""
    rows = [
        (p, n, a, r["iteration"])
        for r in records
        if r["phase"] == "train"
        for p, n, a in zip(r["predicted_accuracy"], r["rollouts"], r["realised_accuracy"], strict=True)
    ]
    return tuple(np.array(column, dtype=np.float64) for column in zip(*rows, strict=True))


def test_the_violins_show_each_iterations_pool_after_its_cold_start(tmp_path, figures):
    from matplotlib.collections import LineCollection

    records = load_step_records(LOGS / "cures_steps.jsonl")
    assert _is_png(plot_accuracy_violins(records, tmp_path / "violins.png"))
    (ax,) = figures[0].axes
    (means,) = [c for c in ax.collections if isinstance(c, LineCollection)]  # showmeans=True, no extrema
    expected = {}
    for it in sorted({r["iteration"] for r in records}):
        mine = [r for r in records if r["iteration"] == it]
        cold = [r for r in mine if r["phase"] == "cold_start"]
        hist = np.array((cold[-1] if cold else mine[0])["pool_accuracy_histogram"], dtype=np.float64)
        centres = (np.arange(hist.size) + 0.5) / hist.size
        expected[it] = (centres * hist).sum() / hist.sum()
    assert list(ax.get_xticks()) == list(expected)
    # one body per iteration, its mean marked at the histogram's mean
    assert len(ax.collections) == len(expected) + 1 and len(expected) > 1
    segments = means.get_segments()
    assert [float(seg[:, 0].mean()) for seg in segments] == pytest.approx(list(expected))
    assert [float(seg[0, 1]) for seg in segments] == pytest.approx(list(expected.values()))


def test_the_allocation_figure_plots_every_drawn_prompt_and_the_mean_per_accuracy_bin(tmp_path, figures):
    records = load_step_records(LOGS / "cures_steps.jsonl")
    assert _is_png(plot_rollouts_vs_accuracy(records, tmp_path / "alloc.png", bins=10))
    ax = figures[0].axes[0]
    predicted, rollouts, _, _ = _train_columns(records)
    (points,) = ax.collections
    xy = points.get_offsets()
    np.testing.assert_array_equal(xy[:, 0], predicted)
    assert np.all(np.abs(xy[:, 1] - rollouts) <= 0.15)  # jittered by at most 0.15
    (line,) = ax.lines
    which = np.clip(np.digitize(predicted, np.linspace(0, 1, 11)) - 1, 0, 9)
    means = [rollouts[which == b].mean() if (which == b).any() else np.nan for b in range(10)]
    np.testing.assert_allclose(line.get_xdata(), (np.arange(10) + 0.5) / 10)
    np.testing.assert_allclose(line.get_ydata(), means)
    assert np.unique(means).size > 2


def test_the_calibration_figure_plots_the_rollout_weighted_accuracy_per_bin(tmp_path, figures):
    records = load_step_records(LOGS / "cures_steps.jsonl")
    assert _is_png(plot_calibration(records, tmp_path / "calibration.png", bins=10))
    ax = figures[0].axes[0]
    predicted, rollouts, realised, _ = _train_columns(records)
    which = np.clip(np.digitize(predicted, np.linspace(0, 1, 11)) - 1, 0, 9)
    kept = [b for b in range(10) if ((which == b) & (rollouts > 0)).any()]
    xs = [np.average(predicted[which == b], weights=rollouts[which == b]) for b in kept]
    ys = [np.average(realised[which == b], weights=rollouts[which == b]) for b in kept]
    diagonal, curve = ax.lines
    np.testing.assert_array_equal(diagonal.get_xydata(), [[0, 0], [1, 1]])
    np.testing.assert_allclose(curve.get_xydata(), np.column_stack([xs, ys]))
    np.testing.assert_allclose(ax.collections[0].get_offsets(), np.column_stack([xs, ys]))
    assert len(kept) > 2


def test_bucket_curves_weight_accuracy_by_rollouts(tmp_path, figures):
    records = load_step_records(LOGS / "cures_steps.jsonl")
    buckets = {int(k): v for k, v in json.loads((LOGS / "difficulty.json").read_text()).items()}
    png, windows = plot_accuracy_by_bucket(records, buckets, tmp_path / "buckets.png", window=4)
    assert _is_png(png) and set(windows) == {"1", "2", "3"}
    # every bucket's windows by hand: rollout-weighted accuracy over consecutive blocks of 4 steps from its first
    points: dict[str, list[tuple[int, float, int]]] = {}
    for r in records:
        if r["phase"] == "train":
            for pid, n, acc in zip(r["prompt_ids"], r["rollouts"], r["realised_accuracy"], strict=True):
                if n:
                    points.setdefault(str(buckets[pid]), []).append((r["step"], acc * n, n))
    lines = {line.get_label(): line for line in figures[0].axes[0].lines}
    assert set(lines) == set(windows) == set(points)
    for key, rows in points.items():
        first = min(step for step, _, _ in rows)
        blocks = sorted({(step - first) // 4 for step, _, _ in rows})
        expected = [
            sum(c for s, c, _ in rows if (s - first) // 4 == b) / sum(n for s, _, n in rows if (s - first) // 4 == b)
            for b in blocks
        ]
        assert blocks == list(range(len(blocks))) and len(blocks) > 1
        assert windows[key] == pytest.approx(expected), key
        np.testing.assert_allclose(lines[key].get_ydata(), expected)
        np.testing.assert_allclose(lines[key].get_xdata(), first + (np.arange(len(blocks)) + 0.5) * 4)


def test_steps_to_peak_matches_the_papers_definition():
    base = (np.array([1, 2, 3, 4, 5]), np.array([0.1, 0.3, 0.5, 0.5, 0.4]))
    ours = (np.array([1, 2, 3, 4, 5]), np.array([0.2, 0.5, 0.6, 0.6, 0.6]))
    cmp = steps_to_peak(base, ours)
    assert (cmp.peak, cmp.baseline_step, cmp.method_step, cmp.ratio) == (0.5, 3.0, 2.0, 1.5)
    never = steps_to_peak(base, (np.array([1, 2]), np.array([0.1, 0.2])))
    assert never.method_step is None and never.ratio is None


def test_accuracy_curves_from_verl_file_logs(tmp_path, figures):
    from cures_verl.experiments.plots import PeakComparison

    metric = "val-core/cures-math500/acc/mean@1"
    runs = {name: load_metric_log(LOGS / f"{name}.jsonl")[metric] for name in ("grpo", "cures")}
    png, comparisons = plot_accuracy_curves(runs, tmp_path / "curves.png", metric=metric, baseline="grpo")
    assert _is_png(png)
    # the fixture: GRPO peaks at step 30 (its last validation); CurES first reaches that value at step 15
    peak = float(runs["grpo"][1].max())
    assert comparisons == {"cures": PeakComparison(peak=peak, baseline_step=30.0, method_step=15.0, ratio=2.0)}
    ax = figures[0].axes[0]
    grpo, cures, peak_line = ax.lines
    for line, name in ((grpo, "grpo"), (cures, "cures")):
        np.testing.assert_array_equal(line.get_xdata(), runs[name][0])
        np.testing.assert_array_equal(line.get_ydata(), runs[name][1])
    assert cures.get_label() == "cures (2.00x to the baseline's peak)" and grpo.get_label() == "grpo"
    assert list(peak_line.get_ydata()) == [peak, peak]


def test_malformed_records_are_reported_with_the_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"step": 0}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:1: record lacks"):
        load_step_records(bad)
    bad.write_text("not json\n")
    with pytest.raises(ValueError, match="not a verl file-logger line"):
        load_metric_log(bad)


def test_a_step_recorded_twice_keeps_the_resumed_runs_record(tmp_path):
    lines = (LOGS / "cures_steps.jsonl").read_text().splitlines()
    first, second, third = (json.loads(line) for line in lines[:3])
    replayed = dict(second, rollouts=[9] * len(second["rollouts"]))  # the resumed run's step 2
    path = tmp_path / "resumed.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in (first, second, third, replayed)) + "\n")
    records = load_step_records(path)
    assert [r["global_step"] for r in records] == [first["global_step"], second["global_step"], third["global_step"]]
    assert records[1] == replayed


def test_cli_writes_the_figures(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "plot_curriculum.py"),
            "curriculum",
            str(LOGS / "cures_steps.jsonl"),
            "--out-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert _is_png(tmp_path / "accuracy_violins.png") and _is_png(tmp_path / "rollouts_vs_accuracy.png")
    curves = _plot_curves("--x", "step", "--out", str(tmp_path / "c.png"))
    assert curves.returncode == 0, curves.stderr
    assert "ratio" in curves.stdout and _is_png(tmp_path / "c.png")


def _plot_curves(*args: str, runs: tuple[str, ...] = ("GRPO=grpo.jsonl", "CurES=cures.jsonl")):
    named = [item for run in runs for item in ("--run", run.replace("=", f"={LOGS}/", 1))]
    command = [sys.executable, str(ROOT / "scripts" / "plot_curriculum.py"), "curves", *named, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_curves_against_cumulative_rollouts_count_cold_start_steps(tmp_path):
    from cures_verl.experiments.plots import cumulative_rollouts, load_metric_log

    # CurES: 4 cold-start steps of 16 rollouts, then steps of 32; GRPO: 32 every step
    template = json.loads((LOGS / "cures_steps.jsonl").read_text().splitlines()[0])
    records = [
        {**template, "global_step": s, "step": s - 1, "rollouts": [4] * 4 if s <= 4 else [8] * 4} for s in range(1, 31)
    ]
    steps_log = tmp_path / "cures_steps.jsonl"
    steps_log.write_text("".join(json.dumps(r) + "\n" for r in records))
    table = cumulative_rollouts(records)
    assert (table[0], table[4], table[5], table[30]) == (0, 64, 96, 64 + 26 * 32)
    metric = "val-core/cures-math500/acc/mean@1"
    cures_steps, cures_values = load_metric_log(LOGS / "cures.jsonl")[metric]
    grpo_steps, grpo_values = load_metric_log(LOGS / "grpo.jsonl")[metric]
    out = _plot_curves(
        "--steps-log", f"CurES={steps_log}", "--rollouts-per-step", "32", "--out", str(tmp_path / "r.png")
    )
    assert out.returncode == 0, out.stderr
    # the printed comparison is in rollouts: the baseline's peak step x 32, and CurES's step through the table
    peak = grpo_values.max()
    base_x = grpo_steps[np.argmax(grpo_values >= peak)] * 32
    hit = np.flatnonzero(cures_values >= peak)
    expected_x = f"{table[int(cures_steps[hit[0]])]}" if hit.size else "never"
    assert f"baseline peak {peak:.4f} at rollouts {base_x:g}; reached at rollouts {expected_x}" in out.stdout
    missing = _plot_curves("--out", str(tmp_path / "m.png"), runs=("GRPO=grpo.jsonl",))
    assert missing.returncode != 0 and "--rollouts-per-step" in missing.stderr


def test_curves_read_progress_metrics_for_every_axis(tmp_path):
    # logs as cures_verl.main writes them: progress/* every step; GRPO 32 rollouts and one update per step, CurES
    # two cold-start steps of 16 rollouts without an update first
    metric = "val-core/cures-math500/acc/mean@1"
    logs = {}
    for name, cold in (("grpo", 0), ("cures", 2)):
        lines, rollouts, updates = [], 0, 0
        for step in range(1, 11):
            rollouts += 16 if step <= cold else 32
            updates += 0 if step <= cold else 1
            data = {"progress/rollouts": rollouts, "progress/updates": updates, "progress/response_tokens": 5 * step}
            if step % 5 == 0:
                data[metric] = 0.1 * step / 5 + (0.05 if name == "cures" else 0.0)
            lines.append(json.dumps({"step": step, "data": data}))
        lines.insert(0, json.dumps({"step": 0, "data": {metric: 0.0}}))  # val_before_train
        logs[name] = tmp_path / f"{name}.jsonl"
        logs[name].write_text("\n".join(lines) + "\n")
    runs = ("--run", f"GRPO={logs['grpo']}", "--run", f"CurES={logs['cures']}")
    script = [sys.executable, str(ROOT / "scripts" / "plot_curriculum.py"), "curves", *runs]

    def plot(*args):
        done = subprocess.run([*script, *args, "--out", str(tmp_path / "p.png")], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    # GRPO peaks (0.2) at step 10 = 320 rollouts = 10 updates; CurES reaches 0.2 at step 10 too (0.25 there; 0.15 at
    # step 5 is short), i.e. at 288 rollouts and 8 updates
    assert "baseline peak 0.2000 at rollouts 320; reached at rollouts 288.0" in plot()
    assert "baseline peak 0.2000 at updates 10; reached at updates 8.0" in plot("--x", "updates")
    assert "at response tokens 50; reached at response tokens 50.0" in plot("--x", "response_tokens")
    old = tmp_path / "old.jsonl"
    old.write_text(json.dumps({"step": 1, "data": {metric: 0.1}}) + "\n")
    done = subprocess.run(
        [*script[:-4], "--run", f"old={old}", "--x", "updates", "--out", str(tmp_path / "o.png")],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "no progress/updates" in done.stderr
