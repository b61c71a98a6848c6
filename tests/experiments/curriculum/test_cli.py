"""End to end: ``python -m cures_verl.experiments.curriculum --quick`` writes the tables, the PNG and the JSON in
seconds."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cures_verl.experiments.curriculum.__main__ import main


def test_quick_run_writes_png_and_json_with_every_strategy(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main(["--quick", "--workers", "1", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "Part 1" in printed and "Part 2" in printed and "cures_paper" in printed
    png = tmp_path / "accuracy.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    payload = json.loads((tmp_path / "results.json").read_text())
    assert {row["mode"] for row in payload["overhead"]["rows"]} >= {"paper", "dense reference"}
    strategies = payload["simulation"]["strategies"]
    assert list(strategies) == payload["simulation"]["config"]["strategies"]
    for summary in strategies.values():
        assert len(summary["curves"]) == 2  # two seeds in --quick
        assert len(summary["curve_mean"]) == 31  # 30 steps plus the start
    assert strategies["oracle"]["oracle_fraction"]["mean"] == 1.0


def test_quick_simulation_accepts_a_cures_variant(tmp_path, capsys):
    variant = 'cures_tau1=paper:{"sampler": {"temperature": 1.0}}'
    args = ["--quick", "--part", "simulation", "--no-plot", "--workers", "1", "--out", str(tmp_path)]
    assert main([*args, "--strategies", "uniform,cures_paper", "--cures-variant", variant]) == 0
    assert "cures_tau1" in capsys.readouterr().out
    payload = json.loads((tmp_path / "results.json").read_text())
    assert list(payload["simulation"]["strategies"]) == ["uniform", "cures_paper", "cures_tau1"]
    assert not (tmp_path / "accuracy.png").exists()


def test_invalid_options_exit_with_a_message_naming_the_option(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cures_verl.experiments.curriculum",
            "--part",
            "simulation",
            "--transfer",
            "2",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "--transfer" in result.stderr


def test_a_strategy_that_cannot_run_on_the_batch_shape_is_named_before_any_run(tmp_path, capsys):
    # Speed-RL screens 4 rollouts per candidate: with n = 4 nothing is left to continue
    args = ["--quick", "--part", "simulation", "--no-plot", "--workers", "1", "--out", str(tmp_path)]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--rollouts-per-prompt", "4", "--strategies", "uniform,speed_rl"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "'speed_rl' cannot run" in err and "--speed-screen-rollouts" in err and "--strategies" in err
    assert not (tmp_path / "results.json").exists()
    # without it the same shape runs
    assert main([*args, "--rollouts-per-prompt", "4", "--strategies", "uniform,mopps"]) == 0
