"""Conversion of the fixture files into verl rows: ground truths, bad-row reports, stable indices."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cures_verl.data import (
    DataValidationError,
    PrepareOptions,
    SourceInput,
    arrow_schema,
    get_template,
    prepare_rows,
    read_prepared,
    validate_prepared_rows,
)
from cures_verl.data.build import build_dataset, check_prepared_file, load_inputs, parse_subset_range
from cures_verl.data.io import bad_rows_path, manifest_path, read_records
from cures_verl.data.template import PAPER_SYSTEM_PROMPT, PAPER_USER_SUFFIX, PromptTemplate

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _options(name: str, fmt: str, **kwargs: Any) -> PrepareOptions:
    return PrepareOptions(dataset_name=name, split="train", source_format=fmt, template=get_template("cures"), **kwargs)


def _build(tmp_path: Path, name: str, fmt: str, fixture: str, **kwargs: Any):
    inputs = load_inputs(name, input_paths=[FIXTURES / fixture])
    return build_dataset(inputs, _options(name, fmt, **kwargs), tmp_path / f"{name}.parquet")


@pytest.mark.parametrize(
    ("name", "fmt", "fixture", "ground_truths"),
    [
        ("math", "math", "math_sample.jsonl", ["2", r"\frac{1}{2}", r"\{1, 2\}", "4", "1024", "3"]),
        ("gsm8k_train", "gsm8k", "gsm8k_sample.jsonl", ["7", "1500", "25", "1200000"]),
        ("deepscaler", "deepscaler", "deepscaler_sample.json", ["32", "2", "1"]),
        (
            "numina_math",
            "numina",
            "numina_sample.jsonl",
            ["55", "2", r"\frac{1}{2}", "4", "56", "3.14", "7", "8", "27", "6"],
        ),
    ],
)
def test_fixture_files_convert_to_the_expected_ground_truths(
    tmp_path: Path, name: str, fmt: str, fixture: str, ground_truths: list[str]
) -> None:
    result = _build(tmp_path, name, fmt, fixture)
    rows = read_prepared(result.output)
    assert [row["reward_model"]["ground_truth"] for row in rows] == ground_truths
    assert [row["extra_info"]["index"] for row in rows] == list(range(len(rows)))
    assert {row["data_source"] for row in rows} == {f"cures-{name}"}
    assert validate_prepared_rows(rows) == []
    assert result.bad_rows_path is None and not bad_rows_path(result.output).exists()


def test_rows_use_the_papers_prompt_template(tmp_path: Path) -> None:
    rows = read_prepared(_build(tmp_path, "math", "math", "math_sample.jsonl").output)
    assert rows[0]["prompt"] == [
        {"role": "system", "content": "Please reason step by step, and put your final answer within \\boxed{}."},
        {
            "role": "user",
            "content": "What is $1+1$? Let's think step by step and output the final answer within \\boxed{}.",
        },
    ]
    assert rows[0]["prompt"][0]["content"] == PAPER_SYSTEM_PROMPT
    assert rows[0]["prompt"][1]["content"] == "What is $1+1$? " + PAPER_USER_SUFFIX
    assert rows[0]["extra_info"]["problem"] == "What is $1+1$?"


def test_a_custom_template_changes_the_prompt_and_the_content_hash(tmp_path: Path) -> None:
    plain = _build(tmp_path / "a", "math", "math", "math_sample.jsonl")
    custom = PromptTemplate(system="Be brief.", user_suffix="Answer in \\boxed{}.")
    inputs = load_inputs("math", input_paths=[FIXTURES / "math_sample.jsonl"])
    other = build_dataset(inputs, replace(_options("math", "math"), template=custom), tmp_path / "b" / "math.parquet")
    rows = read_prepared(other.output)
    assert rows[0]["prompt"][0]["content"] == "Be brief."
    assert rows[0]["prompt"][1]["content"].endswith("Answer in \\boxed{}.")
    hashes_a = [r["extra_info"]["content_hash"] for r in read_prepared(plain.output)]
    hashes_b = [r["extra_info"]["content_hash"] for r in rows]
    assert all(a != b for a, b in zip(hashes_a, hashes_b, strict=True))
    assert plain.prepared.manifest["fingerprint"] != other.prepared.manifest["fingerprint"]


def _bad_fixture_expectations() -> dict[int, str]:
    """Row number -> "field: reason fragment", read from the fixture's _expect keys."""
    expected = {}
    lines = (FIXTURES / "numina_bad_rows.jsonl").read_text(encoding="utf-8").splitlines()
    for row, line in enumerate(lines):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            expected[row] = "<json>: invalid JSON"
            continue
        if "_expect" in record:
            expected[row] = record["_expect"]
    return expected


