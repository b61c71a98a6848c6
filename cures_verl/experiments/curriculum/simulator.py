"""A simulated GRPO learner whose per-prompt accuracies move only through policy-gradient updates.

The benchmark needs a policy whose accuracy on every prompt is known exactly, that learns only from
sampled 0/1 rollouts, and in which training on one prompt also changes similar prompts (as training on
one maths problem changes an LLM's accuracy on related ones). The model:

* Prompt x belongs to one of K clusters c(x) (a topic or skill) and has a fixed starting logit z0_x.
* The policy's logit on x is ``z_x = z0_x + sqrt(t) * theta_shared[c(x)] + sqrt(1 - t) * theta_own[x]``: the
  feature vector phi_x puts weight sqrt(t) on its cluster's coordinate and sqrt(1 - t) on its own, so with
  plain SGD a fraction ``t = transfer`` of every update to z_x is shared with the whole cluster.
* A rollout on x is correct with probability ``p_x = sigmoid(z_x)`` (a Bernoulli outcome y), so
  d log pi(y) / dz_x = y - p_x.
* Rewards are 0/1. The advantage is verl's GRPO outcome advantage: ``(r - mean) / (std + eps)`` within a group
  (all rollouts of one prompt in one batch), with the unbiased std; a group of one rollout gets its raw reward
  (verl 0.9.1 ``compute_grpo_outcome_advantage``: mean 0, std 1).
* The loss is ``-sum_j w_j A_j log pi(y_j) / R`` over the R rollouts of the update (verl's ``token-mean`` with
  equal response lengths; a single on-policy PPO step, where the clipped ratio's gradient equals this one), with
  optional per-rollout weights w (the CurES ``prompt`` loss weighting).
* The optimiser is plain SGD, per-coordinate Adam, or a normalised Adam-like step (the default) whose size is set
  by the learning rate rather than by the gradient's scale; see :class:`NormalizedAdam` for why.

Starting difficulties are logit-normal, split into a between-cluster and a within-cluster part. The default
mean -1.3 and std 2.5 are the least-squares fit of the histogram of cold-start correct counts (0..4 of 4) that
the released CurES artifact reports for Qwen2.5-Math-1.5B on Numina-Math subset 1
(43.6 / 14.3 / 15.2 / 15.7 / 11.2 %); :func:`cold_start_histogram` computes the model's histogram.

Everything here is vectorised numpy; no loop runs per rollout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

__all__ = [
    "ARTIFACT_COLD_START_HISTOGRAM",
    "OPTIMIZERS",
    "Adam",
    "Learner",
    "LearnerConfig",
    "NormalizedAdam",
    "Optimizer",
    "Problem",
    "SGD",
    "cold_start_histogram",
    "grpo_advantages",
    "make_optimizer",
    "make_problem",
    "sigmoid",
]

#: Share of prompts with 0..4 correct of 4 cold-start rollouts in the released CurES artifact (iteration 1,
#: Qwen2.5-Math-1.5B, Numina-Math subset 1; see docs/benchmark.md).
ARTIFACT_COLD_START_HISTOGRAM = (0.436, 0.143, 0.152, 0.157, 0.112)

#: Optimiser names accepted by :func:`make_optimizer`.
OPTIMIZERS = ("normalized", "adam", "sgd")

#: verl's epsilon in the GRPO advantage.
GRPO_EPSILON = 1e-6


def sigmoid(z: FloatArray) -> FloatArray:
    """Numerically stable logistic function, elementwise.

    Example:
        >>> sigmoid(np.array([0.0, 800.0, -800.0])).tolist()
        [0.5, 1.0, 0.0]
    """
    z = np.asarray(z, dtype=np.float64)
    out: FloatArray = np.exp(-np.logaddexp(0.0, -z))
    return out


def grpo_advantages(group_ids: IntArray, rewards: FloatArray, *, epsilon: float = GRPO_EPSILON) -> FloatArray:
    """verl's GRPO outcome advantage per rollout, vectorised over groups.

    A = (r - mean_g) / (std_g + epsilon) with the group's mean and unbiased standard deviation; a group holding a
    single rollout uses mean 0 and std 1, so it gets its raw reward (verl 0.9.1,
    ``verl.trainer.ppo.core_algos.compute_grpo_outcome_advantage``).

    Args:
        group_ids: Group of every rollout, shape ``(k,)``, any integers (a group is one prompt's rollouts).
        rewards: Reward of every rollout, shape ``(k,)``.
        epsilon: verl's epsilon.

    Returns:
        Advantages, float64, shape ``(k,)``.

    Raises:
        ValueError: If the arrays differ in length.

    Example:
        >>> grpo_advantages(np.array([0, 0, 0, 0, 1, 2, 2]), np.array([1.0, 0, 0, 1, 1, 1, 1])).round(4).tolist()
        [0.866, -0.866, -0.866, 0.866, 1.0, 0.0, 0.0]
    """
    groups = np.asarray(group_ids).reshape(-1)
    r = np.asarray(rewards, dtype=np.float64).reshape(-1)
    if groups.shape != r.shape:
        raise ValueError(f"group_ids and rewards differ in length: {groups.size} vs {r.size}")
    if r.size == 0:
        return np.zeros(0)
    # [g7, g3, g7] -> unique [g3, g7], inverse [1, 0, 1], counts [1, 2]
    _, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    means = np.bincount(inverse, weights=r) / counts
    centred = r - means[inverse]
    std = np.sqrt(np.bincount(inverse, weights=centred * centred) / np.maximum(counts - 1, 1))
    single = counts == 1
    means = np.where(single, 0.0, means)
    std = np.where(single, 1.0, std)
    result: FloatArray = (r - means[inverse]) / (std[inverse] + epsilon)
    return result


@dataclass(frozen=True, kw_only=True)
class LearnerConfig:
    """The simulated dataset and learner (every field is a CLI option of ``python -m
    cures_verl.experiments.curriculum``)."""

    num_prompts: int = 9600
    """Dataset size: 15 subsets x 10 batches x 64 prompts, the paper's 15-iteration schedule at batch 64."""

    num_clusters: int = 32
    """Number of clusters (topics/skills) sharing a parameter."""

    transfer: float = 0.5
    """Fraction of an SGD update to a prompt's logit shared with its cluster, in [0, 1]. 0.5: equal shared and
    own parts."""

    difficulty_mean: float = -1.3
    """Mean starting logit (fit to the released CurES cold-start histogram)."""

    difficulty_std: float = 2.5
    """Standard deviation of the starting logits (same fit)."""

    cluster_difficulty_share: float = 0.5
    """Fraction of the starting-logit variance that lies between clusters (some topics are harder), in [0, 1]."""

    optimizer: str = "normalized"
    """``normalized`` (default), ``adam`` or ``sgd``."""

    lr: float | None = None
    """Learning rate; None takes the optimiser's default (:data:`DEFAULT_LR`)."""

    beta1: float = 0.9
    """First-moment decay of the Adam-like optimisers (verl's AdamW default)."""

    beta2: float = 0.999
    """Second-moment decay of the Adam-like optimisers (verl's AdamW default)."""

    loss_denominator: int | None = None
    """What the loss's sum is divided by: None, the update's rollouts R (verl's ``token-mean``, per response in
    the batch); an integer, that fixed count (the experiment sets the step budget B for
    ``--loss-normalization budget``: a loss normalised per budget, whatever an update holds)."""

    def __post_init__(self) -> None:
        checks = (
            ("num_prompts", self.num_prompts >= 2),
            ("num_clusters", 1 <= self.num_clusters <= self.num_prompts),
            ("transfer", 0.0 <= self.transfer <= 1.0),
            ("difficulty_std", self.difficulty_std >= 0.0 and math.isfinite(self.difficulty_std)),
            ("cluster_difficulty_share", 0.0 <= self.cluster_difficulty_share <= 1.0),
            ("optimizer", self.optimizer in OPTIMIZERS),
            ("lr", self.lr is None or (self.lr > 0 and math.isfinite(self.lr))),
            ("beta1", 0.0 <= self.beta1 < 1.0),
            ("beta2", 0.0 <= self.beta2 < 1.0),
            ("loss_denominator", self.loss_denominator is None or self.loss_denominator >= 1),
        )
        for name, ok in checks:
            if not ok:
                raise ValueError(
                    f"--{name.replace('_', '-')}={getattr(self, name)!r} is invalid; see "
                    "`python -m cures_verl.experiments.curriculum --help` for the allowed range"
                )

    @property
    def learning_rate(self) -> float:
        """The learning rate in use (the explicit one or the optimiser's default)."""
        return DEFAULT_LR[self.optimizer] if self.lr is None else float(self.lr)


#: Default learning rate per optimiser, calibrated on uniform GRPO only: with every other default it raises the
#: mean accuracy from about 0.34 to about 0.6 over the default budget (seeds 0-2), for each optimiser alike; see
#: docs/benchmark.md, "How the defaults were chosen".
DEFAULT_LR = {"normalized": 0.12, "adam": 0.017, "sgd": 2.5}


@dataclass(frozen=True)
class Problem:
    """A simulated dataset: fixed starting logits and cluster membership.

    Attributes:
        start_logits: z0_x, shape ``(num_prompts,)``.
        clusters: c(x) in ``[0, num_clusters)``, shape ``(num_prompts,)``.
        num_clusters: K.
    """

    start_logits: FloatArray
    clusters: IntArray
    num_clusters: int

    @property
    def num_prompts(self) -> int:
        """Dataset size."""
        return int(self.start_logits.size)


def make_problem(config: LearnerConfig, rng: np.random.Generator) -> Problem:
    """Draw a dataset: balanced clusters and logit-normal starting difficulties.

    z0_x = mean + std * (sqrt(s) * a_c(x) + sqrt(1 - s) * e_x) with a, e standard normal and s the cluster share,
    so the marginal is N(mean, std^2) whatever s is.

    Args:
        config: Dataset settings.
        rng: Generator (the only randomness).

    Returns:
        The problem.

    Example:
        >>> prob = make_problem(LearnerConfig(num_prompts=8, num_clusters=2), np.random.default_rng(0))
        >>> prob.num_prompts, sorted(np.bincount(prob.clusters).tolist())
        (8, [4, 4])
    """
    n, k = config.num_prompts, config.num_clusters
    clusters = rng.permutation(np.arange(n, dtype=np.int64) % k)
    between = rng.standard_normal(k)
    within = rng.standard_normal(n)
    share = config.cluster_difficulty_share
    z0 = config.difficulty_mean + config.difficulty_std * (
        math.sqrt(share) * between[clusters] + math.sqrt(1.0 - share) * within
    )
    return Problem(start_logits=z0, clusters=clusters, num_clusters=k)


def cold_start_histogram(mean: float, std: float, *, num_rollouts: int = 4) -> FloatArray:
    """Expected share of prompts with 0..num_rollouts correct cold-start rollouts under logit-normal difficulty.

    Integrates Binomial(num_rollouts, sigmoid(z)) over z ~ N(mean, std^2) with 80-point Gauss-Hermite
    quadrature. Used to check the default difficulty against :data:`ARTIFACT_COLD_START_HISTOGRAM`.

    Example:
        >>> cold_start_histogram(-1.3, 2.5).round(3).tolist()
        [0.431, 0.186, 0.13, 0.118, 0.135]
    """
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    weights = weights / weights.sum()
    p = sigmoid(mean + std * nodes)
    ks = np.arange(num_rollouts + 1)
    binom = np.array([math.comb(num_rollouts, int(k)) for k in ks], dtype=np.float64)
    pmf = binom[:, None] * p[None, :] ** ks[:, None] * (1.0 - p[None, :]) ** (num_rollouts - ks[:, None])
    result: FloatArray = pmf @ weights
    return result


class Optimizer:
    """In-place update of a flat parameter vector from its gradient."""

    def step(self, params: FloatArray, grad: FloatArray) -> None:
        """Apply one update to ``params`` (shape ``(d,)``) given ``grad`` (shape ``(d,)``)."""
        raise NotImplementedError


class SGD(Optimizer):
    """Plain gradient descent: theta -= lr * g.

    The step grows with the gradient's norm, so a strategy whose loss averages over fewer zero-advantage rollouts
    takes larger steps for the same learning rate (see :class:`NormalizedAdam`).
    """

    def __init__(self, lr: float) -> None:
        self.lr = float(lr)

    def step(self, params: FloatArray, grad: FloatArray) -> None:
        params -= self.lr * grad


class Adam(Optimizer):
    """Per-coordinate Adam with bias correction (what verl's AdamW does, without weight decay).

    Each coordinate moves about ``lr`` per step whatever its gradient's scale. Caveat specific to this simulator:
    a prompt's own coordinate only gets a gradient in steps that train on the prompt, so Adam normalises it
    separately and its momentum keeps moving it for ~1 / (1 - beta1) steps after each visit; an LLM has no
    per-prompt parameters.
    """

    def __init__(self, lr: float, size: int, *, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
        self.lr, self.beta1, self.beta2, self.eps = float(lr), beta1, beta2, eps
        self.m = np.zeros(size)
        self.v = np.zeros(size)
        self.t = 0

    def step(self, params: FloatArray, grad: FloatArray) -> None:
        self.t += 1
        self.m *= self.beta1
        self.m += (1.0 - self.beta1) * grad
        self.v *= self.beta2
        self.v += (1.0 - self.beta2) * grad * grad
        m_hat = self.m / (1.0 - self.beta1**self.t)
        v_hat = self.v / (1.0 - self.beta2**self.t)
        params -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


class NormalizedAdam(Optimizer):
    """Adam with one second moment for the whole gradient: theta -= lr * m_hat / sqrt(v_hat), v tracking ||g||^2.

    The update's norm is about ``lr`` per step whatever the gradient's scale (like Adam), while the direction keeps
    the gradient's relative weights across prompts and clusters (unlike per-coordinate Adam on this simulator's
    sparse per-prompt coordinates). This removes the SGD artefact in which a strategy that trains only on
    informative groups wins merely because its loss averages over fewer zero-advantage rollouts, hence larger
    steps. Momentum and bias correction as in Adam.
    """

    def __init__(self, lr: float, size: int, *, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-12) -> None:
        self.lr, self.beta1, self.beta2, self.eps = float(lr), beta1, beta2, eps
        self.m = np.zeros(size)
        self.v = 0.0
        self.t = 0

    def step(self, params: FloatArray, grad: FloatArray) -> None:
        self.t += 1
        self.m *= self.beta1
        self.m += (1.0 - self.beta1) * grad
        self.v = self.beta2 * self.v + (1.0 - self.beta2) * float(grad @ grad)
        m_hat = self.m / (1.0 - self.beta1**self.t)
        v_hat = self.v / (1.0 - self.beta2**self.t)
        params -= self.lr * m_hat / (math.sqrt(v_hat) + self.eps)


def make_optimizer(config: LearnerConfig, size: int) -> Optimizer:
    """The optimiser named by ``config.optimizer`` for ``size`` parameters.

    Raises:
        ValueError: For an unknown name.
    """
    lr = config.learning_rate
    if config.optimizer == "sgd":
        return SGD(lr)
    if config.optimizer == "adam":
        return Adam(lr, size, beta1=config.beta1, beta2=config.beta2)
    if config.optimizer == "normalized":
        return NormalizedAdam(lr, size, beta1=config.beta1, beta2=config.beta2)
    raise ValueError(f"unknown optimizer {config.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")


@dataclass(frozen=True)
class UpdateStats:
    """What one update trained on.

    Attributes:
        num_rollouts: R, the rollouts in the loss.
        num_informative: Rollouts in groups whose rewards are not all equal (non-zero advantage).
        num_groups: Groups in the loss.
    """

    num_rollouts: int
    num_informative: int
    num_groups: int


class Learner:
    """The simulated policy: parameters, their optimiser, and exact accuracies.

    Parameters are one flat vector ``[theta_shared (K), theta_own (N)]``, all zero at the start, so the starting
    accuracies are ``sigmoid(z0)``. Accuracies change only in :meth:`update`.

    Args:
        problem: The dataset.
        config: Learner settings (transfer, optimiser).

    Example:
        >>> prob = make_problem(LearnerConfig(num_prompts=4, num_clusters=1), np.random.default_rng(0))
        >>> learner = Learner(prob, LearnerConfig(num_prompts=4, num_clusters=1, optimizer="sgd", lr=1.0))
        >>> before = learner.accuracy()
        >>> _ = learner.update(np.array([0, 0]), np.array([0, 0]), np.array([1.0, 0.0]))
        >>> bool(learner.accuracy()[0] > before[0])  # a correct rollout with positive advantage pushes p up
        True
    """

    def __init__(self, problem: Problem, config: LearnerConfig) -> None:
        self.problem = problem
        self.config = config
        self.shared_scale = math.sqrt(config.transfer)
        self.own_scale = math.sqrt(1.0 - config.transfer)
        self.params = np.zeros(problem.num_clusters + problem.num_prompts)
        self.optimizer = make_optimizer(config, self.params.size)
        self.num_updates = 0

    def logits(self, prompt_ids: IntArray | None = None) -> FloatArray:
        """z_x for ``prompt_ids`` (all prompts when None)."""
        k = self.problem.num_clusters
        shared, own = self.params[:k], self.params[k:]
        if prompt_ids is None:
            return self.problem.start_logits + self.shared_scale * shared[self.problem.clusters] + self.own_scale * own
        ids = np.asarray(prompt_ids, dtype=np.int64)
        return (
            self.problem.start_logits[ids]
            + self.shared_scale * shared[self.problem.clusters[ids]]
            + self.own_scale * own[ids]
        )

    def accuracy(self, prompt_ids: IntArray | None = None) -> FloatArray:
        """True accuracy p_x = sigmoid(z_x) for ``prompt_ids`` (all prompts when None)."""
        return sigmoid(self.logits(prompt_ids))

    def mean_accuracy(self) -> float:
        """Mean true accuracy over the whole dataset (the benchmark's metric)."""
        return float(self.accuracy().mean())

    def sample(self, prompt_ids: IntArray, rng: np.random.Generator) -> FloatArray:
        """One 0/1 reward per entry of ``prompt_ids`` (shape ``(k,)``), each Bernoulli(p_x), vectorised."""
        ids = np.asarray(prompt_ids, dtype=np.int64)
        return (rng.random(ids.size) < self.accuracy(ids)).astype(np.float64)

    def gradient(
        self,
        prompt_ids: IntArray,
        group_ids: IntArray,
        rewards: FloatArray,
        loss_weights: FloatArray | None = None,
        advantages: FloatArray | None = None,
    ) -> FloatArray:
        """Gradient of the GRPO loss -sum_j w_j A_j log pi(y_j) / R (or / ``loss_denominator``) with respect to the
        flat parameters.

        d/dz_x = -sum_{j: x_j = x} w_j A_j (y_j - p_x) / R, then the chain rule through phi_x.

        Args:
            prompt_ids: Prompt of every rollout, shape ``(R,)``.
            group_ids: Group of every rollout, shape ``(R,)`` (GRPO statistics are per group).
            rewards: 0/1 reward of every rollout, shape ``(R,)``.
            loss_weights: Per-rollout loss weights w, shape ``(R,)``; None = all ones.
            advantages: Advantages A_j to use, shape ``(R,)``; None = verl's GRPO advantage of the groups.

        Returns:
            The gradient, shape ``(num_clusters + num_prompts,)``.
        """
        ids = np.asarray(prompt_ids, dtype=np.int64)
        r = np.asarray(rewards, dtype=np.float64)
        if advantages is None:
            advantages = grpo_advantages(group_ids, r)
        elif np.shape(advantages) != ids.shape:
            raise ValueError("advantages must have one entry per rollout")
        if loss_weights is not None:
            if np.shape(loss_weights) != ids.shape:
                raise ValueError("loss_weights must have one entry per rollout")
            advantages = advantages * np.asarray(loss_weights, dtype=np.float64)
        denominator = self.config.loss_denominator or max(ids.size, 1)
        per_rollout = -advantages * (r - self.accuracy(ids)) / denominator
        # [x3, x1, x3] -> unique [x1, x3] -> per-prompt sums by bincount
        unique, inverse = np.unique(ids, return_inverse=True)
        grad_z = np.bincount(inverse, weights=per_rollout, minlength=unique.size)
        k = self.problem.num_clusters
        grad = np.zeros(self.params.size)
        grad[:k] = self.shared_scale * np.bincount(self.problem.clusters[unique], weights=grad_z, minlength=k)
        grad[k + unique] = self.own_scale * grad_z
        return grad

    def update(
        self,
        prompt_ids: IntArray,
        group_ids: IntArray,
        rewards: FloatArray,
        **gradient_options: FloatArray | None,
    ) -> UpdateStats:
        """One optimiser step on the GRPO loss of these rollouts.

        ``gradient_options`` are :meth:`gradient`'s keywords: ``loss_weights``, and ``advantages`` to replace verl's
        GRPO advantage (e.g. by posterior-baseline ones).

        Returns:
            What the update trained on.

        Raises:
            ValueError: If the arrays differ in length or are empty.
        """
        ids = np.asarray(prompt_ids, dtype=np.int64).reshape(-1)
        groups = np.asarray(group_ids).reshape(-1)
        r = np.asarray(rewards, dtype=np.float64).reshape(-1)
        if not (ids.shape == groups.shape == r.shape) or ids.size == 0:
            raise ValueError("an update needs non-empty prompt_ids, group_ids and rewards of the same length")
        grad = self.gradient(ids, groups, r, **gradient_options)
        self.optimizer.step(self.params, grad)
        self.num_updates += 1
        _, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
        correct = np.bincount(inverse, weights=r)
        mixed = (correct > 0) & (correct < counts)
        return UpdateStats(num_rollouts=int(ids.size), num_informative=int(counts[mixed].sum()), num_groups=counts.size)
