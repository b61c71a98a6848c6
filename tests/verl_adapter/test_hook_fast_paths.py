"""The trainer hooks' vectorised helpers give what the straightforward per-row code gave, bit for bit."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
pytest.importorskip("verl")

from verl.utils import tensordict_utils as tu  # noqa: E402

from cures_verl.verl_adapter import trainer as trainer_module  # noqa: E402


def _batch(n: int = 6):
    """A batch as verl 0.9.1's _fetch_one_gen_batch builds it: collated object arrays through get_tensordict."""
    return tu.get_tensordict(
        {
            "input_ids": torch.zeros(n, 3, dtype=torch.int64),
            "index": np.fromiter((7 * i + 3 for i in range(n)), dtype=object, count=n),
            "uid": np.array([f"u-{i}" for i in range(n)], dtype=object),
            "raw_prompt": np.fromiter(([{"role": "user", "content": str(i)}] for i in range(n)), dtype=object, count=n),
        }
    )


def test_columns_read_as_lists_hold_the_collated_values_in_row_order():
    batch = _batch()
    assert trainer_module._as_list(batch["index"]) == [7 * i + 3 for i in range(6)]
    assert trainer_module._as_list(batch["uid"]) == [f"u-{i}" for i in range(6)]
    assert trainer_module._as_list(batch["raw_prompt"])[4] == [{"role": "user", "content": "4"}]
    reordered = batch[torch.tensor([5, 0, 3])]  # a re-indexed batch reads in its new order
    assert trainer_module._as_list(reordered["index"]) == [38, 3, 24]
    assert trainer_module._as_list(["a", "b"]) == ["a", "b"]  # not a TensorDict column: the plain path


def test_the_rollout_count_column_reads_like_verls_own():
    counts = [2, 8, 2, 5, 8, 2]
    ours, verls = _batch(), _batch()
    ours["__rollout_n__"] = trainer_module._rollout_counts_column(counts)
    tu.assign_non_tensor_stack(verls, "__rollout_n__", counts)
    for batch in (ours, pickle.loads(pickle.dumps(ours))):  # Ray pickles the batch to the agent loop
        column = batch.get("__rollout_n__")
        assert list(batch["__rollout_n__"]) == list(verls["__rollout_n__"]) == counts
        assert [column[i].data for i in range(len(counts))] == counts  # what agent_loop_tq.py:93 reads
        assert list(batch[1:4]["__rollout_n__"]) == counts[1:4]
        assert (
            type(column) is type(verls.get("__rollout_n__"))
            and column.batch_size == verls.get("__rollout_n__").batch_size
        )


def _jagged(rows):
    lengths = np.array([len(r) for r in rows])
    values = torch.tensor(np.concatenate([np.asarray(r, dtype=np.float32) for r in rows] or [np.zeros(0)]))
    offsets = torch.from_numpy(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))
    return torch.nested.nested_tensor_from_jagged(values, offsets=offsets)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 30), min_size=1, max_size=40), st.integers(0, 2**32 - 1))
def test_row_sums_equal_torch_sums_for_verls_reward_layout(lengths, seed):
    rng = np.random.default_rng(seed)
    rows = []
    for n in lengths:  # the reward on the last token, zeros before it
        row = np.zeros(n, dtype=np.float32)
        row[-1] = rng.choice([0.0, 1.0, 0.5, -1.0])
        rows.append(row)
    scores = _jagged(rows)
    np.testing.assert_array_equal(
        trainer_module._row_sums(scores), np.asarray(scores.sum(dim=1).tolist(), dtype=np.float64)
    )
    dense = torch.tensor(rng.random((4, 5)), dtype=torch.float32)
    np.testing.assert_array_equal(trainer_module._row_sums(dense), np.asarray(dense.sum(dim=1).tolist()))


def test_row_sums_of_arbitrary_rows_are_float32_sums():
    rows = [np.random.default_rng(i).random(50) for i in range(5)]
    np.testing.assert_allclose(trainer_module._row_sums(_jagged(rows)), [r.sum() for r in rows], rtol=1e-6)


def _old_scaling(values, weights):
    """What _compute_advantage computed before: one weight per token, built by repeat_interleave."""
    lengths = values.offsets().diff()
    return values.values() * torch.repeat_interleave(torch.tensor(weights), lengths).to(values.dtype)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 20), min_size=1, max_size=30), st.integers(0, 2**32 - 1), st.booleans())
def test_row_scaling_equals_the_per_token_product_bit_for_bit(lengths, seed, float64):
    rng = np.random.default_rng(seed)
    values = _jagged([rng.standard_normal(n) for n in lengths])
    if float64:
        values = torch.nested.nested_tensor_from_jagged(values.values().double(), offsets=values.offsets())
    # runs of equal weights (a prompt's rows) and interleaved ones
    weights = rng.choice([0.5, 1.0, 4 / 3, 2.0, 0.8], size=len(lengths)).tolist()
    if seed % 2:
        weights = sorted(weights)
    scaled = trainer_module._scale_rows(values, np.array(weights, dtype=np.float32))
    torch.testing.assert_close(scaled.values(), _old_scaling(values, weights), rtol=0, atol=0)
    assert scaled.offsets().tolist() == values.offsets().tolist()


def test_row_scaling_of_other_dtypes_uses_the_torch_product():
    values = _jagged([[1.0, 2.0], [3.0]])
    values = torch.nested.nested_tensor_from_jagged(values.values().bfloat16(), offsets=values.offsets())
    scaled = trainer_module._scale_rows(values, np.array([0.5, 3.0], dtype=np.float32))
    torch.testing.assert_close(scaled.values(), _old_scaling(values, [0.5, 3.0]), rtol=0, atol=0)


def _old_means(extra_fields):
    """The row-by-row reference (the function as it was)."""
    sums, counts = {}, {}
    for item in extra_fields:
        info = item.get("reward_extra_info", {}) if isinstance(item, dict) else {}
        for name, value in info.items():
            if name != "score" and isinstance(value, int | float) and not isinstance(value, bool):
                sums[name] = sums.get(name, 0.0) + float(value)
                counts[name] = counts.get(name, 0) + 1
    return {name: sums[name] / counts[name] for name in sums}


values_st = st.one_of(
    st.floats(-10, 10), st.integers(-5, 5), st.booleans(), st.just("text"), st.floats(0, 1).map(np.float64)
)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.dictionaries(st.sampled_from(["score", "acc", "timeout", "pred"]), values_st), max_size=30),
    st.booleans(),
)
def test_reward_extra_means_equal_the_row_by_row_means(infos, same_keys):
    if same_keys and infos:
        keys = list(infos[0])
        infos = [{k: info.get(k, 0.0) for k in keys} for info in infos]
    fields = [{"reward_extra_info": info} for info in infos] + ([{"acc": 1.0}, None] if not same_keys else [])
    got, want = trainer_module._reward_extra_means(fields), _old_means(fields)
    assert list(got) == list(want)
    for name in want:
        assert got[name] == want[name] or (np.isnan(got[name]) and np.isnan(want[name]))


def test_keys_are_mapped_to_prompts_once_per_step():
    trainer = object.__new__(trainer_module.CuresTrainer)
    trainer._prompt_of_uid = {"a": 3, "b_x": 7}
    keys = ["a_0_0", "b_x_1_0", "a_2_0"]
    first = trainer._prompts_of_keys(keys)
    np.testing.assert_array_equal(first, [3, 7, 3])
    assert trainer._prompts_of_keys(list(keys)) is first  # the same keys: the cached map
    np.testing.assert_array_equal(trainer._prompts_of_keys(keys[:2]), [3, 7])
