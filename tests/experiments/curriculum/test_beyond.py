"""The pre-registered suites: settings as written in docs/beyond_the_paper.md, the goal check, an end-to-end run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cures_verl.config import preset_config
from cures_verl.experiments.curriculum.__main__ import main
from cures_verl.experiments.curriculum.beyond import (
    DEV_SEEDS,
    PEERS,
    REPORTED_SEEDS,
    Verdict,
    dev_variants,
    judge,
    reported_variants,
    run_suite,
    suite_cells,
)
from cures_verl.experiments.curriculum.experiment import Spread, StrategySummary
from cures_verl.experiments.curriculum.recommended import RECOMMENDED_NAME
from cures_verl.experiments.strategies import DEFAULT_STRATEGIES


def test_reported_cells_are_the_pre_registered_settings_on_seeds_0_to_9_under_both_optimisers():
    cells = {cell.name: cell.config for cell in suite_cells("beyond")}
    assert sorted(cells) == sorted(
        f"{s}_{o}" for s in ("default", "hard", "transfer", "budget") for o in ("normalized", "sgd")
    )
    for config in cells.values():
        assert config.seeds == REPORTED_SEEDS == tuple(range(10))
        assert set(DEFAULT_STRATEGIES) <= set(config.strategies)
        assert {name for name, _, _ in reported_variants()} <= set(config.strategies)
        assert config.target_fraction == 0.8 and config.target is None
    default = cells["default_normalized"]
    assert (default.learner.num_prompts, default.batch_size, default.rollouts_per_prompt, default.steps) == (
        9600,
        64,
        8,
        225,
    )
    assert cells["hard_sgd"].learner.difficulty_mean == -2.5 and cells["hard_sgd"].learner.learning_rate == 2.5
    assert cells["transfer_normalized"].learner.transfer == 0.9
    assert cells["transfer_normalized"].learner.learning_rate == 0.075
    assert cells["transfer_sgd"].learner.learning_rate == 1.4
    budget = cells["budget_normalized"]
    assert (budget.rollouts_per_prompt, budget.steps, budget.learner.learning_rate) == (16, 112, 0.12)


def test_development_cells_share_no_seed_and_no_setting_with_the_reported_ones():
    reported = suite_cells("beyond")
    for cell in suite_cells("dev"):
        assert not set(cell.config.seeds) & set(REPORTED_SEEDS)
        assert cell.config.seeds == DEV_SEEDS
        for other in reported:
            assert cell.config.learner.num_prompts != other.config.learner.num_prompts
            assert cell.config.learner.difficulty_mean != other.config.learner.difficulty_mean


def test_every_dev_variant_and_ablation_is_a_valid_config():
    names = set()
    for name, preset, overrides in (*dev_variants(), *reported_variants()):
        preset_config(preset, overrides)
        names.add(name)
    assert len(names) == len(dev_variants()) + len(reported_variants()) - len(
        {n for n, _, _ in dev_variants()} & {n for n, _, _ in reported_variants()}
    )


def test_unknown_suites_and_settings_are_rejected_with_the_choices():
    with pytest.raises(ValueError, match="beyond"):
        suite_cells("nope")
    with pytest.raises(ValueError, match="default, hard"):
        suite_cells("beyond", only=["defualt"])


def _summary(name, gains, oracle_fraction):
    spread = Spread.of(gains)
    empty = np.zeros(1)
    return StrategySummary(
        name=name,
        description="",
        citation="",
        rollouts_to_target=spread,
        rollouts_vs_uniform=spread,
        final_accuracy=spread,
        gain=spread,
        oracle_fraction=Spread.of(oracle_fraction),
        gain_at_equal_updates=spread,
        informative_fraction=spread,
        updates=spread,
        curve_mean=empty,
        curve_low=empty,
        curve_high=empty,
        curves=empty,
    )


def test_judge_compares_with_the_best_peer_seed_by_seed():
    summaries = {
        "uniform": _summary("uniform", [0.20, 0.20, 0.20], [0.8] * 3),
        "mopps": _summary("mopps", [0.25, 0.21, 0.30], [0.9] * 3),
        RECOMMENDED_NAME: _summary(RECOMMENDED_NAME, [0.26, 0.22, 0.28], [0.95, 0.93, 0.91]),
    }
    verdict = judge(summaries)
    assert verdict == Verdict(
        oracle_fraction=pytest.approx(0.93),
        meets_oracle_goal=True,
        best_peer="mopps",
        margin=pytest.approx(0.0),
        wins=2,
        seeds=3,
        ahead_of_every_peer=False,  # equal mean gain is not ahead
    )
    summaries[RECOMMENDED_NAME] = _summary(RECOMMENDED_NAME, [0.26, 0.22, 0.29], [0.89] * 3)
    verdict = judge(summaries)
    assert verdict.ahead_of_every_peer and not verdict.meets_oracle_goal and verdict.wins == 2
    assert set(PEERS) == set(DEFAULT_STRATEGIES) - {RECOMMENDED_NAME, "oracle"}
    with pytest.raises(ValueError, match="none of the peers"):
        judge({RECOMMENDED_NAME: summaries[RECOMMENDED_NAME]})


def test_quick_suite_writes_its_tables_json_and_plots(tmp_path):
    pytest.importorskip("matplotlib")
    result = run_suite("beyond", out=tmp_path, workers=1, quick=True, only=["default"])
    assert set(result.verdicts) == {"default_normalized", "default_sgd"}
    assert all(v is not None for v in result.verdicts.values())
    text = (tmp_path / "beyond.md").read_text()
    assert "| default | normalized |" in text and f"**{RECOMMENDED_NAME}**" in text and "rec_paper_schedule" in text
    payload = json.loads((tmp_path / "beyond.json").read_text())
    cell = payload["cells"]["default_normalized"]
    assert cell["verdict"]["best_peer"] in PEERS
    recommended = cell["strategies"][RECOMMENDED_NAME]
    assert recommended["calibration"]["error"] is not None and "curves" not in recommended
    assert len(recommended["rank_corr"]["values"]) == 2
    for name in ("beyond_reliability.png", "beyond_default_normalized_accuracy.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_suite_option_on_the_command_line(tmp_path, capsys):
    args = ["--suite", "dev", "--quick", "--suite-settings", "dev_n12", "--no-plot", "--workers", "1"]
    assert main([*args, "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "dev_n12" in printed and "rec_tau005" in printed
    assert (tmp_path / "dev.md").exists() and not list(tmp_path.glob("*.png"))
