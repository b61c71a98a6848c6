"""Per-prompt Beta posterior of accuracy, vectorised over the whole dataset (CurES Sec. 4.3, Eqs. 22-24).

Each prompt x_i has accuracy p_i ~ Beta(alpha_i, beta_i) with alpha_i = alpha_0 + (observed correct) and
beta_i = beta_0 + (observed incorrect). The paper uses the posterior mean as p "to reduce randomness"
and resets the estimates at the start of each iteration; it states no prior, the released code uses
Beta(1, 1). Beyond the paper this module offers exponential forgetting toward the prior (for
non-stationary training), Thompson draws, per-prompt priors, and closed-form posterior expectations used
by the posterior-aware sampling scores.

Forgetting can be lazy: ``BetaAccuracyTracker.decay(factor, lazy=True)`` only adds log(factor) to a running
log-scale, O(1), and a prompt's counts are scaled by exp(log-scale now - log-scale when they were last written) when
read or updated, so a step costs O(prompts touched) whatever the dataset size. The counts read are those of eager
decay up to float rounding (relative 1e-15 per decay step).

Memory: two float64 arrays of observed counts, 16 bytes per prompt (plus 8 once forgetting is used, 16 more with
per-prompt priors).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from cures_verl.config import PosteriorConfig
from cures_verl.core._typing import FloatArray, IntArray
from cures_verl.core.shared import SharedPrediction

__all__ = [
    "BetaAccuracyTracker",
    "beta_mean",
    "beta_variance",
    "expected_reward_std",
    "informative_probability",
    "log_beta_moment",
    "log_gamma",
]

# Clip dataset pass rates into [eps, 1 - eps] so the Beta prior stays proper.
_PRIOR_EPS = 1e-3

# Lanczos approximation (g = 7, 9 terms): relative error below 1e-14 for x >= 0.5.
_LANCZOS_G = 7.0
_LANCZOS_COEFFS = (
    0.99999999999980993,
    676.5203681218851,
    -1259.1392167224028,
    771.32342877765313,
    -176.61502916214059,
    12.507343278686905,
    -0.13857109526572012,
    9.9843695780195716e-6,
    1.5056327351493116e-7,
)
_HALF_LOG_2PI = 0.5 * np.log(2.0 * np.pi)


def log_gamma(x: FloatArray) -> FloatArray:
    """Vectorised log Gamma(x) for x > 0 (numpy has no gammaln; scipy is not a dependency of the core).

    Args:
        x: Positive values, any shape.

    Returns:
        log Gamma(x), float64, same shape.

    Raises:
        ValueError: If any value is not finite and positive.

    Example:
        >>> round(float(log_gamma(np.array(5.0))), 12)  # log(4!) = log 24
        3.178053830348
    """
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x) & (x > 0)):
        raise ValueError("log_gamma needs finite positive inputs")
    small = x < 0.5
    # Gamma(x) = Gamma(x + 1) / x moves small arguments into the accurate range.
    z = np.where(small, x + 1.0, x) - 1.0
    acc = np.full_like(z, _LANCZOS_COEFFS[0])
    for k, coeff in enumerate(_LANCZOS_COEFFS[1:], start=1):
        acc += coeff / (z + k)
    t = z + _LANCZOS_G + 0.5
    out = _HALF_LOG_2PI + (z + 0.5) * np.log(t) - t + np.log(acc)
    result: FloatArray = np.where(small, out - np.log(x), out)
    return result


def beta_mean(alpha: FloatArray, beta: FloatArray) -> FloatArray:
    """Posterior mean alpha / (alpha + beta) (CurES Eq. 24), elementwise.

    Example:
        >>> beta_mean(np.array([1.0, 3.0]), np.array([1.0, 1.0])).tolist()
        [0.5, 0.75]
    """
    return np.asarray(alpha, dtype=np.float64) / (np.asarray(alpha, dtype=np.float64) + beta)


def beta_variance(alpha: FloatArray, beta: FloatArray) -> FloatArray:
    """Posterior variance alpha beta / ((alpha + beta)^2 (alpha + beta + 1)), elementwise.

    Example:
        >>> round(float(beta_variance(np.array(1.0), np.array(1.0))), 6)  # uniform: 1/12
        0.083333
    """
    alpha = np.asarray(alpha, dtype=np.float64)
    total = alpha + beta
    return alpha * beta / (total * total * (total + 1.0))


def expected_reward_std(alpha: FloatArray, beta: FloatArray) -> FloatArray:
    """E[sqrt(p(1-p))] under p ~ Beta(alpha, beta), elementwise, in closed form.

    E[p^(1/2) (1-p)^(1/2)] = B(alpha + 1/2, beta + 1/2) / B(alpha, beta). The paper's score sqrt(p(1-p))
    (CurES Eq. 12) evaluated at the posterior mean ignores the posterior's spread; its expectation does not
    (by Jensen it is never larger).

    Args:
        alpha: Positive Beta parameters, any shape.
        beta: Positive Beta parameters, broadcastable with ``alpha``.

    Returns:
        Values in [0, 0.5], float64.

    Example:
        >>> round(float(expected_reward_std(np.array(1.0), np.array(1.0))), 6)  # pi / 8
        0.392699
    """
    alpha = np.asarray(alpha, dtype=np.float64)
    beta = np.asarray(beta, dtype=np.float64)
    log_ratio = (
        log_gamma(alpha + 0.5)
        + log_gamma(beta + 0.5)
        + log_gamma(alpha + beta)
        - log_gamma(alpha)
        - log_gamma(beta)
        - log_gamma(alpha + beta + 1.0)
    )
    return np.minimum(np.exp(log_ratio), 0.5)


def informative_probability(alpha: FloatArray, beta: FloatArray, group_size: int) -> FloatArray:
    """Probability that a group of ``group_size`` rollouts has both outcomes, under p ~ Beta(alpha, beta).

    1 - E[p^n] - E[(1-p)^n], with E[p^n] = prod_{k<n} (alpha + k) / (alpha + beta + k). A GRPO group whose
    rewards are all equal has zero advantage and carries no gradient.

    Args:
        alpha: Positive Beta parameters, any shape.
        beta: Positive Beta parameters, broadcastable with ``alpha``.
        group_size: n >= 1.

    Returns:
        Probabilities in [0, 1], float64.

    Raises:
        ValueError: If ``group_size`` < 1.

    Example:
        >>> round(float(informative_probability(np.array(1.0), np.array(1.0), 2)), 6)  # 1 - 1/3 - 1/3
        0.333333
    """
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    alpha = np.asarray(alpha, dtype=np.float64)
    beta = np.asarray(beta, dtype=np.float64)
    total = alpha + beta
    all_correct = np.ones(np.broadcast(alpha, beta).shape)
    all_wrong = np.ones_like(all_correct)
    for k in range(group_size):
        all_correct = all_correct * (alpha + k) / (total + k)
        all_wrong = all_wrong * (beta + k) / (total + k)
    return np.clip(1.0 - all_correct - all_wrong, 0.0, 1.0)


def _as_index_array(indices: Any, num_prompts: int, name: str) -> IntArray:
    arr = np.asarray(indices)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size and (arr.min() < 0 or arr.max() >= num_prompts):
        raise ValueError(f"{name} must lie in [0, {num_prompts}), got min {arr.min()} and max {arr.max()}")
    return arr


class BetaAccuracyTracker:
    """Beta posterior of every prompt's accuracy, updated in batches (CurES Eqs. 22-24).

    Observed counts are stored separately from the prior, so the prior can be per prompt, forgetting decays
    only the observations, and :meth:`reset` returns a prompt to its prior.

    Forgetting may be applied lazily (see the module docstring): the stored counts of prompt i were written at
    log-scale ``stamp_i`` and are worth ``stored_i * exp(log_scale - stamp_i)`` now, where ``log_scale`` is the sum
    of log(factor) over every lazy :meth:`decay` since the last :meth:`materialize`. Reads and updates cost
    O(prompts read); a lazy decay costs O(1).

    Args:
        num_prompts: Dataset size.
        prior_correct: alpha_0, a positive scalar or an array of shape ``(num_prompts,)``.
        prior_incorrect: beta_0, a positive scalar or an array of shape ``(num_prompts,)``.

    Raises:
        ValueError: If ``num_prompts`` < 1 or a prior is not positive and finite or has the wrong shape.

    Example:
        >>> tracker = BetaAccuracyTracker(3)
        >>> _ = tracker.update(np.array([0, 0, 2]), num_correct=np.array([1, 1, 0]), num_total=np.array([1, 1, 4]))
        >>> tracker.posterior_mean().round(4).tolist()  # (2+1)/(2+2), prior 1/2, (0+1)/(4+2)
        [0.75, 0.5, 0.1667]
        >>> tracker.decay(0.5, lazy=True)  # O(1): counts are scaled when read
        >>> tracker.alpha().round(4).tolist()  # 1 + 2 * 0.5, 1, 1
        [2.0, 1.0, 1.0]
    """

    def __init__(
        self,
        num_prompts: int,
        *,
        prior_correct: float | FloatArray = 1.0,
        prior_incorrect: float | FloatArray = 1.0,
    ) -> None:
        if int(num_prompts) < 1:
            raise ValueError(f"num_prompts must be >= 1, got {num_prompts}")
        self.num_prompts = int(num_prompts)
        self.prior_correct, self.prior_incorrect = self._check_prior(prior_correct, prior_incorrect)
        self._correct: FloatArray = np.zeros(self.num_prompts)
        self._incorrect: FloatArray = np.zeros(self.num_prompts)
        # Lazy forgetting: None until the first decay (stored counts are then the current ones).
        self._stamp: FloatArray | None = None
        self._log_scale = 0.0
        #: prompts given no pass rate by :meth:`from_config` (they keep the uniform prior)
        self.num_prior_unknown = 0
        #: the shared drift / feature prior (core/shared.py) every posterior read goes through; None: independent
        self.shared: SharedPrediction | None = None

    @classmethod
    def from_config(
        cls, num_prompts: int, config: PosteriorConfig, prior_accuracy: FloatArray | None = None
    ) -> BetaAccuracyTracker:
        """The tracker of the ``cures.posterior`` section: the uniform prior Beta(prior_correct, prior_incorrect), or
        (``prior_source`` dataset or checkpoint) one centred on each prompt's pass rate with the same strength.

        Args:
            num_prompts: Dataset size.
            config: The ``cures.posterior`` section.
            prior_accuracy: Per-prompt pass rates in [0, 1] or NaN (unknown: the uniform prior), shape
                ``(num_prompts,)``; required unless ``prior_source=uniform``, which rejects them.

        Raises:
            ValueError: If ``prior_accuracy`` does not match ``prior_source``, or has the wrong shape or values.
        """
        post = config
        if post.prior_source == "uniform":
            if prior_accuracy is not None:
                raise ValueError(
                    "per-prompt prior accuracies were given but cures.posterior.prior_source=uniform ignores them; "
                    "set prior_source=dataset to use them"
                )
            return cls(num_prompts, prior_correct=post.prior_correct, prior_incorrect=post.prior_incorrect)
        if prior_accuracy is None:
            raise ValueError(
                f"cures.posterior.prior_source={post.prior_source} needs per-prompt pass rates (a dataset column or "
                "an earlier run's posterior); pass prior_accuracy or set prior_source=uniform"
            )
        rates = np.asarray(prior_accuracy, dtype=np.float64)
        known = ~np.isnan(rates)
        if rates.shape != (num_prompts,) or not np.all((rates[known] >= 0) & (rates[known] <= 1)):
            raise ValueError(f"prior_accuracy must have shape ({num_prompts},) with values in [0, 1] or NaN")
        # NaN = no information about that prompt: it keeps the uniform prior (centre prior_correct / strength)
        strength = post.prior_correct + post.prior_incorrect
        centre = np.where(known, np.clip(rates, _PRIOR_EPS, 1 - _PRIOR_EPS), post.prior_correct / strength)
        tracker = cls(num_prompts, prior_correct=strength * centre, prior_incorrect=strength * (1 - centre))
        tracker.num_prior_unknown = int(np.count_nonzero(~known))
        return tracker

    def _check_prior(self, prior_correct: Any, prior_incorrect: Any) -> tuple[FloatArray, FloatArray]:
        out = []
        for name, value in (("prior_correct", prior_correct), ("prior_incorrect", prior_incorrect)):
            arr = np.array(value, dtype=np.float64)
            if arr.ndim not in (0, 1) or (arr.ndim == 1 and arr.shape[0] != self.num_prompts):
                raise ValueError(f"{name} must be a scalar or have shape ({self.num_prompts},), got {arr.shape}")
            if not np.all(np.isfinite(arr) & (arr > 0)):
                raise ValueError(f"{name} must be finite and > 0 everywhere")
            out.append(arr)
        return out[0], out[1]

    def set_prior(self, prior_correct: float | FloatArray, prior_incorrect: float | FloatArray) -> None:
        """Replace the prior (scalars or arrays of shape ``(num_prompts,)``); observed counts are kept."""
        self.prior_correct, self.prior_incorrect = self._check_prior(prior_correct, prior_incorrect)

    def _select(self, arr: FloatArray, indices: IntArray | None) -> FloatArray:
        if arr.ndim == 0:
            return np.full(self.num_prompts if indices is None else len(indices), float(arr))
        return arr.copy() if indices is None else arr[indices]

    @property
    def log_scale(self) -> float:
        """Sum of log(factor) over every lazy :meth:`decay` since the last :meth:`materialize` (only decreases)."""
        return self._log_scale

    def _scale(self, indices: IntArray | None) -> FloatArray | None:
        """exp(log_scale - stamp) for ``indices`` (None: nothing decayed since the counts were written)."""
        if self._stamp is None:
            return None
        stamp = self._stamp if indices is None else self._stamp[indices]
        result: FloatArray = np.exp(self._log_scale - stamp)
        return result

    def _counts(self, stored: FloatArray, indices: IntArray | None) -> FloatArray:
        scale = self._scale(indices)
        counts = stored if indices is None else stored[indices]
        if scale is None:
            return counts.copy() if indices is None else counts
        result: FloatArray = counts * scale
        return result

    def correct_counts(self, indices: IntArray | None = None) -> FloatArray:
        """Observed (decayed) correct rollouts, shape ``(len(indices),)`` or ``(num_prompts,)``; O(len(indices))."""
        return self._counts(self._correct, indices)

    def incorrect_counts(self, indices: IntArray | None = None) -> FloatArray:
        """Observed (decayed) incorrect rollouts, shape ``(len(indices),)`` or ``(num_prompts,)``."""
        return self._counts(self._incorrect, indices)

    @property
    def num_correct(self) -> FloatArray:
        """Observed (decayed) correct rollouts of every prompt, a read-only array; O(N): prefer
        :meth:`correct_counts` with indices."""
        out = self.correct_counts()
        out.flags.writeable = False
        return out

    @property
    def num_incorrect(self) -> FloatArray:
        """Observed (decayed) incorrect rollouts of every prompt, a read-only array; O(N)."""
        out = self.incorrect_counts()
        out.flags.writeable = False
        return out

    def alpha(self, indices: IntArray | None = None) -> FloatArray:
        """alpha_i = alpha_0 + observed correct, shape ``(len(indices),)`` or ``(num_prompts,)`` (moved by the shared
        prediction when one is attached)."""
        if self.shared is not None:
            return self.alpha_beta(indices)[0]
        return self._select(self.prior_correct, indices) + self.correct_counts(indices)

    def beta(self, indices: IntArray | None = None) -> FloatArray:
        """beta_i = beta_0 + observed incorrect, shape ``(len(indices),)`` or ``(num_prompts,)``."""
        if self.shared is not None:
            return self.alpha_beta(indices)[1]
        return self._select(self.prior_incorrect, indices) + self.incorrect_counts(indices)

    def alpha_beta(self, indices: IntArray | None = None) -> tuple[FloatArray, FloatArray]:
        """``(alpha(indices), beta(indices))``, the lazy decay computed once for both; with :attr:`shared`, the
        posterior mean moved by its shift (core/shared.py)."""
        scale = self._scale(indices)
        correct = self._correct if indices is None else self._correct[indices]
        incorrect = self._incorrect if indices is None else self._incorrect[indices]
        if scale is not None:
            correct, incorrect = correct * scale, incorrect * scale
        alpha = self._select(self.prior_correct, indices) + correct
        beta = self._select(self.prior_incorrect, indices) + incorrect
        if self.shared is not None:
            idx = np.arange(self.num_prompts) if indices is None else np.asarray(indices, dtype=np.int64)
            return self.shared.apply(idx, alpha, beta)
        return alpha, beta

    def num_observed(self, indices: IntArray | None = None) -> FloatArray:
        """Observed (possibly decayed) rollouts per prompt."""
        scale = self._scale(indices)
        if indices is None:
            total = self._correct + self._incorrect
        else:
            total = self._correct[indices] + self._incorrect[indices]
        if scale is None:
            return total
        result: FloatArray = total * scale
        return result

    def update(self, prompt_indices: Any, num_correct: Any, num_total: Any) -> IntArray:
        """Add observations (CurES Eq. 23): alpha_i += correct, beta_i += total - correct.

        Repeated prompt indices accumulate. Counts may be fractional (fractional reward rule). O(k log k).

        Args:
            prompt_indices: Prompt ids, shape ``(k,)``, integers in ``[0, num_prompts)``; repeats allowed.
            num_correct: Correct rollouts per entry, shape ``(k,)``, in ``[0, num_total]``.
            num_total: Rollouts per entry, shape ``(k,)``, >= 0.

        Returns:
            The distinct prompt ids that were updated, sorted, shape ``(u,)``.

        Raises:
            ValueError: On shape mismatches, out-of-range ids or counts outside ``0 <= correct <= total``.
        """
        idx = _as_index_array(prompt_indices, self.num_prompts, "prompt_indices")
        correct = np.asarray(num_correct, dtype=np.float64).reshape(-1)
        total = np.asarray(num_total, dtype=np.float64).reshape(-1)
        if not (correct.shape == total.shape == idx.shape):
            raise ValueError(
                f"prompt_indices, num_correct and num_total must have the same length, got "
                f"{idx.shape[0]}, {correct.shape[0]} and {total.shape[0]}"
            )
        if not (np.all(np.isfinite(correct)) and np.all(np.isfinite(total))):
            raise ValueError("num_correct and num_total must be finite")
        if np.any(correct < 0) or np.any(correct > total + 1e-9):
            raise ValueError("counts must satisfy 0 <= num_correct <= num_total for every entry")
        unique: IntArray
        added_correct: FloatArray
        added_incorrect: FloatArray
        if idx.size and np.all(idx[1:] > idx[:-1]):  # distinct and sorted already (count_rollouts' output)
            unique, added_correct, added_incorrect = idx, correct, total - correct
        else:  # [p3, p1, p3] -> unique [p1, p3], inverse [1, 0, 1] -> per-prompt sums by bincount
            unique, inverse = np.unique(idx, return_inverse=True)
            added_correct = np.bincount(inverse, weights=correct, minlength=unique.size).astype(np.float64, copy=False)
            added_incorrect = np.bincount(inverse, weights=total - correct, minlength=unique.size).astype(
                np.float64, copy=False
            )
        if self.shared is not None:
            self._update_shared(unique, added_correct, added_incorrect)
        elif self._stamp is None:
            self._correct[unique] += added_correct
            self._incorrect[unique] += added_incorrect
        else:  # bring the touched prompts' counts up to date, then add
            self._correct[unique] = self.correct_counts(unique) + added_correct
            self._incorrect[unique] = self.incorrect_counts(unique) + added_incorrect
            self._stamp[unique] = self._log_scale
        return unique

    def _update_shared(self, unique: IntArray, added_correct: FloatArray, added_incorrect: FloatArray) -> None:
        """With the shared prediction: bring the prompts' posteriors to the current frame (the shift written into
        their counts, whose sum is kept), add the outcomes, fit the shared models on the step, and stamp the prompts
        (their own counts now hold these outcomes)."""
        assert self.shared is not None
        alpha_now, beta_now = self.alpha_beta(unique)
        predicted = alpha_now / (alpha_now + beta_now)
        was_seen = self.shared.seen(unique)
        self._correct[unique] = alpha_now - self._select(self.prior_correct, unique) + added_correct
        self._incorrect[unique] = beta_now - self._select(self.prior_incorrect, unique) + added_incorrect
        if self._stamp is not None:
            self._stamp[unique] = self._log_scale
        self.shared.learn(unique, added_correct, added_correct + added_incorrect, predicted, was_seen)
        self.shared.stamp(unique)

    def posterior_mean(self, indices: IntArray | None = None) -> FloatArray:
        """Posterior mean alpha / (alpha + beta) (CurES Eq. 24), shape ``(len(indices),)`` or ``(num_prompts,)``."""
        return beta_mean(*self.alpha_beta(indices))

    def posterior_variance(self, indices: IntArray | None = None) -> FloatArray:
        """Posterior variance of p, shape ``(len(indices),)`` or ``(num_prompts,)``."""
        return beta_variance(*self.alpha_beta(indices))

    def mle_accuracy(self, indices: IntArray | None = None) -> FloatArray:
        """Maximum-likelihood accuracy correct / observed; prompts with no observation get their prior mean."""
        correct = self.correct_counts(indices)
        observed = correct + self.incorrect_counts(indices)
        prior = beta_mean(self._select(self.prior_correct, indices), self._select(self.prior_incorrect, indices))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(observed > 0, correct / np.where(observed > 0, observed, 1.0), prior)

    def sample(self, rng: np.random.Generator, indices: IntArray | None = None) -> FloatArray:
        """Thompson draws p ~ Beta(alpha_i, beta_i), shape ``(len(indices),)`` or ``(num_prompts,)``."""
        return rng.beta(*self.alpha_beta(indices))

    def decay(self, factor: float, *, lazy: bool = False) -> None:
        """Exponential forgetting toward the prior: every observed count is multiplied by ``factor`` in [0, 1].

        Eager by default: O(N), every stored count multiplied now. With ``lazy`` the factor joins the running
        log-scale and is applied when a count is read, O(1) (the first lazy decay allocates the per-prompt stamps,
        O(N) once); the counts read then equal eager decay's up to float rounding (exp of a sum of logs instead of a
        product), not bit for bit. An eager decay after lazy ones first writes every count out (:meth:`materialize`).
        A factor of 0 forgets everything.
        """
        if not 0.0 <= factor <= 1.0:
            raise ValueError(f"decay factor must lie in [0, 1], got {factor}")
        if factor == 1.0:
            return
        if factor == 0.0:
            self.reset()
            return
        if not lazy:
            self.materialize()
            self._correct *= factor
            self._incorrect *= factor
            return
        if self._stamp is None:
            self._stamp = np.full(self.num_prompts, self._log_scale)
        self._log_scale += math.log(factor)

    def materialize(self) -> None:
        """Write every lazily decayed count out and drop the stamps, O(N) (nothing to do without lazy decay)."""
        if self._stamp is None:
            return
        self._correct = self.correct_counts()
        self._incorrect = self.incorrect_counts()
        self._stamp = None
        self._log_scale = 0.0

    def reset(self, indices: IntArray | None = None) -> None:
        """Forget all observations of ``indices`` (all prompts when None): back to the prior."""
        if self.shared is not None:
            self.shared.reset(indices)
        if indices is None:
            self._correct[:] = 0.0
            self._incorrect[:] = 0.0
            if self._stamp is not None:
                self._stamp[:] = self._log_scale
        else:
            idx = _as_index_array(indices, self.num_prompts, "indices")
            self._correct[idx] = 0.0
            self._incorrect[idx] = 0.0
            if self._stamp is not None:
                self._stamp[idx] = self._log_scale

    @property
    def nbytes(self) -> int:
        """Bytes held by the tracker's arrays."""
        arrays = [self._correct, self._incorrect, self.prior_correct, self.prior_incorrect]
        if self._stamp is not None:
            arrays.append(self._stamp)
        return int(sum(a.nbytes for a in arrays)) + (self.shared.nbytes if self.shared is not None else 0)

    def state_dict(self) -> dict[str, Any]:
        """Arrays that reproduce the tracker exactly (copies).

        ``num_correct`` and ``num_incorrect`` are the current (decayed) counts, what readers of a checkpoint want;
        with forgetting, the stored counts, their stamps and the log-scale are saved too, so a restored tracker
        reads bit-identical counts.
        """
        state: dict[str, Any] = {
            "num_prompts": self.num_prompts,
            "prior_correct": self.prior_correct.copy(),
            "prior_incorrect": self.prior_incorrect.copy(),
            "num_correct": self.correct_counts(),
            "num_incorrect": self.incorrect_counts(),
        }
        if self._stamp is not None:
            state["lazy"] = {
                "stored_correct": self._correct.copy(),
                "stored_incorrect": self._incorrect.copy(),
                "stamp": self._stamp.copy(),
                "log_scale": self._log_scale,
            }
        if self.shared is not None:
            state["shared"] = self.shared.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`; the dataset size must match."""
        if int(state["num_prompts"]) != self.num_prompts:
            raise ValueError(
                f"state holds {state['num_prompts']} prompts but this tracker has {self.num_prompts}; "
                "resume with the same training dataset"
            )
        self.prior_correct, self.prior_incorrect = self._check_prior(state["prior_correct"], state["prior_incorrect"])
        lazy = state.get("lazy")
        names = ("stored_correct", "stored_incorrect", "stamp") if lazy else ("num_correct", "num_incorrect")
        source = lazy if lazy else state
        arrays = []
        for name in names:
            arr = np.array(source[name], dtype=np.float64)
            if arr.shape != (self.num_prompts,):
                raise ValueError(f"state[{name!r}] has shape {arr.shape}, expected ({self.num_prompts},)")
            arrays.append(arr)
        self._correct, self._incorrect = arrays[0], arrays[1]
        self._stamp = arrays[2] if lazy else None
        self._log_scale = float(lazy["log_scale"]) if lazy else 0.0
        if (self.shared is None) != ("shared" not in state):
            raise ValueError(
                "the checkpoint's posterior and this run differ in posterior.drift / posterior.feature_prior; "
                "resume with the settings the run was saved with"
            )
        if self.shared is not None:
            self.shared.load_state_dict(state["shared"])


def log_beta_moment(alpha: FloatArray, beta: FloatArray, a: FloatArray | float, b: FloatArray | float) -> FloatArray:
    """log E[p^a (1-p)^b] under p ~ Beta(alpha, beta) = log B(alpha + a, beta + b) - log B(alpha, beta).

    Args:
        alpha: Positive Beta parameters, any shape.
        beta: Positive Beta parameters, broadcastable with ``alpha``.
        a: Exponent of p (>= 0), broadcastable.
        b: Exponent of 1 - p (>= 0), broadcastable.

    Returns:
        The log-moment, float64.

    Example:
        >>> round(float(np.exp(log_beta_moment(np.array(2.0), np.array(3.0), 1.0, 0.0))), 6)  # E[p] = 2/5
        0.4
    """
    alpha = np.asarray(alpha, dtype=np.float64)
    beta = np.asarray(beta, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    result: FloatArray = (
        log_gamma(alpha + a)
        + log_gamma(beta + b)
        - log_gamma(alpha + beta + a + b)
        - log_gamma(alpha)
        - log_gamma(beta)
        + log_gamma(alpha + beta)
    )
    return result
