"""Reward function of the digit-sum demo task, in verl's ``custom_reward_function`` contract.

verl loads this file by path (``reward.custom_reward_function.path=<this file>``,
``reward.custom_reward_function.name=compute_score``) in its reward-loop workers, so the module imports only
the standard library and no other module of this package.

The score is 1.0 when the first whitespace-separated token of the decoded response equals the ground truth,
else 0.0. The returned dict also carries ``acc`` (verl files validation accuracy under it) and the difficulty
tier read from ``extra_info.difficulty``, so per-tier accuracy can be computed from the rollout dumps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["compute_score"]

DATA_SOURCE = "digit_sum"


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: str,
    extra_info: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, float]:
    """Score one response of the digit-sum task.

    Args:
        data_source: Must be ``"digit_sum"``.
        solution_str: The decoded response (special tokens already removed by verl).
        ground_truth: The expected sum, as a string.
        extra_info: The row's ``extra_info``; ``difficulty`` (the operand count) is copied into the result.
        **kwargs: Extra keys verl passes (ignored).

    Returns:
        ``{"score": s, "acc": s, "difficulty": tier}`` with ``s`` in {0.0, 1.0}; ``difficulty`` is 0.0 when
        ``extra_info`` has none.

    Raises:
        ValueError: If ``data_source`` is not the digit-sum task.

    Example:
        >>> compute_score("digit_sum", "7", "7", {"difficulty": 2})
        {'score': 1.0, 'acc': 1.0, 'difficulty': 2.0}
        >>> compute_score("digit_sum", " 12 + 3", "15")["score"]
        0.0
    """
    if data_source != DATA_SOURCE:
        raise ValueError(
            f"data_source={data_source!r} is not the digit-sum task: this reward only scores {DATA_SOURCE!r} rows; "
            "point reward.custom_reward_function.path at the reward of your own dataset"
        )
    tokens = solution_str.split()
    score = 1.0 if tokens and tokens[0] == str(ground_truth).strip() else 0.0
    difficulty = float((extra_info or {}).get("difficulty", 0))
    return {"score": score, "acc": score, "difficulty": difficulty}
