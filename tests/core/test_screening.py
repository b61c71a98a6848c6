"""Screening from the posterior: which prompts to screen, which screens to keep, where the freed rollouts go."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cures_verl.config import preset_config
from cures_verl.core.curriculum import CurriculumSampler
from cures_verl.core.difficulty import informative_probability
from cures_verl.core.screening import needs_screening, reallocate_after_screening, screening_verdict

beta_params = st.floats(min_value=0.05, max_value=200.0, allow_nan=False)
unit = st.floats(min_value=1e-6, max_value=1.0, allow_nan=False)


# ---------------------------------------------------------------------------------------------- exceptions first
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"group_size": 1, "threshold": 0.9}, "group_size"),
        ({"group_size": 8, "threshold": 0.0}, "threshold"),
        ({"group_size": 8, "threshold": 1.5}, "threshold"),
        ({"group_size": 8, "threshold": float("nan")}, "threshold"),
    ],
)
def test_needs_screening_rejects_bad_arguments_naming_them(kwargs, message):
    with pytest.raises(ValueError, match=message):
        needs_screening(np.ones(2), np.ones(2), kwargs["group_size"], threshold=kwargs["threshold"])


def test_needs_screening_rejects_non_positive_beta_parameters():
    with pytest.raises(ValueError, match="alpha and beta"):
        needs_screening(np.array([1.0, 0.0]), np.ones(2), 8, threshold=0.9)
    with pytest.raises(ValueError, match="alpha and beta"):
        needs_screening(np.ones(2), np.array([1.0, np.nan]), 8, threshold=0.9)


def test_screening_verdict_rejects_impossible_counts_naming_them():
    with pytest.raises(ValueError, match="same length"):
        screening_verdict(np.array([0, 1]), np.array([2]))
    with pytest.raises(ValueError, match="num_correct <= num_total"):
        screening_verdict(np.array([3]), np.array([2]))
    with pytest.raises(ValueError, match="0 <= num_correct"):
        screening_verdict(np.array([-1]), np.array([2]))


def test_reallocation_rejects_inconsistent_plans_naming_the_argument():
    with pytest.raises(ValueError, match="same length"):
        reallocate_after_screening(np.array([4, 4]), np.array([True]), screening_rollouts=2)
    with pytest.raises(ValueError, match="screening_rollouts"):
        reallocate_after_screening(np.array([4, 4]), np.array([True, False]), screening_rollouts=0)
    with pytest.raises(ValueError, match="screen only prompts planned more than s"):
        reallocate_after_screening(np.array([2, 8]), np.array([True, False]), screening_rollouts=2)
    with pytest.raises(ValueError, match="rollouts must be integers"):
        reallocate_after_screening(np.array([4.0, 4.0]), np.array([False, False]), screening_rollouts=2)
    with pytest.raises(ValueError, match="max_per_prompt"):
        reallocate_after_screening(np.array([4, 9]), np.array([True, False]), screening_rollouts=2, max_per_prompt=8)


def test_the_sampler_refuses_a_screen_as_large_as_a_group_naming_the_key():
    cfg = preset_config("recommended", {"sampler": {"screening_rollouts": 8}})
    with pytest.raises(ValueError, match=r"cures\.sampler\.screening_rollouts=8 must be below"):
        CurriculumSampler(100, batch_size=4, rollouts_per_prompt=8, config=cfg)
    ok = preset_config("recommended", {"sampler": {"screening_rollouts": 7}})
    CurriculumSampler(100, batch_size=4, rollouts_per_prompt=8, config=ok)


# ---------------------------------------------------------------------------------------------- values
def test_an_unseen_prompt_is_screened_exactly_below_its_closed_form_probability():
    # Beta(1, 1): E[p^n] = 1 / (n + 1), so q = 1 - 2 / (n + 1) = 7 / 9 for n = 8
    one = np.ones(1)
    assert needs_screening(one, one, 8, threshold=7 / 9 + 1e-9).tolist() == [True]
    assert needs_screening(one, one, 8, threshold=7 / 9 - 1e-9).tolist() == [False]


def test_a_confident_prompt_near_one_half_goes_direct_and_a_confidently_solved_one_is_screened():
    alpha, beta = np.array([50.0, 99.0]), np.array([50.0, 1.0])
    assert needs_screening(alpha, beta, 8, threshold=0.9).tolist() == [False, True]


@settings(max_examples=80)
@given(
    st.lists(st.tuples(beta_params, beta_params), min_size=1, max_size=20),
    unit,
    unit,
    st.integers(2, 32),
)
def test_needs_screening_is_monotone_in_the_threshold_and_agrees_with_the_probability(pairs, t1, t2, n):
    low, high = sorted((t1, t2))
    alpha, beta = (np.array(v) for v in zip(*pairs, strict=True))
    screened_low = needs_screening(alpha, beta, n, threshold=low)
    screened_high = needs_screening(alpha, beta, n, threshold=high)
    assert np.all(screened_high[screened_low])  # screened at a lower threshold => screened at a higher one
    np.testing.assert_array_equal(screened_high, informative_probability(alpha, beta, n) < high)


@given(st.lists(st.lists(st.integers(0, 1), min_size=0, max_size=8), min_size=1, max_size=20))
def test_a_screen_is_kept_iff_it_has_both_outcomes(screens):
    correct = np.array([sum(r) for r in screens])
    total = np.array([len(r) for r in screens])
    expected = [len(set(r)) == 2 for r in screens]
    assert screening_verdict(correct, total).tolist() == expected


@st.composite
def screened_plans(draw):
    s = draw(st.integers(1, 6))
    k = draw(st.integers(1, 24))
    planned = np.array(draw(st.lists(st.integers(2, 40), min_size=k, max_size=k)), dtype=np.int64)
    dropped = np.array(draw(st.lists(st.booleans(), min_size=k, max_size=k))) & (planned > s)
    return planned, dropped, s


@settings(max_examples=150)
@given(screened_plans())
def test_reallocation_spends_the_plan_exactly_and_never_shrinks_a_kept_group(plan):
    planned, dropped, s = plan
    groups = reallocate_after_screening(planned, dropped, screening_rollouts=s)
    assert np.all(groups[dropped] == 0)
    kept = ~dropped
    assert np.all(groups[kept] >= planned[kept])  # so the minimum of 2 (and > s for kept screens) holds
    if kept.any():
        assert groups.sum() + s * dropped.sum() == planned.sum()
        # within one of the proportional share (largest-remainder rounding)
        share = planned[kept] * groups.sum() / planned[kept].sum()
        assert np.all(np.abs(groups[kept] - share) < 1.0 + 1e-9)
    else:
        assert groups.sum() == 0


@settings(max_examples=100)
@given(screened_plans(), st.integers(0, 20))
def test_reallocation_under_a_maximum_never_overspends_and_respects_the_cap(plan, extra):
    planned, dropped, s = plan
    cap = int(planned.max()) + extra
    groups = reallocate_after_screening(planned, dropped, screening_rollouts=s, max_per_prompt=cap)
    kept = ~dropped
    assert np.all(groups <= cap) and np.all(groups[kept] >= planned[kept])
    assert groups.sum() + s * dropped.sum() <= planned.sum()


def test_reallocation_follows_the_hand_computed_example():
    # dropped prompt 1 frees 8 - 2 = 6; the others share 4 + 8 + 6 = 18 in proportion 4 : 8 -> 6 : 12
    groups = reallocate_after_screening(np.array([4, 8, 8]), np.array([False, True, False]), screening_rollouts=2)
    assert groups.tolist() == [6, 0, 12]
    # a zero-rollout (dropped by allocation) prompt stays at zero
    groups = reallocate_after_screening(np.array([0, 8, 8]), np.array([False, True, False]), screening_rollouts=2)
    assert groups.tolist() == [0, 0, 14]
