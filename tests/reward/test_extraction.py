"""Tests of the pure-Python answer extraction (no math-verify, no worker processes)."""

from __future__ import annotations

import ast
import doctest

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cures_verl.reward import boxes, extraction
from cures_verl.reward.extraction import (
    BoxedAnswer,
    find_answer_boxes,
    find_last_boxed,
    gold_answers,
    normalize_answer,
    to_math_verify_input,
)

# Text with no backslash and no braces, so it can never open, close or fake a box.
plain_text = st.text(alphabet=st.characters(blacklist_characters="\\{}"), max_size=40)


@st.composite
def balanced_latex(draw: st.DrawFn, depth: int = 3) -> str:
    """A string whose unescaped braces are balanced, mixing escaped braces and nested groups."""
    parts = draw(
        st.lists(
            st.one_of(
                plain_text,
                st.sampled_from(["\\{", "\\}", "\\\\", "\\frac", "\\%"]),
                *([balanced_latex(depth - 1).map(lambda inner: "{" + inner + "}")] if depth > 0 else []),
            ),
            max_size=5,
        )
    )
    return "".join(parts)


def test_box_rules_doctests_pass_and_need_only_the_standard_library() -> None:
    results = doctest.testmod(boxes)
    assert results.attempted > 0 and results.failed == 0
    # boxes.py is loaded by file path in the workers, next to matching.py: it must import no package module.
    with open(boxes.__file__, encoding="utf-8") as source:
        tree = ast.parse(source.read())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {"__future__", "re"}


def test_module_doctests_pass() -> None:
    results = doctest.testmod(extraction)
    assert results.attempted > 0
    assert results.failed == 0


@settings(max_examples=200, deadline=None)
@given(prefix=plain_text, content=balanced_latex(), suffix=plain_text)
def test_last_box_argument_is_recovered_exactly_for_balanced_content(prefix: str, content: str, suffix: str) -> None:
    text = prefix + "\\boxed{" + content + "}" + suffix
    assert find_last_boxed(text, max_chars=10_000) == BoxedAnswer("found", content)


@settings(max_examples=100, deadline=None)
@given(first=balanced_latex(), last=balanced_latex(), between=plain_text)
def test_only_the_last_box_counts(first: str, last: str, between: str) -> None:
    text = "\\boxed{" + first + "}" + between + "\\fbox {" + last + "}"
    assert find_last_boxed(text, max_chars=10_000).content == last


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("\\{}boxedfx 1")), max_size=200), cap=st.integers(1, 50))
def test_scan_never_raises_and_found_content_is_balanced_and_within_cap(text: str, cap: int) -> None:
    answer = find_last_boxed(text, max_chars=cap)
    assert answer.status in {"found", "missing", "unclosed", "too_long"}
    if answer.status != "found":
        assert answer.content == ""
        return
    assert len(answer.content) <= cap
    depth = 0
    for token in extraction._BRACE_TOKEN.finditer(answer.content):
        depth += {"{": 1, "}": -1}.get(token.group(), 0)
        assert depth >= 0
    assert depth == 0


@pytest.mark.parametrize(
    ("text", "cap", "expected"),
    [
        # A truncated response: the last box never closes, an earlier complete box does not rescue it.
        ("\\boxed{1} and \\boxed{\\frac{1}{", 100, BoxedAnswer("unclosed")),
        # "\boxed" in prose, not followed by "{", is skipped: the earlier real box counts.
        ("\\boxed{4}. I used \\boxed as asked.", 100, BoxedAnswer("found", "4")),
        # \fboxsep is a LaTeX length, not a box.
        ("\\boxed{4} \\fboxsep{2pt}", 100, BoxedAnswer("found", "4")),
        # Whitespace between the command and its brace is allowed.
        ("\\boxed \n {7}", 100, BoxedAnswer("found", "7")),
        # Nested boxes: the inner one is the last command in the text.
        ("\\boxed{\\boxed{3}}", 100, BoxedAnswer("found", "3")),
        # An escaped backslash before a brace does not escape the brace.
        ("\\boxed{a\\\\}b}", 100, BoxedAnswer("found", "a\\\\")),
        # Empty box.
        ("\\boxed{}", 100, BoxedAnswer("found", "")),
        # Exactly at the cap is accepted; one more character is not.
        ("\\boxed{12345}", 5, BoxedAnswer("found", "12345")),
        ("\\boxed{123456}", 5, BoxedAnswer("too_long")),
        # A megabyte of opening braces stops at the cap.
        ("\\boxed{" + "{" * 1_000_000, 1000, BoxedAnswer("too_long")),
        # No box at all.
        ("x" * 1000, 10, BoxedAnswer("missing")),
    ],
)
def test_find_last_boxed_edge_cases(text: str, cap: int, expected: BoxedAnswer) -> None:
    assert find_last_boxed(text, max_chars=cap) == expected