def test_bad_rows_fail_by_default_with_every_row_reported(tmp_path: Path) -> None:
    inputs = load_inputs("numina_math", input_paths=[FIXTURES / "numina_bad_rows.jsonl"])
    options = _options("numina_math", "numina", id_column="id", pass_rate_column="pass_rate")
    output = tmp_path / "numina.parquet"
    with pytest.raises(DataValidationError) as info:
        build_dataset(inputs, options, output)
    expected = _bad_fixture_expectations()
    reported = {bad.row: f"{bad.field}: {bad.reason}" for bad in info.value.bad_rows}
    assert sorted(reported) == sorted(expected)
    for row, text in expected.items():
        field, fragment = text.split(": ", 1)
        assert reported[row].startswith(field + ": ") and fragment in reported[row], (row, reported[row])
    message = str(info.value)
    assert "11 of 13 input rows" in message and "--allow-bad-rows" in message
    assert "row 2 (0-based): field 'problem': is empty" in message
    assert not output.exists()
    report = [json.loads(line) for line in bad_rows_path(output).read_text().splitlines()]
    assert [entry["row"] for entry in report] == sorted(expected)


def test_allow_bad_rows_writes_the_good_rows_and_a_report(tmp_path: Path) -> None:
    inputs = load_inputs("numina_math", input_paths=[FIXTURES / "numina_bad_rows.jsonl"])
    options = _options("numina_math", "numina", id_column="id", pass_rate_column="pass_rate", allow_bad_rows=True)
    result = build_dataset(inputs, options, tmp_path / "numina.parquet")
    rows = read_prepared(result.output)
    assert [r["extra_info"]["source_id"] for r in rows] == ["ok-1", "ok-2"]
    assert [r["extra_info"]["index"] for r in rows] == [0, 1]
    manifest = json.loads(manifest_path(result.output).read_text())
    assert (manifest["num_input_rows"], manifest["num_rows"], manifest["num_bad_rows_excluded"]) == (13, 2, 11)
    assert result.bad_rows_path is not None
    assert len(result.bad_rows_path.read_text().splitlines()) == 11


def test_a_later_clean_run_removes_the_stale_bad_rows_report(tmp_path: Path) -> None:
    output = tmp_path / "numina.parquet"
    options = _options("numina_math", "numina", id_column="id", pass_rate_column="pass_rate", allow_bad_rows=True)
    build_dataset(load_inputs("numina_math", input_paths=[FIXTURES / "numina_bad_rows.jsonl"]), options, output)
    assert bad_rows_path(output).exists()
    build_dataset(load_inputs("numina_math", input_paths=[FIXTURES / "numina_sample.jsonl"]), options, output)
    assert not bad_rows_path(output).exists()


def test_rerunning_gives_identical_indices_rows_and_fingerprint(tmp_path: Path) -> None:
    first = _build(tmp_path / "1", "numina_math", "numina", "numina_sample.jsonl", id_column="id", num_subsets=3)
    second = _build(tmp_path / "2", "numina_math", "numina", "numina_sample.jsonl", id_column="id", num_subsets=3)
    assert read_prepared(first.output) == read_prepared(second.output)
    assert first.prepared.manifest == second.prepared.manifest
    assert first.output.read_bytes() == second.output.read_bytes()


def test_pass_rates_are_carried_into_extra_info(tmp_path: Path) -> None:
    rows = read_prepared(
        _build(tmp_path, "numina_math", "numina", "numina_sample.jsonl", pass_rate_column="pass_rate").output
    )
    source = [json.loads(line) for line in (FIXTURES / "numina_sample.jsonl").read_text().splitlines()]
    assert [r["extra_info"]["pass_rate"] for r in rows] == [float(s["pass_rate"]) for s in source]
    without = read_prepared(_build(tmp_path / "x", "numina_math", "numina", "numina_sample.jsonl").output)
    assert {r["extra_info"]["pass_rate"] for r in without} == {None}


def test_duplicate_ids_across_inputs_are_reported() -> None:
    records = [{"id": "a", "problem": "P1", "answer": "1"}, {"id": "a", "problem": "P2", "answer": "2"}]
    with pytest.raises(DataValidationError) as info:
        prepare_rows([SourceInput(name="s", records=records)], _options("x", "deepscaler", id_column="id"))
    (bad,) = info.value.bad_rows
    assert (bad.row, bad.field) == (1, "id") and "first seen at s row 0" in bad.reason


