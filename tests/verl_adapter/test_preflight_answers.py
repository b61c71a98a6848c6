"""The pre-flight check rejects training and validation rows whose ground truth the math reward cannot grade
against, naming the file, the row and the field (a run would score them 0 with ``gold_unparseable=1``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("verl")
pytest.importorskip("hydra")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from cures_verl.verl_adapter.preflight import preflight  # noqa: E402

TINY_MODEL = {
    "architectures": ["Qwen2ForCausalLM"],
    "model_type": "qwen2",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 1000,
    "tie_word_embeddings": False,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-6,
    "torch_dtype": "bfloat16",
}


def _data(path: Path, golds: list[object]) -> Path:
    n = len(golds)
    table = pa.table(
        {
            "data_source": ["cures-x"] * n,
            "prompt": [[{"role": "user", "content": f"q{i}"}] for i in range(n)],
            "reward_model": [{"style": "rule", "ground_truth": gold} for gold in golds],
            "extra_info": [{"index": i, "subset": 0} for i in range(n)],
        }
    )
    pq.write_table(table, path)
    return path


def _overrides(train: Path, val: Path, tmp_path: Path, *extra: str) -> list[str]:
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text(json.dumps(TINY_MODEL))
    return [
        f"data.train_files=['{train}']",
        f"data.val_files=['{val}']",
        "data.train_batch_size=4",
        f"actor_rollout_ref.model.path={model}",
        "actor_rollout_ref.actor.ppo_mini_batch_size=4",
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=1",
        "actor_rollout_ref.rollout.n=2",
        "actor_rollout_ref.rollout.tensor_model_parallel_size=1",
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=1",
        "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=1",
        "algorithm.adv_estimator=grpo",
        "cures.enable=false",
        "trainer.total_epochs=1",
        "trainer.logger=['console']",
        f"trainer.default_local_dir={tmp_path / 'ckpt'}",
        "trainer.save_freq=-1",
        *extra,
    ]


def _answer_problems(problems: list[str]) -> list[str]:
    return [problem for problem in problems if "ground_truth" in problem or "fix or drop these rows" in problem]


def test_empty_and_missing_ground_truths_are_problems_naming_file_row_and_field(tmp_path: Path) -> None:
    train = _data(tmp_path / "train.parquet", ["1", "", "2", None, "3", "\\boxed{}", "4", "5"])
    val = _data(tmp_path / "val.parquet", ["7", "  "])
    report = preflight(_overrides(train, val, tmp_path))
    problems = _answer_problems(report.problems)
    assert problems[0] == (
        f"data.train_files: {train} row 1: field reward_model.ground_truth: ground_truth answer '' is empty; "
        "fix the dataset's reward_model.ground_truth"
    )
    assert [problem.split(": field")[0] for problem in problems[:4]] == [
        f"data.train_files: {train} row 1",
        f"data.train_files: {train} row 3",
        f"data.train_files: {train} row 5",
        f"data.val_files: {val} row 1",
    ]
    assert "NoneType" in problems[1]
    assert "scripts/prepare_data.py rejects them" in problems[-1]
    assert not report.ok


def test_with_the_math_reward_configured_unparseable_ground_truths_are_problems_too(tmp_path: Path) -> None:
    pytest.importorskip("math_verify")
    train = _data(tmp_path / "train.parquet", ["1", "(3,4),(4,3)", "\\frac{1}{", "0.\\overline{3}", "2", "3", "4", "5"])
    val = _data(tmp_path / "val.parquet", ["7", "50\\%"])
    reward = ["reward.custom_reward_function.path=pkg://cures_verl.reward.math_verify"]
    report = preflight(_overrides(train, val, tmp_path, *reward))
    assert _answer_problems(report.problems)[:1] == [
        f"data.train_files: {train} row 2: field reward_model.ground_truth: the math reward cannot grade against "
        "'\\\\frac{1}{': cannot be parsed"
    ]
    good = _data(tmp_path / "good.parquet", ["1", "(3,4),(4,3)", "x = 2, y = 3", "0.\\overline{3}", "2", "3", "4", "5"])
    fine = preflight(_overrides(good, val, tmp_path, *reward))
    assert _answer_problems(fine.problems) == []
    assert any(
        "answers" in line and "parsed by the math reward (10 of 10 distinct values)" in line for line in fine.lines
    )
