"""CuresTrainer's overrides on a real verl trainer object (real config, tokenizer, datasets and dataloader; no Ray
workers; conftest.py builds it): the optimizer horizon, resume checks, the model passes a non-training step skips,
and one step's hooks on a real batch (the ``__rollout_n__`` column and uid map, the refusals, the rollout-count
mismatch counter, the ``reward/*`` metrics and the step record)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("verl")
torch = pytest.importorskip("torch")

STEPS = 10  # the make_trainer fixture (conftest.py): 16 prompts, 8 per step, 10 steps
COLD_STEPS = 2  # 16 prompts / 8 per step


class _Recorder:
    """Stands in for a worker group or the checkpoint manager: records each method called."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, name: str):
        def method(*args, **kwargs):
            self.calls.append(name)

        return method


def test_the_effective_config_is_logged_as_one_block(make_trainer, tmp_path, caplog):
    with caplog.at_level("INFO", logger="cures_verl.verl_adapter.trainer"):
        make_trainer(tmp_path, "cures.sampler.temperature=0.5")
    (message,) = [r.getMessage() for r in caplog.records if "CurES config: preset paper" in r.getMessage()]
    assert f"{STEPS} total steps of which {STEPS - COLD_STEPS} update the policy" in message
    assert "* cures.sampler.temperature=0.5" in message and "cures.allocation.min_per_prompt=2" in message


def test_the_optimizer_horizon_counts_updates_not_cold_start_steps(make_trainer, tmp_path):
    trainer = make_trainer(tmp_path)
    assert trainer.total_training_steps == STEPS
    # the LR scheduler steps once per actor update; cold-start steps do not update
    assert trainer.config.actor_rollout_ref.actor.optim.total_training_steps == STEPS - COLD_STEPS
    trained = make_trainer(tmp_path, "cures.schedule.train_on_cold_start=true")
    assert trained.config.actor_rollout_ref.actor.optim.total_training_steps == STEPS


def test_a_continuous_schedule_runs_its_total_steps_whatever_the_epochs(make_trainer, tmp_path):
    # 16 prompts / 8 = 2 steps per verl epoch; verl's fit() stops at total_epochs x steps_per_epoch
    trainer = make_trainer(tmp_path, "trainer.total_epochs=1", "cures.schedule.cold_start_rollouts=0")
    assert trainer.total_training_steps == STEPS
    assert trainer.steps_per_epoch * trainer.config.trainer.total_epochs >= STEPS


def _save_data_pt(trainer, folder: Path, steps: int) -> None:
    """Run the training loader ``steps`` batches (observing made-up rewards) and save its state as verl does."""
    it = iter(trainer.train_dataloader)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        next(it)
        plan = trainer.batch_sampler.current_plan
        ids = np.repeat(plan.prompt_indices, plan.rollouts)
        trainer.curriculum.observe(ids, (rng.random(ids.size) < 0.5).astype(float))
    folder.mkdir(parents=True)
    torch.save(trainer.train_dataloader.state_dict(), folder / "data.pt")


def _resuming(make_trainer, tmp_path, folder: Path):
    trainer = make_trainer(tmp_path, "trainer.resume_mode=resume_path", f"trainer.resume_from_path={folder}")
    trainer.actor_rollout_wg = _Recorder()
    return trainer


def test_resume_without_the_curriculum_state_is_refused_before_loading_weights(make_trainer, tmp_path):
    folder = tmp_path / "ckpt" / "global_step_4"
    (folder / "actor").mkdir(parents=True)  # weights but no data.pt
    trainer = _resuming(make_trainer, tmp_path, folder)
    with pytest.raises(RuntimeError, match=r"data\.pt.*missing.*resume_mode=disable"):
        trainer._load_checkpoint()
    assert trainer.actor_rollout_wg.calls == []  # refused before loading the actor
    from verl.utils.checkpoint.checkpoint_manager import get_checkpoint_tracker_filename

    Path(get_checkpoint_tracker_filename(str(tmp_path / "ckpt"))).write_text("4")
    auto = make_trainer(tmp_path, "trainer.resume_mode=auto")  # auto finds the same folder
    auto.actor_rollout_wg = _Recorder()
    with pytest.raises(RuntimeError, match="global_step_4"):
        auto._load_checkpoint()


def test_resume_refuses_a_curriculum_at_another_step_than_the_trainer(make_trainer, tmp_path):
    # a data.pt whose sampler stopped at step 2 in a folder of step 5 (e.g. copied or written by another run)
    folder = tmp_path / "ckpt" / "global_step_5"
    _save_data_pt(make_trainer(tmp_path), folder, steps=2)
    trainer = _resuming(make_trainer, tmp_path, folder)
    with pytest.raises(RuntimeError, match=r"global step 5 but the saved curriculum is at step 2"):
        trainer._load_checkpoint()
    assert trainer.actor_rollout_wg.calls == []


