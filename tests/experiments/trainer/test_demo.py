"""The digit-sum demo: tokenizer, task data, model, warm start, reward and the asset builder."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("pandas")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from cures_verl.experiments.trainer import (  # noqa: E402
    DATA_SOURCE,
    DigitSumProblem,
    all_problems,
    answer_probabilities,
    build_model,
    build_tokenizer,
    compute_score,
    prompt_token_ids,
    sample_problem_splits,
    save_tokenizer,
    to_verl_rows,
    warm_start,
    write_parquet,
)
from cures_verl.experiments.trainer.model import eos_probabilities  # noqa: E402

# ----------------------------------------------------------------------------------------- tokenizer


def test_tokenizer_makes_every_number_and_symbol_one_token(demo_tokenizer):
    ids = demo_tokenizer.encode("7 + 20 =\n", add_special_tokens=False)
    assert demo_tokenizer.convert_ids_to_tokens(ids) == ["7", "+", "20", "=", "\n"]
    assert demo_tokenizer.encode("28", add_special_tokens=False) == [demo_tokenizer.unk_token_id]


def test_tokenizer_chat_template_matches_qwen_chatml_layout(demo_tokenizer):
    ids = prompt_token_ids(demo_tokenizer, DigitSumProblem((3, 4)))
    tokens = demo_tokenizer.convert_ids_to_tokens(ids)
    assert tokens == [
        "<|im_start|>",
        "user",
        "\n",
        "3",
        "+",
        "4",
        "=",
        "<|im_end|>",
        "\n",
        "<|im_start|>",
        "assistant",
        "\n",
    ]


def test_tokenizer_satisfies_verl_qwen_continuous_token_requirements(demo_tokenizer):
    # verl/utils/tokenizer/continuous_token.py:556-559: "\n" must be one token and <|im_end|> must exist
    assert len(demo_tokenizer.encode("\n", add_special_tokens=False)) == 1
    assert demo_tokenizer.convert_tokens_to_ids("<|im_end|>") == demo_tokenizer.eos_token_id


def test_tokenizer_decode_skips_special_tokens_for_the_reward(demo_tokenizer):
    ids = [demo_tokenizer.convert_tokens_to_ids("12"), demo_tokenizer.eos_token_id]
    assert demo_tokenizer.decode(ids, skip_special_tokens=True).strip() == "12"


def test_build_tokenizer_rejects_too_small_vocabulary():
    with pytest.raises(ValueError, match="max_number=5"):
        build_tokenizer(5)


def test_save_tokenizer_refuses_a_model_directory(tmp_path, demo_tokenizer):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="tokenizer-only directory"):
        save_tokenizer(demo_tokenizer, tmp_path)


def test_transformers_still_ignores_our_tokenizer_in_a_qwen2_model_directory(tmp_path, demo_tokenizer):
    """Why the demo keeps the tokenizer out of the model dir (verl_on_cpu.md blocker 11).

    If this test fails, transformers loads our tokenizer.json next to a qwen2 config.json again, and the
    tokenizer could also be saved with the model.
    """
    from transformers import AutoTokenizer

    demo_tokenizer.save_pretrained(tmp_path)
    build_model(demo_tokenizer).save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert type(loaded).__name__ == "Qwen2Tokenizer"
    assert loaded.encode("\n", add_special_tokens=False) == []


# ----------------------------------------------------------------------------------------- task data


def test_all_problems_enumerates_each_tier_exactly():
    for tier in (1, 2, 3):
        problems = all_problems(tier)
        assert len(problems) == len(set(problems)) == 10**tier
        assert {problem.difficulty for problem in problems} == {tier}
    with pytest.raises(ValueError, match="tier=4"):
        all_problems(4)


@settings(max_examples=30, deadline=None)
@given(
    num_train=st.integers(1, 80),
    num_val=st.integers(0, 16),
    others=st.tuples(st.floats(0.01, 1.0), st.floats(0.0, 1.0)),
    tier_1_fraction=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
)
def test_problem_splits_are_disjoint_sized_and_follow_the_tier_mix(num_train, num_val, others, tier_1_fraction, seed):
    # feasible by construction: tier 1 (10 problems) gets a share s with s x (num_train + num_val) + 2 <= 10 (each
    # split rounds up by at most one), tier 2 (100) at most 96 + 2, tier 3 (1000) anything
    share = tier_1_fraction * min(0.9, 8 / (num_train + num_val))
    weights = (share / (1 - share) * sum(others), *others)
    tier_weights = dict(zip((1, 2, 3), weights, strict=True))
    train, val = sample_problem_splits(num_train, num_val, tier_weights=tier_weights, seed=seed)
    assert len(train) == num_train and len(val) == num_val
    assert len(set(train)) == num_train and len(set(val)) == num_val and set(train).isdisjoint(val)
    total = sum(weights)
    for split, size in ((train, num_train), (val, num_val)):
        for tier, weight in tier_weights.items():
            count = sum(problem.difficulty == tier for problem in split)
            assert abs(count - weight / total * size) < 1.0 + 1e-9  # largest remainder: within one
    assert sample_problem_splits(num_train, num_val, tier_weights=tier_weights, seed=seed) == (train, val)


@settings(max_examples=20, deadline=None)
@given(num_train=st.integers(1, 30), num_val=st.integers(0, 10))
def test_a_split_needing_more_problems_than_a_tier_has_is_refused(num_train, num_val):
    needed = num_train + num_val
    if needed <= 10:
        train, val = sample_problem_splits(num_train, num_val, tier_weights={1: 1.0})
        assert set(train) | set(val) <= set(all_problems(1)) and len(set(train) | set(val)) == needed
    else:
        with pytest.raises(ValueError, match=f"tier 1 has 10 distinct problems but the splits need {needed};"):
            sample_problem_splits(num_train, num_val, tier_weights={1: 1.0})


def test_problem_splits_reject_infeasible_requests():
    with pytest.raises(ValueError, match="tier 1 has 10 distinct problems"):
        sample_problem_splits(20, 0, tier_weights={1: 1.0})
    with pytest.raises(ValueError, match="num_train=0"):
        sample_problem_splits(0, 4)


def test_verl_rows_follow_verl_schema_with_stable_row_index():
    problems = [DigitSumProblem((1,)), DigitSumProblem((2, 3)), DigitSumProblem((9, 9, 9))]
    rows = to_verl_rows(problems, "train")
    assert [row["extra_info"]["index"] for row in rows] == [0, 1, 2]
    assert [row["extra_info"]["difficulty"] for row in rows] == [1, 2, 3]
    assert [row["reward_model"]["ground_truth"] for row in rows] == ["1", "5", "27"]
    assert all(row["data_source"] == DATA_SOURCE and row["prompt"][0]["role"] == "user" for row in rows)


def test_parquet_round_trips_rows_and_rollout_n(tmp_path):
    import pandas as pd

    rows = to_verl_rows([DigitSumProblem((1, 2)), DigitSumProblem((3,))], "train")
    path = write_parquet(rows, tmp_path / "d" / "train.parquet", rollout_n=[2, 5])
    frame = pd.read_parquet(path)
    assert frame["__rollout_n__"].tolist() == [2, 5]
    assert frame["reward_model"].tolist() == [row["reward_model"] for row in rows]
    assert [list(prompt) for prompt in frame["prompt"]] == [row["prompt"] for row in rows]
    with pytest.raises(ValueError, match="one count >= 1 per row"):
        write_parquet(rows, tmp_path / "bad.parquet", rollout_n=[2])
    with pytest.raises(ValueError, match="one count >= 1 per row"):
        write_parquet(rows, tmp_path / "bad.parquet", rollout_n=[2, 0])


# ----------------------------------------------------------------------------------------- reward


@pytest.mark.parametrize(
    ("response", "truth", "expected"),
    [
        ("7", "7", 1.0),  # exact answer
        (" 7  ", "7", 1.0),  # surrounding whitespace is ignored
        ("7 + 1", "7", 1.0),  # only the first token counts
        ("17", "7", 0.0),  # a different number
        ("", "7", 0.0),  # empty response (e.g. immediate EOS)
        ("+ 7", "7", 0.0),  # the answer must come first
    ],
)
def test_reward_scores_the_first_token(response, truth, expected):
    result = compute_score(DATA_SOURCE, response, truth, {"difficulty": 3})
    assert result == {"score": expected, "acc": expected, "difficulty": 3.0}


def test_reward_refuses_other_data_sources():
    with pytest.raises(ValueError, match="openai/gsm8k"):
        compute_score("openai/gsm8k", "7", "7")


def test_reward_file_loads_standalone_as_verl_loads_it(random_assets):
    import importlib.util

    spec = importlib.util.spec_from_file_location("standalone_reward", random_assets.reward_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.compute_score(DATA_SOURCE, "5", "5")["score"] == 1.0


# ----------------------------------------------------------------------------------------- model


def test_build_model_is_seeded_and_leaves_global_rng_alone(demo_tokenizer):
    import torch

    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    first = build_model(demo_tokenizer, seed=1)
    after = torch.rand(1)
    second = build_model(demo_tokenizer, seed=1)
    third = build_model(demo_tokenizer, seed=2)
    assert torch.equal(before, after)
    weights = [dict(model.state_dict()) for model in (first, second, third)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])
    assert first.config.vocab_size == len(demo_tokenizer) and first.config.tie_word_embeddings


def test_build_model_rejects_inconsistent_heads(demo_tokenizer):
    with pytest.raises(ValueError, match="num_heads=3"):
        build_model(demo_tokenizer, hidden_size=64, num_heads=3)


def test_warm_start_raises_accuracy_on_trained_tiers_and_teaches_eos(demo_tokenizer):
    model = build_model(demo_tokenizer, seed=0)
    tier2 = all_problems(2)
    before = answer_probabilities(model, demo_tokenizer, tier2).mean()
    report = warm_start(model, demo_tokenizer, steps=80, eos_start_step=50, seed=0)
    assert len(report.losses) == 80 and all(np.isfinite(report.losses))
    assert report.accuracy_by_tier[2] > before + 0.1
    assert report.accuracy_by_tier[3] < report.accuracy_by_tier[2]  # tier 3 is never trained
    assert report.eos_probability > 0.5
    assert report.eos_probability == pytest.approx(
        eos_probabilities(model, demo_tokenizer, all_problems(1) + tier2).mean()
    )


def test_warm_start_rejects_bad_arguments(demo_tokenizer):
    model = build_model(demo_tokenizer)
    with pytest.raises(ValueError, match="steps=-1"):
        warm_start(model, demo_tokenizer, steps=-1)
    with pytest.raises(ValueError, match="tier_weights"):
        warm_start(model, demo_tokenizer, steps=1, tier_weights={1: -1.0, 2: 1.0})


# ----------------------------------------------------------------------------------------- assets


def test_build_demo_assets_writes_a_loadable_verl_fixture(random_assets):
    import pandas as pd
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert not (random_assets.model_dir / "tokenizer.json").exists()
    tokenizer = AutoTokenizer.from_pretrained(random_assets.tokenizer_dir)
    assert prompt_token_ids(tokenizer, DigitSumProblem((1, 2)))[3:6] == [
        tokenizer.convert_tokens_to_ids(t) for t in ("1", "+", "2")
    ]
    model = AutoModelForCausalLM.from_pretrained(random_assets.model_dir)
    assert model.config.eos_token_id == tokenizer.eos_token_id
    train = pd.read_parquet(random_assets.train_parquet)
    val = pd.read_parquet(random_assets.val_parquet)
    assert len(train) == 16 and len(val) == 4
    assert train["extra_info"].map(lambda info: info["index"]).tolist() == list(range(16))
    questions = {json.dumps(list(p)) for p in train["prompt"].map(lambda m: [x["content"] for x in m])}
    assert questions.isdisjoint({json.dumps(list(p)) for p in val["prompt"].map(lambda m: [x["content"] for x in m])})
    assert random_assets.warm_start is None


def test_build_demo_assets_rejects_empty_validation(tmp_path):
    from cures_verl.experiments.trainer import build_demo_assets

    with pytest.raises(ValueError, match="num_val_prompts=0"):
        build_demo_assets(tmp_path, num_val_prompts=0, warm_start_steps=0)


def test_demo_overrides_divide_batches_as_verl_requires(random_assets):
    from cures_verl.experiments.trainer import demo_overrides

    overrides = dict(item.split("=", 1) for item in demo_overrides(random_assets, train_batch_size=16, rollout_n=8))
    assert overrides["actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu"] == "64"  # 8 prompts x 8 rollouts
    assert overrides["actor_rollout_ref.model.tokenizer_path"] == str(random_assets.tokenizer_dir)
    with pytest.raises(ValueError, match="multiple of ppo_mini_batch_size"):
        demo_overrides(random_assets, train_batch_size=10, ppo_mini_batch_size=4)
