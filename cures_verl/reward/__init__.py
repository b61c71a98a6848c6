"""Rewards for verl's ``reward.custom_reward_function`` hook; this package never imports verl.

:mod:`cures_verl.reward.math_verify` holds :func:`compute_score`, the 0/1 math reward built on math-verify, with
the matching rules of :mod:`cures_verl.reward.matching` (see ``docs/reward.md``). Point verl at it with ``reward.custom_reward_function.path=pkg://cures_verl.reward.math_verify``
and ``reward.custom_reward_function.name=compute_score``.
"""

from __future__ import annotations

from cures_verl.reward.math_verify import RESULT_KEYS, RewardOptions, compute_score, reward_stats, shutdown_pool

__all__ = ["RESULT_KEYS", "RewardOptions", "compute_score", "reward_stats", "shutdown_pool"]
