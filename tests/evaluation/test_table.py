"""Table 1 rows: the paper's transcription, averages, markdown and JSON output."""

from __future__ import annotations

import json

import pytest

from cures_verl.evaluation.table import (
    PAPER_TABLE1,
    TABLE1_COLUMNS,
    TableRow,
    details_markdown,
    paper_rows,
    table_average,
    to_json,
    to_markdown,
)


@pytest.mark.parametrize(("model", "method", "values", "reported"), PAPER_TABLE1)
def test_paper_rows_average_matches_the_reported_avg(model: str, method: str, values: tuple, reported: float) -> None:
    # the paper rounds each column to 2 decimals, so the recomputed mean differs by rounding only; the largest
    # gap is the 1.5B base row (19.989 vs the reported 20.00)
    assert table_average(dict(zip(TABLE1_COLUMNS, values, strict=True))) == pytest.approx(reported, abs=0.012)


def test_paper_rows_hold_nine_methods_per_base_model() -> None:
    assert len(paper_rows("1.5B")) == len(paper_rows("7B")) == 9
    assert len(paper_rows("all")) == 18 and paper_rows("none") == []
    cures = [row for row in paper_rows("1.5B") if "CurES-GRPO" in row.label][0]
    assert cures.average == pytest.approx(44.94, abs=0.011) and cures.source == "paper"
    with pytest.raises(ValueError, match="1.5B, 7B, all or none"):
        paper_rows("3B")


def test_average_needs_all_eight_columns() -> None:
    scores = dict.fromkeys(TABLE1_COLUMNS, 10.0)
    assert table_average(scores) == 10.0
    del scores["AMC23"]
    assert table_average(scores) is None


def test_markdown_has_one_line_per_row_with_the_table1_columns() -> None:
    full = TableRow("full", dict(zip(TABLE1_COLUMNS, [10.0, 20, 30, 40, 50, 60, 70, 80], strict=True)))
    partial = TableRow("partial", {"GSM8K": 55.556})
    lines = to_markdown([full, partial]).splitlines()
    assert lines[0] == "| Model | " + " | ".join(TABLE1_COLUMNS) + " | Avg. |"
    assert lines[2] == "| full | 10.00 | 20.00 | 30.00 | 40.00 | 50.00 | 60.00 | 70.00 | 80.00 | 45.00 |"
    assert lines[3] == "| partial | – | 55.56 | – | – | – | – | – | – | – |"


def test_json_output_round_trips_scores_and_averages() -> None:
    rows = [*paper_rows("7B")[:1], TableRow("mine", {"MATH500": 50.0}, details={"math500": {"metric": "pass@1"}})]
    payload = json.loads(to_json(rows, settings={"seed": 0}))
    assert payload["columns"] == list(TABLE1_COLUMNS)
    assert payload["rows"][0]["avg"] == pytest.approx(33.48, abs=0.011)
    assert payload["rows"][1] == {
        "label": "mine",
        "source": "measured",
        "scores": {"MATH500": 50.0},
        "avg": None,
        "details": {"math500": {"metric": "pass@1"}},
    }
    assert payload["settings"] == {"seed": 0}


def test_details_list_every_benchmark_of_measured_rows() -> None:
    detail = {
        "metric": "pass@1",
        "accuracy": 75.0,
        "stderr": 2.5,
        "num_problems": 4,
        "num_samples": 1,
        "truncated_rate": 0.0,
    }
    text = details_markdown([TableRow("m", {"GSM8K": 75.0}, details={"gsm8k": detail, "custom": detail})])
    assert text.count("| m |") == 2 and "| custom | pass@1 | 75.00 ± 2.50 | 4 x 1 | 0.0% |" in text
