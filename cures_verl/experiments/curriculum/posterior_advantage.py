"""Posterior-baseline advantages (docs/posterior_advantage.md) against GRPO's group baseline on the simulated learner.

The comparison isolates the baseline: every arm draws the same number of prompts uniformly at random each step (no
curriculum), gives each the same group size n, and updates once per step; only the advantage differs. ``grpo``
uses verl's group mean and std, ``posterior`` the leave-one-out posterior mean of a Beta(1, 1) prior updated with
every observed outcome (:func:`cures_verl.core.advantage.posterior_advantages`, ``posterior_std`` scale), optionally
forgetting a fraction of the counts per step. Equal rollouts: every arm spends ``rollouts_per_step`` each step.
The metric is the learner's exact mean accuracy over the whole dataset after the last step; differences are paired by
seed (same problem, same prompt draws).

Run: ``python -m cures_verl.experiments.curriculum.posterior_advantage`` (about a minute).

Example:
    >>> row = compare(group_size=2, optimizer="normalized", forgetting=0.0, seeds=range(2), steps=20,
    ...               num_prompts=400, rollouts_per_step=64)
    >>> sorted(row), len(row["grpo"]), len(row["posterior"])
    (['grpo', 'posterior'], 2, 2)
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Iterable, Sequence

import numpy as np

from cures_verl.core.advantage import posterior_advantages
from cures_verl.experiments.curriculum.simulator import Learner, LearnerConfig, make_problem

__all__ = ["compare", "final_accuracy", "main"]

ARMS = ("grpo", "posterior")


def final_accuracy(
    arm: str,
    *,
    seed: int,
    group_size: int,
    optimizer: str,
    forgetting: float,
    steps: int,
    num_prompts: int,
    rollouts_per_step: int,
) -> float:
    """Mean true accuracy after ``steps`` updates of one arm on one seed's problem (module docstring)."""
    if arm not in ARMS:
        raise ValueError(f"arm={arm!r}: choose one of {ARMS}")
    if rollouts_per_step % group_size:
        raise ValueError(f"rollouts_per_step={rollouts_per_step} must be a multiple of group_size={group_size}")
    config = LearnerConfig(num_prompts=num_prompts, num_clusters=32, optimizer=optimizer)
    rng = np.random.default_rng(seed)
    learner = Learner(make_problem(config, rng), config)
    alpha, beta = np.ones(num_prompts), np.ones(num_prompts)
    per_step = rollouts_per_step // group_size
    for _ in range(steps):
        prompts = rng.choice(num_prompts, per_step, replace=False)
        rollout_prompts = np.repeat(prompts, group_size)
        groups = np.repeat(np.arange(per_step), group_size)
        rewards = learner.sample(rollout_prompts, rng)
        advantages = None
        if arm == "posterior":
            advantages = posterior_advantages(rewards, groups, alpha[prompts], beta[prompts])
        learner.update(rollout_prompts, groups, rewards, advantages=advantages)
        alpha, beta = 1 + (alpha - 1) * (1 - forgetting), 1 + (beta - 1) * (1 - forgetting)
        np.add.at(alpha, rollout_prompts, rewards)
        np.add.at(beta, rollout_prompts, 1 - rewards)
    return learner.mean_accuracy()


def compare(
    *,
    group_size: int,
    optimizer: str,
    forgetting: float,
    seeds: Iterable[int],
    steps: int = 150,
    num_prompts: int = 2000,
    rollouts_per_step: int = 512,
) -> dict[str, list[float]]:
    """Final accuracy of each arm per seed, ``{"grpo": [...], "posterior": [...]}``."""
    run = functools.partial(
        final_accuracy, group_size=group_size, optimizer=optimizer, forgetting=forgetting, steps=steps
    )
    seeds = list(seeds)
    return {
        arm: [run(arm, seed=seed, num_prompts=num_prompts, rollouts_per_step=rollouts_per_step) for seed in seeds]
        for arm in ARMS
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Print the table: per optimiser, group size and forgetting, each arm's mean +- sd and the paired gain."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 (default 10)")
    parser.add_argument("--group-sizes", default="2,4,8", help="comma-separated n (default 2,4,8)")
    parser.add_argument("--optimizers", default="normalized,adam,sgd", help="comma-separated (default all three)")
    parser.add_argument("--forgetting", default="0,0.05", help="comma-separated fractions per step (default 0,0.05)")
    parser.add_argument("--steps", type=int, default=150)
    args = parser.parse_args(argv)
    print(f"{'optimizer':>10} {'n':>2} {'forget':>6}  {'grpo':>13}  {'posterior':>13}  {'paired gain':>15}  wins")
    for optimizer in args.optimizers.split(","):
        for n in (int(v) for v in args.group_sizes.split(",")):
            for forgetting in (float(v) for v in args.forgetting.split(",")):
                row = compare(
                    group_size=n, optimizer=optimizer, forgetting=forgetting, seeds=range(args.seeds), steps=args.steps
                )
                grpo, post = np.array(row["grpo"]), np.array(row["posterior"])
                gain = post - grpo
                print(
                    f"{optimizer:>10} {n:>2} {forgetting:>6.2f}  {grpo.mean():.3f} +- {grpo.std(ddof=1):.3f}  "
                    f"{post.mean():.3f} +- {post.std(ddof=1):.3f}  {gain.mean():+.4f} +- {gain.std(ddof=1):.4f}  "
                    f"{int((gain > 0).sum())}/{gain.size}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
