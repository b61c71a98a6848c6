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
