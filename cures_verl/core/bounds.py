"""Upper bounds of the sampling weights of Eq. 14 that stay valid while the posterior is forgotten, so a step costs
O(prompts touched) with forgetting and with Thompson draws.

With forgetting every prompt's posterior moves toward its prior at every step, so every weight exp(score / tau) of
CurES Eq. 14 changes, and with Thompson draws every weight is random at every step: keeping exact weights in the sum
tree would cost O(N) per step. Instead the tree holds, for each prompt, an upper bound B_i of its log-weight that
holds while its counts decay by any factor in [keep_i, 1], and the draw accepts a proposal with probability
w_i / B_i (:func:`~cures_verl.core.sampling.draw_distinct_thinned`), which is exact successive sampling from Eq. 14.
A prompt's bound is recomputed when the prompt is observed, or when the tracker's log-scale (the running sum of
log(1 - forgetting rate)) falls below the threshold of its window (:class:`ExpiryQueue`).

Bounds (all scores >= 0, tau > 0; counts c (correct) and f (incorrect) scaled by d in [keep, 1], so alpha lies in
[alpha_0 + keep c, alpha_0 + c] and beta in [beta_0 + keep f, beta_0 + f]):

* ``mean`` (Eq. 12 at the posterior mean): the mean (alpha_0 + d c) / (alpha_0 + beta_0 + d (c + f)) is monotone in d,
  so it lies between its values at d = keep and d = 1; sqrt(p(1-p)) is largest at the point of that interval closest
  to 1/2 (exact maximum over the path).
* ``expected_std``: E[sqrt(p(1-p))] <= sqrt(E[p(1-p)]) = sqrt(mu(1-mu) n / (n + 1)) (Jensen), n = alpha + beta,
  bounded by the largest mu(1-mu) on the path and the largest n (at d = 1).
* ``informative``: 1 - E[p^n] - E[(1-p)^n] with E[p^n] = prod_k (alpha_0 + d c + k) / (alpha_0 + beta_0 + d (c + f) + k)
  (k < n): each factor is positive and monotone in d (linear-fractional), so E[p^n] is at least the product of each
  factor's smaller end value (likewise E[(1-p)^n]).
* ``thompson``: sqrt(theta(1-theta)) <= 1/2 for any posterior draw theta.
* ``count_scaled`` temperature tau (d c + 1) is smallest at d = keep.

Every bound gets a relative margin of 1e-9 against rounding (the acceptance test then rejects with probability
1e-9 more than needed, which does not bias the draw: only a bound *below* the weight would).

A window is chosen per prompt from :data:`WINDOWS` (log-decays the bound covers, widest first): the widest over
which the bound is at most :data:`MAX_BOUND_RATIO` times a lower bound of the weight, or exceeds it by at most
:data:`MASS_FLOOR_SHARE` times the pool's mean weight (a light prompt's excess barely changes the mass the draw
proposes from). Prompts whose bound fits all the way to the prior (unobserved and long-forgotten prompts, light
ones) never expire; the others are refreshed a few times over their life (the log-decay from their counts to the
prior, divided by the window), so the amortised cost per step stays proportional to the prompts observed, whatever
the dataset size. The window choice only sets the cost (refreshes against rejected proposals); the draws'
distribution does not depend on it.
"""

from __future__ import annotations

import heapq
import math

import numpy as np

from cures_verl.core._typing import FloatArray, IntArray
from cures_verl.core.difficulty import BetaAccuracyTracker
from cures_verl.core.grouping import run_starts, sorted_distinct

__all__ = ["MASS_FLOOR_SHARE", "MAX_BOUND_RATIO", "WINDOWS", "ExpiryQueue", "log_weight_bounds", "windowed_bounds"]

#: Log-decays a bound may cover, largest first; inf = all the way to the prior (never expires).
WINDOWS = np.array([math.inf, 4.0, 1.0, 0.25])
#: A window fits if its bound is at most this factor above a lower bound of the weight over it ...
MAX_BOUND_RATIO = 8.0
#: ... or exceeds it by at most this multiple of the pool's mean weight.
MASS_FLOOR_SHARE = 4.0
# Relative margin added to every bound against rounding.
_BOUND_MARGIN = 1e-9


