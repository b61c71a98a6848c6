"""Data preparation rejects ground truths the math reward cannot grade against, naming the row and the field.

An empty answer (``""``, ``\\boxed{}``, ``$ $``, ``.``) is always a bad row; with ``check_answers`` (the default of
``scripts/prepare_data.py``), so is one the reward cannot parse. In a run such rows would score 0 on every rollout
with ``gold_unparseable=1`` (``docs/reward.md``)."""

from __future__ import annotations

from typing import Any

import pytest

from cures_verl.data import DataValidationError, PrepareOptions, SourceInput, get_template, prepare_rows


def _options(fmt: str, **kwargs: Any) -> PrepareOptions:
    return PrepareOptions(dataset_name="x", split="train", source_format=fmt, template=get_template("cures"), **kwargs)


def _refused(records: list[dict[str, Any]], options: PrepareOptions) -> dict[int, tuple[str, str]]:
    with pytest.raises(DataValidationError) as info:
        prepare_rows([SourceInput(name="src.jsonl", records=records)], options)
    message = str(info.value)
    for bad in info.value.bad_rows:
        assert f"src.jsonl row {bad.row} (0-based): field '{bad.field}'" in message
    return {bad.row: (bad.field, bad.reason) for bad in info.value.bad_rows}


@pytest.mark.parametrize("answer", ["", "   ", "\\boxed{}", "$ $", "\\boxed{ . }", "."])
def test_an_empty_answer_is_a_bad_row_named_by_row_and_field(answer: str) -> None:
    records = [{"problem": "1+1?", "answer": "2"}, {"problem": "2+2?", "answer": answer}]
    refused = _refused(records, _options("deepscaler"))
    assert list(refused) == [1]
    field, reason = refused[1]
    assert field == "answer"
    assert "empty" in reason or "no answer" in reason


def test_an_empty_last_box_of_a_solution_names_the_solution_column() -> None:
    records = [{"problem": "p", "solution": "so \\boxed{3}"}, {"problem": "q", "solution": "thus $\\boxed{\\, }$."}]
    refused = _refused(records, _options("math"))
    assert list(refused) == [1] and refused[1][0] == "solution"


def test_with_check_answers_an_unparseable_answer_is_a_bad_row() -> None:
    pytest.importorskip("math_verify")
    records = [
        {"problem": "a", "answer": "(3,4),(4,3)"},
        {"problem": "b", "answer": "\\frac{1}{"},
        {"problem": "c", "answer": "0.\\overline{3}"},
    ]
    assert prepare_rows([SourceInput(name="src.jsonl", records=records)], _options("deepscaler")).rows  # off: kept
    refused = _refused(records, _options("deepscaler", check_answers=True))
    assert refused == {1: ("answer", "the math reward cannot grade against this ground truth: cannot be parsed")}
    kept = prepare_rows(
        [SourceInput(name="src.jsonl", records=records)],
        _options("deepscaler", check_answers=True, allow_bad_rows=True),
    )
    assert [row["reward_model"]["ground_truth"] for row in kept.rows] == ["(3,4),(4,3)", "0.\\overline{3}"]
