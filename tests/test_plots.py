"""The paper's figures from fixture run logs (tests/fixtures/run_logs)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from cures_verl.plots import (  # noqa: E402
    load_metric_log,
    load_step_records,
    plot_accuracy_by_bucket,
    plot_accuracy_curves,
    plot_accuracy_violins,
    plot_calibration,
    plot_rollouts_vs_accuracy,
    steps_to_peak,
)

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / "tests" / "fixtures" / "run_logs"


def _is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 2000


def test_curriculum_figures_are_written(tmp_path):
    records = load_step_records(LOGS / "cures_steps.jsonl")
    for fn, name in (
        (plot_accuracy_violins, "violins.png"),
        (plot_rollouts_vs_accuracy, "alloc.png"),
        (plot_calibration, "calibration.png"),
    ):
        assert _is_png(fn(records, tmp_path / name))


def test_bucket_curves_weight_accuracy_by_rollouts(tmp_path):
    records = load_step_records(LOGS / "cures_steps.jsonl")
    buckets = {int(k): v for k, v in json.loads((LOGS / "difficulty.json").read_text()).items()}
    png, windows = plot_accuracy_by_bucket(records, buckets, tmp_path / "buckets.png", window=4)
    assert _is_png(png) and set(windows) <= {"1", "2", "3"}
    # recompute one bucket's first window by hand
    first_train = min(r["step"] for r in records if r["phase"] == "train")
    num = den = 0.0
    for r in records:
        if r["phase"] == "train" and r["step"] < first_train + 4:
            for pid, n, acc in zip(r["prompt_ids"], r["rollouts"], r["realised_accuracy"], strict=True):
                if buckets[pid] == 1:
                    num, den = num + acc * n, den + n
    assert windows["1"][0] == pytest.approx(num / den)


def test_steps_to_peak_matches_the_papers_definition():
    base = (np.array([1, 2, 3, 4, 5]), np.array([0.1, 0.3, 0.5, 0.5, 0.4]))
    ours = (np.array([1, 2, 3, 4, 5]), np.array([0.2, 0.5, 0.6, 0.6, 0.6]))
    cmp = steps_to_peak(base, ours)
    assert (cmp.peak, cmp.baseline_step, cmp.method_step, cmp.ratio) == (0.5, 3.0, 2.0, 1.5)
    never = steps_to_peak(base, (np.array([1, 2]), np.array([0.1, 0.2])))
    assert never.method_step is None and never.ratio is None


def test_accuracy_curves_from_verl_file_logs(tmp_path):
    metric = "val-core/cures-math500/acc/mean@1"
    runs = {name: load_metric_log(LOGS / f"{name}.jsonl")[metric] for name in ("grpo", "cures")}
    png, comparisons = plot_accuracy_curves(runs, tmp_path / "curves.png", metric=metric, baseline="grpo")
    assert _is_png(png)
    assert comparisons["cures"].ratio is not None and comparisons["cures"].ratio > 1


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
    from cures_verl.plots import cumulative_rollouts, load_metric_log

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
