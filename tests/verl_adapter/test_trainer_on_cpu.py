"""CuresTrainer's overrides on a real verl trainer object (real config, tokenizer, datasets and dataloader; no Ray
workers): the optimizer horizon, resume checks and the model passes a non-training step skips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("verl")
torch = pytest.importorskip("torch")

from hydra import compose, initialize_config_module  # noqa: E402

from cures_verl.demo import build_demo_assets, demo_overrides  # noqa: E402
from cures_verl.verl_adapter.hydra_config import register_resolvers  # noqa: E402

STEPS = 10
COLD_STEPS = 2  # 16 prompts / 8 per step


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return build_demo_assets(tmp_path_factory.mktemp("assets"), num_prompts=16, num_val_prompts=4, warm_start_steps=0)


def _trainer(assets, tmp_path: Path, *extra: str):
    from cures_verl.verl_adapter.trainer import CuresTrainer

    overrides = demo_overrides(
        assets, total_training_steps=STEPS, train_batch_size=8, rollout_n=4, ppo_mini_batch_size=8, shuffle=False
    )
    register_resolvers()
    with initialize_config_module(config_module="cures_verl.verl_adapter.config", version_base=None):
        config = compose(
            config_name="cures_trainer",
            overrides=[
                "profile=cpu",
                *overrides,
                "cures.schedule.mode=continuous",
                "cures.schedule.cold_start_rollouts=2",
                f"cures.dump_dir={tmp_path / 'cures'}",
                f"trainer.default_local_dir={tmp_path / 'ckpt'}",
                *extra,
            ],
        )
    trainer = CuresTrainer(config)
    trainer._init_tokenizer()
    trainer._init_dataloader()
    return trainer


class _Recorder:
    """Stands in for a worker group or the checkpoint manager: records each method called."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, name: str):
        def method(*args, **kwargs):
            self.calls.append(name)

        return method


def test_the_effective_config_is_logged_as_one_block(assets, tmp_path, caplog):
    with caplog.at_level("INFO", logger="cures_verl.verl_adapter.trainer"):
        _trainer(assets, tmp_path, "cures.sampler.temperature=0.5")
    (message,) = [r.getMessage() for r in caplog.records if "CurES config: preset paper" in r.getMessage()]
    assert f"{STEPS} total steps of which {STEPS - COLD_STEPS} update the policy" in message
    assert "* cures.sampler.temperature=0.5" in message and "cures.allocation.min_per_prompt=2" in message


def test_the_optimizer_horizon_counts_updates_not_cold_start_steps(assets, tmp_path):
    trainer = _trainer(assets, tmp_path)
    assert trainer.total_training_steps == STEPS
    # the LR scheduler steps once per actor update; cold-start steps do not update
    assert trainer.config.actor_rollout_ref.actor.optim.total_training_steps == STEPS - COLD_STEPS
    trained = _trainer(assets, tmp_path, "cures.schedule.train_on_cold_start=true")
    assert trained.config.actor_rollout_ref.actor.optim.total_training_steps == STEPS


def test_a_continuous_schedule_runs_its_total_steps_whatever_the_epochs(assets, tmp_path):
    # 16 prompts / 8 = 2 steps per verl epoch; verl's fit() stops at total_epochs x steps_per_epoch
    trainer = _trainer(assets, tmp_path, "trainer.total_epochs=1", "cures.schedule.cold_start_rollouts=0")
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


def _resuming(assets, tmp_path, folder: Path):
    trainer = _trainer(assets, tmp_path, "trainer.resume_mode=resume_path", f"trainer.resume_from_path={folder}")
    trainer.actor_rollout_wg = _Recorder()
    return trainer


