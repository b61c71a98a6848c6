"""End to end on CPU: CurES through ``python -m cures_verl.main profile=cpu`` and verl's real V1 trainer.

Three checks, each on real runs (Ray, FSDP2 actor updates, the transformers rollout, the reward loop), each in a
subprocess with a hard timeout (misconfigured Ray resources hang instead of failing):

1. accounting: a cold start and training steps in which every prompt got exactly its allocated rollouts
   (counted from verl's own rollout dumps), the step total equals the budget, and the saved posterior counts
   equal the rewards verl observed;
2. resume: a run resumed from its step-3 checkpoint plans the same next batch as the uninterrupted run;
3. ``cures.enable=false`` through ``cures_verl.main`` gives the same first step as verl's own TaskRunner launched by
   CPU mode's launcher (``cures_verl.cpu.launch``, which runs ``main_ppo``'s steps) on the same seed.
   Both runs go through CPU mode's launch path (its environment, plugin and workarounds), not through
   ``python -m verl.trainer.main_ppo``.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from cures_verl.experiments.watchdog import RunTimeout, run_with_watchdog

pytest.importorskip("verl")
pytest.importorskip("ray")
torch = pytest.importorskip("torch")

TIMEOUT_S = 480
NUM_PROMPTS = 16
BATCH = 8
ROLLOUT_N = 4
COLD = 2  # cold-start rollouts: 16 prompts / 8 per step = 2 cold-start steps
TOTAL_STEPS = 5  # 2 cold-start + 3 training steps


def _run(args: list[str], cwd: Path, timeout: int = TIMEOUT_S) -> tuple[str, dict[int, dict[str, float]]]:
    """Run under the watchdog (a hung Ray run is killed with its whole process group) and require success.

    Returns the console output and the step metrics from verl's file logger. The metrics are read from the file,
    not parsed from the console: Ray forwards each worker's output and can split or interleave a long
    ``step:N - ...`` line with another process's, which once dropped keys from a step.
    """
    metrics_path = cwd / f"metrics_{len(list(cwd.glob('metrics_*.jsonl')))}.jsonl"
    try:
        done = run_with_watchdog(
            [sys.executable, *args, "trainer.logger=[console,file]"],
            timeout_s=timeout,
            cwd=cwd,
            extra_env={"VERL_FILE_LOGGER_PATH": str(metrics_path)},
        )
    except RunTimeout as error:
        pytest.fail(f"run exceeded {timeout} s (hung?); last output:\n{error.output[-4000:]}")
    assert done.returncode == 0, done.stdout[-6000:]
    return done.stdout, _metrics(metrics_path)


def _metrics(path: Path) -> dict[int, dict[str, float]]:
    """Step -> metrics, as verl's FileLogger wrote them (one JSON object per step)."""
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    assert records, f"verl's file logger wrote no step to {path}"
    return {int(record["step"]): record["data"] for record in records}


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    from cures_verl.experiments.trainer import build_demo_assets

    return build_demo_assets(
        tmp_path_factory.mktemp("cures_e2e"), num_prompts=NUM_PROMPTS, num_val_prompts=4, warm_start_steps=150, seed=0
    )


def _overrides(assets, *, steps: int, extra: list[str]) -> list[str]:
    from cures_verl.experiments.trainer import demo_overrides

    base = demo_overrides(
        assets,
        total_training_steps=steps,
        train_batch_size=BATCH,
        rollout_n=ROLLOUT_N,
        ppo_mini_batch_size=BATCH,
        shuffle=False,
    )
    return ["profile=cpu", *base, *extra]


def _cures(tmp: Path, name: str) -> list[str]:
    return [
        "cures.schedule.mode=continuous",
        f"cures.schedule.cold_start_rollouts={COLD}",
        # maximum-likelihood accuracy: all-correct/all-wrong prompts get sigma = 0 and the floor, so the
        # allocation is uneven and the accounting is tested on different group sizes
        "cures.allocation.accuracy_estimate=mle",
        f"cures.dump_dir={tmp / name / 'cures'}",
        f"trainer.rollout_data_dir={tmp / name / 'rollouts'}",
        f"trainer.default_local_dir={tmp / name / 'ckpt'}",
        f"trainer.experiment_name={name}",
    ]


@pytest.fixture(scope="module")
def full_run(assets, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("full")
    extra = _cures(tmp, "full") + ["trainer.save_freq=3"]
    _, metrics = _run(["-m", "cures_verl.main", *_overrides(assets, steps=TOTAL_STEPS, extra=extra)], cwd=tmp)
    return tmp / "full", metrics


def _records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "cures" / "cures_steps.jsonl").read_text().splitlines()]


def _question_to_stable_id(assets) -> dict[str, int]:
    import pyarrow.parquet as pq

    table = pq.read_table(assets.train_parquet).to_pylist()
    return {" ".join(row["prompt"][-1]["content"].split()): int(row["extra_info"]["index"]) for row in table}


