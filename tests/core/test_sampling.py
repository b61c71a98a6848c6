"""The sampling distribution (Eq. 14) and distinct draws."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cures_verl.core.difficulty import BetaAccuracyTracker
from cures_verl.core.sampling import (
    draw_distinct,
    gumbel_top_k,
    prompt_scores,
    prompt_temperatures,
    reward_std,
    sampling_probabilities,
)
from cures_verl.core.sumtree import SumTree

accuracies = st.lists(st.floats(0, 1), min_size=1, max_size=50).map(np.array)
temperatures = st.floats(min_value=1e-3, max_value=1e3)


@given(accuracies, temperatures)
def test_probabilities_are_a_stable_distribution_for_any_temperature_in_range(p, tau):
    assume(np.all(1 - (1 - p) == p))  # p and 1 - p both exactly representable
    rho = sampling_probabilities(reward_std(p), tau)
    assert np.all(np.isfinite(rho)) and np.all(rho >= 0)
    assert math.isclose(rho.sum(), 1.0, rel_tol=1e-9)
    # symmetric in p <-> 1 - p, and monotone in the score
    np.testing.assert_allclose(rho, sampling_probabilities(reward_std(1 - p), tau), rtol=1e-9, atol=1e-300)
    order = np.argsort(reward_std(p), kind="stable")
    assert np.all(np.diff(rho[order]) >= -1e-15)


def test_probabilities_match_eq14_by_hand():
    p = np.array([0.5, 0.0, 0.9])
    s = np.array([0.5, 0.0, 0.3])
    expected = np.exp(s / 0.2) / np.exp(s / 0.2).sum()
    np.testing.assert_allclose(sampling_probabilities(reward_std(p), 0.2), expected)
    # a million prompts at the smallest temperature: no overflow, no NaN
    big = sampling_probabilities(np.linspace(0, 0.5, 1_000_000), 1e-3)
    assert np.isfinite(big).all() and math.isclose(big.sum(), 1.0)


def test_reward_std_rejects_out_of_range_accuracies():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        reward_std(np.array([1.2]))
    with pytest.raises(ValueError):
        reward_std(np.array([np.nan]))


def test_scores_and_temperatures_of_the_tracker():
    t = BetaAccuracyTracker(3)
    t.update(np.array([0, 1]), np.array([8, 0]), np.array([8, 8]))
    mean = prompt_scores(t, None, "mean")
    np.testing.assert_allclose(mean, reward_std(t.posterior_mean()))
    draws = prompt_scores(t, None, "thompson", rng=np.random.default_rng(0))
    assert draws.shape == (3,) and np.all((draws >= 0) & (draws <= 0.5))
    expected = prompt_scores(t, None, "expected_std")
    assert np.all(expected <= mean + 1e-12)
    informative = prompt_scores(t, None, "informative", group_size=8)
    assert informative[2] > informative[0] and np.isclose(informative[0], informative[1])
    with pytest.raises(ValueError, match="generator"):
        prompt_scores(t, None, "thompson")
    np.testing.assert_allclose(prompt_temperatures(t, None, 100.0, "count_scaled"), [900.0, 100.0, 100.0])
    assert prompt_temperatures(t, None, 0.1, "constant") == 0.1


def _tree(weights):
    tree = SumTree(len(weights))
    tree.rebuild(np.asarray(weights, dtype=float))
    return tree


@given(st.lists(st.floats(0, 10), min_size=1, max_size=40), st.integers(0, 40), st.integers(0, 2**32 - 1))
def test_draws_are_distinct_positive_weight_and_leave_the_tree_unchanged(weights, m, seed):
    w = np.array(weights)
    tree = _tree(w)
    before = tree.nodes.copy()
    positive = int(np.count_nonzero(w > 0))
    if m > positive:
        with pytest.raises(ValueError, match="positive"):
            draw_distinct(tree, m, np.random.default_rng(seed))
    else:
        got = draw_distinct(tree, m, np.random.default_rng(seed))
        assert got.size == m and np.unique(got).size == m and np.all(w[got] > 0)
        again = draw_distinct(tree, m, np.random.default_rng(seed))
        np.testing.assert_array_equal(got, again)  # same seed, same draws
    np.testing.assert_array_equal(tree.nodes, before)


def _successive_sampling_probability(weights, sequence):
    remaining, prob = float(np.sum(weights)), 1.0
    for i in sequence:
        prob *= weights[i] / remaining
        remaining -= weights[i]
    return prob


@pytest.mark.parametrize(
    ("weights", "m"),
    [
        ([1.0, 2.0, 3.0, 4.0], 2),  # spread weights: answered by the first round of tree draws
        ([1000.0, 1000.0, 1.0, 1.0, 1.0], 4),  # concentrated mass: zeroing rounds, then Gumbel-top-k
    ],
)
def test_draws_follow_successive_sampling_exactly(weights, m):
    """Chi-square goodness of fit of the ordered samples against the exact successive-sampling law."""
    w = np.array(weights)
    tree = _tree(w)
    rng = np.random.default_rng(12345)
    runs = 6000
    counts: dict[tuple[int, ...], int] = {}
    for _ in range(runs):
        key = tuple(draw_distinct(tree, m, rng).tolist())
        counts[key] = counts.get(key, 0) + 1
    sequences = list(itertools.permutations(range(w.size), m))
    expected = np.array([_successive_sampling_probability(w, s) for s in sequences]) * runs
    observed = np.array([counts.get(s, 0) for s in sequences])
    keep = expected >= 5  # pool tiny cells, as the chi-square approximation needs
    stat = (((observed[keep] - expected[keep]) ** 2) / expected[keep]).sum()
    rest_obs, rest_exp = observed[~keep].sum(), expected[~keep].sum()
    if rest_exp > 0:
        stat += (rest_obs - rest_exp) ** 2 / rest_exp
    dof = int(keep.sum()) + (1 if rest_exp > 0 else 0) - 1
    # 99.9% quantile of chi-square ~ dof + 3.1 sqrt(2 dof) + 10 (Wilson-Hilferty bound, generous)
    assert stat < dof + 3.1 * math.sqrt(2 * dof) + 10, (stat, dof)


@settings(max_examples=20, deadline=None)
@given(st.integers(2, 30), st.integers(0, 2**32 - 1))
def test_gumbel_top_k_ignores_minus_infinity_and_is_deterministic(n, seed):
    log_w = np.where(np.arange(n) % 3 == 0, -np.inf, np.linspace(-5, 0, n))
    k = int(np.isfinite(log_w).sum())
    got = gumbel_top_k(log_w, k, np.random.default_rng(seed))
    assert sorted(got.tolist()) == np.flatnonzero(np.isfinite(log_w)).tolist()
    np.testing.assert_array_equal(got, gumbel_top_k(log_w, k, np.random.default_rng(seed)))
    with pytest.raises(ValueError):
        gumbel_top_k(log_w, k + 1, np.random.default_rng(seed))