def test_resume_without_the_curriculum_state_is_refused_before_loading_weights(assets, tmp_path):
    folder = tmp_path / "ckpt" / "global_step_4"
    (folder / "actor").mkdir(parents=True)  # weights but no data.pt
    trainer = _resuming(assets, tmp_path, folder)
    with pytest.raises(RuntimeError, match=r"data\.pt.*missing.*resume_mode=disable"):
        trainer._load_checkpoint()
    assert trainer.actor_rollout_wg.calls == []  # refused before loading the actor
    from verl.utils.checkpoint.checkpoint_manager import get_checkpoint_tracker_filename

    Path(get_checkpoint_tracker_filename(str(tmp_path / "ckpt"))).write_text("4")
    auto = _trainer(assets, tmp_path, "trainer.resume_mode=auto")  # auto finds the same folder
    auto.actor_rollout_wg = _Recorder()
    with pytest.raises(RuntimeError, match="global_step_4"):
        auto._load_checkpoint()


def test_resume_refuses_a_curriculum_at_another_step_than_the_trainer(assets, tmp_path):
    # a data.pt whose sampler stopped at step 2 in a folder of step 5 (e.g. copied or written by another run)
    folder = tmp_path / "ckpt" / "global_step_5"
    _save_data_pt(_trainer(assets, tmp_path), folder, steps=2)
    trainer = _resuming(assets, tmp_path, folder)
    with pytest.raises(RuntimeError, match=r"global step 5 but the saved curriculum is at step 2"):
        trainer._load_checkpoint()
    assert trainer.actor_rollout_wg.calls == []


def test_resume_refuses_a_data_pt_without_curriculum_state(assets, tmp_path):
    folder = tmp_path / "ckpt" / "global_step_2"
    folder.mkdir(parents=True)
    torch.save({"_index_sampler_state": {"samples_yielded": 16}}, folder / "data.pt")  # verl's default sampler
    trainer = _resuming(assets, tmp_path, folder)
    with pytest.raises(RuntimeError, match="no CurES sampler state.*cures.enable=false"):
        trainer._load_checkpoint()
    (folder / "data.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="unreadable"):
        trainer._load_checkpoint()


def test_resume_drops_the_step_records_written_after_the_checkpoint(assets, tmp_path):
    folder = tmp_path / "ckpt" / "global_step_3"
    _save_data_pt(_trainer(assets, tmp_path), folder, steps=3)
    trainer = _resuming(assets, tmp_path, folder)
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


def test_a_cold_start_step_skips_old_log_probs_and_the_weight_sync(assets, tmp_path):
    trainer = _at_step(_trainer(assets, tmp_path, "trainer.save_freq=5"), 1)
    assert not trainer._step_plan.is_training
    metrics: dict = {}
    batch = object()
    assert trainer._compute_old_log_prob(batch, metrics) is batch
    assert trainer._compute_ref_log_prob(batch, metrics) is batch
    trainer.on_sample_end()
    trainer.on_step_end()
    assert trainer.actor_rollout_wg.calls == [] and trainer.checkpoint_manager.calls == []
    assert metrics == {"cures/schedule/skipped_log_prob_passes": 1.0}


def test_a_cold_start_step_that_saves_keeps_verls_sleep_and_sync(assets, tmp_path):
    # saving needs the device memory the sleeping replicas free, so verl's sleep/sync pair runs
    trainer = _at_step(_trainer(assets, tmp_path, "trainer.save_freq=2"), 2)
    assert not trainer._step_plan.is_training
    trainer.timing_raw = {}
    trainer.curr_step_profile = False
    trainer.on_sample_end()
    trainer.on_step_end()
    assert trainer.checkpoint_manager.calls == ["sleep_replicas", "update_weights"]


def test_a_cold_start_step_computes_log_probs_when_the_reward_has_a_kl_penalty(assets, tmp_path):
    trainer = _at_step(_trainer(assets, tmp_path, "algorithm.use_kl_in_reward=true"), 1)
    assert not trainer._skips_model_passes()
    with pytest.raises(AttributeError, match="extra_info"):  # reached verl's pass (a real batch would run it)
        trainer._compute_old_log_prob(object(), {})


def test_a_training_step_runs_every_pass(assets, tmp_path):
    trainer = _at_step(_trainer(assets, tmp_path), COLD_STEPS + 1)
    assert trainer._step_plan.is_training
    trainer.timing_raw = {}
    trainer.curr_step_profile = False
    trainer.on_sample_end()
    trainer.on_step_end()
    assert trainer.checkpoint_manager.calls == ["sleep_replicas", "update_weights"]
