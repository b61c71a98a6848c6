"""Smoke of the real-loop comparison: 1 seed, grpo and paper, a budget of 512 rollouts, through verl on CPU."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

pytest.importorskip("verl")
pytest.importorskip("ray")


@pytest.mark.slow
def test_compare_harness_runs_grpo_and_paper_at_equal_rollouts_and_scores_them_exactly(tmp_path):
    command = [
        sys.executable, "-m", "cures_verl.experiments.trainer.demo", "compare",
        "--settings", "default", "--arm", "grpo", "--arm", "paper", "--seeds", "0",
        "--budget-rollouts", "512", "--eval-every-rollouts", "256", "--jobs", "2",
        "--out", str(tmp_path / "runs"), "--results-dir", str(tmp_path / "results"), "--timeout", "600",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    arms = results["settings"]["default"]["arms"]
    grpo, paper = arms["grpo"]["runs"][0], arms["paper"]["runs"][0]
    for run in (grpo, paper):
        assert run["seed"] == 0 and math.isfinite(run["final_accuracy"])
        assert run["rollouts_at_final"] == 512 and run["budget_reached"]
        assert run["grid"]["rollouts"] == [0, 256, 512]
        assert run["curve"]["heldout"][-1] == run["final_accuracy"]
    # same seed, same initial model: both start from the same exact accuracy
    assert grpo["grid"]["heldout"][0] == paper["grid"]["heldout"][0]
    # paper: 4 cold-start steps of 16 x 4 = 256 rollouts and no update, so the policy at 256 is the initial one,
    # exactly; then 2 training steps. grpo: 2 full steps (updates) by 256, 4 by 512.
    assert paper["curve"]["step"] == [0, 4, 6] and paper["updates"] == 2
    assert paper["grid"]["heldout"][1] == paper["grid"]["heldout"][0]
    assert paper["grid"]["heldout"][2] != paper["grid"]["heldout"][0]
    assert grpo["curve"]["step"] == [0, 2, 4] and grpo["updates"] == 4
    assert grpo["grid"]["heldout"][1] != grpo["grid"]["heldout"][0]
    assert paper["draws_by_tier"] and grpo["draws_by_tier"] is None
    summary = results["summary"]["default"]
    difference = paper["final_accuracy"] - grpo["final_accuracy"]
    assert summary["paper"]["diff_vs_baseline_mean"] == pytest.approx(difference, abs=1e-4)
    assert (tmp_path / "results" / "default.png").stat().st_size > 10_000
    assert "held-out population accuracy" in done.stdout
