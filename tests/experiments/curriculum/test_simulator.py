"""The simulated learner: verl's GRPO advantage, the policy gradient, optimisers, and where accuracies move."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cures_verl.experiments.curriculum.simulator import (
    ARTIFACT_COLD_START_HISTOGRAM,
    Learner,
    LearnerConfig,
    NormalizedAdam,
    cold_start_histogram,
    grpo_advantages,
    make_problem,
)


def _verl_loop_transcription(group_ids, rewards, epsilon=1e-6):
    """verl 0.9.1 compute_grpo_outcome_advantage, written as its per-rollout loop (torch.std is unbiased)."""
    by_group: dict[int, list[float]] = {}
    for g, r in zip(group_ids, rewards, strict=True):
        by_group.setdefault(int(g), []).append(float(r))
    out = []
    for g, r in zip(group_ids, rewards, strict=True):
        scores = by_group[int(g)]
        if len(scores) == 1:
            mean, std = 0.0, 1.0
        else:
            mean, std = float(np.mean(scores)), float(np.std(scores, ddof=1))
        out.append((r - mean) / (std + epsilon))
    return np.array(out)


def test_grpo_advantages_on_hand_checked_groups():
    # group 0: [1, 0, 0, 1] -> mean 1/2, unbiased std sqrt(1/3) -> +-(1/2) / sqrt(1/3) = +-0.8660
    # group 1: a single rollout -> verl uses mean 0, std 1 -> its raw reward
    # group 2: all correct -> zero advantage
    # group 3: [1, 0, 0] -> mean 1/3, std sqrt(1/3): (2/3)/0.57735 = 1.1547, (-1/3)/0.57735 = -0.57735
    groups = np.array([0, 0, 0, 0, 1, 2, 2, 3, 3, 3])
    rewards = np.array([1, 0, 0, 1, 1, 1, 1, 1, 0, 0], dtype=float)
    expected = [0.8660, -0.8660, -0.8660, 0.8660, 1.0, 0.0, 0.0, 1.1547, -0.5774, -0.5774]
    np.testing.assert_allclose(grpo_advantages(groups, rewards), expected, atol=1e-4)


def test_grpo_advantage_of_a_single_zero_reward_rollout_is_zero():
    assert grpo_advantages(np.array([5]), np.array([0.0])).tolist() == [0.0]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 4), st.sampled_from([0.0, 1.0])), min_size=1, max_size=30),
)
def test_grpo_advantages_equal_a_literal_transcription_of_verls_loop(pairs):
    groups = np.array([g for g, _ in pairs])
    rewards = np.array([r for _, r in pairs])
    np.testing.assert_allclose(grpo_advantages(groups, rewards), _verl_loop_transcription(groups, rewards), atol=1e-9)


def test_grpo_advantages_equal_verls_own_function():
    torch = pytest.importorskip("torch")
    core_algos = pytest.importorskip("verl.trainer.ppo.core_algos")
    rng = np.random.default_rng(3)
    groups = rng.integers(0, 6, size=40)
    rewards = (rng.random(40) < 0.5).astype(np.float64)
    token_rewards = torch.tensor(rewards, dtype=torch.float32).unsqueeze(-1)
    advantages, _ = core_algos.compute_grpo_outcome_advantage(token_rewards, torch.ones_like(token_rewards), groups)
    np.testing.assert_allclose(grpo_advantages(groups, rewards), advantages.squeeze(-1).numpy(), atol=1e-5)


def _learner(optimizer="sgd", lr=1.0, transfer=0.5, num_prompts=12, num_clusters=3, seed=0):
    config = LearnerConfig(
        num_prompts=num_prompts, num_clusters=num_clusters, transfer=transfer, optimizer=optimizer, lr=lr
    )
    return Learner(make_problem(config, np.random.default_rng(seed)), config)


def _surrogate_loss(learner, params, ids, groups, rewards, weights):
    """The GRPO loss -sum w A log pi(y) / R at ``params`` with the advantages held fixed (they carry no gradient)."""
    advantages = grpo_advantages(groups, rewards) * weights
    saved = learner.params.copy()
    learner.params[:] = params
    p = learner.accuracy(ids)
    learner.params[:] = saved
    log_pi = rewards * np.log(p) + (1 - rewards) * np.log(1 - p)
    return -(advantages * log_pi).sum() / ids.size


@pytest.mark.parametrize("transfer", [0.0, 0.3, 1.0])
def test_policy_gradient_matches_finite_differences_of_the_grpo_loss(transfer):
    learner = _learner(transfer=transfer)
    rng = np.random.default_rng(1)
    learner.params[:] = rng.normal(scale=0.3, size=learner.params.size)
    ids = np.array([0, 0, 0, 4, 4, 7, 7, 7, 7, 11])
    groups = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 3])
    rewards = np.array([1, 0, 1, 0, 1, 1, 1, 0, 0, 1], dtype=float)
    weights = np.array([1, 1, 1, 2, 2, 0.5, 0.5, 0.5, 0.5, 1.0])
    grad = learner.gradient(ids, groups, rewards, weights)
    numeric = np.zeros_like(grad)
    h = 1e-6
    for i in range(grad.size):
        step = np.zeros_like(grad)
        step[i] = h
        plus = _surrogate_loss(learner, learner.params + step, ids, groups, rewards, weights)
        minus = _surrogate_loss(learner, learner.params - step, ids, groups, rewards, weights)
        numeric[i] = (plus - minus) / (2 * h)
    np.testing.assert_allclose(grad, numeric, atol=1e-7)


def test_a_mixed_group_always_pushes_its_prompt_up():
    # with 0/1 rewards, sum_j A_j (y_j - p) = sum over correct rollouts of A_j > 0 for a mixed group
    learner = _learner(transfer=0.0, num_prompts=4, num_clusters=1)
    before = learner.accuracy()
    learner.update(np.array([2, 2, 2]), np.array([0, 0, 0]), np.array([0.0, 0.0, 1.0]))
    after = learner.accuracy()
    assert after[2] > before[2]
    np.testing.assert_array_equal(np.delete(after, 2), np.delete(before, 2))  # no transfer: others unchanged


def test_transfer_moves_the_cluster_and_not_other_clusters():
    learner = _learner(transfer=0.5)
    clusters = learner.problem.clusters
    target = 0
    before = learner.accuracy()
    learner.update(np.array([target] * 4), np.zeros(4, dtype=np.int64), np.array([1.0, 0.0, 1.0, 0.0]))
    moved = learner.accuracy() != before
    np.testing.assert_array_equal(moved, clusters == clusters[target])


def test_accuracies_move_only_through_updates_and_not_on_zero_variance_groups_under_sgd():
    learner = _learner()
    rng = np.random.default_rng(0)
    before = learner.accuracy()
    learner.sample(np.arange(12).repeat(5), rng)  # generating rollouts changes nothing
    np.testing.assert_array_equal(learner.accuracy(), before)
    stats = learner.update(np.array([1, 1, 3, 3]), np.array([0, 0, 1, 1]), np.array([1.0, 1.0, 0.0, 0.0]))
    np.testing.assert_array_equal(learner.accuracy(), before)  # all-equal groups: zero advantage, zero gradient
    assert (stats.num_rollouts, stats.num_informative, stats.num_groups) == (4, 0, 2)


def test_normalized_step_has_norm_lr_on_the_first_update_whatever_the_gradient_scale():
    for scale in (1e-4, 1.0, 1e3):
        params = np.zeros(5)
        NormalizedAdam(0.1, 5).step(params, scale * np.array([3.0, 4.0, 0.0, 0.0, 0.0]))
        assert math.isclose(float(np.linalg.norm(params)), 0.1, rel_tol=1e-6)


def test_sgd_step_size_grows_with_the_loss_normaliser_while_normalized_does_not():
    # the same informative group, once alone and once diluted by zero-advantage rollouts (token-mean over more)
    alone = (np.array([0, 0]), np.array([0, 0]), np.array([1.0, 0.0]))
    diluted = (np.array([0, 0, 1, 1, 1, 1]), np.array([0, 0, 1, 1, 1, 1]), np.array([1.0, 0, 0, 0, 0, 0]))
    moves = {}
    for optimizer in ("sgd", "normalized"):
        for name, batch in (("alone", alone), ("diluted", diluted)):
            learner = _learner(optimizer=optimizer, lr=0.5, transfer=0.0)
            learner.update(*batch)
            moves[optimizer, name] = float(np.abs(learner.params).sum())
    assert moves["sgd", "alone"] == pytest.approx(3 * moves["sgd", "diluted"])
    assert moves["normalized", "alone"] == pytest.approx(moves["normalized", "diluted"])


def test_same_seed_gives_the_same_problem_and_rewards():
    config = LearnerConfig(num_prompts=50, num_clusters=5)
    a, b = make_problem(config, np.random.default_rng(4)), make_problem(config, np.random.default_rng(4))
    np.testing.assert_array_equal(a.start_logits, b.start_logits)
    np.testing.assert_array_equal(a.clusters, b.clusters)
    c = make_problem(config, np.random.default_rng(5))
    assert not np.array_equal(a.start_logits, c.start_logits)


def test_default_difficulty_matches_the_released_cold_start_histogram():
    defaults = LearnerConfig()
    model = cold_start_histogram(defaults.difficulty_mean, defaults.difficulty_std)
    assert model.sum() == pytest.approx(1.0)
    assert np.abs(model - np.array(ARTIFACT_COLD_START_HISTOGRAM)).max() < 0.05  # within 5 points per bin
    # and a drawn dataset has that spread: many prompts start near 0 or 1
    p = Learner(make_problem(defaults, np.random.default_rng(0)), defaults).accuracy()
    assert 0.3 < p.mean() < 0.38
    assert np.mean(p < 0.05) > 0.2 and np.mean(p > 0.9) > 0.05


def test_invalid_learner_settings_name_the_option():
    with pytest.raises(ValueError, match="--transfer"):
        LearnerConfig(transfer=1.5)
    with pytest.raises(ValueError, match="--optimizer"):
        LearnerConfig(optimizer="rmsprop")


def test_a_loss_normalised_per_budget_divides_by_the_budget_not_the_rollouts():
    from dataclasses import replace

    from cures_verl.experiments.curriculum.experiment import SimulationConfig, run_strategy
    from cures_verl.experiments.strategies import STRATEGIES

    config = LearnerConfig(num_prompts=40, num_clusters=4)
    problem = make_problem(config, np.random.default_rng(0))
    ids = np.array([0, 0, 0, 5, 5, 5])
    groups = np.array([0, 0, 0, 1, 1, 1])
    rewards = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 0.0])
    per_response = Learner(problem, config).gradient(ids, groups, rewards)
    per_budget = Learner(problem, replace(config, loss_denominator=24)).gradient(ids, groups, rewards)
    np.testing.assert_allclose(per_budget, per_response * 6 / 24)
    # the experiment passes the step budget B: Speed-RL's updates hold fewer rollouts than B, so its steps shrink
    small = SimulationConfig(
        learner=LearnerConfig(num_prompts=640, num_clusters=8), batch_size=16, steps=12, seeds=(0,)
    )
    runs = {
        norm: run_strategy(STRATEGIES["speed_rl"], 0, replace(small, loss_normalization=norm))
        for norm in ("rollouts", "budget")
    }
    assert not np.array_equal(runs["rollouts"].accuracy, runs["budget"].accuracy)
    with pytest.raises(ValueError, match="loss-normalization"):
        replace(small, loss_normalization="tokens")
