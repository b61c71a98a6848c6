"""Shared accuracy prediction across prompts (beyond the paper): a staleness correction and a feature prior.

The paper's posterior (Eqs. 22-24) treats prompts as independent and, between two draws of a prompt, as fixed. When
the policy learns, every prompt's accuracy moves, also those not drawn for many steps, and a prompt never drawn is
only known through its prior. This module adds one small logistic model shared by all prompts, in two optional
parts, each read as a shift of a prompt's Beta posterior in logit space (its strength alpha + beta kept):

* **drift** (``cures.posterior.drift``): the population's accuracy moves by a logit drift ``w_drift . f`` per
  feature vector f (f = 1 without features: one drift for all prompts). A prompt last observed when the drift was
  ``w_s`` is read with its posterior mean moved by ``f . (w_now - w_s)``. The drift is learned from re-observed
  prompts only: after each step, one damped Newton step of the Bernoulli log-likelihood of their outcomes under
  the predicted (already shifted) accuracies,

      w_drift += eta * (sum_i n_i p_i (1 - p_i) f_i f_i^T + lambda I)^-1 sum_i f_i (c_i - n_i p_i),

  with c_i correct of n_i rollouts and p_i the prediction before the step's outcomes were seen.
* **feature prior** (``cures.posterior.feature_prior``, needs features): a prompt never observed is read with its
  prior mean moved by ``f . w_level``, where ``w_level`` is fitted the same way on the first observations of
  prompts (offset: the prior's logit). Prompts are then drawn by what similar prompts showed, before their own
  rollouts.

When a prompt is observed its posterior is first brought to the current frame (the shift written into its counts,
which keep their sum), then its outcomes are added, and its drift stamp becomes ``f . w_drift`` after the step's
fit, so its own outcomes are not counted twice. Counts written this way may differ from the raw outcomes (only
their sums equal the rollouts seen); readers that need raw outcomes (``accuracy_estimate=mle``) are refused with
this option, as is forgetting (both are staleness corrections, and the decay target would have to move with the
drift).

Cost: reads and updates O(k d) for k prompts and d features; a fit O(k d^2 + d^3) per step. Because every prompt's
weight moves when w moves, the sampling weights are recomputed over the pool each step (O(pool)).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cures_verl.core._typing import FloatArray, IntArray

__all__ = ["SharedPrediction", "logit"]

# Posterior means are clipped into [eps, 1 - eps] before the logit (they lie strictly inside (0, 1) with a proper
# prior; the clip only guards float rounding).
_EPS = 1e-12


def logit(p: FloatArray) -> FloatArray:
    """log(p / (1 - p)), with p clipped into [1e-12, 1 - 1e-12].

    Example:
        >>> logit(np.array([0.5, 0.75])).round(4).tolist()
        [0.0, 1.0986]
    """
    q = np.clip(p, _EPS, 1.0 - _EPS)
    result: FloatArray = np.log(q) - np.log1p(-q)
    return result


def _sigmoid(z: FloatArray) -> FloatArray:
    result: FloatArray = 0.5 * (1.0 + np.tanh(0.5 * z))
    return result


class SharedPrediction:
    """The shared logistic drift and feature prior of :mod:`cures_verl.core.shared`.

    Args:
        num_prompts: Dataset size.
        features: Per-prompt features, shape ``(num_prompts, d)``, finite (scaled to about unit size: the ridge
            penalises every coefficient alike); None: no features (a single drift for every prompt). An intercept
            is always added.
        drift: Learn and apply the drift.
        feature_prior: Learn and apply the feature prior (needs ``features``).
        rate: eta, the damping of each Newton step, in (0, 1].
        ridge: lambda > 0, the ridge added to the Hessian (pseudo-observations at zero shift).

    Raises:
        ValueError: On features of the wrong shape or non-finite values, a feature prior without features, or
            rate/ridge out of range.

    Example:
        >>> shared = SharedPrediction(3, drift=True)
        >>> ids = np.array([0, 1])
        >>> shared.stamp(ids)  # prompts 0 and 1 observed once
        >>> # prompt 0 seen again: 8 of 8 correct where 0.5 was predicted, w = 0.5 * (8 - 4) / (8 / 4 + ridge 1)
        >>> shared.learn(np.array([0]), np.array([8.0]), np.array([8.0]), np.array([0.5]), np.array([True]))
        >>> shared.stamp(np.array([0]))  # prompt 0's own counts hold this step's outcomes: no shift for it
        >>> # prompt 1 (not seen since) moves with the population; 2: never observed, no feature prior
        >>> [round(float(s), 3) for s in shared.shift(np.array([0, 1, 2]))]
        [0.0, 0.667, 0.0]
    """

    def __init__(
        self,
        num_prompts: int,
        *,
        features: FloatArray | None = None,
        drift: bool = True,
        feature_prior: bool = False,
        rate: float = 0.5,
        ridge: float = 1.0,
    ) -> None:
        self.num_prompts = int(num_prompts)
        if features is not None:
            x = np.asarray(features, dtype=np.float64)
            if x.ndim == 1:
                x = x.reshape(-1, 1)
            if x.ndim != 2 or x.shape[0] != self.num_prompts:
                raise ValueError(
                    f"prompt_features must have shape ({self.num_prompts}, d), one row per prompt; got {x.shape}"
                )
            if not np.all(np.isfinite(x)):
                bad = int(np.argwhere(~np.isfinite(x))[0, 0])
                raise ValueError(f"prompt_features must be finite; row {bad} is not (fill or drop missing features)")
            self.features: FloatArray | None = x
        else:
            self.features = None
        if feature_prior and features is None:
            raise ValueError(
                "cures.posterior.feature_prior=true needs per-prompt features (prompt_features; in verl set "
                "cures.posterior.feature_field to the extra_info field that holds them) or feature_prior=false"
            )
        if not 0.0 < float(rate) <= 1.0:
            raise ValueError(f"cures.posterior.shared_rate={rate!r} is invalid: must lie in (0, 1]")
        if not float(ridge) > 0.0:
            raise ValueError(f"cures.posterior.shared_ridge={ridge!r} is invalid: must be > 0")
        self.drift, self.feature_prior = bool(drift), bool(feature_prior)
        self.rate, self.ridge = float(rate), float(ridge)
        dim = 1 + (0 if self.features is None else self.features.shape[1])
        self.w_drift: FloatArray = np.zeros(dim)
        self.w_level: FloatArray = np.zeros(dim)
        #: f . w_drift when prompt i was last observed; NaN: never observed since its last reset
        self.base: FloatArray = np.full(self.num_prompts, np.nan)

    @property
    def dim(self) -> int:
        """Coefficients per model (features + intercept)."""
        return int(self.w_drift.size)

    def design(self, indices: IntArray) -> FloatArray:
        """Rows [1, features] of ``indices``, shape ``(k, d + 1)``."""
        ones = np.ones((indices.size, 1))
        if self.features is None:
            return ones
        return np.concatenate([ones, self.features[indices]], axis=1)

    def seen(self, indices: IntArray) -> np.ndarray:
        """Whether each prompt has been observed since its last reset."""
        return ~np.isnan(self.base[indices])

    def shift(self, indices: IntArray) -> FloatArray:
        """The logit shift of each prompt's posterior mean now, shape ``(k,)``."""
        idx = np.asarray(indices, dtype=np.int64)
        x = self.design(idx)
        base = self.base[idx]
        seen = ~np.isnan(base)
        drift = x @ self.w_drift - np.where(seen, base, 0.0) if self.drift else np.zeros(idx.size)
        level = x @ self.w_level if self.feature_prior else np.zeros(idx.size)
        result: FloatArray = np.where(seen, drift, level)
        return result

    def apply(self, indices: IntArray, alpha: FloatArray, beta: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Beta(alpha, beta) of ``indices`` with the mean moved by :meth:`shift` in logit space, strength kept."""
        delta = self.shift(indices)
        if not np.any(delta):
            return alpha, beta
        strength = alpha + beta
        mean = _sigmoid(logit(alpha / strength) + delta)
        shifted: FloatArray = strength * mean
        return shifted, strength - shifted

    def learn(
        self,
        indices: IntArray,
        num_correct: FloatArray,
        num_total: FloatArray,
        predicted: FloatArray,
        was_seen: np.ndarray,
    ) -> None:
        """One damped Newton step of each model on a step's outcomes.

        Args:
            indices: Distinct prompts observed, shape ``(k,)``.
            num_correct: Correct rollouts c_i (possibly fractional).
            num_total: Rollouts n_i.
            predicted: The accuracy each prompt was predicted to have before the outcomes (shift included).
            was_seen: Whether each prompt had been observed before this step (drift) or not (feature prior).
        """
        x = self.design(np.asarray(indices, dtype=np.int64))
        for on, mask, w in ((self.drift, was_seen, self.w_drift), (self.feature_prior, ~was_seen, self.w_level)):
            if not on or not np.any(mask):
                continue
            xm, p, n, c = x[mask], predicted[mask], num_total[mask], num_correct[mask]
            grad = xm.T @ (c - n * p)
            hessian = (xm * (n * p * (1.0 - p))[:, None]).T @ xm + self.ridge * np.eye(self.dim)
            w += self.rate * np.linalg.solve(hessian, grad)

    def stamp(self, indices: IntArray) -> None:
        """Record that ``indices`` were observed now: no drift shift until the drift moves again."""
        idx = np.asarray(indices, dtype=np.int64)
        self.base[idx] = self.design(idx) @ self.w_drift

    def reset(self, indices: IntArray | None = None) -> None:
        """``indices`` (all when None) count as never observed (the feature prior applies again)."""
        if indices is None:
            self.base[:] = np.nan
        else:
            self.base[np.asarray(indices, dtype=np.int64)] = np.nan

    @property
    def nbytes(self) -> int:
        """Bytes of the per-prompt arrays (the stamps; features are the caller's)."""
        return int(self.base.nbytes)

    def state_dict(self) -> dict[str, Any]:
        """Coefficients and stamps (features are not saved: they come with the data)."""
        return {"w_drift": self.w_drift.copy(), "w_level": self.w_level.copy(), "base": self.base.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`; the number of prompts and of features must match."""
        w_drift, w_level = np.asarray(state["w_drift"], float), np.asarray(state["w_level"], float)
        base = np.asarray(state["base"], float)
        if w_drift.shape != (self.dim,) or w_level.shape != (self.dim,):
            raise ValueError(
                f"the checkpoint's shared prediction has {w_drift.size - 1} features, this run {self.dim - 1}; "
                "resume with the same prompt_features"
            )
        if base.shape != (self.num_prompts,):
            raise ValueError(
                f"the checkpoint's shared prediction covers {base.size} prompts, this run {self.num_prompts}; "
                "resume with the same training data"
            )
        self.w_drift, self.w_level, self.base = w_drift.copy(), w_level.copy(), base.copy()
