"""The sampler's report: calibration statistics and rank correlation."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cures_verl.core.grouping import PromptCounts
from cures_verl.core.report import CurriculumReport, average_ranks, pearson


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=30))
def test_average_ranks_share_ties_and_sum_like_distinct_ranks(values):
    x = np.array(values, dtype=float)
    ranks = average_ranks(x)
    assert ranks.sum() == sum(range(x.size))
    for v in np.unique(x):  # tied values share one rank, ordered like the values
        assert np.ptp(ranks[x == v]) == 0
    assert np.all(np.diff(ranks[np.argsort(x, kind="stable")]) >= 0)


def test_pearson_is_nan_without_spread_and_one_on_a_line():
    assert math.isnan(pearson(np.array([0.5]), np.array([1.0])))
    assert math.isnan(pearson(np.array([1.0, 1.0]), np.array([0.0, 1.0])))
    assert pearson(np.array([0.0, 1.0, 2.0]), np.array([1.0, 3.0, 5.0])) == 1.0


def test_observation_reports_the_batch_and_calibration():
    counts = PromptCounts(np.array([0, 1, 2]), np.array([0.0, 2.0, 4.0]), np.array([4.0, 4.0, 4.0]))
    out = CurriculumReport.observation(counts, np.array([0.1, 0.5, 0.6]))
    assert out["batch/num_rollouts"] == 12 and out["batch/num_prompts"] == 3
    assert out["batch/accuracy_mean"] == 0.5
    assert out["batch/frac_zero_variance"] == 2 / 3  # all wrong, all right
    assert out["posterior/pred_realised_rank_corr"] == 1.0
    assert out["posterior/pred_abs_error"] == np.mean([0.1, 0.0, 0.4])


@settings(max_examples=80, deadline=None)
@given(st.lists(st.floats(-5, 5, allow_nan=False).map(lambda v: round(v, 1)), max_size=40))
def test_average_ranks_equal_the_mean_rank_of_each_tie_group(values):
    x = np.array(values, dtype=float)
    order = np.argsort(x, kind="stable")
    plain = np.empty(x.size)
    plain[order] = np.arange(x.size)
    want = np.array([plain[x == v].mean() for v in x])
    np.testing.assert_array_equal(average_ranks(x), want)