@settings(max_examples=100, deadline=None)
@given(
    contents=st.lists(balanced_latex(), min_size=1, max_size=4),
    connector=st.sampled_from([", ", " and ", "$ and $", " \\quad ", " or ", ";\n", ", y = "]),
)
def test_boxes_separated_only_by_connectors_form_the_final_group(contents: list[str], connector: str) -> None:
    text = "So " + connector.join("\\boxed{" + content + "}" for content in contents) + "."
    boxes = find_answer_boxes(text, max_chars=10_000)
    assert boxes.group == tuple(contents) and boxes.recent == tuple(contents)


@settings(max_examples=100, deadline=None)
@given(first=balanced_latex(), last=balanced_latex(), prose=st.sampled_from([" but then ", ". Wait, ", " so clearly "]))
def test_prose_between_boxes_ends_the_group_but_recent_keeps_both(first: str, last: str, prose: str) -> None:
    boxes = find_answer_boxes("\\boxed{" + first + "}" + prose + "\\boxed{" + last + "}", max_chars=10_000)
    assert boxes.group == (last,) and boxes.recent == (first, last)


def test_find_last_boxed_rejects_a_non_positive_cap() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        find_last_boxed("\\boxed{1}", max_chars=0)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("  42 ", "42"),  # whitespace
        ("5.", "5"),  # math-verify cannot parse a trailing period
        ("5. .", "5"),  # several
        ("1\\,000\\,000", "1000000"),  # thin-space thousands separators (math-verify reads 1\,000 as 1*0)
        ("x\\,dx", "x\\,dx"),  # a thin space elsewhere is kept
        ("1\\,00", "1\\,00"),  # not a group of three digits: kept
        ("\\ldots\\.", "\\ldots\\."),  # an escaped period (LaTeX accent command) is not punctuation
    ],
)
def test_normalize_answer(answer: str, expected: str) -> None:
    assert normalize_answer(answer) == expected


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("\\frac{1}{2}", "\\boxed{\\frac{1}{2}}"),  # the ordinary case
        ("50\\%", "$50$\\%"),  # percent moves outside the math environment
        ("50%", "$50$\\%"),  # bare percent sign
        ("50 \\text{\\%}", "$50$\\%"),  # \text{\%}
        ("\\$5\\%", "\\[\\$5\\]\\%"),  # a dollar sign in the body: display brackets instead
        ("\\%", "\\boxed{\\%}"),  # nothing before the percent sign: left alone
        ("1\n+1\\%", "$1 +1$\\%"),  # inline math may not span lines
    ],
)
def test_to_math_verify_input(answer: str, expected: str) -> None:
    assert to_math_verify_input(answer) == expected


@pytest.mark.parametrize(
    ("ground_truth", "expected"),
    [
        ("\\frac{1}{2}", ("\\frac{1}{2}",)),  # bare
        ("\\boxed{\\frac{1}{2}}", ("\\frac{1}{2}",)),  # already boxed
        ("The answer is $\\boxed{3}$.", ("3",)),  # boxed inside text: the box argument
        ("$\\boxed{2}$ and $\\boxed{-3}$", ("2, -3",)),  # several boxes: all their arguments are the answer
        ("\\boxed{(3,4)}, \\boxed 5.", ("(3,4), 5",)),  # a brace-less box counts too
        (7, ("7",)),  # integer
        (0.5, ("0.5",)),  # float
        (1e-05, ("0.00001",)),  # no exponent: math-verify reads 1e-05 as -5 + e
        (2.5e20, ("250000000000000000000",)),  # large float
        (["1", 2], ("1", "2")),  # several accepted answers
        (("x=1",), ("x=1",)),  # tuple
    ],
)
def test_gold_answers_accepts_strings_numbers_and_lists(ground_truth: object, expected: tuple[str, ...]) -> None:
    assert gold_answers(ground_truth) == expected


def test_gold_answers_accepts_numpy_arrays_and_scalars() -> None:
    np = pytest.importorskip("numpy")
    assert gold_answers(np.array(["3", "4"], dtype=object)) == ("3", "4")
    assert gold_answers(np.int64(12)) == ("12",)
    assert gold_answers(np.float64(0.25)) == ("0.25",)


@pytest.mark.parametrize(
    ("ground_truth", "error", "match"),
    [
        (None, TypeError, "NoneType"),  # missing column
        (True, TypeError, "bool"),  # a boolean is not an answer
        (b"12", TypeError, "bytes"),  # bytes
        ({"answer": "1"}, TypeError, "dict"),  # a mapping
        ([["1"]], TypeError, "list"),  # nested list
        ([], ValueError, "empty list"),  # nothing accepted
        ("", ValueError, "empty"),  # empty string
        ("  . ", ValueError, "empty"),  # empty after normalisation
        (float("nan"), ValueError, "finite"),  # NaN
        (float("inf"), ValueError, "finite"),  # inf
    ],
)
def test_gold_answers_rejects_bad_values_with_a_message_naming_the_column(
    ground_truth: object, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match) as info:
        gold_answers(ground_truth)
    assert "ground_truth" in str(info.value) or "dataset" in str(info.value)
