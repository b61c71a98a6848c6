"""Scorer loading, per-sample accuracy extraction and the pass@1 / avg@k aggregation."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cures_verl.evaluation.scoring import aggregate, load_scorer, sample_accuracy

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        # the dict's acc wins over score
        ({"score": 0.5, "acc": 1.0}, (1.0, {})),
        # score is used when there is no acc
        ({"score": 0.0}, (0.0, {})),
        # other numeric fields are kept, booleans and strings are not
        (
            {"acc": 1.0, "pred_parsed": 1.0, "timeout": 0, "ok": True, "note": "x"},
            (1.0, {"pred_parsed": 1.0, "timeout": 0.0}),
        ),
        # a bare number
        (1, (1.0, {})),
    ],
)
def test_sample_accuracy_reads_acc_then_score(result: object, expected: tuple) -> None:
    assert sample_accuracy(result) == expected


@pytest.mark.parametrize(
    ("result", "message"),
    [
        ({"pred": 1.0}, "without 'acc' or 'score'"),
        ({"score": -1.0}, "outside \\[0, 1\\]"),
        (2.0, "outside \\[0, 1\\]"),
        (float("nan"), "outside"),
        ("1", "number or a dict"),
        (True, "number or a dict"),
    ],
)
def test_sample_accuracy_rejects_results_that_are_not_accuracies(result: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sample_accuracy(result)


def test_aggregate_averages_samples_then_problems() -> None:
    score = aggregate([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]], [[{"x": 1.0}] * 4, [{"x": 0.0}] * 4])
    assert score.accuracy == pytest.approx(62.5)
    # problem means 0.25 and 1.0: sample std 0.530..., stderr = std / sqrt(2)
    assert score.stderr == pytest.approx(100 * math.sqrt(((0.25 - 0.625) ** 2 + (1 - 0.625) ** 2) / 1 / 2))
    assert (score.num_problems, score.num_samples, score.extras) == (2, 4, {"x": 0.5})


@given(st.lists(st.lists(st.sampled_from([0.0, 1.0]), min_size=3, max_size=3), min_size=1, max_size=40))
def test_aggregate_equals_the_fraction_of_correct_samples_for_equal_sample_counts(matrix: list[list[float]]) -> None:
    score = aggregate(matrix)
    flat = [x for row in matrix for x in row]
    assert score.accuracy == pytest.approx(100 * sum(flat) / len(flat))
    assert 0.0 <= score.accuracy <= 100.0 and score.stderr >= 0.0


@given(st.integers(1, 20), st.sampled_from([0.0, 1.0]))
def test_aggregate_of_identical_problems_has_zero_stderr(num_problems: int, value: float) -> None:
    score = aggregate([[value]] * num_problems)
    assert score.accuracy == 100 * value and score.stderr == 0.0


@pytest.mark.parametrize("matrix", [[], [[1.0], [1.0, 0.0]], [[]]])
def test_aggregate_rejects_empty_or_ragged_input(matrix: list[list[float]]) -> None:
    with pytest.raises(ValueError):
        aggregate(matrix)


def test_load_scorer_from_a_file_path() -> None:
    scorer = load_scorer(f"{FIXTURES / 'exact_match_scorer.py'}:compute_score")
    assert scorer(data_source="d", solution_str="so 42", ground_truth="42")["acc"] == 1.0


def test_load_scorer_from_a_module() -> None:
    scorer = load_scorer("cures_verl.experiments.trainer.reward:compute_score")
    assert scorer(data_source="digit_sum", solution_str="7", ground_truth="7")["acc"] == 1.0


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ("no_function_part", ValueError),
        ("cures_verl.experiments.trainer.reward:missing", ValueError),
        ("cures_verl.no_such_module:f", ImportError),
        ("/no/such/file.py:f", ImportError),
    ],
)
def test_load_scorer_reports_bad_specs(spec: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        load_scorer(spec)


def test_the_default_scorer_is_the_training_reward() -> None:
    pytest.importorskip("math_verify")
    pytest.importorskip("cures_verl.reward.math_verify")
    scorer = load_scorer()
    right = scorer(data_source="cures-math500", solution_str="so $\\boxed{\\frac{1}{2}}$", ground_truth="\\frac{1}{2}")
    wrong = scorer(data_source="cures-math500", solution_str="so $\\boxed{3}$", ground_truth="\\frac{1}{2}")
    assert sample_accuracy(right)[0] == 1.0 and sample_accuracy(wrong)[0] == 0.0