def _verl_dump(run_dir: Path, step: int) -> list[dict]:
    path = run_dir / "rollouts" / f"{step}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_every_prompt_gets_its_allocation_and_the_posterior_counts_the_observed_rewards(full_run, assets):
    run_dir, metrics = full_run
    records = _records(run_dir)
    assert [r["phase"] for r in records] == ["cold_start"] * 2 + ["train"] * 3
    questions = _question_to_stable_id(assets)
    seen_correct: Counter = Counter()
    seen_total: Counter = Counter()
    uneven = False
    for record in records:
        planned = dict(zip(record["prompt_ids"], record["rollouts"], strict=True))
        budget = BATCH * (COLD if record["phase"] == "cold_start" else ROLLOUT_N)
        assert sum(planned.values()) == budget
        assert min(planned.values()) >= 2
        uneven |= len(set(planned.values())) > 1
        # verl's own dump of the step's generations (padding rows have no real prompt and are skipped)
        rows = [row for row in _verl_dump(run_dir, record["global_step"]) if not row["uid"].startswith("pad")]
        got: Counter = Counter()
        for row in rows:
            # decoded input: "user \n 1 + 7 = \n assistant \n" -> question "1 + 7 ="
            question = re.fullmatch(r"user (.*) assistant", " ".join(row["input"].split())).group(1)
            stable_id = questions[question]
            got[stable_id] += 1
            seen_correct[stable_id] += float(row["score"])
            seen_total[stable_id] += 1
        assert dict(got) == planned, f"step {record['global_step']}: verl generated {dict(got)}, planned {planned}"
        assert record["metrics"]["batch/rollout_count_mismatch"] == 0
    assert uneven, "the allocation never differed between prompts; the test would not catch a broken expansion"
    # the final checkpoint's sampler state counts exactly the rewards verl produced
    state = torch.load(run_dir / "ckpt" / f"global_step_{TOTAL_STEPS}" / "data.pt", weights_only=False)
    sampler = state["_index_sampler_state"]
    tracker = sampler["curriculum"]["tracker"]
    ids = np.asarray(sampler["stable_ids"])
    np.testing.assert_allclose(tracker["num_correct"], [seen_correct[int(i)] for i in ids])
    np.testing.assert_allclose(
        np.asarray(tracker["num_correct"]) + tracker["num_incorrect"], [seen_total[int(i)] for i in ids]
    )
    # cold-start steps estimate only; training steps update the actor
    assert float(metrics[1]["cures/schedule/skipped_update"]) == 1.0 and "actor/grad_norm" not in metrics[1]
    assert "actor/grad_norm" in metrics[3] and "cures/schedule/skipped_update" not in metrics[3]
    assert float(metrics[3]["cures/alloc/total"]) == BATCH * ROLLOUT_N
    # a step that does not train runs no log-prob pass (verl's entropy comes from it) and no weight sync
    for step in (1, 2):
        assert float(metrics[step]["cures/schedule/skipped_log_prob_passes"]) == 1.0
        assert "actor/entropy" not in metrics[step] and "timing_s/update_weights" not in metrics[step]
    assert "actor/entropy" in metrics[3] and "timing_s/update_weights" in metrics[3]
    assert "critic/advantages/mean" in metrics[1]  # verl's own metrics of the step still computed
    # cumulative compute, cold starts included
    progress = [(float(metrics[s]["progress/rollouts"]), float(metrics[s]["progress/updates"])) for s in range(1, 6)]
    per_step = [BATCH * COLD] * 2 + [BATCH * ROLLOUT_N] * 3
    assert progress == [(float(sum(per_step[:s])), float(max(0, s - 2))) for s in range(1, 6)]


@pytest.mark.slow
def test_a_resumed_run_plans_the_same_next_batch(full_run, assets, tmp_path):
    run_dir, _ = full_run
    checkpoint = run_dir / "ckpt" / "global_step_3"
    extra = _cures(tmp_path, "resumed") + ["trainer.resume_mode=resume_path", f"trainer.resume_from_path={checkpoint}"]
    _, metrics = _run(["-m", "cures_verl.main", *_overrides(assets, steps=TOTAL_STEPS, extra=extra)], cwd=tmp_path)
    # the cumulative counts continue from the checkpoint's
    _, full_metrics = full_run
    for key in ("progress/rollouts", "progress/updates"):
        assert metrics[4][key] == full_metrics[4][key], key
    reference = {r["global_step"]: r for r in _records(run_dir)}
    resumed = _records(tmp_path / "resumed")
    assert resumed[0]["global_step"] == 4
    # the step after the checkpoint depends only on the restored state (posterior counts, generator, position)
    assert resumed[0]["prompt_ids"] == reference[4]["prompt_ids"]
    assert resumed[0]["rollouts"] == reference[4]["rollouts"]
    assert resumed[0]["predicted_accuracy"] == reference[4]["predicted_accuracy"]


@pytest.mark.slow
def test_cures_disabled_matches_verls_own_task_runner_under_the_cpu_launcher(assets, tmp_path):
    # full_determinism: the hf rollout seeds every request from (seed, weights version, prompt, occurrence), so the
    # rollouts do not depend on request timing and two runs can be compared metric for metric
    common = [
        "trainer.experiment_name=plain",
        "actor_rollout_ref.rollout.seed=7",
        "actor_rollout_ref.rollout.full_determinism=true",
        "data.seed=7",
    ]
    _, ours = _run(
        ["-m", "cures_verl.main", *_overrides(assets, steps=1, extra=["cures.enable=false", *common])], cwd=tmp_path
    )
    overrides = [o for o in _overrides(assets, steps=1, extra=common) if o != "profile=cpu"]
    _, theirs = _run(["-m", "cures_verl.cpu.launch", *overrides], cwd=tmp_path)
    a, b = ours[1], theirs[1]
    assert not any(k.startswith("cures/") for k in a), "cures.enable=false must not run CurES"
    assert float(a["progress/rollouts"]) == BATCH * ROLLOUT_N and float(a["progress/updates"]) == 1.0
    assert not any(k.startswith("progress/") for k in b)  # verl's own trainer
    for key in ("prompt_length/mean", "response_length/mean", "critic/score/mean", "actor/grad_norm", "actor/pg_loss"):
        assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-5, abs=1e-7), key
