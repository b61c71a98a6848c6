"""Cheap screening of drawn prompts that reuses the CurES posterior (beyond the paper).

Speed-RL (Zhang et al. 2025, arXiv 2506.09016) screens every candidate prompt with a few rollouts and keeps
only those whose screen has both outcomes. CurES already holds a Beta posterior of every prompt's accuracy
(Eqs. 22-24), so most of that screening is unnecessary: a prompt whose posterior makes an informative group
(not all-equal rewards) very likely can be trained directly. This module holds the three decisions of a
screened step; the paper has no screening at all.

1. :func:`needs_screening`: screen a drawn prompt iff q < threshold, where q is the posterior probability that
   a group has both outcomes (:func:`~cures_verl.core.difficulty.informative_probability`). One threshold,
   no lower cut-off: a prompt with a small q was still drawn by the sampler, and a screen is the cheapest way
   to find out whether it is informative now. Skipping the screen for it would either train on a group that
   is probably all-equal (wasting the full allocation) or drop it unseen, and a prompt dropped without
   rollouts never updates its posterior, so a stale estimate could never recover.
2. :func:`screening_verdict`: keep a screened prompt iff its screen has both outcomes (0 < correct < total);
   the full group (screen plus continuation) is then informative whatever the continuation gives.
3. :func:`reallocate_after_screening`: the rollouts a dropped prompt no longer needs (its allocation minus
   the screen it spent) go to the prompts still in the step, in proportion to their planned counts, so the
   step spends its planned total exactly.

Continuing only when the screen has both outcomes is a stopping rule that depends on observed outcomes
only, so updating the posterior with every rollout (dropped screens included) stays a valid Bayesian update
(likelihood principle).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cures_verl.core._typing import BoolArray, FloatArray, IntArray
from cures_verl.core.allocation import allocate_rollouts
from cures_verl.core.difficulty import informative_probability

__all__ = ["needs_screening", "reallocate_after_screening", "screening_verdict"]


def needs_screening(alpha: FloatArray, beta: FloatArray, group_size: int, *, threshold: float) -> BoolArray:
    """Whether each prompt should be screened before training: q < ``threshold``.

    q = 1 - E[p^n] - E[(1-p)^n] under p ~ Beta(alpha, beta) with n = ``group_size``, the probability that a
    group of n rollouts is informative (not all-equal). Prompts with q >= ``threshold`` are confidently
    informative and are trained directly; every other drawn prompt is screened (see the module docstring for
    why there is no lower cut-off).

    Args:
        alpha: Positive Beta parameters, shape ``(k,)`` (any shape broadcastable with ``beta``), float64.
        beta: Positive Beta parameters, shape ``(k,)``, float64.
        group_size: n >= 2, the group size q refers to (``cures.sampler.informative_group_size``).
        threshold: In (0, 1]; larger screens more prompts.

    Returns:
        Booleans, shape ``(k,)``.

    Raises:
        ValueError: If ``group_size`` < 2, ``threshold`` is outside (0, 1], or a Beta parameter is not finite
            and positive.

    Example:
        >>> # unseen (q 0.78), seen near p = 0.5 (q 0.96), seen failing 8 times (q 0.47)
        >>> needs_screening(np.array([1.0, 5.0, 1.0]), np.array([1.0, 5.0, 9.0]), 8, threshold=0.9).tolist()
        [True, False, True]
    """
    if isinstance(group_size, bool) or not isinstance(group_size, int | np.integer) or group_size < 2:
        raise ValueError(f"group_size must be an integer >= 2 (a group of one is never informative), got {group_size}")
    if isinstance(threshold, bool) or not isinstance(threshold, float | int) or not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must lie in (0, 1], got {threshold!r}; use e.g. 0.9")
    a = np.asarray(alpha, dtype=np.float64)
    b = np.asarray(beta, dtype=np.float64)
    if not (np.all(np.isfinite(a) & (a > 0)) and np.all(np.isfinite(b) & (b > 0))):
        raise ValueError("alpha and beta must be finite and > 0 (Beta posterior parameters)")
    result: BoolArray = informative_probability(a, b, int(group_size)) < threshold
    return result


def screening_verdict(num_correct: Any, num_total: Any) -> BoolArray:
    """Whether each screened prompt is kept: its screen has both outcomes, 0 < num_correct < num_total.

    Such a screen already makes the prompt's full group (screen plus continuation) informative, so its GRPO
    advantages are not all zero whatever the continuation gives.

    Args:
        num_correct: Correct screening rollouts per prompt, shape ``(k,)``, in ``[0, num_total]``.
        num_total: Screening rollouts per prompt, shape ``(k,)``, >= 0.

    Returns:
        Booleans, shape ``(k,)``.

    Raises:
        ValueError: On a shape mismatch, non-finite counts, or counts outside ``0 <= num_correct <= num_total``.

    Example:
        >>> screening_verdict(np.array([0, 1, 2, 3]), np.array([2, 2, 2, 4])).tolist()
        [False, True, False, True]
    """
    correct = np.asarray(num_correct, dtype=np.float64).reshape(-1)
    total = np.asarray(num_total, dtype=np.float64).reshape(-1)
    if correct.shape != total.shape:
        raise ValueError(
            f"num_correct and num_total must have the same length, got {correct.size} and {total.size}; "
            "pass one count of each per screened prompt"
        )
    if not (np.all(np.isfinite(correct)) and np.all(np.isfinite(total))):
        raise ValueError("num_correct and num_total must be finite")
    if np.any(correct < 0) or np.any(correct > total):
        raise ValueError("num_correct must satisfy 0 <= num_correct <= num_total for every screened prompt")
    result: BoolArray = (correct > 0) & (correct < total)
    return result


def reallocate_after_screening(
    rollouts: Any,
    is_dropped: Any,
    *,
    screening_rollouts: int,
    max_per_prompt: int | None = None,
) -> IntArray:
    """Final group sizes after screening: dropped prompts get 0, the others share what the drops freed.

    A dropped prompt spent ``s = screening_rollouts`` of its planned n_i; the other n_i - s go to the prompts
    still in the step, in proportion to their planned counts (largest-remainder rounding, so the allocation
    of CurES Eq. 20 is kept up to scale). Then sum(groups) + s x num_dropped = sum(rollouts): the step spends
    its planned total exactly, and no kept prompt gets fewer than it was planned. With ``max_per_prompt`` a
    kept prompt gets at most that many (at least its planned count), and what cannot be placed is left unspent.
    A screened prompt that is kept has its screen inside its group: its continuation is group - s.

    Args:
        rollouts: Planned rollouts per prompt n_i, shape ``(k,)``, integers >= 0.
        is_dropped: Whether each prompt was screened and dropped, shape ``(k,)``; dropped prompts must have
            n_i > s (a prompt planned at most s rollouts is not worth screening).
        screening_rollouts: s >= 1.
        max_per_prompt: Optional maximum group size.

    Returns:
        Group sizes, int64, shape ``(k,)``; 0 for dropped prompts, >= n_i for the others.

    Raises:
        ValueError: On a shape mismatch, negative counts, s < 1, a dropped prompt with n_i <= s, or a kept
            prompt planned above ``max_per_prompt``.

    Example:
        >>> # the dropped prompt spent 2 of its 8; its other 6 go to the others in proportion 4 : 8
        >>> dropped = np.array([False, True, False])
        >>> reallocate_after_screening(np.array([4, 8, 8]), dropped, screening_rollouts=2).tolist()
        [6, 0, 12]
    """
    planned = np.asarray(rollouts).reshape(-1)
    dropped = np.asarray(is_dropped, dtype=bool).reshape(-1)
    if planned.shape != dropped.shape:
        raise ValueError(
            f"rollouts and is_dropped must have the same length, got {planned.size} and {dropped.size}; "
            "pass one entry of each per planned prompt"
        )
    if planned.size and (not np.issubdtype(planned.dtype, np.integer) or planned.min() < 0):
        raise ValueError("rollouts must be integers >= 0 (the plan's per-prompt counts)")
    planned = planned.astype(np.int64)
    if isinstance(screening_rollouts, bool) or int(screening_rollouts) != screening_rollouts or screening_rollouts < 1:
        raise ValueError(f"screening_rollouts must be an integer >= 1, got {screening_rollouts!r}")
    s = int(screening_rollouts)
    if np.any(planned[dropped] <= s):
        raise ValueError(
            f"a dropped prompt was planned <= screening_rollouts={s} rollouts; screen only prompts planned more "
            "than s (a screen that costs the whole group saves nothing)"
        )
    kept = ~dropped & (planned > 0)
    groups = np.zeros(planned.size, dtype=np.int64)
    if not kept.any():
        return groups
    if max_per_prompt is not None and np.any(planned[kept] > max_per_prompt):
        raise ValueError(f"a kept prompt was planned more than max_per_prompt={max_per_prompt} rollouts")
    # [n0, n1 (dropped), n2] -> the kept share n0 + n2 + (n1 - s) in proportion to n0 : n2
    total = int(planned[kept].sum() + (planned[dropped] - s).sum())
    if max_per_prompt is not None:
        total = min(total, int(kept.sum()) * max_per_prompt)
    groups[kept] = allocate_rollouts(
        planned[kept].astype(np.float64), total, min_per_prompt=0, max_per_prompt=max_per_prompt
    )
    return groups
