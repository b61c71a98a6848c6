"""Per-rollout rewards -> per-prompt counts, and the reward rules."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cures_verl.core.grouping import count_rollouts, rewards_to_outcomes


@given(st.lists(st.tuples(st.integers(0, 9), st.sampled_from([0.0, 1.0])), max_size=60))
def test_counts_equal_a_python_tally(rows):
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    rewards = np.array([r[1] for r in rows])
    counts = count_rollouts(ids, rewards)
    tally: dict[int, list[float]] = {}
    for i, r in rows:
        tally.setdefault(i, []).append(r)
    assert counts.prompt_indices.tolist() == sorted(tally)
    assert counts.num_total.tolist() == [len(tally[i]) for i in sorted(tally)]
    assert counts.num_correct.tolist() == [sum(tally[i]) for i in sorted(tally)]


def test_reward_rules():
    r = np.array([0.0, 0.3, 0.5, 1.0])
    assert rewards_to_outcomes(r, "threshold", 0.5).tolist() == [0, 0, 1, 1]
    assert rewards_to_outcomes(r, "fractional").tolist() == r.tolist()
    with pytest.raises(ValueError, match="reward_rule=threshold or =fractional"):
        rewards_to_outcomes(r, "binary")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        rewards_to_outcomes(np.array([1.5]), "fractional")
    with pytest.raises(ValueError, match="finite"):
        rewards_to_outcomes(np.array([np.nan]), "threshold")
    with pytest.raises(ValueError, match="unknown reward rule"):
        rewards_to_outcomes(r, "soft")


def test_length_mismatch_and_bad_ids_raise():
    with pytest.raises(ValueError, match="differ in length"):
        count_rollouts(np.array([0, 1]), np.array([1.0]))
    with pytest.raises(ValueError, match=">= 0"):
        count_rollouts(np.array([-1]), np.array([1.0]))
    with pytest.raises(ValueError, match="integers"):
        count_rollouts(np.array([0.5]), np.array([1.0]))


@given(
    st.lists(st.integers(0, 50), unique=True, max_size=12),
    st.data(),
)
def test_rollouts_grouped_by_prompt_count_like_the_general_path_bit_for_bit(prompts, data):
    # a trainer's batch holds each prompt's rollouts together (the fast path: one sum per run); the counts must be
    # those of the general path (np.unique + bincount), fractional rewards included
    sizes = [data.draw(st.integers(1, 6)) for _ in prompts]
    ids = np.repeat(np.array(prompts, dtype=np.int64), sizes)
    rewards = np.array(data.draw(st.lists(st.floats(0, 1), min_size=ids.size, max_size=ids.size)), dtype=float)
    got = count_rollouts(ids, rewards, rule="fractional")
    unique, inverse = np.unique(ids, return_inverse=True)
    np.testing.assert_array_equal(got.prompt_indices, unique)
    np.testing.assert_array_equal(got.num_correct, np.bincount(inverse, weights=rewards, minlength=unique.size))
    np.testing.assert_array_equal(got.num_total, np.bincount(inverse, minlength=unique.size).astype(float))
    # a prompt in two runs takes the general path and still counts both
    if len(prompts) >= 2:
        split = np.concatenate([ids, ids[:1]])
        again = count_rollouts(split, np.concatenate([rewards, rewards[:1]]), rule="fractional")
        assert again.num_total[np.searchsorted(again.prompt_indices, ids[0])] == sizes[0] + 1


@given(st.one_of(st.lists(st.integers(-50, 50), max_size=80), st.lists(st.floats(-1e3, 1e3), max_size=80)))
def test_sorted_distinct_is_numpys_unique(values):
    from cures_verl.core.grouping import sorted_distinct

    x = np.array(values)
    np.testing.assert_array_equal(sorted_distinct(x), np.unique(x))
