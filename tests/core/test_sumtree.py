"""SumTree agrees with a dense cumulative sum."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from cures_verl.core.sumtree import SumTree

weights_st = st.lists(st.floats(min_value=0, max_value=1e3, allow_nan=False), min_size=1, max_size=70)


@given(weights_st, st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=20))
@example([1.0, 0.0, 1.0], [0.5, 1.0])  # a target on a boundary before a zero weight, and one at the very end
def test_find_matches_searchsorted_on_the_cumulative_sum(weights, fractions):
    w = np.array(weights)
    if w.sum() == 0:
        return
    tree = SumTree(w.size)
    tree.rebuild(w)
    assert tree.total == pytest.approx(w.sum())
    targets = np.array(fractions) * tree.total * (1 - 1e-12)
    got = tree.find(targets)
    expected = np.searchsorted(np.cumsum(w), targets, side="right")
    # identical except where rounding puts a target on a boundary between cumulative sums
    cum = np.cumsum(w)
    boundary = np.abs(cum[np.minimum(expected, w.size - 1)] - targets) <= 1e-9 * tree.total + 1e-300
    ok = (got == expected) | boundary
    assert ok.all()
    # a draw lands on a positive weight, target by target; only a target within rounding of the total may reach
    # past the last positive leaf (the documented edge case draw_distinct checks for)
    at_the_end = targets >= tree.total * (1 - 1e-9)
    assert ((w[got] > 0) | at_the_end).all(), (w[got], targets, tree.total)


@given(weights_st, st.data())
def test_incremental_updates_equal_a_rebuild(weights, data):
    w = np.array(weights)
    tree = SumTree(w.size)
    tree.rebuild(w)
    idx = np.array(data.draw(st.lists(st.integers(0, w.size - 1), max_size=10)), dtype=np.int64)
    new = np.array(data.draw(st.lists(st.floats(0, 1e3), min_size=idx.size, max_size=idx.size)))
    tree.update(idx, new)
    for i, v in zip(idx, new, strict=True):  # last value wins, as in numpy fancy assignment
        w[i] = v
    reference = SumTree(w.size)
    reference.rebuild(w)
    np.testing.assert_allclose(tree.nodes, reference.nodes, rtol=1e-12, atol=1e-9)


def test_rejects_bad_weights():
    tree = SumTree(3)
    with pytest.raises(ValueError, match="shape"):
        tree.rebuild(np.ones(4))
    with pytest.raises(ValueError, match=">= 0"):
        tree.update(np.array([0]), np.array([-1.0]))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        tree.update(np.array([3]), np.array([1.0]))