def log_weight_bounds(
    tracker: BetaAccuracyTracker,
    indices: IntArray,
    keep: FloatArray,
    score: str,
    temperature: float,
    temperature_rule: str,
    group_size: int = 8,
) -> FloatArray:
    """Upper bounds of score_i / tau_i (the exponent of Eq. 14) while prompt i's counts decay by a factor in
    [keep_j, 1], for every keep_j (see the module docstring for each score's bound).

    Args:
        tracker: The posterior (current counts).
        indices: Prompt ids, shape ``(k,)``.
        keep: Smallest remaining fraction of the counts, in [0, 1] (1: no decay, 0: to the prior), shape ``(K,)``
            (the same for every prompt) or ``(K, k)``.
        score: ``mean``, ``thompson``, ``expected_std`` or ``informative`` (as :func:`~cures_verl.core.prompt_scores`).
        temperature: tau.
        temperature_rule: ``constant`` or ``count_scaled``.
        group_size: n of the ``informative`` score.

    Returns:
        Bounds, shape ``(K, k)``, non-decreasing as keep decreases.

    Example:
        >>> t = BetaAccuracyTracker(1)
        >>> _ = t.update(np.array([0]), np.array([0]), np.array([8]))  # Beta(1, 9): mean 0.1, score 0.3
        >>> (log_weight_bounds(t, np.array([0]), np.array([1.0, 0.0]), "mean", 1.0, "constant")[:, 0]).round(6)
        array([0.3, 0.5])
    """
    counts = _Counts.read(tracker, np.asarray(indices, dtype=np.int64))
    return counts.bounds(np.asarray(keep, dtype=np.float64), score, temperature, temperature_rule, group_size)


class _Counts:
    """Prior and current counts of some prompts, read once for several bounds."""

    def __init__(self, prior_a: FloatArray, prior_b: FloatArray, correct: FloatArray, incorrect: FloatArray) -> None:
        self.prior_a, self.prior_b, self.correct, self.incorrect = prior_a, prior_b, correct, incorrect

    @classmethod
    def read(cls, tracker: BetaAccuracyTracker, idx: IntArray) -> _Counts:
        prior_a = tracker.prior_correct if tracker.prior_correct.ndim == 0 else tracker.prior_correct[idx]
        prior_b = tracker.prior_incorrect if tracker.prior_incorrect.ndim == 0 else tracker.prior_incorrect[idx]
        return cls(prior_a, prior_b, tracker.correct_counts(idx), tracker.incorrect_counts(idx))

    def take(self, rows: IntArray) -> _Counts:
        def pick(a: FloatArray) -> FloatArray:
            return a if a.ndim == 0 else a[rows]

        return _Counts(pick(self.prior_a), pick(self.prior_b), self.correct[rows], self.incorrect[rows])

    def bounds(self, keep: FloatArray, score: str, temperature: float, rule: str, group_size: int) -> FloatArray:
        """Upper bounds of the log-weight for each row of ``keep``, shape ``(K, k)``."""
        return self.both(keep, score, temperature, rule, group_size, lower=False)[0]

    def both(
        self, keep: FloatArray, score: str, temperature: float, rule: str, group_size: int, *, lower: bool = True
    ) -> tuple[FloatArray, FloatArray]:
        """Upper and (when ``lower``) lower bounds of the log-weight over each window, shapes ``(K, k)``. The lower
        bound only serves to choose windows (Thompson: the undecayed upper bound, the weight itself being random)."""
        keep_col = keep.reshape(-1, 1) if keep.ndim <= 1 else keep
        correct, incorrect = self.correct, self.incorrect
        alpha_hi, beta_hi = self.prior_a + correct, self.prior_b + incorrect  # d = 1: the tracker's alpha, beta
        alpha_lo, beta_lo = self.prior_a + keep_col * correct, self.prior_b + keep_col * incorrect
        shape = (keep_col.shape[0], correct.size)
        low = np.zeros(0)
        if score in ("mean", "expected_std"):
            mean_now = alpha_hi / (alpha_hi + beta_hi)
            mean_far = alpha_lo / (alpha_lo + beta_lo)
            q = np.clip(0.5, np.minimum(mean_now, mean_far), np.maximum(mean_now, mean_far))
            spread = q * (1.0 - q)
            if lower:  # the end of the mean's interval farthest from 1/2
                spread_low = np.minimum(mean_now * (1.0 - mean_now), mean_far * (1.0 - mean_far))
            if score == "mean":
                s = np.sqrt(spread)
                if lower:
                    low = np.sqrt(spread_low)
            else:
                n = alpha_hi + beta_hi
                s = np.minimum(np.sqrt(spread * n / (n + 1.0)), 0.5)
                if lower:  # sqrt(x) >= 2x on [0, 1/4]: E[sqrt(p(1-p))] >= 2 E[p(1-p)]
                    n_low = alpha_lo + beta_lo
                    low = 2.0 * spread_low * n_low / (n_low + 1.0)
        elif score == "informative":
            # factor j of E[p^n]: (alpha + j) / (alpha + beta + j), j < n, at d = 1 (shape (k,)) and d = keep
            # (shape (K, k)); each factor is monotone in d, so its extreme values over the window are at the ends.
            # The products run one factor at a time in place (the same products, in the same order, as a
            # reduction over a (n, K, k) array, without building it).
            n_hi, n_lo = alpha_hi + beta_hi, alpha_lo + beta_lo
            all_correct, all_wrong = np.ones(shape), np.ones(shape)
            most_correct, most_wrong = (np.ones(shape), np.ones(shape)) if lower else (all_correct, all_wrong)
            pick = np.empty(shape)
            for j in range(group_size):
                inv_hi, inv_lo = 1.0 / (n_hi + j), 1.0 / (n_lo + j)
                correct_hi, correct_lo = (alpha_hi + j) * inv_hi, (alpha_lo + j) * inv_lo
                wrong_hi, wrong_lo = (beta_hi + j) * inv_hi, (beta_lo + j) * inv_lo
                all_correct *= np.minimum(correct_hi, correct_lo, out=pick)
                all_wrong *= np.minimum(wrong_hi, wrong_lo, out=pick)
                if lower:
                    most_correct *= np.maximum(correct_hi, correct_lo, out=pick)
                    most_wrong *= np.maximum(wrong_hi, wrong_lo, out=pick)
            s = np.clip(1.0 - all_correct - all_wrong, 0.0, 1.0)
            if lower:
                low = np.clip(1.0 - most_correct - most_wrong, 0.0, 1.0)
        elif score == "thompson":
            s = np.full(shape, 0.5)
            low = s
        else:
            raise ValueError(f"unknown sampling score {score!r}")
        if rule == "constant":
            tau: FloatArray | float = float(temperature)
            tau_high: FloatArray | float = tau
        elif rule == "count_scaled":
            tau = float(temperature) * (keep_col * correct + 1.0)
            tau_high = float(temperature) * (correct + 1.0)
        else:
            raise ValueError(f"unknown temperature rule {rule!r}; choose 'constant' or 'count_scaled'")
        x = np.broadcast_to(s / tau, shape)
        upper: FloatArray = x + _BOUND_MARGIN * (1.0 + np.abs(x))
        floor: FloatArray = np.broadcast_to(low / tau_high, shape) if lower else low
        return upper, floor


