"""verl's own GRPO advantage on the uneven groups CurES produces, and the Eq. 16 prompt weighting."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("verl")

from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage  # noqa: E402

from cures_verl.core import advantage_weights, allocate_rollouts, reward_std  # noqa: E402


def _grpo(counts, rewards):
    uid = np.repeat(np.arange(len(counts)), counts).astype(object)
    scores = torch.zeros(len(rewards), 3)
    scores[:, -1] = torch.tensor(rewards, dtype=torch.float32)
    mask = torch.ones(len(rewards), 3)
    adv, _ = compute_grpo_outcome_advantage(scores, mask, uid)
    return adv[:, -1].numpy()


def test_uneven_groups_from_an_allocation_get_per_group_normalised_advantages():
    accuracy = np.array([0.5, 0.2, 0.9])
    counts = allocate_rollouts(reward_std(accuracy), budget=24)
    assert counts.sum() == 24 and counts.min() >= 2
    rng = np.random.default_rng(0)
    rewards = np.concatenate([(rng.random(n) < p).astype(float) for n, p in zip(counts, accuracy, strict=True)])
    rewards[: counts[0]] = [1.0] + [0.0] * (counts[0] - 1)  # make group 0 informative
    adv = _grpo(counts, rewards)
    start = 0
    for n in counts:
        group, a = rewards[start : start + n], adv[start : start + n]
        if group.std() == 0:
            np.testing.assert_allclose(a, 0.0, atol=1e-5)
        else:
            # verl: (r - mean) / (unbiased std + eps)
            np.testing.assert_allclose(a, (group - group.mean()) / (group.std(ddof=1) + 1e-6), rtol=1e-4)
        start += n


def test_a_group_of_one_gets_its_raw_reward_which_is_why_the_minimum_is_two():
    adv = _grpo([1, 2], [1.0, 1.0, 0.0])
    assert adv[0] == pytest.approx(1.0, abs=1e-4)  # not a centred advantage: a singleton is not a GRPO group
    assert adv[1] == pytest.approx(0.7071, abs=1e-3) and adv[2] == pytest.approx(-0.7071, abs=1e-3)


def test_prompt_weighting_equalises_each_groups_total_gradient_weight():
    counts = np.array([2, 4, 10])
    rewards = np.concatenate([[1.0, 0.0], [1.0, 0.0, 0.0, 0.0], [1.0] * 5 + [0.0] * 5])
    adv = _grpo(counts, rewards)
    weights = np.repeat(advantage_weights(counts, nominal=int(counts.sum() / counts.size)), counts)
    # the group sum of |weighted advantage| / nominal depends on the group's outcome mix, not on its size n_i:
    # groups with the same accuracy but different n_i would weigh the same; here check the per-rollout factors
    per_group = [float((weights * np.abs(adv))[s : s + n].mean() * n) for s, n in zip([0, 2, 6], counts, strict=True)]
    unweighted = [float(np.abs(adv)[s : s + n].sum()) for s, n in zip([0, 2, 6], counts, strict=True)]
    assert unweighted[2] > 4 * unweighted[0]  # token-mean: the 10-rollout group dominates
    assert max(per_group) / min(per_group) < 2.0  # weighted: comparable
