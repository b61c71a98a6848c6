"""Weight bounds under forgetting, their expiry, and the thinned draw: exact successive sampling from Eq. 14."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cures_verl.core import bounds as bounds_module
from cures_verl.core.bounds import ExpiryQueue, log_weight_bounds, windowed_bounds
from cures_verl.core.difficulty import BetaAccuracyTracker
from cures_verl.core.sampling import draw_distinct_thinned, prompt_scores, prompt_temperatures, reward_std
from cures_verl.core.sumtree import SumTree

SCORES = ["mean", "expected_std", "informative", "thompson"]


def _exact_log_weight(tracker, idx, score, tau, rule, group_size, rng):
    scores = prompt_scores(tracker, idx, score, rng=rng, group_size=group_size)
    return scores / prompt_temperatures(tracker, idx, tau, rule)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 40), st.floats(0, 40)), min_size=1, max_size=6),
    st.floats(0.05, 5.0),
    st.floats(0.05, 5.0),
    st.floats(0.0, 1.0),
    st.sampled_from(SCORES),
    st.sampled_from(["constant", "count_scaled"]),
    st.sampled_from([1e-3, 0.03, 1.0, 100.0]),
    st.integers(2, 12),
    st.integers(0, 2**32 - 1),
)
def test_bounds_hold_for_every_decay_in_the_window(counts, a0, b0, keep, score, rule, tau, group_size, seed):
    """The exact log-weight of the decayed posterior never exceeds the bound (and the lower bound never exceeds it,
    Thompson aside), for decays d in [keep, 1]."""
    k = len(counts)
    correct = np.array([c for c, _ in counts])
    incorrect = np.array([f for _, f in counts])
    rng = np.random.default_rng(seed)
    tracker = BetaAccuracyTracker(k, prior_correct=a0, prior_incorrect=b0)
    tracker.update(np.arange(k), correct, correct + incorrect)
    idx = np.arange(k)
    bound = log_weight_bounds(tracker, idx, np.array([keep]), score, tau, rule, group_size)[0]
    _, lower = bounds_module._Counts.read(tracker, idx).both(np.array([keep]), score, tau, rule, group_size)
    for d in np.unique(np.concatenate([[keep, 1.0], keep + (1 - keep) * rng.random(6)])):
        decayed = BetaAccuracyTracker(k, prior_correct=a0, prior_incorrect=b0)
        decayed.update(idx, d * correct, d * (correct + incorrect))
        exact = _exact_log_weight(decayed, idx, score, tau, rule, group_size, rng)
        assert np.all(exact <= bound), (d, exact, bound)
        if score != "thompson":
            assert np.all(lower[0] <= exact + 1e-9 * (1 + np.abs(exact))), (d, exact, lower)
    if score == "thompson":  # the bound holds for any posterior draw
        temps = prompt_temperatures(tracker, idx, tau, rule)
        assert np.all(0.5 / temps <= bound)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(SCORES), st.sampled_from([-np.inf, 0.0, 5.0]))
def test_windowed_bounds_hold_over_the_chosen_window(seed, score, floor):
    rng = np.random.default_rng(seed)
    k = 40
    tracker = BetaAccuracyTracker(k)
    total = rng.integers(0, 30, k).astype(float)
    correct = np.floor(rng.random(k) * (total + 1))
    tracker.update(np.arange(k), correct, total)
    bound, window = windowed_bounds(tracker, np.arange(k), score, 0.05, "constant", log_mass_floor=floor)
    assert set(np.unique(window)) <= set(bounds_module.WINDOWS)
    assert np.all(window[total == 0] == np.inf)  # at the prior: nothing to forget, never expires
    for d in (1.0, 0.7, 0.3, 0.05, 0.0):
        decayed = BetaAccuracyTracker(k)
        decayed.update(np.arange(k), d * correct, d * total)
        exact = _exact_log_weight(decayed, np.arange(k), score, 0.05, "constant", 8, rng)
        covered = -math.log(d) <= window if d > 0 else np.isinf(window)
        assert np.all(exact[covered] <= bound[covered])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.floats(-8, 0), min_size=1, max_size=6), min_size=1, max_size=8), st.integers(0, 3))
def test_expiry_queue_returns_exactly_the_bounds_whose_threshold_was_passed(batches, skip):
    """Against brute force: after setting thresholds in batches, popping at decreasing log-scales returns every
    prompt whose (latest) threshold is above the scale, never early by more than the rounding quantum."""
    size = 10
    queue, latest = ExpiryQueue(size), np.full(size, -np.inf)
    rng = np.random.default_rng(len(batches))
    scale = 0.0
    for thresholds in batches:
        idx = rng.choice(size, len(thresholds), replace=False)
        values = np.where(np.arange(len(thresholds)) % 4 == skip, -np.inf, np.array(thresholds) + scale)
        queue.set(idx, values)
        latest[idx] = values
        scale -= float(rng.random())
        got = queue.pop_expired(scale)
        due = np.flatnonzero(latest > scale)
        assert set(due.tolist()) <= set(got.tolist())  # never late
        early = np.setdiff1d(got, due)
        assert np.all(latest[early] > scale - queue.quantum)  # early only within the rounding
        latest[got] = -np.inf
    queue.rebuild()  # compaction keeps the pending ones
    assert set(queue.pop_expired(-np.inf).tolist()) == set(np.flatnonzero(np.isfinite(latest)).tolist())


def _successive_probability(w, seq):
    prob, remaining = 1.0, w.sum()
    for i in seq:
        prob *= w[i] / remaining
        remaining -= w[i]
    return prob


def _chi_square_ok(counts, expected):
    keep = expected >= 5
    stat = (((counts[keep] - expected[keep]) ** 2) / expected[keep]).sum()
    rest_obs, rest_exp = counts[~keep].sum(), expected[~keep].sum()
    if rest_exp > 0:
        stat += (rest_obs - rest_exp) ** 2 / rest_exp
    dof = int(keep.sum()) + (1 if rest_exp > 0 else 0) - 1
    return stat < dof + 3.1 * math.sqrt(2 * dof) + 10, (stat, dof)


@pytest.mark.parametrize(
    ("weights", "ratios", "m"),
    [
        ([1.0, 2.0, 3.0, 4.0], [1.0, 1.5, 3.0, 1.0], 2),  # loose bounds on some prompts
        ([5.0, 1.0, 0.2, 2.0, 1.0], [1.0, 40.0, 200.0, 1.0, 2.0], 3),  # very loose: the exact finish runs too
        ([1000.0, 1000.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0, 1.0], 4),  # concentrated mass: zeroing rounds
    ],
)
def test_thinned_draws_follow_successive_sampling_of_the_true_weights(weights, ratios, m):
    w = np.array(weights)
    bound = w * np.array(ratios)
    tree = SumTree(w.size)
    tree.rebuild(bound / bound.max())
    before = tree.nodes.copy()
    rng = np.random.default_rng(2024)
    runs = 6000
    counts: dict[tuple[int, ...], int] = {}
    acceptance = 1.0
    for _ in range(runs):
        out, acceptance = draw_distinct_thinned(
            tree,
            m,
            rng,
            lambda i: np.log(w[i] / bound[i]),
            np.arange(w.size),
            lambda i: np.log(w[i]),
            acceptance,
        )
        counts[tuple(out.tolist())] = counts.get(tuple(out.tolist()), 0) + 1
    np.testing.assert_array_equal(tree.nodes, before)  # the tree is left as it was
    sequences = list(itertools.permutations(range(w.size), m))
    expected = np.array([_successive_probability(w, s) for s in sequences]) * runs
    observed = np.array([counts.get(s, 0) for s in sequences])
    ok, detail = _chi_square_ok(observed, expected)
    assert ok, detail


def test_thinned_draw_refuses_a_bound_below_its_weight():
    tree = SumTree(3)
    tree.rebuild(np.ones(3))
    with pytest.raises(RuntimeError, match="bound is below its weight"):
        draw_distinct_thinned(
            tree, 2, np.random.default_rng(0), lambda i: np.full(i.size, 0.1), np.arange(3), lambda i: np.zeros(i.size)
        )


def test_lazy_thompson_draws_select_like_drawing_every_posterior_sample_first():
    """Thompson with thinning (a prompt's posterior sample drawn at its first proposal) against the eager scheme
    (every prompt's sample drawn, then successive sampling): the same law of the ordered selection (two-sample
    chi-square)."""
    from cures_verl.core.sampling import _ThompsonDraws, draw_distinct

    k, m, tau = 5, 2, 0.1
    tracker = BetaAccuracyTracker(k)
    tracker.update(np.arange(k), np.array([0, 1, 4, 7, 2.0]), np.array([8, 2, 8, 8, 2.0]))
    bound = 0.5 / tau
    tree = SumTree(k)
    tree.rebuild(np.ones(k))
    rng = np.random.default_rng(7)
    runs = 5000
    lazy: dict[tuple[int, ...], int] = {}
    eager: dict[tuple[int, ...], int] = {}
    for _ in range(runs):
        draws = _ThompsonDraws(tracker, rng)

        def log_w(i, draws=draws):
            return reward_std(draws(i)) / tau

        out, _ = draw_distinct_thinned(tree, m, rng, lambda i, f=log_w: f(i) - bound, np.arange(k), log_w)
        lazy[tuple(out.tolist())] = lazy.get(tuple(out.tolist()), 0) + 1
        theta = tracker.sample(rng)
        dense = SumTree(k)
        dense.rebuild(np.exp(reward_std(theta) / tau - bound))
        out = draw_distinct(dense, m, rng)
        eager[tuple(out.tolist())] = eager.get(tuple(out.tolist()), 0) + 1
    cells = sorted(set(lazy) | set(eager))
    a = np.array([lazy.get(c, 0) for c in cells], dtype=float)
    b = np.array([eager.get(c, 0) for c in cells], dtype=float)
    keep = (a + b) >= 10
    stat = (((a - b) ** 2)[keep] / (a + b)[keep]).sum()
    dof = int(keep.sum()) - 1
    assert stat < dof + 3.1 * math.sqrt(2 * dof) + 10, (stat, dof)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 3000), st.integers(0, 400), st.integers(0, 2**32 - 1))
def test_sum_tree_update_equals_a_rebuild_bit_for_bit(size, k, seed):
    """SumTree.update recomputes the upper levels whole once they have fewer nodes than the update: the tree must
    stay exactly what a rebuild of the same leaves gives (so draws and restored checkpoints are unchanged)."""
    rng = np.random.default_rng(seed)
    tree = SumTree(size)
    tree.rebuild(rng.random(size))
    idx = rng.integers(0, size, k)
    values = rng.random(k) * (rng.random(k) < 0.8)
    tree.update(idx, values)
    reference = SumTree(size)
    reference.rebuild(tree.weights())
    np.testing.assert_array_equal(tree.nodes, reference.nodes)