def test_num_subsets_orders_rows_by_subset_like_the_cores_contiguous_split(tmp_path: Path) -> None:
    from cures_verl.config import ScheduleConfig
    from cures_verl.core.schedule import Schedule

    result = _build(tmp_path, "numina_math", "numina", "numina_sample.jsonl", id_column="id", num_subsets=3)
    rows = read_prepared(result.output)
    subsets = [r["extra_info"]["subset"] for r in rows]
    assert subsets == sorted(subsets) and set(subsets) == {1, 2, 3}
    schedule = Schedule(len(rows), 1, ScheduleConfig(num_iterations=3, cold_start_rollouts=0))
    for k in range(3):
        assert schedule.subset(k).tolist() == [i for i, s in enumerate(subsets) if s == k + 1]
    assert result.prepared.manifest["subsets"] == {"num_subsets": 3, "seed": 0, "sizes": [4, 3, 3]}


def test_a_different_subset_seed_reassigns_rows(tmp_path: Path) -> None:
    a = _build(tmp_path / "a", "numina_math", "numina", "numina_sample.jsonl", id_column="id", num_subsets=2)
    b = _build(
        tmp_path / "b", "numina_math", "numina", "numina_sample.jsonl", id_column="id", num_subsets=2, subset_seed=7
    )
    ids = lambda result: [r["extra_info"]["source_id"] for r in read_prepared(result.output)]  # noqa: E731
    assert sorted(ids(a)) == sorted(ids(b)) and ids(a) != ids(b)


