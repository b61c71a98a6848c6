"""The CurES batch sampler inside verl's real RLHFDataset + torchdata StatefulDataLoader (no Ray)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("verl")
datasets = pytest.importorskip("datasets")

from omegaconf import OmegaConf  # noqa: E402
from torchdata.stateful_dataloader import StatefulDataLoader  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402
from verl.trainer.ppo.utils import create_rl_dataset  # noqa: E402
from verl.utils.dataset.rl_dataset import collate_fn  # noqa: E402

from cures_verl.config import preset_config  # noqa: E402
from cures_verl.core import CurriculumSampler  # noqa: E402
from cures_verl.experiments.trainer import build_demo_assets  # noqa: E402
from cures_verl.verl_adapter.sampler import CuresBatchSampler, PromptIndex, read_extra_info_field  # noqa: E402

BATCH = 4


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    built = build_demo_assets(root, num_prompts=40, num_val_prompts=4, warm_start_steps=0)
    # shuffle the rows and renumber the stable ids so row position != stable id != core id
    frame = pd.read_parquet(built.train_parquet).sample(frac=1.0, random_state=3).reset_index(drop=True)
    frame["extra_info"] = [dict(info, index=int(1000 + 7 * info["index"])) for info in frame["extra_info"]]
    frame.to_parquet(root / "shuffled.parquet")
    return built, root / "shuffled.parquet"


def _dataset(assets):
    built, parquet = assets
    tokenizer = AutoTokenizer.from_pretrained(built.tokenizer_dir)
    data_cfg = OmegaConf.create(
        {
            "prompt_key": "prompt",
            "max_prompt_length": 64,
            "truncation": "error",
            "filter_overlong_prompts": False,
            "return_raw_chat": True,
            "cache_dir": str(parquet.parent / "cache"),
        }
    )
    return create_rl_dataset([str(parquet)], data_cfg, tokenizer, None, is_train=True)


def _loader(dataset, seed=0):
    index = PromptIndex(read_extra_info_field(dataset.dataframe, "index"))
    cfg = preset_config("paper", {"seed": seed, "schedule": {"num_iterations": 2, "steps_per_iteration": 3}})
    curriculum = CurriculumSampler(index.num_prompts, batch_size=BATCH, rollouts_per_prompt=4, config=cfg)
    sampler = CuresBatchSampler(curriculum, index, num_batches=10)
    loader = StatefulDataLoader(dataset=dataset, batch_sampler=sampler, num_workers=0, collate_fn=collate_fn)
    return loader, sampler, curriculum


def _observe_some(curriculum, plan, rng):
    ids = np.repeat(plan.prompt_indices, plan.rollouts)
    curriculum.observe(ids, (rng.random(ids.size) < 0.5).astype(float))


def test_each_batch_holds_the_planned_prompts_by_stable_id(assets):
    dataset = _dataset(assets)
    loader, sampler, curriculum = _loader(dataset)
    rng = np.random.default_rng(0)
    it = iter(loader)
    for _ in range(8):
        batch_dict = next(it)
        plan = sampler.current_plan
        assert len(batch_dict["index"]) == BATCH
        expected = sampler.index.stable_ids[plan.prompt_indices]
        np.testing.assert_array_equal(np.asarray(batch_dict["index"], dtype=np.int64), expected)
        assert all(1000 <= int(i) for i in batch_dict["index"])  # stable ids, not row numbers
        _observe_some(curriculum, plan, rng)


def test_the_dataloader_checkpoint_carries_the_sampler_and_resumes_the_same_stream(assets):
    dataset = _dataset(assets)
    rng = np.random.default_rng(1)
    reference_loader, ref_sampler, ref_curriculum = _loader(dataset)
    it = iter(reference_loader)
    batches = []
    saved = None
    for step in range(9):
        batches.append(np.asarray(next(it)["index"], dtype=np.int64))
        _observe_some(ref_curriculum, ref_sampler.current_plan, rng)
        if step == 4:
            saved = reference_loader.state_dict()  # what verl writes to global_step_N/data.pt
    assert saved is not None and "_index_sampler_state" in saved
    assert saved["_index_sampler_state"]["curriculum"]["step"] == 5
    # resume in a fresh loader: same next batches, given the same rewards
    rng = np.random.default_rng(1)
    for _ in range(5):
        rng.random(16)  # replay the reward draws of the first five steps (4 prompts x 4 rollouts)
    loader, sampler, curriculum = _loader(dataset)
    loader.load_state_dict(saved)
    it = iter(loader)
    for step in range(5, 9):
        np.testing.assert_array_equal(np.asarray(next(it)["index"], dtype=np.int64), batches[step])
        _observe_some(curriculum, sampler.current_plan, rng)


def test_a_checkpoint_from_other_data_is_refused(assets):
    dataset = _dataset(assets)
    loader, sampler, _ = _loader(dataset)
    state = sampler.state_dict()
    state["stable_ids"] = state["stable_ids"] + 1
    with pytest.raises(ValueError, match="different training data"):
        sampler.load_state_dict(state)


def test_prompt_index_validates_stable_ids():
    with pytest.raises(ValueError, match="unique"):
        PromptIndex(np.array([3, 1, 3]))
    with pytest.raises(ValueError, match="integer"):
        PromptIndex(np.array([1, None, 2], dtype=object))
    index = PromptIndex(np.array([30, 10, 20]))
    assert index.rows.tolist() == [1, 2, 0] and index.stable_ids.tolist() == [10, 20, 30]
    assert index.prompts_of_stable_ids(np.array([20, 30])).tolist() == [1, 2]
    with pytest.raises(ValueError, match="not in the training dataset"):
        index.prompts_of_stable_ids(np.array([25]))


def test_missing_extra_info_index_is_a_clear_error():
    frame = datasets.Dataset.from_pandas(pd.DataFrame({"extra_info": [{"split": "train"}, {"split": "train"}]}))
    with pytest.raises(ValueError, match="no 'index' field"):
        read_extra_info_field(frame, "index")
    with pytest.raises(ValueError, match="no extra_info column"):
        read_extra_info_field(datasets.Dataset.from_pandas(pd.DataFrame({"a": [1]})), "index")


def test_an_earlier_runs_posterior_becomes_the_prior_by_stable_id(assets, tmp_path):
    import subprocess
    import sys

    import torch

    from cures_verl.verl_adapter.priors import prior_accuracy_for

    dataset = _dataset(assets)
    loader, sampler, curriculum = _loader(dataset)
    it = iter(loader)
    rng = np.random.default_rng(0)
    for _ in range(6):
        next(it)
        _observe_some(curriculum, sampler.current_plan, rng)
    data_pt = tmp_path / "data.pt"
    torch.save(loader.state_dict(), data_pt)  # what verl writes to global_step_N/data.pt
    expected = curriculum.tracker.posterior_mean()
    ids = sampler.index.stable_ids
    np.testing.assert_allclose(prior_accuracy_for(ids, data_pt), expected)
    # a later dataset with one new prompt and the old ones shuffled: matched by stable id, the new one unknown
    later = np.concatenate([ids[::-1], [99999]])
    got = prior_accuracy_for(later, data_pt)
    np.testing.assert_allclose(got[:-1], expected[::-1])
    assert np.isnan(got[-1])
    out = tmp_path / "posterior.npz"
    script = Path(__file__).resolve().parents[2] / "scripts" / "export_posterior.py"
    cmd = [sys.executable, str(script), str(data_pt), str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(prior_accuracy_for(ids, out), expected)


def test_two_training_files_with_the_same_ids_are_refused_naming_files_and_offsets(assets, tmp_path):
    from cures_verl.verl_adapter.sampler import index_collision_hint

    built, _ = assets
    frame = pd.read_parquet(built.train_parquet)  # ids 0..39
    first, second, third = tmp_path / "a.parquet", tmp_path / "b.parquet", tmp_path / "c.parquet"
    frame.to_parquet(first)
    frame.to_parquet(second)
    shifted = frame.copy()
    shifted["extra_info"] = [dict(info, index=int(info["index"]) + 40) for info in frame["extra_info"]]
    shifted.to_parquet(third)
    both = pd.concat([frame, frame], ignore_index=True)
    with pytest.raises(ValueError, match="extra_info.index must be unique") as error:
        PromptIndex(both["extra_info"].map(lambda info: info["index"]).to_numpy())
    hint = index_collision_hint([str(first), str(second)])
    message = f"{error.value}{hint}"
    assert f"{first} and {second} share 40 ids (0..39)" in message
    assert f"{first}: --index-offset 0, {second}: --index-offset 40" in message
    # disjoint files, or a single file, need no hint
    assert index_collision_hint([str(first), str(third)]) == ""
    assert index_collision_hint(str(first)) == ""


def _frame_with(extra_rows):
    return datasets.Dataset.from_list([{"extra_info": row} for row in extra_rows])


def test_prompt_features_are_read_in_the_cores_order_for_the_shared_prediction():
    from cures_verl.verl_adapter.sampler import curriculum_inputs

    # rows out of id order: the core's prompt i is the i-th smallest extra_info.index
    rows = [{"index": 7, "feat": [0.0, 1.0]}, {"index": 3, "feat": [1.0, 0.0]}, {"index": 5, "feat": [0.5, 0.5]}]
    frame = _frame_with(rows)
    index = PromptIndex(read_extra_info_field(frame, "index"))
    posterior = {"drift": True, "feature_prior": True, "feature_field": "feat"}
    cfg = preset_config("paper", {"posterior": posterior, "schedule": {"mode": "continuous"}})
    inputs = curriculum_inputs(frame, index, cfg)
    np.testing.assert_array_equal(inputs.prompt_features, [[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    sampler = CurriculumSampler(
        3, batch_size=1, rollouts_per_prompt=4, config=cfg, prompt_features=inputs.prompt_features
    )
    assert sampler.tracker.shared is not None and sampler.tracker.shared.dim == 3
    # without feature_field nothing is read
    assert (
        curriculum_inputs(frame, index, preset_config("paper", {"posterior": {"drift": True}})).prompt_features is None
    )


@pytest.mark.parametrize(
    ("feats", "match"),
    [
        ([[1.0], [1.0, 2.0]], "one length"),
        ([[1.0], None], "one length"),
        ([[1.0], [float("nan")]], "no value"),
    ],
)
def test_bad_prompt_features_name_the_key_and_the_problem(feats, match):
    from cures_verl.verl_adapter.sampler import curriculum_inputs

    frame = _frame_with([{"index": i, "feat": f} for i, f in enumerate(feats)])
    index = PromptIndex(read_extra_info_field(frame, "index"))
    cfg = preset_config("paper", {"posterior": {"drift": True, "feature_field": "feat"}})
    with pytest.raises(ValueError, match=rf"cures\.posterior\.feature_field=feat.*{match}"):
        curriculum_inputs(frame, index, cfg)
    missing = preset_config("paper", {"posterior": {"drift": True, "feature_field": "nope"}})
    with pytest.raises(ValueError, match=r"cures\.posterior\.feature_field=nope.*no 'nope' field"):
        curriculum_inputs(frame, index, missing)
