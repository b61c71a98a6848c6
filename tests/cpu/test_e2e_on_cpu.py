"""End to end: verl's real V1 trainer runs GRPO on CPU through CPU mode's launcher (Ray, FSDP2, hf rollout).

One run, in a subprocess with a hard timeout (a misconfigured Ray run hangs instead of failing): 2 GRPO steps
on the warm-started demo model, with a per-prompt ``__rollout_n__`` column (2, 5, 3, ...), unshuffled data and
rollout dumps. Measured on a 2-core machine: about 60-90 s wall.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("verl")
pytest.importorskip("ray")

from cures_verl.experiments.watchdog import RunTimeout, run_with_watchdog  # noqa: E402

TIMEOUT_S = 420
ROLLOUT_N = [2, 5, 3, 1, 4, 2, 3, 2]
TRAIN_BATCH_SIZE = 3

RUNNER = """
import sys
from cures_verl.experiments.trainer import build_demo_assets, demo_overrides
from cures_verl.cpu.launch import main

out, dump = sys.argv[1], sys.argv[2]
assets = build_demo_assets(out, num_prompts={num_prompts}, num_val_prompts=4, seed=0, rollout_n={rollout_n})
overrides = demo_overrides(
    assets, total_training_steps=2, train_batch_size={batch}, rollout_n=4, ppo_mini_batch_size={batch}, shuffle=False
)
sys.exit(main(overrides + ["trainer.rollout_data_dir=" + dump, "trainer.experiment_name=cures_cpu_e2e"]))
"""


def run_with_hard_timeout(command: list[str], *, cwd: Path, timeout: int) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in its own process group; on timeout kill the whole group (Ray's daemons included)."""
    try:
        return run_with_watchdog(command, timeout_s=timeout, cwd=cwd)
    except RunTimeout as error:
        pytest.fail(f"CPU-mode run exceeded {timeout} s (hung?); last output:\n{error.output[-4000:]}")


def step_metrics(output: str, step: int) -> dict[str, str]:
    match = re.search(rf"step:{step} - (.*)", output)
    assert match, f"no metrics line for step {step}"
    return dict(item.split(":", 1) for item in match.group(1).split(" - ") if ":" in item)


@pytest.mark.slow
def test_v1_grpo_runs_two_steps_on_cpu_with_per_prompt_rollout_counts(tmp_path):
    dump_dir = tmp_path / "rollouts"
    code = RUNNER.format(num_prompts=len(ROLLOUT_N), rollout_n=ROLLOUT_N, batch=TRAIN_BATCH_SIZE)
    done = run_with_hard_timeout(
        [sys.executable, "-c", code, str(tmp_path / "assets"), str(dump_dir)], cwd=tmp_path, timeout=TIMEOUT_S
    )
    assert done.returncode == 0, done.stdout[-6000:]

    updated = []
    for step in (1, 2):
        metrics = step_metrics(done.stdout, step)
        assert float(metrics["training/global_step"]) == step
        # the actor update ran on this step's advantages: no KL loss, no entropy bonus (the demo's settings), so the
        # gradient is finite and non-zero exactly when some rollout got a non-zero advantage
        grad_norm = float(metrics["actor/grad_norm"])
        advantage = max(abs(float(metrics["critic/advantages/max"])), abs(float(metrics["critic/advantages/min"])))
        assert math.isfinite(grad_norm) and (grad_norm > 0) == (advantage > 0), (grad_norm, advantage)
        updated.append(grad_norm > 0)
        # the hf rollout generated with the trainer's weights: rollout and actor log-probs agree
        assert float(metrics["training/rollout_actor_probs_pearson_corr"]) > 0.9
    assert any(updated), "no step updated the actor"

    # step 1 takes the first TRAIN_BATCH_SIZE prompts (data.shuffle=false); each gets its own __rollout_n__
    import pandas as pd

    train = pd.read_parquet(tmp_path / "assets" / "train.parquet")
    expected = {
        " ".join(prompt[0]["content"].split()): int(n)
        for prompt, n in zip(train["prompt"][:TRAIN_BATCH_SIZE], train["__rollout_n__"][:TRAIN_BATCH_SIZE], strict=True)
    }
    rows = [json.loads(line) for line in (dump_dir / "1.jsonl").read_text().splitlines()]
    real = [row for row in rows if not row["uid"].startswith("pad")]  # verl pads the batch to a divisible size
    # decoded input: "user \n 1 + 7 = \n assistant \n" -> question "1 + 7 ="
    counts = Counter(re.fullmatch(r"user (.*) assistant", " ".join(row["input"].split())).group(1) for row in real)
    assert dict(counts) == expected
    assert len({row["uid"].rsplit("_", 2)[0] for row in real}) == TRAIN_BATCH_SIZE
