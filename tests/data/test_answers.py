"""Ground-truth extraction: last \\boxed{} with balanced braces, GSM8K '####', math delimiters."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cures_verl.data.answers import (
    AmbiguousAnswerError,
    gsm8k_final_answer,
    last_boxed_content,
    solution_answer,
    strip_math_delimiters,
)

BOXED_CASES = [
    # plain integer
    (r"so the answer is $\boxed{42}$.", "42"),
    # nested braces stay whole
    (r"$\boxed{\frac{1}{2}}$", r"\frac{1}{2}"),
    # the LAST box wins, even after a nested one
    (r"first \boxed{\frac{2}{4}} then \boxed{\frac{1}{2}}", r"\frac{1}{2}"),
    # escaped braces do not count towards the depth
    (r"the set $\boxed{\{1, 2\}}$", r"\{1, 2\}"),
    # an escaped closing brace alone must not end the group early
    (r"\boxed{a\}b}", r"a\}b"),
    # \fbox is a box too
    (r"answer: \fbox{7}", "7"),
    # space form without braces ends at whitespace or $
    (r"$x = \boxed 1024$", "1024"),
    # whitespace inside the box is stripped
    (r"\boxed{  3  }", "3"),
    # a later \fbox beats an earlier \boxed
    (r"\boxed{1} and \fbox{2}", "2"),
    # empty box returns the empty string (the converter rejects it)
    (r"\boxed{}", ""),
    # \boxed inside another command name is not a box
    (r"\boxedsomething{5} but \boxed{6}", "6"),
]

NO_BOX_CASES = [
    # no box at all
    "the answer is 4",
    # the last box never closes
    r"\boxed{3} then \boxed{\sqrt{2}",
    # a box command with no argument
    r"ends with \boxed",
    # a lookalike command only
    r"\boxedsomething{5}",
]


@pytest.mark.parametrize(("text", "expected"), BOXED_CASES)
def test_last_boxed_content_reads_the_last_balanced_group(text: str, expected: str) -> None:
    assert last_boxed_content(text) == expected


@pytest.mark.parametrize("text", NO_BOX_CASES)
def test_last_boxed_content_returns_none_without_a_complete_box(text: str) -> None:
    assert last_boxed_content(text) is None


def _balanced() -> st.SearchStrategy[str]:
    """Strings with balanced braces and no backslashes (so no escapes)."""
    atoms = st.text(alphabet="abcxyz0123456789+-*/^_ ()[],.", max_size=6)
    return st.recursive(
        atoms, lambda inner: st.builds(lambda a, b, c: a + "{" + b + "}" + c, inner, inner, inner), max_leaves=8
    )


@given(
    content=_balanced(), prefix=st.text(alphabet="abc {}$", max_size=10), suffix=st.text(alphabet="abc $.", max_size=10)
)
def test_any_balanced_content_round_trips_through_the_last_box(content: str, prefix: str, suffix: str) -> None:
    text = prefix + r"\boxed{" + content + "}" + suffix
    assert last_boxed_content(text) == content.strip()


@given(content=_balanced())
def test_dropping_the_closing_brace_is_detected(content: str) -> None:
    assert last_boxed_content(r"\boxed{" + content) is None


@pytest.mark.parametrize(
    ("solution", "expected"),
    [
        ("3 + 4 = 7\n#### 7", "7"),
        # thousands separators are removed
        ("#### 1,200,000", "1200000"),
        # surrounding whitespace is stripped
        ("work\n####   25  ", "25"),
        # negative and decimal answers stay as written
        ("#### -3.5", "-3.5"),
        # no marker
        ("the answer is 7", None),
        # marker followed by nothing
        ("work ####", ""),
    ],
)
def test_gsm8k_final_answer_reads_after_the_marker(solution: str, expected: str | None) -> None:
    assert gsm8k_final_answer(solution) == expected


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("$42$", "42"),
        (r"\(\frac{1}{2}\)", r"\frac{1}{2}"),
        # two inline-math groups are not one enclosing pair
        ("$1$ and $2$", "$1$ and $2$"),
        # no delimiters: unchanged apart from whitespace
        (" 7 ", "7"),
        # a lone dollar sign is kept
        ("$", "$"),
    ],
)
def test_strip_math_delimiters_removes_one_enclosing_pair(answer: str, expected: str) -> None:
    assert strip_math_delimiters(answer) == expected


@pytest.mark.parametrize(
    ("solution", "expected"),
    [
        # one box: its content, as last_boxed_content
        (r"so $x = \boxed{\frac{1}{2}}$.", r"\frac{1}{2}"),
        # the same answer boxed twice (a summary repeating it) is one answer
        (r"thus \boxed{7}. Final answer: \boxed{7}", "7"),
        # the final answer group, joined only by connectors: a multi-answer gold the reward reads box by box
        (r"Hence $x = \boxed{2}$ and $y = \boxed{3}$.", r"\boxed{2}, \boxed{3}"),
        (r"The solutions are $\boxed{(3,4)}$, $\boxed{(4,3)}$", r"\boxed{(3,4)}, \boxed{(4,3)}"),
        # a repeated box inside the final group counts once
        (r"$\boxed{1}$ or $\boxed{-1}$ or $\boxed{1}$", r"\boxed{1}, \boxed{-1}"),
        # no box, or an unclosed last one: nothing (the caller reports the row)
        ("the answer is 4", None),
        (r"\boxed{3} then \boxed{\sqrt{2}", None),
        # an empty last box
        (r"\boxed{}", ""),
    ],
)
def test_solution_answer_reads_one_answer_or_the_final_group(solution: str, expected: str | None) -> None:
    assert solution_answer(solution) == expected


@pytest.mark.parametrize(
    ("solution", "shown"),
    [
        # a multi-part problem answered part by part: the last box alone would drop part (1)
        (r"(1) The side is $\boxed{3}$. (2) Then the area is $\boxed{12}$.", "('3', '12')"),
        # an intermediate result boxed before the final answer
        (r"First $a = \boxed{4}$; substituting, the answer is $\boxed{9}$.", "('4', '9')"),
    ],
)
def test_solution_answer_rejects_different_answers_boxed_apart(solution: str, shown: str) -> None:
    with pytest.raises(AmbiguousAnswerError, match="answers separated by text") as info:
        solution_answer(solution)
    assert shown in str(info.value) and "answer column" in str(info.value)
