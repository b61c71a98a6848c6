"""BetaAccuracyTracker and the closed-form Beta expectations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cures_verl.core.difficulty import (
    BetaAccuracyTracker,
    beta_mean,
    expected_reward_std,
    informative_probability,
    log_gamma,
)

positive = st.floats(min_value=1e-3, max_value=1e4, allow_nan=False)


@st.composite
def observations(draw, num_prompts=6):
    k = draw(st.integers(0, 30))
    idx = draw(st.lists(st.integers(0, num_prompts - 1), min_size=k, max_size=k))
    total = draw(st.lists(st.integers(0, 8), min_size=k, max_size=k))
    correct = [draw(st.integers(0, t)) for t in total]
    return np.array(idx, dtype=np.int64), np.array(correct, float), np.array(total, float)


@given(observations())
def test_batched_update_with_repeated_indices_equals_one_by_one_updates(obs):
    idx, correct, total = obs
    batched, sequential = BetaAccuracyTracker(6), BetaAccuracyTracker(6)
    batched.update(idx, correct, total)
    for i, c, t in zip(idx, correct, total, strict=True):
        sequential.update(np.array([i]), np.array([c]), np.array([t]))
    np.testing.assert_allclose(batched.alpha(), sequential.alpha())
    np.testing.assert_allclose(batched.beta(), sequential.beta())
    # Eq. 23: alpha = 1 + correct, beta = 1 + wrong, summed per prompt
    np.testing.assert_allclose(batched.alpha(), 1 + np.bincount(idx, weights=correct, minlength=6))
    np.testing.assert_allclose(batched.beta(), 1 + np.bincount(idx, weights=total - correct, minlength=6))


def test_posterior_mean_and_mle_on_hand_checked_counts():
    t = BetaAccuracyTracker(3, prior_correct=2.0, prior_incorrect=1.0)
    t.update(np.array([0, 1]), np.array([4, 0]), np.array([4, 2]))
    np.testing.assert_allclose(t.posterior_mean(), [6 / 7, 2 / 5, 2 / 3])
    np.testing.assert_allclose(t.mle_accuracy(), [1.0, 0.0, 2 / 3])  # unseen prompt: prior mean
    np.testing.assert_allclose(t.posterior_variance(np.array([2])), [2 * 1 / (9 * 4)])


def test_update_rejects_bad_input_with_clear_messages():
    t = BetaAccuracyTracker(3)
    with pytest.raises(ValueError, match="same length"):
        t.update(np.array([0, 1]), np.array([1]), np.array([1, 1]))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        t.update(np.array([3]), np.array([0]), np.array([1]))
    with pytest.raises(ValueError, match="num_correct <= num_total"):
        t.update(np.array([0]), np.array([2]), np.array([1]))
    with pytest.raises(ValueError, match="integers"):
        t.update(np.array([0.5]), np.array([0]), np.array([1]))
    with pytest.raises(ValueError, match="finite"):
        t.update(np.array([0]), np.array([np.nan]), np.array([1]))


def test_reset_and_decay_move_toward_the_prior():
    t = BetaAccuracyTracker(2)
    t.update(np.array([0, 1]), np.array([8, 2]), np.array([10, 10]))
    t.decay(0.5)
    np.testing.assert_allclose(t.alpha(), [5.0, 2.0])
    np.testing.assert_allclose(t.beta(), [2.0, 5.0])
    t.reset(np.array([1]))
    np.testing.assert_allclose(t.posterior_mean(), [5 / 7, 0.5])
    t.reset()
    assert t.num_observed().sum() == 0
    with pytest.raises(ValueError):
        t.decay(1.5)


def test_per_prompt_priors_and_shape_checks():
    t = BetaAccuracyTracker(3, prior_correct=np.array([1.0, 2.0, 3.0]), prior_incorrect=1.0)
    np.testing.assert_allclose(t.posterior_mean(), [0.5, 2 / 3, 0.75])
    with pytest.raises(ValueError, match="shape"):
        BetaAccuracyTracker(3, prior_correct=np.ones(2))
    with pytest.raises(ValueError, match="> 0"):
        BetaAccuracyTracker(3, prior_incorrect=0.0)


@given(observations())
def test_state_dict_round_trips_exactly(obs):
    t = BetaAccuracyTracker(6, prior_correct=np.linspace(0.5, 2, 6))
    t.update(*obs)
    clone = BetaAccuracyTracker(6)
    clone.load_state_dict(t.state_dict())
    np.testing.assert_array_equal(clone.alpha(), t.alpha())
    np.testing.assert_array_equal(clone.beta(), t.beta())
    with pytest.raises(ValueError, match="same training dataset"):
        BetaAccuracyTracker(5).load_state_dict(t.state_dict())


@given(st.floats(min_value=1e-6, max_value=1e6))
def test_log_gamma_matches_the_standard_library(x):
    assert math.isclose(float(log_gamma(np.array(x))), math.lgamma(x), rel_tol=1e-10, abs_tol=1e-10)


@settings(max_examples=25, deadline=None)
@given(positive, positive)
def test_expected_reward_std_matches_monte_carlo_and_jensen(alpha, beta):
    rng = np.random.default_rng(0)
    p = rng.beta(alpha, beta, size=200_000)
    mc = np.sqrt(p * (1 - p))
    closed = float(expected_reward_std(np.array(alpha), np.array(beta)))
    assert abs(closed - mc.mean()) < 5 * mc.std() / math.sqrt(p.size) + 1e-6
    mean = float(beta_mean(np.array(alpha), np.array(beta)))
    assert closed <= math.sqrt(mean * (1 - mean)) + 1e-12  # Jensen: sqrt(p(1-p)) is concave


@settings(max_examples=25, deadline=None)
@given(positive, positive, st.integers(1, 12))
def test_informative_probability_matches_monte_carlo(alpha, beta, n):
    rng = np.random.default_rng(1)
    p = rng.beta(alpha, beta, size=100_000)
    correct = rng.binomial(n, p)
    mc = np.mean((correct > 0) & (correct < n))
    closed = float(informative_probability(np.array(alpha), np.array(beta), n))
    assert abs(closed - mc) < 5 * math.sqrt(max(mc * (1 - mc), 1e-4) / p.size) + 1e-3
    # symmetric under swapping alpha and beta (p <-> 1 - p)
    assert math.isclose(closed, float(informative_probability(np.array(beta), np.array(alpha), n)), abs_tol=1e-12)
    if n == 1:
        assert abs(closed) < 1e-12
