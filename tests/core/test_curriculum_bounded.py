"""CurriculumSampler on a large pool with forgetting or Thompson draws: weight bounds and thinned draws.

Pools above ``dense_pool_max`` keep upper bounds of the weights in the tree; these tests set it to 0 so that small
pools take that path, and check that every bound holds when drawing, that the draws have the distribution of the
dense path, and that a checkpoint continues exactly.
"""

from __future__ import annotations

import itertools
import math
import pickle

import numpy as np
import pytest

from cures_verl.config import preset_config
from cures_verl.core.curriculum import CurriculumSampler
from cures_verl.core.sampling import SamplingPolicy, prompt_temperatures

TRUTH = np.random.default_rng(11).random(300)

VARIANTS = {
    "recommended": ("recommended", {}),
    "constant_forgetting_mean": ("paper", {"posterior": {"forgetting": 0.2}}),
    "forgetting_expected_std": ("paper", {"posterior": {"forgetting": 0.05}, "sampler": {"score": "expected_std"}}),
    "thompson": ("paper", {"sampler": {"score": "thompson"}}),
    "thompson_forgetting_count_scaled": (
        "official_code",
        {"posterior": {"forgetting": 0.1, "online_update": True}, "sampler": {"score": "thompson"}},
    ),
    "iterations_informative": (
        "recommended",
        {"schedule": {"mode": "iterations", "num_iterations": 2, "steps_per_iteration": 6, "cold_start_rollouts": 4}},
    ),
}


def _sampler(preset, overrides, num_prompts=300, m=8, dense_pool_max=0, seed=0):
    overrides = {"seed": seed, **overrides}
    if preset != "recommended" and "schedule" not in overrides:
        overrides["schedule"] = {"mode": "continuous", "cold_start_rollouts": 0}
    sampler = CurriculumSampler(
        num_prompts, batch_size=m, rollouts_per_prompt=8, config=preset_config(preset, overrides)
    )
    sampler.dense_pool_max = dense_pool_max
    return sampler


def _step(sampler, step, truth=TRUTH):
    plan = sampler.plan_step()
    ids = np.repeat(plan.prompt_indices, plan.rollouts)
    rewards = (np.random.default_rng(step).random(ids.size) < truth[ids]).astype(float)
    metrics = sampler.observe(ids, rewards)
    metrics.update(sampler.metrics(plan))
    return plan, metrics


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_bound_holds_whenever_the_sampler_draws(variant, monkeypatch):
    sampler = _sampler(*VARIANTS[variant])
    checked = []
    original = SamplingPolicy.draw

    def checked_draw(self, thompson=None):
        pool = self._pool
        s = self.config
        if s.score == "thompson":  # the weight is random: its largest value 0.5 / tau must be covered
            exact = 0.5 / np.broadcast_to(
                prompt_temperatures(self.tracker, pool, s.temperature, s.temperature_rule), pool.shape
            )
        else:
            exact = self.log_weights(pool)
        assert self._bounded
        assert np.all(exact <= self._bound_log[pool]), variant
        leaves = self.tree.weights(pool)
        np.testing.assert_allclose(leaves, np.exp(self._bound_log[pool] - self._shift), rtol=1e-12)
        checked.append(pool.size)
        return original(self, thompson)

    monkeypatch.setattr(SamplingPolicy, "draw", checked_draw)
    for step in range(60):
        _step(sampler, step)
    assert len(checked) >= 10  # the training steps drew
    if VARIANTS[variant][1].get("posterior", {}).get("forgetting") or variant.startswith("recommended"):
        assert sampler.tracker.log_scale < 0  # forgetting ran, lazily


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("resume_at", [3, 17])
def test_a_resumed_bounded_run_continues_with_the_same_plans_and_metrics(variant, resume_at):
    horizon = resume_at + 15
    sampler = _sampler(*VARIANTS[variant])
    reference = [_step(sampler, t) for t in range(horizon)]
    before = _sampler(*VARIANTS[variant])
    for t in range(resume_at):
        _step(before, t)
    state = pickle.loads(pickle.dumps(before.state_dict()))
    resumed = _sampler(*VARIANTS[variant])
    resumed.load_state_dict(state)
    for t in range(resume_at, horizon):
        plan, metrics = _step(resumed, t)
        want_plan, want_metrics = reference[t]
        np.testing.assert_array_equal(plan.prompt_indices, want_plan.prompt_indices)
        np.testing.assert_array_equal(plan.rollouts, want_plan.rollouts)
        for key, value in metrics.items():
            assert value == pytest.approx(want_metrics[key], nan_ok=True), key


