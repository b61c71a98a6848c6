"""Shared prediction across prompts (core/shared.py): the drift and feature prior, through the tracker and sampler."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cures_verl.config import preset_config
from cures_verl.core.curriculum import CurriculumSampler
from cures_verl.core.difficulty import BetaAccuracyTracker
from cures_verl.core.shared import SharedPrediction, logit


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _continuous(**posterior):
    return preset_config(
        "paper", {"schedule": {"mode": "continuous", "cold_start_rollouts": 0}, "posterior": posterior}
    )


@settings(max_examples=60, deadline=None)
@given(
    correct=st.lists(st.integers(0, 8), min_size=1, max_size=6),
    predicted=st.floats(0.05, 0.95),
    rate=st.floats(0.1, 1.0),
    ridge=st.floats(0.1, 10.0),
)
def test_one_drift_for_all_is_the_closed_form_newton_step(correct, predicted, rate, ridge):
    # without features the Hessian is a scalar: w = rate * sum(c - n p) / (sum n p (1 - p) + ridge)
    k = len(correct)
    shared = SharedPrediction(k, drift=True, rate=rate, ridge=ridge)
    c, n, p = np.array(correct, float), np.full(k, 8.0), np.full(k, predicted)
    shared.learn(np.arange(k), c, n, p, np.ones(k, bool))
    want = rate * np.sum(c - n * p) / (np.sum(n * p * (1 - p)) + ridge)
    assert shared.w_drift[0] == pytest.approx(want)


def test_first_observations_teach_only_the_feature_prior_and_revisits_only_the_drift():
    features = np.eye(2)[[0, 0, 1, 1]]
    shared = SharedPrediction(4, features=features, drift=True, feature_prior=True)
    ones = np.ones(2)
    shared.learn(np.array([0, 2]), 8 * ones, 8 * ones, 0.5 * ones, np.array([False, False]))
    assert np.all(shared.w_drift == 0) and np.any(shared.w_level != 0)
    level = shared.w_level.copy()
    shared.learn(np.array([0, 2]), 0 * ones, 8 * ones, 0.5 * ones, np.array([True, True]))
    np.testing.assert_array_equal(shared.w_level, level)
    assert np.all(shared.w_drift[[0]] < 0)


def test_the_shift_moves_the_mean_and_keeps_the_strength():
    tracker = BetaAccuracyTracker(3)
    tracker.shared = SharedPrediction(3, drift=True)
    tracker.update(np.array([0, 1, 2]), np.array([2, 6, 1]), np.array([8, 8, 8]))
    before_a, before_b = tracker.alpha_beta()
    tracker.shared.w_drift[:] += 0.7  # the population moved by +0.7 logits since
    a, b = tracker.alpha_beta()
    np.testing.assert_allclose(a + b, before_a + before_b)
    np.testing.assert_allclose(logit(a / (a + b)), logit(before_a / (before_a + before_b)) + 0.7)
    np.testing.assert_allclose(tracker.posterior_mean(), a / (a + b))
    np.testing.assert_allclose(tracker.alpha(np.array([1])), a[[1]])


def test_an_update_carries_the_posterior_into_the_current_frame_then_adds_the_outcomes():
    tracker = BetaAccuracyTracker(2)
    tracker.shared = SharedPrediction(2, drift=True)
    tracker.update(np.array([0, 1]), np.array([3, 3]), np.array([6, 6]))
    tracker.shared.w_drift[:] = 1.0  # as if other prompts had shown a drift of +1 logit
    a_now, b_now = tracker.alpha_beta(np.array([0]))
    tracker.update(np.array([0]), np.array([1]), np.array([4]))
    a, b = tracker.alpha_beta(np.array([0]))
    # the moved posterior plus the new outcomes (the fit on this step moved w; prompt 0's own counts hold its outcomes)
    np.testing.assert_allclose([a[0], b[0]], [a_now[0] + 1, b_now[0] + 3])
    assert tracker.num_observed(np.array([0]))[0] == pytest.approx(10.0)  # counts keep summing to the rollouts
    assert tracker.shared.shift(np.array([0]))[0] == 0.0
    assert tracker.shared.shift(np.array([1]))[0] != 0.0  # prompt 1 was not seen: it moves with the drift


def _drifting_population(num_prompts, steps, rng, *, clusters=4, drift_per_step=0.05):
    groups = np.arange(num_prompts) % clusters
    own = rng.normal(-0.5, 1.0, num_prompts) + np.linspace(-1.5, 1.5, clusters)[groups]
    speed = np.linspace(0.5, 1.5, clusters)[groups] * drift_per_step  # clusters learn at different speeds
    return groups, (lambda t: _sigmoid(own + speed * t))


@pytest.mark.parametrize("use_features", [False, True])
def test_the_drift_predicts_stale_prompts_better_than_the_independent_posterior(use_features):
    # a population whose accuracy rises steadily; each step observes 40 of 400 prompts. Stale prompts' posterior
    # means lag behind; the drift moves them with what the revisited prompts show.
    errors = {}
    for drift in (False, True):
        rng = np.random.default_rng(5)
        groups, truth = _drifting_population(400, 60, rng)
        tracker = BetaAccuracyTracker(400)
        if drift:
            features = np.eye(4)[groups] if use_features else None
            tracker.shared = SharedPrediction(400, features=features, drift=True)
        late = []
        for t in range(60):
            ids = np.sort(rng.choice(400, 40, replace=False))
            p = truth(t)
            if t >= 40:
                late.append(np.mean(np.abs(tracker.posterior_mean() - p)))
            correct = rng.binomial(8, p[ids])
            tracker.update(ids, correct, np.full(ids.size, 8))
        errors[drift] = float(np.mean(late))
    assert errors[True] < 0.8 * errors[False], errors


def test_the_feature_prior_predicts_unseen_prompts_from_similar_ones():
    rng = np.random.default_rng(0)
    groups = np.arange(300) % 3
    truth = np.array([0.1, 0.5, 0.9])[groups]
    tracker = BetaAccuracyTracker(300)
    tracker.shared = SharedPrediction(300, features=np.eye(3)[groups], drift=False, feature_prior=True)
    seen = np.arange(0, 150)
    for chunk in np.split(seen, 5):
        tracker.update(chunk, rng.binomial(8, truth[chunk]), np.full(chunk.size, 8))
    unseen = np.arange(150, 300)
    predicted = tracker.posterior_mean(unseen)
    for group, want in enumerate((0.1, 0.5, 0.9)):
        got = predicted[groups[unseen] == group]
        assert np.all(np.abs(got - want) < 0.12), (group, got[:3])
    # a reset prompt is unseen again: it gets the prediction back, not its old counts
    tracker.reset(np.array([0]))
    assert tracker.posterior_mean(np.array([0]))[0] == pytest.approx(tracker.posterior_mean(np.array([150]))[0])


def test_the_sampler_draws_from_the_shifted_posteriors():
    rng = np.random.default_rng(1)
    groups = np.arange(120) % 4
    truth = np.array([0.05, 0.3, 0.6, 0.95])[groups]
    sampler = CurriculumSampler(
        120,
        batch_size=8,
        rollouts_per_prompt=8,
        config=_continuous(drift=True, feature_prior=True),
        prompt_features=np.eye(4)[groups],
    )
    for _ in range(10):
        plan = sampler.plan_step()
        ids = np.repeat(plan.prompt_indices, plan.rollouts)
        sampler.observe(ids, (rng.random(ids.size) < truth[ids]).astype(float))
    # rho of Eq. 14 over the pool, recomputed from the (shifted) posterior means, equals the sampler's
    pool = sampler.pool()
    mean = sampler.tracker.posterior_mean(pool)
    weights = np.exp(np.sqrt(mean * (1 - mean)) / sampler.config.sampler.temperature)
    np.testing.assert_allclose(sampler.sampling_probabilities(), weights / weights.sum(), rtol=1e-9)
    assert sampler.tracker.shared is not None and np.any(sampler.tracker.shared.w_level != 0)


def test_a_large_pool_with_thompson_draws_keeps_exact_weights_under_the_drift():
    sampler = CurriculumSampler(50, batch_size=4, rollouts_per_prompt=4, config=_continuous(drift=True))
    sampler.dense_pool_max = 10  # a "large" pool: bounds would be used, but they do not follow the drift
    cfg = preset_config(
        "paper",
        {
            "schedule": {"mode": "continuous", "cold_start_rollouts": 0},
            "posterior": {"drift": True},
            "sampler": {"score": "thompson"},
        },
    )
    thompson = CurriculumSampler(50, batch_size=4, rollouts_per_prompt=4, config=cfg)
    thompson.dense_pool_max = 10
    for s in (sampler, thompson):
        plan = s.plan_step()
        s.observe(np.repeat(plan.prompt_indices, plan.rollouts), np.ones(plan.total_rollouts))
        s.plan_step()
        assert not s.policy.bounded


def test_a_resumed_run_with_the_drift_continues_with_the_same_plans():
    groups = np.arange(150) % 5
    truth = np.linspace(0.05, 0.95, 5)[groups]

    def make():
        return CurriculumSampler(
            150,
            batch_size=6,
            rollouts_per_prompt=8,
            config=_continuous(drift=True, feature_prior=True),
            prompt_features=np.eye(5)[groups],
        )

    def run(sampler, steps, rng):
        plans = []
        for _ in range(steps):
            plan = sampler.plan_step()
            ids = np.repeat(plan.prompt_indices, plan.rollouts)
            sampler.observe(ids, (rng.random(ids.size) < truth[ids]).astype(float))
            plans.append((plan.prompt_indices.tolist(), plan.rollouts.tolist()))
        return plans

    reference = run(make(), 20, np.random.default_rng(3))
    rng = np.random.default_rng(3)
    before = make()
    run(before, 8, rng)
    resumed = make()
    resumed.load_state_dict(pickle.loads(pickle.dumps(before.state_dict())))
    assert run(resumed, 12, rng) == reference[8:]
    plain = CurriculumSampler(150, batch_size=6, rollouts_per_prompt=8, config=_continuous())
    with pytest.raises(ValueError, match="posterior.drift"):
        plain.load_state_dict(before.state_dict())


def test_bad_settings_and_features_get_clear_errors():
    with pytest.raises(ValueError, match="forgetting"):
        _continuous(drift=True, forgetting=0.1)
    with pytest.raises(ValueError, match="accuracy_estimate"):
        preset_config("paper", {"posterior": {"drift": True}, "allocation": {"accuracy_estimate": "mle"}})
    with pytest.raises(ValueError, match="shared_rate"):
        _continuous(shared_rate=0.0)
    with pytest.raises(ValueError, match="shared_ridge"):
        _continuous(shared_ridge=-1.0)
    with pytest.raises(ValueError, match="needs per-prompt features"):
        CurriculumSampler(10, batch_size=2, rollouts_per_prompt=4, config=_continuous(feature_prior=True))
    with pytest.raises(ValueError, match="nothing reads them"):
        CurriculumSampler(
            10, batch_size=2, rollouts_per_prompt=4, config=_continuous(), prompt_features=np.ones((10, 2))
        )
    with pytest.raises(ValueError, match=r"shape \(10, d\)"):
        CurriculumSampler(
            10, batch_size=2, rollouts_per_prompt=4, config=_continuous(drift=True), prompt_features=np.ones((9, 2))
        )
    bad = np.ones((10, 2))
    bad[4, 1] = np.nan
    with pytest.raises(ValueError, match="row 4"):
        CurriculumSampler(10, batch_size=2, rollouts_per_prompt=4, config=_continuous(drift=True), prompt_features=bad)


def test_the_sampler_reports_the_shared_models_intercepts():
    sampler = CurriculumSampler(40, batch_size=4, rollouts_per_prompt=4, config=_continuous(drift=True))
    plan = sampler.plan_step()
    ids = np.repeat(plan.prompt_indices, plan.rollouts)
    first = sampler.observe(ids, np.zeros(ids.size))
    assert first["posterior/drift_intercept"] == 0.0  # first observations teach no drift
    sampler.observe(ids, np.ones(ids.size))  # the same prompts, now always right: the population moved up
    again = sampler.observe(ids, np.ones(ids.size))
    assert again["posterior/drift_intercept"] > 0
    assert "posterior/drift_intercept" not in _plain_metrics()


def _plain_metrics():
    sampler = CurriculumSampler(40, batch_size=4, rollouts_per_prompt=4, config=_continuous())
    plan = sampler.plan_step()
    return sampler.observe(np.repeat(plan.prompt_indices, plan.rollouts), np.zeros(plan.total_rollouts))
