"""Simulator comparison of posterior-baseline and GRPO advantages (experiments/curriculum/posterior_advantage.py)."""

from __future__ import annotations

import numpy as np
import pytest

from cures_verl.core.advantage import posterior_advantages
from cures_verl.experiments.curriculum import posterior_advantage
from cures_verl.experiments.curriculum.simulator import Learner, LearnerConfig, grpo_advantages, make_problem


def _learner(seed: int = 0) -> Learner:
    config = LearnerConfig(num_prompts=50, num_clusters=5, optimizer="sgd", lr=1.0)
    return Learner(make_problem(config, np.random.default_rng(seed)), config)


def test_given_advantages_replace_grpos_and_nothing_else():
    ids = np.array([0, 0, 3, 3])
    groups = np.array([0, 0, 1, 1])
    rewards = np.array([1.0, 0.0, 1.0, 1.0])
    learner = _learner()
    np.testing.assert_array_equal(
        learner.gradient(ids, groups, rewards),
        learner.gradient(ids, groups, rewards, advantages=grpo_advantages(groups, rewards)),
    )
    post = posterior_advantages(rewards, groups, np.array([1.0, 3.0]), np.array([1.0, 1.0]))
    grad = learner.gradient(ids, groups, rewards, advantages=post)
    assert grad[5 + 3] < 0  # the all-correct group 1 now pushes prompt 3 up (a negative loss gradient); GRPO: 0
    assert learner.gradient(ids, groups, rewards)[5 + 3] == 0
    with pytest.raises(ValueError, match="one entry per rollout"):
        learner.gradient(ids, groups, rewards, advantages=post[:3])


def test_the_arms_differ_only_in_the_advantage():
    kwargs = dict(seed=3, optimizer="normalized", forgetting=0.0, steps=15, num_prompts=300, rollouts_per_step=64)
    grpo = posterior_advantage.final_accuracy("grpo", group_size=4, **kwargs)
    assert grpo == posterior_advantage.final_accuracy("grpo", group_size=4, **kwargs)  # deterministic per seed
    post = posterior_advantage.final_accuracy("posterior", group_size=4, **kwargs)
    assert post != grpo
    with pytest.raises(ValueError, match="multiple of group_size"):
        posterior_advantage.final_accuracy("grpo", group_size=3, **kwargs)
    with pytest.raises(ValueError, match="choose one of"):
        posterior_advantage.final_accuracy("oracle", group_size=4, **kwargs)


def test_the_table_prints_every_cell(capsys):
    posterior_advantage.main(["--seeds", "2", "--group-sizes", "2", "--optimizers", "normalized", "--steps", "5"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 + 2 and lines[1].split()[:3] == ["normalized", "2", "0.00"]