def test_resume_refuses_a_data_pt_without_curriculum_state(make_trainer, tmp_path):
    folder = tmp_path / "ckpt" / "global_step_2"
    folder.mkdir(parents=True)
    torch.save({"_index_sampler_state": {"samples_yielded": 16}}, folder / "data.pt")  # verl's default sampler
    trainer = _resuming(make_trainer, tmp_path, folder)
    with pytest.raises(RuntimeError, match="no CurES sampler state.*cures.enable=false"):
        trainer._load_checkpoint()
    (folder / "data.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="unreadable"):
        trainer._load_checkpoint()


def test_resume_drops_the_step_records_written_after_the_checkpoint(make_trainer, tmp_path):
    folder = tmp_path / "ckpt" / "global_step_3"
    _save_data_pt(make_trainer(tmp_path), folder, steps=3)
    trainer = _resuming(make_trainer, tmp_path, folder)
    records = tmp_path / "cures" / "cures_steps.jsonl"
    records.parent.mkdir(exist_ok=True)
    records.write_text("".join(json.dumps({"global_step": s, "step": s - 1}) + "\n" for s in range(1, 6)))
    trainer._load_checkpoint()
    assert trainer.global_steps == 3 and trainer.actor_rollout_wg.calls == ["load_checkpoint"]
    next(iter(trainer.train_dataloader))  # the loader applies the restored sampler state when iterated
    assert trainer.curriculum.step == 4
    assert [json.loads(line)["global_step"] for line in records.read_text().splitlines()] == [1, 2, 3]


def _at_step(trainer, global_step: int):
    """Plan steps up to ``global_step`` (1-based) and make it the current one, as verl's fit() would."""
    it = iter(trainer.train_dataloader)
    for _ in range(global_step):
        next(it)
    trainer._step_plan = trainer.batch_sampler.current_plan
    trainer.global_steps = global_step
    trainer.actor_rollout_wg = _Recorder()
    trainer.checkpoint_manager = _Recorder()
    return trainer


def test_a_cold_start_step_skips_old_log_probs_and_the_weight_sync(make_trainer, tmp_path):
    trainer = _at_step(make_trainer(tmp_path, "trainer.save_freq=5"), 1)
    assert not trainer._step_plan.is_training
    metrics: dict = {}
    batch = object()
    assert trainer._compute_old_log_prob(batch, metrics) is batch
    assert trainer._compute_ref_log_prob(batch, metrics) is batch
    trainer.on_sample_end()
    trainer.on_step_end()
    assert trainer.actor_rollout_wg.calls == [] and trainer.checkpoint_manager.calls == []
    assert metrics == {"cures/schedule/skipped_log_prob_passes": 1.0}


def test_a_cold_start_step_that_saves_keeps_verls_sleep_and_sync(make_trainer, tmp_path):
    # saving needs the device memory the sleeping replicas free, so verl's sleep/sync pair runs
    trainer = _at_step(make_trainer(tmp_path, "trainer.save_freq=2"), 2)
    assert not trainer._step_plan.is_training
    trainer.timing_raw = {}
    trainer.curr_step_profile = False
    trainer.on_sample_end()
    trainer.on_step_end()
    assert trainer.checkpoint_manager.calls == ["sleep_replicas", "update_weights"]


def test_a_cold_start_step_computes_log_probs_when_the_reward_has_a_kl_penalty(make_trainer, tmp_path):
    trainer = _at_step(make_trainer(tmp_path, "algorithm.use_kl_in_reward=true"), 1)
    assert not trainer._skips_model_passes()
    with pytest.raises(AttributeError, match="extra_info"):  # reached verl's pass (a real batch would run it)
        trainer._compute_old_log_prob(object(), {})


def test_a_training_step_runs_every_pass(make_trainer, tmp_path):
    trainer = _at_step(make_trainer(tmp_path), COLD_STEPS + 1)
    assert trainer._step_plan.is_training
    trainer.timing_raw = {}
    trainer.curr_step_profile = False
    trainer.on_sample_end()
    trainer.on_step_end()
    assert trainer.checkpoint_manager.calls == ["sleep_replicas", "update_weights"]


# -- one step's hooks on a real batch: verl's fetch and GRPO advantage, TransferQueue in memory (conftest.py) -------

#: A cold start of 8 rollouts a prompt, then mle + drop allocation: uneven training counts, some prompts dropped.
UNEVEN = (
    "cures.schedule.cold_start_rollouts=8",
    "cures.allocation.accuracy_estimate=mle",
    "cures.allocation.zero_variance=drop",
)


def _cold_start_rewards(prompts):
    """Prompt j answers (j % 9) * 8 // 9 of its 8 cold-start rollouts right (prompts 0 and 9 none: mle drops them)."""
    return np.arange(prompts.size) % 8 < (prompts % 9) * 8 // 9


@pytest.fixture(scope="module")
def shifted_ids(trainer_assets, tmp_path_factory):
    """The demo's training file with stable ids 7 * row + 3 (``extra_info.index``), so ids differ from positions."""
    import pandas as pd

    frame = pd.read_parquet(trainer_assets.train_parquet)
    frame["extra_info"] = [{**info, "index": 7 * row + 3} for row, info in enumerate(frame["extra_info"])]
    path = tmp_path_factory.mktemp("shifted") / "train.parquet"
    frame.to_parquet(path)
    return f"data.train_files={path}"


def _after_the_cold_start(make_trainer, kv_store, tmp_path, *extra):
    trainer = make_trainer(tmp_path, *UNEVEN, *extra)
    trainer.global_steps = 0
    for _ in range(COLD_STEPS):
        plan, *_ = kv_store.run_step(trainer, _cold_start_rewards)
        assert plan.phase == "cold_start"
    return trainer


def test_the_fetched_batch_carries_each_prompts_planned_count_and_its_uids_map_to_the_prompts(
    make_trainer, kv_store, tmp_path, shifted_ids
):
    from cures_verl.verl_adapter import metrics as cures_metrics

    trainer = _after_the_cold_start(make_trainer, kv_store, tmp_path, shifted_ids)
    trainer.timing_raw = {}
    batch = trainer._fetch_one_gen_batch()  # verl's fetch (dataloader + uids) under our override
    plan = trainer._step_plan
    assert plan is trainer.batch_sampler.current_plan and plan.phase == "train"
    assert (plan.rollouts == 0).any() and np.unique(plan.rollouts[plan.rollouts > 0]).size > 1, plan.rollouts
    # verl's V1 agent loop pops each prompt's count from this column (agent_loop_tq.py:114)
    assert list(batch["__rollout_n__"]) == plan.rollouts.tolist()
    assert list(batch["index"]) == (7 * plan.prompt_indices + 3).tolist()  # the planned prompts' stable ids
    uids = [str(uid) for uid in batch["uid"]]
    assert len(set(uids)) == len(uids) == plan.prompt_indices.size
    assert trainer._prompt_of_uid == dict(zip(uids, plan.prompt_indices.tolist(), strict=True))  # positions, not ids
    keys = [f"{uid}_{k}_0" for uid, n in zip(uids, plan.rollouts.tolist(), strict=True) for k in range(n)]
    np.testing.assert_array_equal(trainer._prompts_of_keys(keys), np.repeat(plan.prompt_indices, plan.rollouts))
    assert cures_metrics.TIMER_PLAN in trainer.timing_raw


def test_a_batch_that_is_not_the_plan_and_a_request_for_more_prompts_are_refused(make_trainer, tmp_path, monkeypatch):
    from torchdata.stateful_dataloader import StatefulDataLoader
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer
    from verl.utils import tensordict_utils as tu
    from verl.utils.dataset.rl_dataset import collate_fn

    trainer = make_trainer(tmp_path)
    # verl asks for replacement prompts when rollout groups fail (replay_buffer.py:466): no prompt is drawn
    with pytest.raises(RuntimeError, match=r"3 rollout group\(s\) failed .* cannot refill"):
        trainer.replay_buffer.refill_fn(3)
    assert trainer.curriculum.step == 0 and trainer.batch_sampler.current_plan is None
    # a training loader other than ours (verl's own sampler) plans nothing
    ours = trainer.train_dataloader
    trainer.train_dataloader = StatefulDataLoader(trainer.train_dataset, batch_size=8, collate_fn=collate_fn)
    with pytest.raises(RuntimeError, match="yielded no plan"):
        trainer._fetch_one_gen_batch()
    trainer.train_dataloader, trainer.train_dataloader_it = ours, None
    # the planned prompts in another order (a changed verl data path)
    fetch = PPOTrainer._fetch_one_gen_batch
    monkeypatch.setattr(
        PPOTrainer, "_fetch_one_gen_batch", lambda self: tu.index_select_tensor_dict(fetch(self), list(range(8))[::-1])
    )
    with pytest.raises(RuntimeError, match="does not hold the planned prompts"):
        trainer._fetch_one_gen_batch()
    assert trainer._step_plan is None and trainer._prompt_of_uid == {}


def test_rollout_counts_verl_did_not_honour_are_counted_and_the_posterior_sees_the_real_rollouts(
    make_trainer, kv_store, tmp_path, caplog
):
    trainer = _after_the_cold_start(make_trainer, kv_store, tmp_path)
    tracker = trainer.curriculum.tracker
    seen_before, correct_before = tracker.num_observed().copy(), tracker.num_correct.copy()
    # verl ignored __rollout_n__: every prompt got rollout.n = 4
    with caplog.at_level("WARNING", logger="cures_verl.verl_adapter.trainer"):
        plan, _, _, metrics = kv_store.run_step(trainer, lambda prompts: prompts % 2, counts=[4] * 8)
    wrong = int(np.count_nonzero(plan.rollouts != 4))
    assert wrong >= 2 and metrics["cures/batch/rollout_count_mismatch"] == wrong
    assert f"{wrong} prompts got a different number of rollouts than allocated" in caplog.text
    seen = np.zeros(16)
    seen[plan.prompt_indices] = 4
    np.testing.assert_array_equal(tracker.num_observed() - seen_before, seen)
    np.testing.assert_array_equal(tracker.num_correct - correct_before, seen * (np.arange(16) % 2))
    record = json.loads((tmp_path / "cures" / "cures_steps.jsonl").read_text().splitlines()[-1])
    assert record["rollouts"] == plan.rollouts.tolist()  # the plan ...
    assert record["realised_accuracy"] == (plan.prompt_indices % 2).astype(float).tolist()  # ... what happened
    # a step whose counts verl honoured has no mismatch
    _, _, _, metrics = kv_store.run_step(trainer, lambda prompts: prompts % 2)
    assert metrics["cures/batch/rollout_count_mismatch"] == 0.0


def test_reward_metrics_and_the_step_record_follow_the_rollouts(make_trainer, kv_store, tmp_path, shifted_ids):
    trainer = _after_the_cold_start(make_trainer, kv_store, tmp_path, shifted_ids)
    total = 4 * 8  # the next step's budget: rollout.n x train_batch_size (spread unevenly)
    rng = np.random.default_rng(0)
    rewards = (rng.random(total) < 0.5).astype(float)
    extra = [
        # verl keeps the reward function's extra keys per rollout (agent_loop_tq.py:175); not every rollout has all
        {"reward_extra_info": {"score": 9.0, "acc": r, "timeout": int(k % 4 == 0), "parsed": True, "note": "x"}}
        if k % 3
        else ({"reward_extra_info": {"acc": r, "latency": 0.5 * k}} if k % 2 else {})
        for k, r in enumerate(rewards)
    ]
    plan, _, _, metrics = kv_store.run_step(trainer, lambda prompts: rewards[: prompts.size], extra_fields=extra)
    assert plan.total_rollouts == total and plan.phase == "train"
    has = [k for k in range(total) if "reward_extra_info" in extra[k]]
    assert {k for k in metrics if k.startswith("cures/reward/")} == {
        "cures/reward/acc",
        "cures/reward/timeout",
        "cures/reward/latency",
    }  # numbers only: not verl's score, booleans or strings
    assert metrics["cures/reward/acc"] == pytest.approx(rewards[has].mean())
    assert metrics["cures/reward/timeout"] == pytest.approx(np.mean([k % 4 == 0 for k in range(total) if k % 3]))
    assert metrics["cures/reward/latency"] == pytest.approx(np.mean([0.5 * k for k in range(total) if k % 6 == 3]))
    record = json.loads((tmp_path / "cures" / "cures_steps.jsonl").read_text().splitlines()[-1])
    assert (record["global_step"], record["step"], record["phase"]) == (COLD_STEPS + 1, COLD_STEPS, "train")
    assert record["prompt_ids"] == (7 * plan.prompt_indices + 3).tolist()
    assert record["rollouts"] == plan.rollouts.tolist()
    # each prompt's share of right rollouts in this step (0 for a prompt given none)
    prompt_of_rollout = np.repeat(np.arange(plan.rollouts.size), plan.rollouts)
    correct = np.bincount(prompt_of_rollout, weights=rewards, minlength=plan.rollouts.size)
    expected = np.divide(correct, plan.rollouts, out=np.zeros(plan.rollouts.size), where=plan.rollouts > 0)
    assert record["realised_accuracy"] == pytest.approx(expected.tolist(), abs=1e-6)
    assert record["predicted_accuracy"] == pytest.approx(plan.predicted_accuracy.tolist(), abs=1e-6)
    assert record["metrics"]["reward/acc"] == metrics["cures/reward/acc"]
    assert sum(record["pool_accuracy_histogram"]) == 16
