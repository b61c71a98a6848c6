"""The prompt-sampling distribution rho(x) proportional to exp(score(x) / tau) (CurES Sec. 4.1, Eq. 14).

The paper maximises the expected one-step loss decrease sqrt(2 delta p(1-p)) (Eq. 12) plus an entropy
bonus and obtains rho*(x) proportional to exp(sqrt(p(1-p)) / tau) (Eq. 14) with p the posterior mean.
This module computes that distribution (and posterior-aware variants of the score) and draws m
distinct prompts per step.

Departures from the paper, all explicit options:

* The paper says "sample a batch with replacement"; like the released code we draw m *distinct* prompts
  within a step (successive sampling, i.e. sequential draws without replacement, proportional to
  rho), independently across steps.
* ``temperature_rule="count_scaled"`` reproduces the released code's per-prompt temperature
  tau * (num_correct + 1).
* Scores beyond the paper: a Thompson draw, the posterior expectation E[sqrt(p(1-p))], and the
  probability that a group is informative (see :mod:`cures_verl.core.difficulty`).

Numerics: weights are exp(score / tau - shift) with ``shift`` the largest log-weight, so no value
overflows for tau down to 1e-3 and up to 1e3; probabilities never need the normalising constant.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from cures_verl.config import SamplerConfig
from cures_verl.core._typing import FloatArray, IntArray
from cures_verl.core.bounds import MASS_FLOOR_SHARE, ExpiryQueue, log_weight_bounds, windowed_bounds
from cures_verl.core.difficulty import (
    BetaAccuracyTracker,
    expected_reward_std,
    informative_probability,
)
from cures_verl.core.grouping import sorted_distinct
from cures_verl.core.schedule import Phase, Schedule
from cures_verl.core.sumtree import SumTree

__all__ = [
    "SamplingPolicy",
    "reward_std",
    "prompt_scores",
    "prompt_temperatures",
    "sampling_probabilities",
    "draw_distinct",
    "draw_distinct_thinned",
    "gumbel_top_k",
    "SCORE_UPPER_BOUND",
]

#: Largest value each score can take (used to validate inputs and in documentation).
SCORE_UPPER_BOUND = {"mean": 0.5, "thompson": 0.5, "expected_std": 0.5, "informative": 1.0}

# Rejection rounds before draw_distinct switches to the exact O(N) Gumbel-top-k draw.
_MAX_TREE_ROUNDS = 8
# draw_distinct_thinned: proposal rounds, and the acceptance rate below which the exact O(N) draw is cheaper.
_MAX_THINNED_ROUNDS = 16
_MIN_ACCEPTANCE = 1.0 / 64


def reward_std(accuracy: FloatArray) -> FloatArray:
    """sqrt(p(1-p)), the standard deviation of a 0/1 reward with mean p (CurES Eqs. 12 and 21).

    Args:
        accuracy: Accuracies in [0, 1], any shape.

    Returns:
        Values in [0, 0.5], float64, same shape.

    Raises:
        ValueError: If any accuracy is outside [0, 1] or NaN.

    Example:
        >>> reward_std(np.array([0.0, 0.5, 0.9])).round(4).tolist()
        [0.0, 0.5, 0.3]
    """
    p = np.asarray(accuracy, dtype=np.float64)
    if not np.all((p >= 0) & (p <= 1)):
        raise ValueError("accuracy must lie in [0, 1] (NaN is not allowed)")
    return np.sqrt(p * (1.0 - p))


def prompt_scores(
    tracker: BetaAccuracyTracker,
    indices: IntArray | None,
    score: str,
    *,
    rng: np.random.Generator | None = None,
    group_size: int = 8,
) -> FloatArray:
    """The score in the exponent of Eq. 14 for ``indices`` (all prompts when None).

    Args:
        tracker: The posterior.
        indices: Prompt ids, shape ``(k,)``, or None for all prompts.
        score: ``mean`` (paper: sqrt(p(1-p)) at the posterior mean), ``thompson`` (at a posterior draw;
            needs ``rng``), ``expected_std`` (E[sqrt(p(1-p))]) or ``informative`` (probability that a group
            of ``group_size`` rollouts is not all-equal).
        rng: Generator for Thompson draws.
        group_size: n of the ``informative`` score.

    Returns:
        Scores, float64, shape ``(k,)`` or ``(num_prompts,)``.

    Raises:
        ValueError: For an unknown score, or ``thompson`` without ``rng``.

    Example:
        >>> t = BetaAccuracyTracker(2)
        >>> _ = t.update(np.array([1]), np.array([3]), np.array([4]))
        >>> prompt_scores(t, None, "mean").round(4).tolist()  # p = 0.5 and p = 4/6
        [0.5, 0.4714]
    """
    if score == "mean":
        return reward_std(tracker.posterior_mean(indices))
    if score == "thompson":
        if rng is None:
            raise ValueError("the thompson score needs a random generator")
        return reward_std(tracker.sample(rng, indices))
    if score == "expected_std":
        return expected_reward_std(*tracker.alpha_beta(indices))
    if score == "informative":
        return informative_probability(*tracker.alpha_beta(indices), group_size)
    raise ValueError(f"unknown sampling score {score!r}; choose one of {', '.join(SCORE_UPPER_BOUND)}")


def prompt_temperatures(
    tracker: BetaAccuracyTracker, indices: IntArray | None, temperature: float, rule: str
) -> FloatArray | float:
    """Per-prompt temperature: ``constant`` tau (paper) or ``count_scaled`` tau * (num_correct + 1).

    The released code uses t_i = (alpha_i + 1) / 0.01 with alpha_i the number of correct cold-start
    rollouts, i.e. ``count_scaled`` with tau = 100.

    Example:
        >>> t = BetaAccuracyTracker(2)
        >>> _ = t.update(np.array([1]), np.array([3]), np.array([4]))
        >>> prompt_temperatures(t, None, 100.0, "count_scaled").tolist()
        [100.0, 400.0]
    """
    if rule == "constant":
        return float(temperature)
    if rule == "count_scaled":
        return float(temperature) * (tracker.correct_counts(indices) + 1.0)
    raise ValueError(f"unknown temperature rule {rule!r}; choose 'constant' or 'count_scaled'")


def sampling_probabilities(scores: FloatArray, temperature: FloatArray | float) -> FloatArray:
    """rho_i = exp(s_i / tau_i) / sum_j exp(s_j / tau_j) (CurES Eq. 14), computed stably.

    Args:
        scores: Scores s_i, shape ``(num_prompts,)``, finite.
        temperature: tau, a positive scalar or per-prompt array of shape ``(num_prompts,)``.

    Returns:
        Probabilities summing to 1, shape ``(num_prompts,)``.

    Raises:
        ValueError: If scores are not finite or a temperature is not positive.

    Example:
        >>> sampling_probabilities(np.array([0.0, 0.5]), 0.5).round(4).tolist()  # 1 : e
        [0.2689, 0.7311]
        >>> sampling_probabilities(np.array([0.0, 0.5]), 1e-3).tolist()  # no overflow at tiny tau
        [7.124576406741286e-218, 1.0]
    """
    scores = np.asarray(scores, dtype=np.float64)
    tau = np.asarray(temperature, dtype=np.float64)
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite")
    if not np.all(np.isfinite(tau) & (tau > 0)):
        raise ValueError("temperature must be finite and > 0")
    logits = scores / tau
    weights: FloatArray = np.exp(logits - logits.max())
    probabilities: FloatArray = weights / weights.sum()
    return probabilities


def gumbel_top_k(log_weights: FloatArray, num_draws: int, rng: np.random.Generator) -> IntArray:
    """Exact successive sampling of ``num_draws`` distinct entries from log-weights (Gumbel-top-k), O(N).

    Sorting log w_i + Gumbel noise and keeping the top k yields the same ordered sample as drawing k times
    without replacement proportionally to w. Working in log space keeps weights that would underflow.

    Args:
        log_weights: log w_i, shape ``(N,)``; ``-inf`` marks entries that must not be drawn.
        num_draws: k, at most the number of finite entries.
        rng: Random generator.

    Returns:
        Positions into ``log_weights`` in draw order, shape ``(k,)``.

    Example:
        >>> gumbel_top_k(np.array([0.0, -np.inf, 0.0]), 2, np.random.default_rng(0)).tolist() in ([0, 2], [2, 0])
        True
    """
    log_weights = np.asarray(log_weights, dtype=np.float64)
    finite = np.flatnonzero(np.isfinite(log_weights))
    if num_draws > finite.size:
        raise ValueError(f"cannot draw {num_draws} distinct entries from {finite.size} with positive weight")
    if num_draws == 0:
        return np.empty(0, dtype=np.int64)
    keys = log_weights[finite] + rng.gumbel(size=finite.size)
    top = np.argpartition(-keys, num_draws - 1)[:num_draws]
    return finite[top[np.argsort(-keys[top], kind="stable")]]


def _keep_first_draws(
    tree: SumTree, leaves: IntArray, chosen: IntArray, num_draws: int, zeroed: list[tuple[IntArray, FloatArray]]
) -> IntArray:
    """``chosen`` extended by the first occurrences of ``leaves`` not chosen yet, up to ``num_draws`` in all: a
    repeat is a rejected draw, so this is successive sampling. While draws are missing the new leaves' weights are
    zeroed in ``tree`` (and recorded in ``zeroed`` for the caller to restore), so that later rounds skip them."""
    # [5, 2, 5, 7] -> first occurrences in draw order [5, 2, 7], minus already chosen
    _, first = np.unique(leaves, return_index=True)
    fresh = leaves[np.sort(first)]
    fresh = fresh[~np.isin(fresh, chosen)][: num_draws - chosen.size]
    chosen = np.concatenate([chosen, fresh])
    if chosen.size < num_draws and fresh.size:
        zeroed.append((fresh, tree.weights(fresh)))
        tree.update(fresh, np.zeros(fresh.size))
    return chosen


def draw_distinct(tree: SumTree, num_draws: int, rng: np.random.Generator) -> IntArray:
    """Draw ``num_draws`` distinct leaves, successively, each with probability proportional to its weight.

    Equivalent to ``rng.choice(N, num_draws, replace=False, p=w / w.sum())`` in distribution (sequential
    sampling without replacement), in O(num_draws log N) for typical weights: i.i.d. draws from the tree,
    keeping first occurrences, are exactly successive sampling (a repeat is a rejected draw). When the
    weight mass sits on few leaves, chosen leaves are zeroed between rounds, and after a few rounds the
    draw finishes with an exact O(N) Gumbel-top-k over the remaining weights. The tree is left unchanged.

    Args:
        tree: Weights (zero-weight leaves are never drawn).
        num_draws: m >= 0.
        rng: Random generator (the only source of randomness).

    Returns:
        Leaf indices in the order drawn, shape ``(num_draws,)``, all distinct.

    Raises:
        ValueError: If fewer than ``num_draws`` leaves have positive weight.

    Example:
        >>> tree = SumTree(5)
        >>> tree.rebuild(np.array([1.0, 1.0, 0.0, 1.0, 1.0]))
        >>> sorted(draw_distinct(tree, 4, np.random.default_rng(0)).tolist())
        [0, 1, 3, 4]
    """
    if num_draws < 0:
        raise ValueError(f"num_draws must be >= 0, got {num_draws}")
    chosen = np.empty(0, dtype=np.int64)
    zeroed: list[tuple[IntArray, FloatArray]] = []
    try:
        for _ in range(_MAX_TREE_ROUNDS):
            need = num_draws - chosen.size
            if need == 0:
                return chosen
            if tree.total <= 0:
                break
            leaves = tree.find(rng.random(need + max(8, need // 8)) * tree.total)
            leaves = leaves[tree.weights(leaves) > 0]  # a rounding edge can land on a zero leaf
            chosen = _keep_first_draws(tree, leaves, chosen, num_draws, zeroed)
        need = num_draws - chosen.size
        if need == 0:
            return chosen
        remaining = tree.weights()
        available = int(np.count_nonzero(remaining > 0))
        if available < need:
            raise ValueError(
                f"cannot draw {num_draws} distinct prompts: only {chosen.size + available} have positive "
                "sampling weight; lower the batch size or enlarge the eligible pool"
            )
        with np.errstate(divide="ignore"):
            log_remaining = np.log(remaining)
        return np.concatenate([chosen, gumbel_top_k(log_remaining, need, rng)])
    finally:
        for leaves, weights in reversed(zeroed):
            tree.update(leaves, weights)


def draw_distinct_thinned(
    tree: SumTree,
    num_draws: int,
    rng: np.random.Generator,
    log_acceptance: Callable[[IntArray], FloatArray],
    pool: IntArray,
    pool_log_weights: Callable[[IntArray], FloatArray],
    acceptance: float = 1.0,
) -> tuple[IntArray, float]:
    """Successive sampling of ``num_draws`` distinct leaves proportionally to weights w known only through upper
    bounds B >= w held by ``tree`` (thinning), in O(num_draws / acceptance log N).

    Proposals are i.i.d. from the tree (probability B_i / sum B); proposal i is accepted with probability
    w_i / B_i = exp(``log_acceptance(i)``). Accepted proposals are then i.i.d. with probability w_i / sum w (the
    classic rejection argument: P(i proposed and accepted) = B_i / sum B * w_i / B_i is proportional to w_i), so
    keeping their first occurrences is exactly successive sampling proportional to w, as in :func:`draw_distinct`
    (chosen leaves are zeroed between rounds, which restricts the proposals to the unchosen leaves). After a few
    rounds, or when acceptance is poor, the draw finishes with an exact O(pool) Gumbel-top-k over
    ``pool_log_weights`` of the unchosen pool. The tree is left unchanged.

    ``log_acceptance`` may itself be random (Thompson draws): it is called on every round's proposals in order, and
    must return, for a leaf it has seen before in this draw, the same w_i (the random weight is drawn once per draw,
    at the leaf's first proposal). Since proposals do not depend on w, drawing w_i lazily at first proposal gives
    the same joint law as drawing every w_i first and then sampling, and ``pool_log_weights`` must do the same
    (seen leaves keep their weight, the others get a fresh draw).

    Args:
        tree: Upper bounds B_i (zero for leaves that must not be drawn).
        num_draws: m >= 0.
        rng: Random generator (proposals, acceptance tests).
        log_acceptance: log(w_i / B_i) <= 0 of each proposed leaf (repeats allowed), shape like its argument.
        pool: Every leaf with a positive weight (for the exact finish).
        pool_log_weights: log w_i of the given leaves (-inf: not drawable), for the exact finish.
        acceptance: Expected share of accepted proposals (sizes the first round; e.g. the last draw's).

    Returns:
        Leaf indices in the order drawn, shape ``(num_draws,)``, all distinct, and the share of proposals accepted
        (1.0 when none were made).

    Raises:
        ValueError: If fewer than ``num_draws`` leaves have positive weight.
        RuntimeError: If ``log_acceptance`` is positive (a bound below its weight: a bug, never silently biased).

    Example:
        >>> tree = SumTree(4)
        >>> tree.rebuild(np.ones(4))  # bounds 1; true weights 1, 1, 0.5, 0.5
        >>> w = np.array([1.0, 1.0, 0.5, 0.5])
        >>> out, accepted = draw_distinct_thinned(
        ...     tree, 3, np.random.default_rng(0), lambda i: np.log(w[i]), np.arange(4), lambda i: np.log(w[i])
        ... )
        >>> np.unique(out).size, 0 < accepted <= 1
        (3, True)
    """
    if num_draws < 0:
        raise ValueError(f"num_draws must be >= 0, got {num_draws}")
    chosen = np.empty(0, dtype=np.int64)
    zeroed: list[tuple[IntArray, FloatArray]] = []
    acceptance = min(max(float(acceptance), _MIN_ACCEPTANCE), 1.0)
    proposed = accepted_total = 0
    try:
        for _ in range(_MAX_THINNED_ROUNDS):
            need = num_draws - chosen.size
            if need == 0:
                return chosen, accepted_total / proposed if proposed else 1.0
            if tree.total <= 0 or acceptance < _MIN_ACCEPTANCE:
                break
            size = math.ceil((need + max(8, need // 8)) / acceptance)
            leaves = tree.find(rng.random(size) * tree.total)
            leaves = leaves[tree.weights(leaves) > 0]  # a rounding edge can land on a zero leaf
            if leaves.size == 0:
                continue
            log_ratio = log_acceptance(leaves)
            if np.any(log_ratio > 0):
                raise RuntimeError("a sampling-weight bound is below its weight; the thinned draw would be biased")
            accepted = leaves[rng.random(leaves.size) < np.exp(log_ratio)]
            acceptance = (accepted.size + 1) / (leaves.size + 2)  # smoothed: a small unlucky round is not zero
            proposed, accepted_total = proposed + leaves.size, accepted_total + accepted.size
            chosen = _keep_first_draws(tree, accepted, chosen, num_draws, zeroed)
        ratio = accepted_total / proposed if proposed else 1.0
        need = num_draws - chosen.size
        if need == 0:
            return chosen, ratio
        rest = np.asarray(pool, dtype=np.int64)
        rest = rest[~np.isin(rest, chosen)]
        log_weights = pool_log_weights(rest)
        available = int(np.count_nonzero(np.isfinite(log_weights)))
        if available < need:
            raise ValueError(
                f"cannot draw {num_draws} distinct prompts: only {chosen.size + available} have positive "
                "sampling weight; lower the batch size or enlarge the eligible pool"
            )
        return np.concatenate([chosen, rest[gumbel_top_k(log_weights, need, rng)]]), ratio
    finally:
        for leaves, weights in reversed(zeroed):
            tree.update(leaves, weights)


class _ThompsonDraws:
    """The posterior draws theta_i of one step, made lazily the first time prompt i is looked at (sorted ids)."""

    def __init__(self, tracker: BetaAccuracyTracker, rng: np.random.Generator) -> None:
        self.tracker, self.rng = tracker, rng
        self.ids = np.empty(0, dtype=np.int64)
        self.theta = np.empty(0)

    def __call__(self, indices: IntArray) -> FloatArray:
        """theta of every index (repeats allowed); unseen prompts are drawn in order of first appearance."""
        _, first = np.unique(indices, return_index=True)
        distinct = indices[np.sort(first)]
        pos = np.minimum(np.searchsorted(self.ids, distinct), max(self.ids.size - 1, 0))
        known = (self.ids[pos] == distinct) if self.ids.size else np.zeros(distinct.size, dtype=bool)
        new = distinct[~known]
        if new.size:
            ids = np.concatenate([self.ids, new])
            theta = np.concatenate([self.theta, self.tracker.sample(self.rng, new)])
            order = np.argsort(ids)
            self.ids, self.theta = ids[order], theta[order]
        result: FloatArray = self.theta[np.searchsorted(self.ids, indices)]
        return result


class SamplingPolicy:
    """What to sample: rho(x) proportional to exp(score(x) / tau) over the eligible pool (Eq. 14), m distinct prompts
    per step; the only reader of ``cures.sampler`` (score, temperature, temperature rule) and the owner of the
    sampler's random generator.

    The sum tree holds the exact weights of Eq. 14, or, when every weight moves each step (``decays``: the posterior
    is forgotten; or Thompson draws) on a pool above :attr:`dense_pool_max` prompts, upper bounds of them
    (:mod:`cures_verl.core.bounds`) and the draw thins proposals (:func:`draw_distinct_thinned`): the same
    distribution in O(prompts touched). Smaller such pools recompute every weight before each draw, O(pool).

    Args:
        config: The ``cures.sampler`` section.
        tracker: The posterior the scores read (shared with the sampler; never modified here).
        batch_size: Prompts per draw m.
        seed: Seed of the generator (prompt draws and Thompson draws).
        decays: Whether the posterior is forgotten after training steps (its counts shrink between draws).
    """

    #: With forgetting or Thompson draws, pools up to this size recompute every weight before each draw (O(pool),
    #: cheaper there, and the draws of earlier versions); larger ones use bounds and thinned draws (the same
    #: distribution, O(prompts touched)). A tuning knob, not a setting: set it on an instance before its first draw.
    dense_pool_max = 30_000

    # Rebuild the tree when a refreshed log-weight exceeds the current shift by this much, keeping weights <= e^50.
    _SHIFT_SLACK = 50.0

    def __init__(
        self, config: SamplerConfig, tracker: BetaAccuracyTracker, *, batch_size: int, seed: int, decays: bool
    ) -> None:
        self.config, self.tracker, self.batch_size, self.decays = config, tracker, int(batch_size), bool(decays)
        num_prompts = tracker.num_prompts
        self.rng = np.random.default_rng(seed)
        self.tree = SumTree(num_prompts)
        # Decided at each full rebuild of the tree: bounds (bounded) or exact weights.
        self._volatile = self.decays or config.score == "thompson"
        self._bounded = False
        self._bound_log = np.zeros(0)  # per-prompt arrays of the bounded mode, allocated when first used
        self._expiry = ExpiryQueue(0)
        self._pending: list[IntArray] = []  # observed prompts whose bound is refreshed before the next draw
        self._acceptance = 1.0  # share of proposals the last thinned draw accepted (sizes the next one)
        self._tree_subset: int | None = None
        self._weights_stale = True  # the tree needs a full rebuild before the next draw
        self._shift = 0.0
        self._pool = np.empty(0, dtype=np.int64)
        self._eligible = np.zeros(num_prompts, dtype=bool)  # membership of _pool, 1 byte per prompt

    @staticmethod
    def check(config: SamplerConfig, rollouts_per_prompt: int) -> None:
        """Refuse a screen as large as a group (before anything is built)."""
        screen = config.screening_rollouts
        if screen and screen >= rollouts_per_prompt:
            raise ValueError(
                f"cures.sampler.screening_rollouts={screen} must be below the nominal rollouts per prompt "
                f"{rollouts_per_prompt} (a screen as large as a group saves nothing); lower it or raise rollout.n"
            )

    @property
    def bounded(self) -> bool:
        """Whether the tree holds bounds (forgetting is then lazy) rather than exact weights."""
        return self._bounded

    # ------------------------------------------------------------------ weights
    def log_weights(self, indices: IntArray, rng: np.random.Generator | None = None) -> FloatArray:
        """score_i / tau_i of Eq. 14 for ``indices`` (Thompson draws come from ``rng``, default the policy's)."""
        s = self.config
        rng = self.rng if rng is None else rng
        scores = prompt_scores(self.tracker, indices, s.score, rng=rng, group_size=s.informative_group_size)
        result: FloatArray = scores / prompt_temperatures(self.tracker, indices, s.temperature, s.temperature_rule)
        return result

    def _log_bounds(self, indices: IntArray) -> FloatArray:
        """Upper bounds of the log-weights of ``indices`` that hold until their expiry, which is set here (Eq. 14;
        see :mod:`cures_verl.core.bounds`)."""
        s = self.config
        args = (s.score, s.temperature, s.temperature_rule, s.informative_group_size)
        if not self.decays:  # nothing decays: the bound without decay holds for ever
            bounds: FloatArray = log_weight_bounds(self.tracker, indices, np.ones(1), *args)[0]
            return bounds
        floor = None  # a rebuild: the mean weight of the pool being bounded
        if not self._weights_stale and self.tree.total > 0:  # a refresh: the mean bound in the tree
            floor = self._shift + math.log(MASS_FLOOR_SHARE * self.tree.total / max(self._pool.size, 1))
        bounds, windows = windowed_bounds(self.tracker, indices, *args, log_mass_floor=floor)
        self._expiry.set(indices, self.tracker.log_scale - windows)
        return bounds

    def _pool_log_weights(self, thompson: _ThompsonDraws | None) -> Callable[[IntArray], FloatArray]:
        """The exact log-weights of given prompts (Thompson: this step's draws) for the thinned draw's finish."""
        s = self.config

        def log_weights(indices: IntArray) -> FloatArray:
            if thompson is None:
                return self.log_weights(indices)
            temps = prompt_temperatures(self.tracker, indices, s.temperature, s.temperature_rule)
            result: FloatArray = reward_std(thompson(indices)) / temps
            return result

        return log_weights

    def _rebuild_weights(self) -> None:
        """Recompute every eligible prompt's weight (or bound), O(N). Only called when drawing, so that the generator
        is consumed (Thompson draws on a dense pool) at the same points whether or not a run was restored."""
        weights = np.zeros(self.tracker.num_prompts)
        # a shared drift / feature prior (core/shared.py) moves every weight by an amount no bound follows: exact
        self._bounded = self._volatile and self.tracker.shared is None and self._pool.size > self.dense_pool_max
        if self._bounded:
            self._allocate_bounds()
            self._expiry.clear()
            log_w = self._log_bounds(self._pool)
            self._bound_log[self._pool] = log_w
        else:
            log_w = self.log_weights(self._pool)
        self._shift = float(log_w.max())
        weights[self._pool] = np.exp(log_w - self._shift)
        self.tree.rebuild(weights)
        self._weights_stale = False

    def _allocate_bounds(self) -> None:
        if self._bound_log.size != self.tracker.num_prompts:
            self._bound_log = np.zeros(self.tracker.num_prompts)
            self._expiry = ExpiryQueue(self.tracker.num_prompts)

    def _refresh_weights(self, indices: IntArray) -> None:
        """Recompute the weights (or bounds) of the distinct ``indices`` only, O(k log N) (eligible ones; others
        stay 0)."""
        if self._weights_stale or (self.config.score == "thompson" and not self._bounded):
            return  # the next draw rebuilds every weight anyway (Thompson: fresh posterior draws)
        indices = indices[self._eligible[indices]]
        if indices.size == 0:
            return
        if self._bounded:
            log_w = self._log_bounds(indices)
            self._bound_log[indices] = log_w
        else:
            log_w = self.log_weights(indices)
        if log_w.max() > self._shift + self._SHIFT_SLACK:
            self._weights_stale = True
            return
        self.tree.update(indices, np.exp(log_w - self._shift))
        if self.tree.total < 1e-250:
            self._weights_stale = True

    # ------------------------------------------------------------------ the step
    def enter(self, phase: Phase, schedule: Schedule) -> None:
        """Make the pool of ``phase``'s subset eligible (all weights rebuilt) when the subset changes or restarts."""
        if self._tree_subset != phase.subset or phase.starts_iteration:
            self._eligible[self._pool] = False
            self._pool = schedule.subset(phase.subset)
            self._eligible[self._pool] = True
            self._tree_subset = phase.subset
            self._weights_stale = True

    def prepare(self) -> _ThompsonDraws | None:
        """Bring the tree up to date before a training step's draws; returns the step's lazy Thompson draws (one
        posterior draw per prompt, shared by redraws) when the pool is bounded and the score is ``thompson``."""
        if self._bounded and not self._weights_stale:
            # the observed prompts, and those whose bound's window the forgetting has used up
            expired = self._expiry.pop_expired(self.tracker.log_scale)
            self._refresh_weights(sorted_distinct(np.concatenate([expired, *self._pending])))
        self._pending = []
        if self._weights_stale or (self.config.score == "thompson" and not self._bounded):
            self._rebuild_weights()  # Thompson on a dense pool: fresh posterior draws every step
        return _ThompsonDraws(self.tracker, self.rng) if self._bounded and self.config.score == "thompson" else None

    def draw(self, thompson: _ThompsonDraws | None = None) -> IntArray:
        """m distinct prompts by successive sampling from Eq. 14 (``thompson``: the step's posterior draws)."""
        if self._bounded:
            log_weights = self._pool_log_weights(thompson)

            def log_acceptance(leaves: IntArray) -> FloatArray:
                result: FloatArray = log_weights(leaves) - self._bound_log[leaves]
                return result

            prompts, self._acceptance = draw_distinct_thinned(
                self.tree, self.batch_size, self.rng, log_acceptance, self._pool, log_weights, self._acceptance
            )
            return prompts
        try:
            return draw_distinct(self.tree, self.batch_size, self.rng)
        except ValueError:
            # Fewer than m eligible prompts have a weight above float64's underflow (only at extreme tau):
            # draw exactly in log space instead.
            return self._pool[gumbel_top_k(self.log_weights(self._pool), self.batch_size, self.rng)]

    def observed(self, prompt_indices: IntArray, *, all_moved: bool) -> None:
        """The posterior of ``prompt_indices`` changed (and, with ``all_moved``, every prompt's was forgotten)."""
        if self._bounded:
            self._pending.append(prompt_indices)  # refreshed with the expired ones at the next draw
        elif all_moved:
            self._weights_stale = True  # a dense pool: every weight moved
        else:
            self._refresh_weights(prompt_indices)

    def pool_weights(self, pool: IntArray, subset: int, step: int) -> FloatArray:
        """Unnormalised weights of Eq. 14 over ``pool`` (the eligible pool of ``subset``); O(pool). Never consumes
        the generator: with Thompson draws (or a stale tree) they are recomputed with a throwaway generator seeded by
        ``step``."""
        synced = not self._bounded and self._tree_subset == subset and not self._weights_stale
        if synced and self.tree.total > 0:
            return self.tree.weights(pool)
        log_w = self.log_weights(pool, rng=np.random.default_rng(step))
        weights: FloatArray = np.exp(log_w - log_w.max())
        return weights

    @property
    def nbytes(self) -> int:
        """Bytes of the per-prompt arrays (sum tree, pool membership, bounds)."""
        return self.tree.nbytes + self._eligible.nbytes + self._bound_log.nbytes + self._expiry.key.nbytes

    # ------------------------------------------------------------------ checkpointing
    def state_dict(self) -> dict[str, Any]:
        """The generator and the weight bounds (history-dependent, so saved for an exact resume)."""
        return {
            "rng": copy.deepcopy(self.rng.bit_generator.state),
            "bounds": self._bounds_state(),
            "acceptance": self._acceptance,
        }

    def _bounds_state(self) -> dict[str, Any] | None:
        """The weight bounds and their expiry (None: rebuilt at the next draw)."""
        if not self._bounded or self._weights_stale or self._tree_subset is None:
            return None
        return {
            "subset": self._tree_subset,
            "shift": self._shift,
            "log_bound": self._bound_log.copy(),
            "expiry": self._expiry.key.copy(),
            "pending": np.unique(np.concatenate([np.empty(0, dtype=np.int64), *self._pending])),
        }

    def load_state_dict(self, state: dict[str, Any], schedule: Schedule) -> None:
        """Restore from :meth:`state_dict`; exact weights are derived state, rebuilt at the next draw."""
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])
        self._tree_subset = None
        self._weights_stale = True
        self._bounded = False
        self._pending = []
        self._acceptance = float(state.get("acceptance", 1.0))
        bounds = state.get("bounds")
        if not self._volatile or bounds is None:
            return
        num_prompts = self.tracker.num_prompts
        log_bound = np.array(bounds["log_bound"], dtype=np.float64)
        if log_bound.shape != (num_prompts,):
            raise ValueError(f"saved bounds have shape {log_bound.shape}, expected ({num_prompts},)")
        self._bounded = True
        self._eligible[self._pool] = False
        self._tree_subset = int(bounds["subset"])
        self._pool = schedule.subset(self._tree_subset)
        self._eligible[self._pool] = True
        self._allocate_bounds()
        self._bound_log = log_bound
        self._expiry.load(bounds["expiry"])
        self._pending = [np.asarray(bounds["pending"], dtype=np.int64)]
        self._shift = float(bounds["shift"])
        weights = np.zeros(num_prompts)
        weights[self._pool] = np.exp(log_bound[self._pool] - self._shift)
        self.tree.rebuild(weights)  # the same leaves, so the same tree, as the saved run's
        self._weights_stale = False
