"""Posterior-baseline advantages (cures_verl.core.advantage): exact expectations by enumerating every outcome."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cures_verl.core.advantage import baseline_mse, posterior_advantages, posterior_baselines

counts = st.floats(0.05, 50.0)
accuracies = st.floats(0.01, 0.99)
sizes = st.integers(2, 5)


def _outcome_table(n: int) -> np.ndarray:
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)))


def _probabilities(table: np.ndarray, p: float) -> np.ndarray:
    correct = table.sum(axis=1)
    return p**correct * (1 - p) ** (table.shape[1] - correct)


def _advantages(table: np.ndarray, alpha: float, beta: float, scale: str) -> np.ndarray:
    n = table.shape[1]
    groups = np.zeros(n, dtype=np.int64)
    return np.stack(
        [posterior_advantages(row, groups, np.array([alpha]), np.array([beta]), scale=scale) for row in table]  # type: ignore[arg-type]
    )


@settings(max_examples=60, deadline=None)
@given(p=accuracies, n=sizes, alpha=counts, beta=counts, scale=st.sampled_from(["posterior_std", "none"]))
def test_the_gradient_direction_is_unbiased(p: float, n: int, alpha: float, beta: float, scale: str) -> None:
    # A Bernoulli policy with logit theta: grad log pi(y) = y - p and grad J = p (1 - p). Each rollout's term must
    # be grad J times E[1 / s_j], the weight that does not depend on its own outcome.
    table = _outcome_table(n)
    prob = _probabilities(table, p)
    adv = _advantages(table, alpha, beta, scale)
    for j in range(n):
        estimate = float(np.sum(prob * (table[:, j] - p) * adv[:, j]))
        others = np.delete(table, j, axis=1)
        b = (alpha + others.sum(axis=1)) / (alpha + beta + n - 1)
        inv_scale = 1.0 if scale == "none" else 1.0 / np.sqrt(b * (1 - b))
        expected = p * (1 - p) * float(np.sum(prob * inv_scale))
        assert estimate == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_a_baseline_that_sees_its_own_outcome_would_be_biased() -> None:
    # The same enumeration detects the bias of including o_j (GRPO's group mean): the check above is not vacuous.
    p, n, alpha, beta = 0.3, 2, 1.0, 1.0
    table = _outcome_table(n)
    prob = _probabilities(table, p)
    b_with_self = (alpha + table.sum(axis=1)) / (alpha + beta + n)
    estimate = float(np.sum(prob * (table[:, 0] - p) * (table[:, 0] - b_with_self)))
    assert estimate < p * (1 - p) * 0.9


@settings(max_examples=60, deadline=None)
@given(p=accuracies, n=sizes, alpha=counts, beta=counts)
def test_the_baseline_error_matches_its_closed_form(p: float, n: int, alpha: float, beta: float) -> None:
    table = _outcome_table(n)
    prob = _probabilities(table, p)
    groups = np.zeros(n, dtype=np.int64)
    baselines = np.stack(
        [posterior_baselines(row, groups, np.array([alpha]), np.array([beta])) for row in table]  # type: ignore[arg-type]
    )
    mse = float(np.sum(prob * (baselines[:, 0] - p) ** 2))
    assert mse == pytest.approx(baseline_mse(p, n, alpha, beta), rel=1e-9, abs=1e-15)


@given(p=accuracies, n=sizes, weight=st.floats(0.1, 200.0))
def test_an_exact_posterior_beats_the_groups_leave_one_out_mean(p: float, n: int, weight: float) -> None:
    group_mse = p * (1 - p) / (n - 1)
    assert baseline_mse(p, n, weight * p, weight * (1 - p)) < group_mse


@given(p=accuracies, n=sizes, weight=st.floats(0.1, 200.0), error=st.floats(-0.99, 0.99))
def test_the_break_even_error_of_the_docstring(p: float, n: int, weight: float, error: float) -> None:
    m0 = min(max(p + error, 1e-3), 1 - 1e-3)
    d2 = (m0 - p) ** 2
    threshold = p * (1 - p) * (weight + 2 * (n - 1)) / (weight * (n - 1))
    better = baseline_mse(p, n, weight * m0, weight * (1 - m0)) < p * (1 - p) / (n - 1)
    if abs(d2 - threshold) > 1e-9 * max(threshold, 1e-12):
        assert better == (d2 < threshold)


def test_all_equal_groups_get_a_signal_grpo_lacks() -> None:
    outcomes = np.array([1.0, 1.0, 0.0, 0.0])
    groups = np.array([0, 0, 1, 1])
    adv = posterior_advantages(outcomes, groups, np.array([6.0, 6.0]), np.array([4.0, 4.0]))
    assert np.all(adv[:2] > 0) and np.all(adv[2:] < 0)
    # a prompt the posterior already puts near 1 gains little from another success
    sure = posterior_advantages(np.array([1.0, 1.0]), np.array([0, 0]), np.array([99.0]), np.array([1.0]))
    assert np.all(sure < adv[0])


def test_groups_are_independent_and_order_free() -> None:
    rng = np.random.default_rng(0)
    outcomes = rng.integers(0, 2, 40).astype(float)
    groups = rng.integers(0, 7, 40)
    alpha, beta = rng.uniform(0.5, 5, 7), rng.uniform(0.5, 5, 7)
    whole = posterior_advantages(outcomes, groups, alpha, beta)
    perm = rng.permutation(40)
    np.testing.assert_allclose(posterior_advantages(outcomes[perm], groups[perm], alpha, beta), whole[perm])
    for g in range(7):
        mine = groups == g
        alone = posterior_advantages(outcomes[mine], np.zeros(mine.sum(), dtype=np.int64), alpha[[g]], beta[[g]])
        np.testing.assert_allclose(alone, whole[mine])


@pytest.mark.parametrize(
    ("outcomes", "groups", "alpha", "beta", "message"),
    [
        ([0.0, 1.5], [0, 0], [1.0], [1.0], "outcomes must lie in"),
        ([0.0, np.nan], [0, 0], [1.0], [1.0], "outcomes must lie in"),
        ([0.0, 1.0], [0, 1], [1.0], [1.0], "must index the 1 posterior rows"),
        ([0.0, 1.0], [0, 0], [0.0], [1.0], "must be > 0"),
        ([0.0, 1.0], [0], [1.0], [1.0], "same length"),
    ],
)
def test_bad_input_is_refused(outcomes: list, groups: list, alpha: list, beta: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        posterior_advantages(np.array(outcomes), np.array(groups), np.array(alpha), np.array(beta))


def test_unknown_scale_and_tiny_groups_are_refused() -> None:
    with pytest.raises(ValueError, match="scale='group'"):
        posterior_advantages(np.ones(2), np.zeros(2, dtype=np.int64), np.ones(1), np.ones(1), scale="group")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n >= 2"):
        baseline_mse(0.5, 1, 1.0, 1.0)


@settings(max_examples=80, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 7), min_size=1, max_size=8),
    max_group=st.integers(2, 6),
    seed=st.integers(0, 2**16),
)
def test_small_groups_take_the_posterior_baseline_and_large_ones_are_left_alone(
    sizes: list[int], max_group: int, seed: int
) -> None:
    from cures_verl.core.advantage import small_group_advantages

    rng = np.random.default_rng(seed)
    prompts = rng.permutation(np.repeat(rng.choice(1000, len(sizes), replace=False), sizes))
    outcomes = rng.integers(0, 2, prompts.size).astype(float)
    table_alpha = {int(p): float(rng.uniform(0.5, 9)) for p in np.unique(prompts)}
    table_beta = {int(p): float(rng.uniform(0.5, 9)) for p in np.unique(prompts)}
    alpha = np.array([table_alpha[int(p)] for p in prompts])
    beta = np.array([table_beta[int(p)] for p in prompts])
    out = small_group_advantages(prompts, outcomes, alpha, beta, max_group_size=max_group)
    size_of = {int(p): int((prompts == p).sum()) for p in np.unique(prompts)}
    assert out.rows.tolist() == [size_of[int(p)] <= max_group for p in prompts]
    # each selected prompt's advantages are those of its group alone
    selected = prompts[out.rows]
    for p in np.unique(selected):
        mine = prompts == p
        alone = posterior_advantages(
            outcomes[mine], np.zeros(mine.sum(), dtype=np.int64), alpha[mine][:1], beta[mine][:1]
        )
        np.testing.assert_allclose(out.advantages[selected == p], alone)
        equal = outcomes[mine].min() == outcomes[mine].max()
        assert out.all_equal[selected == p].tolist() == [equal] * int(mine.sum())


def test_counts_that_differ_within_a_prompt_are_refused() -> None:
    from cures_verl.core.advantage import small_group_advantages

    with pytest.raises(ValueError, match="same for every rollout of a prompt"):
        small_group_advantages(np.array([1, 1]), np.ones(2), np.array([1.0, 2.0]), np.ones(2), max_group_size=2)
    with pytest.raises(ValueError, match="groups of >= 2"):
        small_group_advantages(np.array([1, 1]), np.ones(2), np.ones(2), np.ones(2), max_group_size=1)
