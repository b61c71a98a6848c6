"""The peer methods' rules on hand-checked inputs, and Knapsack-RL's allocation against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cures_verl.experiments.strategies.rules import (
    gvm_weights,
    knapsack_allocation,
    knapsack_value,
    nearest_to_target,
    zero_variance_groups,
)


def _brute_force_best(p, budget, lo, hi):
    best = -1.0
    for ks in itertools.product(range(lo, hi + 1), repeat=len(p)):
        if sum(ks) == budget:
            best = max(best, float(knapsack_value(np.array(p), np.array(ks)).sum()))
    return best


@settings(max_examples=80, deadline=None)
@given(
    p=st.lists(st.sampled_from([0.0, 0.05, 0.2, 1 / 3, 0.5, 0.7, 0.9, 1.0]), min_size=1, max_size=4),
    lo=st.integers(0, 2),
    span=st.integers(0, 5),
    data=st.data(),
)
def test_knapsack_allocation_is_optimal_against_brute_force(p, lo, span, data):
    hi = lo + span
    hi = max(hi, 1)
    budget = data.draw(st.integers(len(p) * lo, len(p) * hi))
    counts = knapsack_allocation(np.array(p), budget, min_per_prompt=lo, max_per_prompt=hi)
    assert counts.sum() == budget and counts.min() >= lo and counts.max() <= hi
    value = float(knapsack_value(np.array(p), counts).sum())
    assert value == pytest.approx(_brute_force_best(p, budget, lo, hi), abs=1e-12)


def test_knapsack_value_matches_its_formula_by_hand():
    # p = 1/2, k = 4: (1 - 1/16 - 1/16) * 1/2 * 1/4 = 0.109375
    assert float(knapsack_value(np.array(0.5), np.array(4))) == pytest.approx(0.109375)
    # p in {0, 1}: no information whatever k is
    assert knapsack_value(np.array([0.0, 1.0]), np.array([100, 100])).tolist() == [0.0, 0.0]


def test_knapsack_sends_extra_rollouts_to_hard_but_not_hopeless_prompts():
    counts = knapsack_allocation(np.array([0.0, 0.1, 0.5, 0.95]), 40, min_per_prompt=2, max_per_prompt=128)
    assert counts[0] == 2 and counts[3] <= 4  # nothing to learn at p = 0; near-solved gets little
    assert counts[1] > counts[2]  # a low-p prompt needs more tries to see a success


def test_knapsack_rejects_infeasible_budgets():
    with pytest.raises(ValueError, match="infeasible"):
        knapsack_allocation(np.array([0.5, 0.5]), 3, min_per_prompt=2, max_per_prompt=8)
    with pytest.raises(ValueError, match="infeasible"):
        knapsack_allocation(np.array([0.5, 0.5]), 17, min_per_prompt=2, max_per_prompt=8)


def test_gvm_weights_by_hand():
    # 1 / sqrt(p + 1e-3 / p): p = 0.5 -> 1 / sqrt(0.502) = 1.41139; p = 0.1 -> 1 / sqrt(0.11) = 3.01511
    np.testing.assert_allclose(gvm_weights(np.array([0.5, 0.1])), [1.41139, 3.01511], atol=1e-5)
    assert gvm_weights(np.array([0.0]))[0] == 0.0  # p = 0 gets no rollouts
    w = gvm_weights(np.linspace(0.05, 1.0, 20))
    assert np.all(np.diff(w) < 0)  # decreasing in p above the tiny-p bump, unlike CurES's bell shape


def test_gvm_weights_reject_accuracies_outside_the_unit_interval():
    with pytest.raises(ValueError, match="accuracy"):
        gvm_weights(np.array([1.2]))


def test_nearest_to_target_keeps_the_draws_closest_to_one_half():
    draws = np.array([0.02, 0.48, 0.97, 0.6, 0.3, 0.51])
    assert sorted(nearest_to_target(draws, 3).tolist()) == [1, 3, 5]
    with pytest.raises(ValueError, match="cannot select"):
        nearest_to_target(draws, 7)


def test_zero_variance_groups_flags_all_equal_groups():
    groups, counts, flat = zero_variance_groups(np.array([3, 3, 1, 1, 1, 8]), np.array([0, 0, 1, 0, 1, 1.0]))
    assert groups.tolist() == [1, 3, 8]
    assert counts.tolist() == [3, 2, 1]
    assert flat.tolist() == [0.0, 1.0, 1.0]  # a single rollout is "all equal" too
