"""The hook-overhead benchmark (benchmarks/hook_overhead.py) runs the adapter's real per-step hooks end to end."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

pytest.importorskip("verl")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "hook_overhead.py"


def _load():
    spec = importlib.util.spec_from_file_location("hook_overhead", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_runs_the_hooks_and_restores_verl(capsys):
    from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

    from cures_verl.verl_adapter import trainer as trainer_module

    before = (PPOTrainerSync._compute_advantage, PPOTrainerSync._fetch_one_gen_batch, trainer_module.tq)
    module = _load()
    argv = ["--num-prompts", "300", "--batch-size", "16", "--rollout-n", "4", "--response-tokens", "6", "--steps", "2"]
    assert module.main(argv) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if re.match(r"\s+(paper|recommended)\s", line)]
    assert [row[0] for row in rows] == ["paper", "recommended"]
    for row in rows:
        plan, advantage, observe, total = map(float, row[1:])
        assert min(plan, advantage, observe) > 0 and total >= max(plan, advantage, observe)
    # the benchmark patches verl's advantage and the TransferQueue client only while it runs
    assert (PPOTrainerSync._compute_advantage, PPOTrainerSync._fetch_one_gen_batch, trainer_module.tq) == before