def windowed_bounds(
    tracker: BetaAccuracyTracker,
    indices: IntArray,
    score: str,
    temperature: float,
    temperature_rule: str,
    group_size: int = 8,
    *,
    log_mass_floor: float | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Per prompt, the widest window of :data:`WINDOWS` whose bound fits (the narrowest when none does), and that
    bound; one vectorised evaluation of every window's upper and lower bound.

    A window fits a prompt if its upper bound B and a lower bound L of the weight over the window satisfy
    B <= :data:`MAX_BOUND_RATIO` L (so the acceptance w / B stays above 1 / MAX_BOUND_RATIO) or B <= L + F: the
    second condition lets light prompts, whose excess barely changes the total mass the draw proposes from, keep
    wide windows. F = exp(``log_mass_floor``), by default :data:`MASS_FLOOR_SHARE` times the mean weight of the given
    prompts (meant for a whole pool); only the cost of a step depends on it, never the draws' distribution.

    Returns:
        ``(bounds, windows)``, both shape ``(k,)``; ``windows`` holds log-decays (inf: the bound never expires).

    Example:
        >>> t = BetaAccuracyTracker(2)
        >>> _ = t.update(np.array([1]), np.array([0]), np.array([8]))  # prompt 0 at the prior, 1 at Beta(1, 9)
        >>> bounds, windows = windowed_bounds(t, np.array([0, 1]), "mean", 0.05, "constant", log_mass_floor=-np.inf)
        >>> windows.tolist(), bool(np.exp(bounds[1] - 0.3 / 0.05) <= MAX_BOUND_RATIO)
        ([inf, 1.0], True)
    """
    idx = np.asarray(indices, dtype=np.int64)
    counts = _Counts.read(tracker, idx)
    args = (score, temperature, temperature_rule, group_size)
    if log_mass_floor is None:
        now = counts.bounds(np.ones(1), *args)[0]
        top = float(now.max()) if idx.size else 0.0
        log_mass_floor = top + math.log(MASS_FLOOR_SHARE * float(np.mean(np.exp(now - top)))) if idx.size else 0.0
    log_ratio = math.log(MAX_BOUND_RATIO)
    # every window at once, widest first (inf: all the way to the prior); whether a window fits is monotone in it
    upper, lower = counts.both(np.exp(-WINDOWS), *args)
    # fits: B <= L + log(ratio), or else B <= log(e^L + F) (computed only where the first test fails)
    ok = upper <= lower + log_ratio
    rest = ~ok
    if rest.any():
        ok[rest] = upper[rest] <= np.logaddexp(lower[rest], log_mass_floor)
    choice = np.where(ok.any(axis=0), ok.argmax(axis=0), WINDOWS.size - 1)  # the widest that fits
    bounds: FloatArray = upper[choice, np.arange(idx.size)]
    windows: FloatArray = WINDOWS[choice]
    return bounds, windows


class ExpiryQueue:
    """Which prompts' bounds expire as the tracker's log-scale decreases, O(expired + log buckets) per query.

    A bound computed at log-scale L for a window W holds while the log-scale stays >= L - W. Thresholds are rounded
    up to multiples of ``quantum`` (a bound then expires slightly early, never late) and kept in buckets by
    multiple; ``key[i]`` is prompt i's current multiple (``NEVER``: no expiry), so entries left behind in older
    buckets by a newer threshold are recognised and skipped.

    Args:
        size: Number of prompts.
        quantum: Rounding step of the thresholds (a power of two keeps the arithmetic exact).

    Example:
        >>> q = ExpiryQueue(4)
        >>> q.set(np.array([0, 1, 2]), np.array([-1.0, -np.inf, -0.5]))
        >>> q.pop_expired(-0.75).tolist(), q.pop_expired(-2.0).tolist()
        ([2], [0])
    """

    NEVER = int(np.iinfo(np.int64).min)

    def __init__(self, size: int, quantum: float = 1.0 / 64) -> None:
        self.size = int(size)
        self.quantum = float(quantum)
        self.key: IntArray = np.full(self.size, self.NEVER, dtype=np.int64)
        self._buckets: dict[int, list[IntArray]] = {}
        self._heap: list[int] = []  # negated keys: the largest threshold first
        self._entries = 0

    def set(self, indices: IntArray, thresholds: FloatArray) -> None:
        """Prompt i's bound holds while the log-scale is >= thresholds[i] (-inf: always)."""
        idx = np.asarray(indices, dtype=np.int64)
        thresholds = np.asarray(thresholds, dtype=np.float64)
        finite = np.isfinite(thresholds)
        keys = np.full(idx.size, self.NEVER, dtype=np.int64)
        keys[finite] = np.ceil(thresholds[finite] / self.quantum).astype(np.int64)
        self.key[idx] = keys
        self._push(idx[finite], keys[finite])
        if self._entries > 2 * self.size + 65_536:  # stale entries pile up when the log-scale stalls: compact
            self.rebuild()

    def _push(self, idx: IntArray, keys: IntArray) -> None:
        if idx.size == 0:
            return
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        starts = run_starts(ordered)  # each key's first position
        distinct = ordered[starts]
        for key, part in zip(distinct.tolist(), np.split(idx[order], starts[1:]), strict=True):
            bucket = self._buckets.get(key)
            if bucket is None:
                self._buckets[key] = [part]
                heapq.heappush(self._heap, -key)
            else:
                bucket.append(part)
        self._entries += idx.size

    def pop_expired(self, log_scale: float) -> IntArray:
        """Prompts whose threshold is above ``log_scale``, sorted; they leave the queue (key ``NEVER``)."""
        found = []
        while self._heap and -self._heap[0] * self.quantum > log_scale:
            key = -heapq.heappop(self._heap)
            parts = self._buckets.pop(key)
            ids = np.concatenate(parts)
            self._entries -= ids.size
            found.append(ids[self.key[ids] == key])
        if not found:
            return np.empty(0, dtype=np.int64)
        expired = sorted_distinct(np.concatenate(found))
        self.key[expired] = self.NEVER
        return expired

    def clear(self) -> None:
        """No prompt expires."""
        self.key[:] = self.NEVER
        self._buckets.clear()
        self._heap.clear()
        self._entries = 0

    def rebuild(self) -> None:
        """Rebuild the buckets from ``key`` (after a restore, or to drop stale entries), O(N)."""
        self._buckets.clear()
        self._heap.clear()
        self._entries = 0
        live = np.flatnonzero(self.key != self.NEVER)
        self._push(live, self.key[live])

    def load(self, keys: IntArray) -> None:
        """Restore ``key`` (from a checkpoint) and rebuild the buckets."""
        keys = np.asarray(keys, dtype=np.int64)
        if keys.shape != (self.size,):
            raise ValueError(f"expiry keys must have shape ({self.size},), got {keys.shape}")
        self.key = keys.copy()
        self.rebuild()