def _exact_law(weights, m):
    def probability(seq):
        prob, remaining = 1.0, weights.sum()
        for i in seq:
            prob *= weights[i] / remaining
            remaining -= weights[i]
        return prob

    sequences = list(itertools.permutations(range(weights.size), m))
    return sequences, np.array([probability(s) for s in sequences])


@pytest.mark.parametrize("variant", ["recommended", "constant_forgetting_mean", "forgetting_expected_std"])
def test_bounded_draws_follow_eq14_of_the_current_posterior(variant):
    """After observations and (lazy) forgetting, the thinned draw's ordered selections follow successive sampling
    from the exact weights of Eq. 14 (chi-square)."""
    preset, overrides = VARIANTS[variant]
    overrides = {**overrides, "sampler": {**overrides.get("sampler", {}), "temperature": 0.3}}
    if preset == "recommended":
        overrides["schedule"] = {"mode": "continuous", "cold_start_rollouts": 0}
    sampler = _sampler(preset, overrides, num_prompts=5, m=2)
    truth = np.array([0.05, 0.5, 0.9, 0.3, 0.7])
    for step in range(12):
        _step(sampler, step, truth)
    policy = sampler.policy
    expired = policy._expiry.pop_expired(sampler.tracker.log_scale)
    policy._refresh_weights(np.unique(np.concatenate([expired, *policy._pending])))  # what plan_step does first
    policy._pending = []
    assert policy._bounded and sampler.tracker.log_scale < 0
    log_w = policy.log_weights(np.arange(5))
    sequences, law = _exact_law(np.exp(log_w - log_w.max()), 2)
    runs = 6000
    counts = {}
    for _ in range(runs):
        key = tuple(policy.draw().tolist())
        counts[key] = counts.get(key, 0) + 1
    observed = np.array([counts.get(s, 0) for s in sequences], dtype=float)
    expected = law * runs
    keep = expected >= 5
    stat = (((observed - expected) ** 2)[keep] / expected[keep]).sum()
    dof = int(keep.sum()) - 1
    assert observed[~keep].sum() <= expected[~keep].sum() + 4 * math.sqrt(expected[~keep].sum() + 1) + 5
    assert stat < dof + 3.1 * math.sqrt(2 * dof) + 10, (stat, dof)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_bounded_and_dense_samplers_learn_the_same_posterior_from_the_same_rollouts(variant):
    """Lazy forgetting (bounded pool) and eager forgetting (dense pool) fed the same rollouts hold the same posterior,
    and the same forgetting rates."""
    bounded, dense = _sampler(*VARIANTS[variant]), _sampler(*VARIANTS[variant], dense_pool_max=10**9)
    for step in range(40):
        plan = bounded.plan_step()
        dense.plan_step()  # its own draw (another law of the generator): only the rollouts below matter
        ids = np.repeat(plan.prompt_indices, plan.rollouts)
        rewards = (np.random.default_rng(step).random(ids.size) < TRUTH[ids]).astype(float)
        got, want = bounded.observe(ids, rewards), dense.observe(ids, rewards)
        assert got.keys() == want.keys()
        for key in got:
            assert got[key] == pytest.approx(want[key], rel=1e-9, abs=1e-12, nan_ok=True), key
    assert bounded.policy._bounded and not dense.policy._bounded
    np.testing.assert_allclose(bounded.tracker.alpha(), dense.tracker.alpha(), rtol=1e-12)
    np.testing.assert_allclose(bounded.tracker.beta(), dense.tracker.beta(), rtol=1e-12)