class _FakeHub:
    """Stands in for datasets.load_dataset: records every call, serves fixture rows per subset."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None, str]] = []

    def __call__(self, path: str, config: str | None, split: str) -> Iterable[Mapping[str, Any]]:
        self.calls.append((path, config, split))
        subset = int(path.rsplit("_", 1)[1])
        return [{"problem": f"{path} problem {k}", "answer": str(subset * 10 + k)} for k in range(2)]


def test_numina_from_the_hub_loads_each_subset_and_keeps_them_contiguous() -> None:
    hub = _FakeHub()
    inputs = load_inputs("numina_math", numina_subsets=parse_subset_range("2,5"), hub_loader=hub)
    assert hub.calls == [("ScaleML-RLHF/numina_math_2", None, "train"), ("ScaleML-RLHF/numina_math_5", None, "train")]
    out = prepare_rows(inputs, _options("numina_math", "numina"))
    assert [r["extra_info"]["subset"] for r in out.rows] == [2, 2, 5, 5]
    assert [r["reward_model"]["ground_truth"] for r in out.rows] == ["20", "21", "50", "51"]
    assert out.rows[1]["extra_info"]["source_id"] == "ScaleML-RLHF/numina_math_2:1"
    assert out.manifest["subsets"] == {"num_subsets": 2, "seed": None, "sizes": [2, 2]}


def test_all_fifteen_numina_subsets_are_the_default() -> None:
    hub = _FakeHub()
    load_inputs("numina_math", hub_loader=hub)
    assert [call[0] for call in hub.calls] == [f"ScaleML-RLHF/numina_math_{k}" for k in range(1, 16)]


def test_a_registry_benchmark_loads_its_hub_copy() -> None:
    calls = []

    def loader(path: str, config: str | None, split: str) -> list[dict[str, Any]]:
        calls.append((path, config, split))
        return [{"question": "Q", "answer": "#### 1"}]

    load_inputs("gsm8k", hub_loader=loader)
    assert calls == [("openai/gsm8k", "main", "test")]


@pytest.mark.parametrize("text", ["0", "16", "1-x", ""])
def test_invalid_subset_ranges_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_subset_range(text)


def test_pre_split_inputs_cannot_be_split_again() -> None:
    inputs = [SourceInput(name="a", records=[{"problem": "P", "answer": "1"}], subset=1)]
    with pytest.raises(ValueError, match="already split"):
        prepare_rows(inputs, _options("x", "deepscaler", num_subsets=2))


def test_parquet_and_json_inputs_read_like_jsonl(tmp_path: Path) -> None:
    records, bad, rows = read_records(FIXTURES / "math_sample.jsonl")
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "math.parquet")
    (tmp_path / "math.json").write_text(json.dumps(records))
    from_parquet = read_records(tmp_path / "math.parquet")[0]
    from_json = read_records(tmp_path / "math.json")[0]
    assert from_parquet == records == from_json and bad == [] and rows == list(range(6))


def test_unsupported_input_suffix_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("problem,answer\n")
    with pytest.raises(ValueError, match="unsupported input"):
        read_records(path)


def test_check_prepared_file_flags_an_edited_row(tmp_path: Path) -> None:
    result = _build(tmp_path, "math", "math", "math_sample.jsonl")
    problems, summary = check_prepared_file(result.output)
    assert problems == [] and summary["fingerprint"] == summary["manifest_fingerprint"]
    rows = read_prepared(result.output)
    rows[1]["reward_model"]["ground_truth"] = "0.5"
    rows[3]["extra_info"]["index"] = 0
    pq.write_table(pa.Table.from_pylist(rows, schema=arrow_schema()), result.output)
    problems, _ = check_prepared_file(result.output)
    found = {(p.row, p.field) for p in problems}
    assert (1, "extra_info.content_hash") in found
    assert any(p.row == 3 and "duplicate index, first used by row 0" in p.reason for p in problems)
    assert any(p.row == 3 and "must equal the row position 3" in p.reason for p in problems)


def test_check_prepared_file_flags_a_file_that_no_longer_matches_its_manifest(tmp_path: Path) -> None:
    result = _build(tmp_path, "math", "math", "math_sample.jsonl")
    rows = read_prepared(result.output)[:-1]  # drop the last row: every remaining row is still valid
    pq.write_table(pa.Table.from_pylist(rows, schema=arrow_schema()), result.output)
    problems, summary = check_prepared_file(result.output)
    assert [(p.row, p.field) for p in problems] == [(-1, "fingerprint")]
    assert summary["num_rows"] == 5 and summary["fingerprint"] != summary["manifest_fingerprint"]


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(st.text(min_size=1, max_size=20).filter(str.strip), st.integers(0, 10**6)), min_size=1, max_size=30
    )
)
def test_prepared_rows_always_pass_schema_validation(pairs: list[tuple[str, int]]) -> None:
    records = [{"problem": problem, "answer": answer} for problem, answer in pairs]
    out = prepare_rows([SourceInput(name="gen", records=records)], _options("gen", "deepscaler"))
    assert validate_prepared_rows(out.rows) == []
    assert [r["extra_info"]["index"] for r in out.rows] == list(range(len(records)))
    assert [r["extra_info"]["source_row"] for r in out.rows] == list(range(len(records)))


def test_index_offset_gives_files_trained_together_disjoint_ids() -> None:
    records = [{"problem": f"p{i}", "answer": i} for i in range(5)]
    first = prepare_rows([SourceInput(name="a", records=records)], _options("a", "deepscaler"))
    second = prepare_rows([SourceInput(name="b", records=records)], _options("b", "deepscaler", index_offset=5))
    assert [r["extra_info"]["index"] for r in second.rows] == [5, 6, 7, 8, 9]
    assert validate_prepared_rows(first.rows + second.rows) == []
    with pytest.raises(ValueError, match="index_offset=-1 is invalid"):
        _options("b", "deepscaler", index_offset=-1)


# ------------------------------------------------------------------------------------ bad cells, field by field


def _refusals(inputs: list[SourceInput], options: PrepareOptions) -> tuple[dict[int, tuple[str, str]], str]:
    """``{row: (field, reason)}`` of every bad row, and the error message that names them."""
    with pytest.raises(DataValidationError) as info:
        prepare_rows(inputs, options)
    return {bad.row: (bad.field, bad.reason) for bad in info.value.bad_rows}, str(info.value)


def test_json_lines_that_are_not_objects_are_bad_rows_named_by_line(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    lines = ['{"problem": "1+1?", "answer": "2"}', "[1, 2]", '"just text"', "", "42", "null", '{"problem": "p"']
    path.write_text("\n".join([*lines, '{"problem": "2+2?", "answer": "4"}']) + "\n")
    records, bad, rows = read_records(path)
    assert rows == [0, 7] and [r["answer"] for r in records] == ["2", "4"]  # the blank line 3 keeps its number
    assert [(b.row, b.field) for b in bad] == [
        (1, "<json>"),
        (2, "<json>"),
        (4, "<json>"),
        (5, "<json>"),
        (6, "<json>"),
    ]
    assert all(b.reason == "each line must be a JSON object" for b in bad[:4]) and "invalid JSON" in bad[4].reason
    source = SourceInput(name=str(path), records=records, row_numbers=rows, read_errors=bad)
    refused, message = _refusals([source], _options("x", "deepscaler"))
    assert sorted(refused) == [1, 2, 4, 5, 6]
    assert f"{path} row 2 (0-based): field '<json>': each line must be a JSON object (value: 'just text')" in message
    array = tmp_path / "mixed.json"
    array.write_text(json.dumps([{"problem": "p", "answer": "1"}, ["p", "1"]]))
    _, bad, _ = read_records(array)
    assert [(b.row, b.field, b.reason) for b in bad] == [(1, "<json>", "each array element must be a JSON object")]


def test_nan_and_null_cells_from_parquet_are_missing_values_named_by_field_and_row(tmp_path: Path) -> None:
    nan = float("nan")
    table = pa.table(
        {
            "id": ["a", "b", "c", None, "e", "f"],
            "problem": ["1+1?", "2+2?", "3+3?", "4+4?", None, "6+6?"],
            "answer": ["2", "4", "6", "8", "10", None],
            "pass_rate": [0.5, nan, None, 0.5, 0.5, 0.5],
        }
    )
    pq.write_table(table, tmp_path / "cells.parquet")
    # a column pandas wrote as all-NaN floats (every answer missing)
    pq.write_table(pa.table({"problem": ["1+1?"], "answer": pa.array([nan], pa.float64())}), tmp_path / "nan.parquet")
    options = _options("x", "deepscaler", id_column="id", pass_rate_column="pass_rate")
    records, _, rows = read_records(tmp_path / "cells.parquet")
    assert isinstance(records[1]["pass_rate"], float) and records[1]["pass_rate"] != records[1]["pass_rate"]  # NaN
    refused, message = _refusals([SourceInput(name="cells", records=records, row_numbers=rows)], options)
    assert refused == {
        1: ("pass_rate", "pass rate is missing"),
        2: ("pass_rate", "pass rate is missing"),
        3: ("id", "id is missing"),
        4: ("problem", "is missing (null)"),
        5: ("answer", "missing answer: no non-empty answer column and no solution column"),
    }
    assert "cells row 1 (0-based): field 'pass_rate': pass rate is missing" in message
    records, _, rows = read_records(tmp_path / "nan.parquet")
    refused, _ = _refusals([SourceInput(name="nan", records=records, row_numbers=rows)], _options("x", "deepscaler"))
    assert refused == {0: ("answer", "missing answer: no non-empty answer column and no solution column")}


_ANY_CELL = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.lists(st.integers(0, 1), max_size=2),
)


@settings(max_examples=60, deadline=None)
@given(value=_ANY_CELL, present=st.booleans())
def test_a_pass_rate_is_kept_only_as_a_number_in_zero_one(value: Any, present: bool) -> None:
    record = {"problem": "1+1?", "answer": "2", **({"pass_rate": value} if present else {})}
    source = [SourceInput(name="s", records=[record])]
    options = _options("x", "deepscaler", pass_rate_column="pass_rate")
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if present and number and 0.0 <= value <= 1.0:  # NaN fails the comparison
        assert prepare_rows(source, options).rows[0]["extra_info"]["pass_rate"] == float(value)
        return
    ((field, reason),) = _refusals(source, options)[0].values()
    assert field == "pass_rate"
    if not present or value is None or (number and value != value):
        assert reason == "pass rate is missing"
    elif not number:
        assert reason == f"pass rate must be a number in [0, 1], got {type(value).__name__}"
    else:
        assert reason == "pass rate must be in [0, 1]"


@settings(max_examples=60, deadline=None)
@given(value=_ANY_CELL, present=st.booleans())
def test_an_id_is_kept_only_as_a_non_empty_string_or_an_integer(value: Any, present: bool) -> None:
    record = {"problem": "1+1?", "answer": "2", **({"id": value} if present else {})}
    source = [SourceInput(name="s", records=[record])]
    options = _options("x", "deepscaler", id_column="id")
    usable = isinstance(value, str | int) and not isinstance(value, bool)
    if present and usable and str(value).strip():
        assert prepare_rows(source, options).rows[0]["extra_info"]["source_id"] == str(value).strip()
        return
    ((field, reason),) = _refusals(source, options)[0].values()
    assert field == "id"
    if not present or value is None or (isinstance(value, float) and value != value):
        assert reason == "id is missing"
    elif not usable:
        assert reason == f"id must be a string or an integer, got {type(value).__name__}"
    else:
        assert reason == "id is empty"
