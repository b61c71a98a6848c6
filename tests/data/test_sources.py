"""Per-format problem/answer extraction and its error reports."""

from __future__ import annotations

import pytest

from cures_verl.data.sources import SOURCE_FORMATS, ColumnOverrides, RowError, extract_fields, get_source_format

OK_CASES = [
    # MATH: last box of the solution
    ("math", {"problem": " P ", "solution": r"a \boxed{1} b \boxed{2}"}, ("P", "2", "solution_boxed")),
    # Numina: the answer column wins over the solution
    ("numina", {"problem": "P", "answer": "5", "solution": r"\boxed{6}"}, ("P", "5", "answer_column")),
    # Numina: an empty answer cell falls back to the solution's box
    ("numina", {"problem": "P", "answer": "  ", "solution": r"\boxed{6}"}, ("P", "6", "solution_boxed")),
    # Numina: a null answer cell falls back too
    ("numina", {"problem": "P", "answer": None, "solution": r"\boxed{6}"}, ("P", "6", "solution_boxed")),
    # Numina: no answer column at all
    ("numina", {"problem": "P", "solution": r"\boxed{6}"}, ("P", "6", "solution_boxed")),
    # Numina: the boxes of the final answer group are a multi-answer gold
    (
        "numina",
        {"problem": "P", "solution": r"So $x = \boxed{2}$ or $x = \boxed{-3}$."},
        ("P", r"\boxed{2}, \boxed{-3}", "solution_boxed"),
    ),
    # Numina: the same answer boxed twice is one answer
    ("numina", {"problem": "P", "solution": r"\boxed{6} ... so again \boxed{ 6 }"}, ("P", "6", "solution_boxed")),
    # integer answers are written with str()
    ("deepscaler", {"problem": "P", "answer": 204}, ("P", "204", "answer_column")),
    # one pair of $...$ is removed
    ("deepscaler", {"problem": "P", "answer": "$x^2$"}, ("P", "x^2", "answer_column")),
    # qa: question + final_answer list (OlympiadBench)
    ("qa", {"question": "Q", "final_answer": ["$3$"]}, ("Q", "3", "answer_column")),
    # qa: several answers are joined
    ("qa", {"question": "Q", "final_answer": ["$-2$", "$2$"]}, ("Q", "-2, 2", "answer_column")),
    # qa: problem column preferred over question when both exist
    ("qa", {"problem": "P", "question": "Q", "answer": "1"}, ("P", "1", "answer_column")),
    # GSM8K
    ("gsm8k", {"question": "Q", "answer": "work\n#### 1,000"}, ("Q", "1000", "gsm8k_marker")),
]

ERROR_CASES = [
    # problem column absent
    ("math", {"question": "Q", "solution": r"\boxed{1}"}, "problem", "missing problem column"),
    # problem null
    ("deepscaler", {"problem": None, "answer": "1"}, "problem", "is missing"),
    # problem not a string
    ("deepscaler", {"problem": ["a"], "answer": "1"}, "problem", "must be a string, got list"),
    # problem blank
    ("deepscaler", {"problem": "\n ", "answer": "1"}, "problem", "is empty"),
    # MATH solution without box
    ("math", {"problem": "P", "solution": "it is 1"}, "solution", "no complete"),
    # MATH solution with an empty box
    ("math", {"problem": "P", "solution": r"\boxed{}"}, "solution", "is empty"),
    # Numina: different answers boxed apart (a multi-part problem, or an intermediate result): ambiguous
    (
        "numina",
        {"problem": "P", "solution": r"(1) We get $\boxed{3}$. (2) Then the area is $\boxed{12}$."},
        "solution",
        "2 different \\boxed{} answers separated by text ('3', '12')",
    ),
    # deepscaler answer missing: no solution fallback for this format
    ("deepscaler", {"problem": "P", "answer": None}, "answer", "missing answer"),
    # booleans are not answers
    ("deepscaler", {"problem": "P", "answer": True}, "answer", "boolean"),
    # floats are rejected to avoid silent reformatting
    ("deepscaler", {"problem": "P", "answer": 3.0}, "answer", "is a float"),
    # empty list
    ("qa", {"question": "Q", "final_answer": []}, "final_answer", "non-empty list"),
    # empty string answer
    ("qa", {"question": "Q", "answer": "$ $"}, "answer", "is empty"),
    # GSM8K without the marker
    ("gsm8k", {"question": "Q", "answer": "7"}, "answer", "no '####'"),
    # GSM8K with nothing after the marker
    ("gsm8k", {"question": "Q", "answer": "####  "}, "answer", "nothing follows"),
    # GSM8K answer not a string
    ("gsm8k", {"question": "Q", "answer": 7}, "answer", "must be a string"),
]


@pytest.mark.parametrize(("fmt", "record", "expected"), OK_CASES)
def test_extract_fields_reads_problem_and_ground_truth(fmt: str, record: dict, expected: tuple) -> None:
    assert extract_fields(record, SOURCE_FORMATS[fmt]) == expected


@pytest.mark.parametrize(("fmt", "record", "field", "reason"), ERROR_CASES)
def test_extract_fields_names_the_field_and_the_reason(fmt: str, record: dict, field: str, reason: str) -> None:
    with pytest.raises(RowError) as info:
        extract_fields(record, SOURCE_FORMATS[fmt])
    assert field in info.value.field
    assert reason in info.value.reason


def test_column_overrides_replace_the_format_defaults() -> None:
    fmt = ColumnOverrides(problem="Problem", answer="Answer").apply(SOURCE_FORMATS["deepscaler"])
    assert extract_fields({"Problem": "P", "Answer": 7}, fmt) == ("P", "7", "answer_column")
    gsm = ColumnOverrides(answer="target").apply(SOURCE_FORMATS["gsm8k"])
    assert extract_fields({"question": "Q", "target": "#### 3"}, gsm) == ("Q", "3", "gsm8k_marker")
    math = ColumnOverrides(solution="worked").apply(SOURCE_FORMATS["math"])
    assert extract_fields({"problem": "P", "worked": r"\boxed{9}"}, math)[1] == "9"


def test_unknown_format_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="deepscaler"):
        get_source_format("nope")
