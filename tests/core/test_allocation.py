"""Rollout allocation (Eqs. 20-21): budget, bounds, proportionality, zero-variance policies, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from cures_verl.core.allocation import allocate_rollouts, grad_std_from_gradient_norms, round_preserving_sum
from cures_verl.core.sampling import reward_std

sigmas = st.lists(st.floats(0, 0.5), min_size=1, max_size=64).map(np.array)
# zero or not tiny: the bisection reference below cannot resolve weights below ~1e-9 of the largest
moderate_sigmas = st.lists(st.one_of(st.just(0.0), st.floats(1e-6, 0.5)), min_size=1, max_size=64).map(np.array)


@st.composite
def feasible(draw, sigma_strategy=sigmas):
    sigma = draw(sigma_strategy)
    m = sigma.size
    lo = draw(st.integers(1, 4))
    hi = draw(st.one_of(st.none(), st.integers(lo, 40)))
    max_budget = m * (hi if hi is not None else 40)
    budget = draw(st.integers(m * lo, max(m * lo, max_budget)))
    return sigma, budget, lo, hi


def _continuous_solution(sigma, budget, lo, hi):
    """Reference water-filling by bisection on lambda (independent of the implementation)."""
    hi_f = np.inf if hi is None else hi
    if sigma.sum() == 0:
        return np.full(sigma.size, budget / sigma.size)
    left, right = 0.0, 1e12
    for _ in range(300):
        mid = (left + right) / 2
        if np.clip(mid * sigma, lo, hi_f).sum() < budget:
            left = mid
        else:
            right = mid
    x = np.clip(right * sigma, lo, hi_f)
    spare = budget - x.sum()
    if spare > 1e-6 and (sigma == 0).any():  # positive prompts saturated: the zero-sigma ones share the rest equally
        zero = sigma == 0
        x[zero] += spare / zero.sum()
    return x


@given(feasible())
def test_floor_policy_spends_exactly_the_budget_within_bounds(case):
    sigma, budget, lo, hi = case
    n = allocate_rollouts(sigma, budget, min_per_prompt=lo, max_per_prompt=hi)
    assert n.dtype == np.int64 and n.sum() == budget
    assert n.min() >= lo and (hi is None or n.max() <= hi)


@given(feasible(moderate_sigmas))
def test_counts_are_within_one_of_the_continuous_optimum(case):
    sigma, budget, lo, hi = case
    n = allocate_rollouts(sigma, budget, min_per_prompt=lo, max_per_prompt=hi)
    x = _continuous_solution(sigma, budget, lo, hi)
    assert np.all(np.abs(n - x) < 1 + 1e-6)


@given(feasible())
def test_larger_sigma_never_gets_fewer_rollouts_and_permutation_commutes(case):
    sigma, budget, lo, hi = case
    n = allocate_rollouts(sigma, budget, min_per_prompt=lo, max_per_prompt=hi)
    order = np.argsort(sigma, kind="stable")
    # monotone up to the one-rollout rounding slack between prompts with distinct sigma
    assert np.all(np.diff(n[order]) >= -1)
    perm = np.random.default_rng(0).permutation(sigma.size)
    n_perm = allocate_rollouts(sigma[perm], budget, min_per_prompt=lo, max_per_prompt=hi)
    assert np.all(np.abs(np.sort(n_perm) - np.sort(n)) <= 1) and n_perm.sum() == budget


@given(st.lists(st.floats(0, 1), min_size=1, max_size=40).map(np.array), st.integers(2, 16))
def test_allocation_is_symmetric_in_p_and_one_minus_p(p, n_nominal):
    assume(np.all(1 - (1 - p) == p))  # p and 1 - p both exactly representable
    budget = p.size * n_nominal
    a = allocate_rollouts(reward_std(p), budget)
    b = allocate_rollouts(reward_std(1 - p), budget)
    np.testing.assert_array_equal(a, b)


@given(sigmas, st.integers(1, 3), st.one_of(st.none(), st.integers(3, 30)), st.integers(0, 400))
def test_drop_policy_gives_zero_variance_prompts_nothing_and_never_exceeds_the_budget(sigma, lo, hi, extra):
    kept = int(np.count_nonzero(sigma > 0))
    budget = kept * lo + extra
    n = allocate_rollouts(sigma, budget, min_per_prompt=lo, max_per_prompt=hi, zero_variance="drop")
    assert np.all(n[sigma == 0] == 0)
    assert n.sum() <= budget
    if kept:
        assert n[sigma > 0].min() >= lo
        cap = kept * hi if hi is not None else np.inf
        assert n.sum() == min(budget, cap)


@given(
    moderate_sigmas,
    st.integers(1, 3),
    st.one_of(st.none(), st.integers(3, 30)),
    st.integers(1, 8),
    st.integers(0, 100),
)
def test_drop_with_multiple_of_spends_the_largest_multiple_the_kept_prompts_can_take(sigma, lo, hi, k, steps):
    kept = sigma > 0
    budget = k * steps
    if not kept.any():
        assert allocate_rollouts(sigma, budget, min_per_prompt=lo, max_per_prompt=hi, zero_variance="drop").sum() == 0
        return
    cap = kept.sum() * hi if hi is not None else budget
    total = min(budget, cap) // k * k  # the budget, or the kept prompts' capacity rounded down to a multiple of k
    if total < kept.sum() * lo:
        with pytest.raises(ValueError, match=f"below {kept.sum()} prompts x min_per_prompt {lo}"):
            allocate_rollouts(sigma, budget, min_per_prompt=lo, max_per_prompt=hi, zero_variance="drop", multiple_of=k)
        return
    n = allocate_rollouts(sigma, budget, min_per_prompt=lo, max_per_prompt=hi, zero_variance="drop", multiple_of=k)
    assert n.sum() == total and n.sum() % k == 0
    assert np.all(n[~kept] == 0) and n[kept].min() >= lo and (hi is None or n.max() <= hi)
    # and the kept prompts share that total as Eq. 20 says (within one of the continuous optimum)
    x = _continuous_solution(sigma[kept], total, lo, hi)
    assert np.all(np.abs(n[kept] - x) < 1 + 1e-6)


def test_hand_checked_values():
    assert allocate_rollouts(np.array([1.0, 1.0, 2.0]), 8, min_per_prompt=0).tolist() == [2, 2, 4]
    # equal sigma: uniform split; largest remainder breaks ties by lower index
    assert allocate_rollouts(np.full(3, 0.3), 10).tolist() == [4, 3, 3]
    # all sigma zero under floor: uniform (the sigma -> 0+ limit)
    assert allocate_rollouts(np.zeros(4), 12).tolist() == [3, 3, 3, 3]
    # the maximum binds: excess flows to the others in proportion
    assert allocate_rollouts(np.array([0.5, 0.1, 0.1]), 30, max_per_prompt=12).tolist() == [12, 9, 9]
    # positive prompts saturated: zero-sigma prompts take the rest equally
    assert allocate_rollouts(np.array([0.5, 0.0, 0.0]), 24, max_per_prompt=10).tolist() == [10, 7, 7]
    # drop with saturation: total capped at kept x max = 26, rounded down to the multiple 24, split 13.3 : 10.7
    got = allocate_rollouts(np.array([0.5, 0.4, 0.0]), 64, max_per_prompt=13, zero_variance="drop", multiple_of=4)
    assert got.tolist() == [13, 11, 0]
    assert allocate_rollouts(np.zeros(3), 12, zero_variance="drop").tolist() == [0, 0, 0]


def test_infeasible_settings_raise_errors_naming_the_numbers():
    with pytest.raises(ValueError, match=r"below 4 prompts x min_per_prompt 2 = 8"):
        allocate_rollouts(np.ones(4), 7)
    with pytest.raises(ValueError, match=r"exceeds 4 prompts x max_per_prompt 3 = 12"):
        allocate_rollouts(np.ones(4), 16, max_per_prompt=3)
    with pytest.raises(ValueError, match="multiple_of=4"):
        allocate_rollouts(np.ones(4), 18, multiple_of=4)
    with pytest.raises(ValueError, match="1-D"):
        allocate_rollouts(np.ones((2, 2)), 8)
    with pytest.raises(ValueError, match=">= 0"):
        allocate_rollouts(np.array([0.1, -0.1]), 8)
    with pytest.raises(ValueError, match="finite"):
        allocate_rollouts(np.array([0.1, np.nan]), 8)


@given(st.lists(st.floats(0, 1), min_size=1, max_size=30).map(np.array), st.floats(0.01, 10))
def test_eq21_with_equal_norms_reduces_to_the_reward_std(p, sq_norm):
    sigma = grad_std_from_gradient_norms(p, np.full(p.size, sq_norm), np.full(p.size, sq_norm))
    np.testing.assert_allclose(sigma, np.sqrt(sq_norm) * reward_std(p), atol=1e-12)
    # the gap term only lowers sigma, and never below zero
    lowered = grad_std_from_gradient_norms(p, np.full(p.size, sq_norm), np.full(p.size, sq_norm), np.full(p.size, 50.0))
    assert np.all(lowered <= sigma + 1e-12) and np.all(lowered >= 0)


def test_eq21_by_hand():
    # p = 0.25: p(1-p)^2 E1 + p^2(1-p) E0 - p^2(1-p)^2 gap = 0.140625*4 + 0.046875*1 - 0.03515625*1
    got = grad_std_from_gradient_norms(np.array([0.25]), np.array([4.0]), np.array([1.0]), np.array([1.0]))
    assert got[0] == pytest.approx(np.sqrt(0.5625 + 0.046875 - 0.03515625))


@given(st.lists(st.floats(0, 20), min_size=1, max_size=30), st.integers(0, 5))
def test_round_preserving_sum_hits_the_total_within_one_of_each_value(values, lo):
    x = np.maximum(np.array(values), lo)
    total = int(round(x.sum()))
    assume(total >= lo * x.size)
    n = round_preserving_sum(x, total, lo=lo, hi=None)
    assert n.sum() == total and n.min() >= lo
    assert np.all(np.abs(n - x) < 1 + 1e-6)


@given(st.lists(st.integers(0, 64), min_size=1, max_size=30).map(np.array), st.integers(1, 16))
def test_prompt_weighting_gives_every_kept_prompt_the_same_total_weight(n, nominal):
    from cures_verl.core.allocation import advantage_weights

    w = advantage_weights(n, nominal)
    np.testing.assert_allclose((w * n)[n > 0], nominal)  # a group of n_i rollouts weighs nominal in total
    assert np.all(w[n == 0] == 0)
    np.testing.assert_array_equal(advantage_weights(n, nominal, loss_weighting="rollout"), (n > 0).astype(float))
    with pytest.raises(ValueError, match="unknown loss weighting"):
        advantage_weights(n, nominal, loss_weighting="token")


@given(st.lists(st.integers(0, 64), min_size=1, max_size=30).map(np.array))
def test_default_prompt_weights_average_one_over_the_steps_rollouts(n):
    # the loss scale must not depend on the step's total: cold-start steps trained on, dropped prompts
    from cures_verl.core.allocation import advantage_weights

    assume(n.sum() > 0)
    w = advantage_weights(n)
    assert (w * n).sum() == pytest.approx(n.sum())  # mean factor over rollouts = 1
    np.testing.assert_allclose((w * n)[n > 0], n.sum() / np.count_nonzero(n))  # every sampled prompt weighs the same
    # the nominal-n form scaled a 4-rollout cold-start step (nominal 8) by 2
    assert advantage_weights(np.full(5, 4)).tolist() == [1.0] * 5
