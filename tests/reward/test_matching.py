"""Tests of the answer matcher (``cures_verl.reward.matching``), run in-process: one rule or notation at a time.

The end-to-end agreement with hand-written labels is ``test_agreement.py``; these tests pin each documented rule
of ``docs/reward.md`` on its own, with property tests for the invariants (exact values, order-insensitivity).
"""

from __future__ import annotations

import doctest
import random
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("math_verify")

from cures_verl.reward import matching  # noqa: E402
from cures_verl.reward.extraction import find_answer_boxes  # noqa: E402
from cures_verl.reward.matching import answers_match, normalize_text, numerals_equal, parse_answer  # noqa: E402

SLOW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def match(gold: str, pred: str) -> bool:
    parsed_gold, parsed_pred = parse_answer(gold), parse_answer(pred)
    assert parsed_gold is not None, gold
    return parsed_pred is not None and answers_match(parsed_gold, parsed_pred)


def test_module_doctests_pass() -> None:
    results = doctest.testmod(matching)
    assert results.attempted > 0
    assert results.failed == 0


# ------------------------------------------------------------------------------------------ repeating decimals


def _repeating_value(integer: int, fixed: str, period: str) -> Fraction:
    """integer.fixed(period)(period)... summed as a geometric series, independently of the module's formula."""
    value = Fraction(integer) + (Fraction(int(fixed), 10 ** len(fixed)) if fixed else 0)
    block = Fraction(int(period), 10 ** (len(fixed) + len(period)))
    return value + block / (1 - Fraction(1, 10 ** len(period)))


@SLOW
@given(
    integer=st.integers(0, 99),
    fixed=st.text("0123456789", max_size=3),
    period=st.text("0123456789", min_size=1, max_size=4),
    notation=st.sampled_from(["overline", "bar", "paren", "dots"]),
)
def test_every_repeating_decimal_notation_is_the_exact_fraction(
    integer: int, fixed: str, period: str, notation: str
) -> None:
    if notation == "dots" and len(period) < 2:
        notation = "overline"  # one dotted digit is the single-dot form, tested below
    text = {
        "overline": f"{integer}.{fixed}\\overline{{{period}}}",
        "bar": f"{integer}.{fixed}\\bar{{{period}}}",
        "paren": f"{integer}.{fixed}({period})",
        "dots": f"{integer}.{fixed}\\dot{{{period[0]}}}{period[1:-1]}\\dot{{{period[-1]}}}",
    }[notation]
    expected = _repeating_value(integer, fixed, period)
    answer = parse_answer(text)
    assert answer is not None and len(answer.solutions) == 1
    assert answer.solutions[0].expr == expected.numerator / matching.sympy.Integer(expected.denominator), text


@pytest.mark.parametrize(
    ("gold", "pred", "expected"),
    [
        ("\\frac{1}{3}", "0.\\overline{3}", True),
        ("\\frac{1}{6}", "0.1\\dot{6}", True),  # one dotted digit repeats alone
        ("\\frac{1}{3}", "0.333\\ldots", True),  # an ellipsis after at least two copies of a period
        ("\\frac{1}{3}", "0.3̅", True),  # Unicode combining overline
        ("1", "0.\\overline{9}", True),  # 0.999... = 1
        ("\\frac{1}{3}", "0.333", False),  # a finite decimal is not the repeating one
        ("\\pi", "3.14159...", False),  # no visible period: a truncated decimal, not pi
    ],
)
def test_repeating_decimals(gold: str, pred: str, expected: bool) -> None:
    assert match(gold, pred) is expected


# ------------------------------------------------------------------------------------------ scientific notation


@SLOW
@given(
    mantissa=st.decimals(min_value=-999, max_value=999, places=3, allow_nan=False, allow_infinity=False),
    exponent=st.integers(-30, 30),
    letter=st.sampled_from("eE"),
    plus=st.booleans(),
)
def test_e_notation_is_the_number_it_denotes(mantissa: object, exponent: int, letter: str, plus: bool) -> None:
    text = f"{mantissa}{letter}{exponent:+d}" if plus else f"{mantissa}{letter}{exponent}"
    expected = Fraction(str(mantissa)) * Fraction(10) ** exponent
    answer = parse_answer(text)
    assert answer is not None and answer.solutions[0].number == expected, text


@pytest.mark.parametrize(
    ("gold", "pred", "expected"),
    [
        ("4e-3", "0.004", True),
        ("0.004", "4 \\times 10^{-3}", True),
        ("4e-3", "4e - 3", False),  # with spaces it is 4e - 3 (Euler's number)
        ("2e", "2 \\cdot e", True),  # e without an exponent stays Euler's number
        ("e^{-3}", "1e-3", False),
        ("1e999999", "1", False),  # exponents beyond MAX_EXPONENT are left alone (and cost nothing)
    ],
)
def test_scientific_notation(gold: str, pred: str, expected: bool) -> None:
    assert match(gold, pred) is expected


# ---------------------------------------------------------------------------------------------------- Unicode


@pytest.mark.parametrize(
    ("text", "latex"),
    [
        ("30°", "30^{\\circ}"),
        ("∞", "\\infty"),
        ("−5", "-5"),
        ("√2", "\\sqrt{2}"),
        ("√(x+1)", "\\sqrt{x+1}"),
        ("∛2", "\\sqrt[3]{2}"),
        ("x²", "x^{2}"),
        ("10⁻³", "10^{-3}"),
        ("½", "\\frac{1}{2}"),
        ("x ≤ 3", "x \\le 3"),
        ("π", "\\pi"),
        ("１２", "12"),
    ],
)
def test_unicode_symbols_become_latex(text: str, latex: str) -> None:
    assert normalize_text(text) == latex
    assert match(latex, text)


# -------------------------------------------------------------------------------------- set-builder notation


@pytest.mark.parametrize(
    ("gold", "pred", "expected"),
    [
        ("(1,2)", "\\{x \\mid 1 < x < 2\\}", True),
        ("(1,2)", "\\left\\{ x \\,\\middle|\\, 1 < x < 2 \\right\\}", True),
        ("(1,2)", "\\{x : x > 1 \\text{ and } x < 2\\}", True),
        ("[1,2)", "\\{x \\mid 1 < x < 2\\}", False),  # endpoints matter
        ("(-\\infty,0)\\cup(1,\\infty)", "\\{x \\mid x < 0 \\text{ or } x > 1\\}", True),
        ("\\{1,2,3\\}", "\\{x \\in \\mathbb{Z} \\mid 1 \\le x \\le 3\\}", True),
        ("(3, \\infty)", "x > 3", True),  # a condition in one variable is its solution set
        ("x \\ge 1", "[1, \\infty)", True),
        ("x \\ge 1", "(1, \\infty)", False),
        ("(-\\infty,1)\\cup(2,\\infty)", "x < 1 \\text{ or } x > 2", True),
    ],
)
def test_set_builder_and_conditions_equal_the_same_set(gold: str, pred: str, expected: bool) -> None:
    assert match(gold, pred) is expected


# ------------------------------------------------------------------------------------------- percent, degrees


@SLOW
@given(p=st.integers(1, 500), decimals=st.integers(0, 2))
def test_a_percentage_equals_its_fraction_and_its_bare_number_only(p: int, decimals: int) -> None:
    body = Fraction(p, 10**decimals)
    text = f"{float(body):.{decimals}f}"
    for form in (f"{text}\\%", f"{text}%", f"{text} percent"):
        assert match(form, str(float(body / 100)))  # p% = p/100
        assert match(form, text)  # the sign dropped like a unit
        assert match(str(float(body / 100)), form)  # and the other way round
        assert not match(form, str(float(body / 10)))  # neither p/100 nor p


@pytest.mark.parametrize(
    ("gold", "pred", "expected"),
    [
        ("45^\\circ", "\\frac{\\pi}{4}", True),  # d degrees = d*pi/180
        ("45^\\circ", "45", True),  # or the bare number
        ("45^\\circ", "45\\%", False),  # different units
        ("30°", "60°", False),
    ],
)
def test_degrees(gold: str, pred: str, expected: bool) -> None:
    assert match(gold, pred) is expected


# ------------------------------------------------------------------------------------------ numeric tolerance


@SLOW
@given(numerator=st.integers(1, 10**6), denominator=st.integers(2, 10**6), digits=st.integers(1, 12))
def test_a_truncated_decimal_never_equals_a_fraction_it_does_not_equal_exactly(
    numerator: int, denominator: int, digits: int
) -> None:
    exact = Fraction(numerator, denominator)
    truncated = Fraction(int(exact * 10**digits), 10**digits)
    decimal = f"{float(truncated):.{digits}f}"
    assert match(f"\\frac{{{numerator}}}{{{denominator}}}", decimal) is (truncated == exact)


@pytest.mark.parametrize("constant", ["\\pi", "e", "\\sqrt{2}", "\\frac{\\sqrt{3}}{2}", "\\ln 2"])
@pytest.mark.parametrize("digits", [2, 6, 15, 30])
def test_no_decimal_equals_a_symbolic_constant(constant: str, digits: int) -> None:
    import sympy
    from latex2sympy2_extended.latex2sympy2 import latex2sympy

    value = sympy.N(latex2sympy(constant), digits + 5)
    assert not match(constant, f"{value:.{digits}f}")


def test_decimals_agree_within_the_documented_tolerance_only() -> None:
    assert numerals_equal(Fraction("0.30000000000000004"), Fraction("0.3"), approximate=True)  # float noise
    assert not numerals_equal(Fraction("1.0000001"), Fraction(1), approximate=True)
    assert not numerals_equal(Fraction(10**15 + 1), Fraction(10**15), approximate=False)  # integers: exact
    assert match("0.5", "0.50000") and match("2", "2.0") and not match("0.5", "0.51")


@SLOW
@given(a=st.fractions(), b=st.fractions(), approximate=st.booleans())
def test_the_numeral_rule_is_symmetric_and_reflexive(a: Fraction, b: Fraction, approximate: bool) -> None:
    assert numerals_equal(a, a, approximate=approximate)
    assert numerals_equal(a, b, approximate=approximate) == numerals_equal(b, a, approximate=approximate)


# -------------------------------------------------------------------------------------------- several answers


_ATOMS = st.sampled_from(["1", "-2", "\\frac{1}{2}", "\\sqrt{2}", "(1,2)", "(2,1)", "(0,-3)", "3.5", "\\pi"])


@SLOW
@given(atoms=st.lists(_ATOMS, min_size=2, max_size=5, unique=True), seed=st.integers(0, 1000))
def test_lists_of_solutions_match_in_any_order_and_not_with_one_missing(atoms: list[str], seed: int) -> None:
    shuffled = atoms[:]
    random.Random(seed).shuffle(shuffled)
    gold = ", ".join(atoms)
    assert match(gold, ", ".join(shuffled))
    assert match(gold, " and ".join(f"\\boxed{{{atom}}}" for atom in shuffled))
    assert not match(gold, ", ".join(shuffled[1:]))
    assert not match(", ".join(shuffled[1:]), gold)


@pytest.mark.parametrize(
    ("gold", "pred", "expected"),
    [
        ("(3,4),(4,3)", "(4,3),(3,4)", True),  # order-insensitive list of tuples
        ("(3,4),(4,3)", "(3,4),(3,4)", False),  # each tuple is ordered
        ("(3,4),(4,3)", "\\{(3,4),(4,3)\\}", True),
        ("x = 2, y = 3", "y = 3, x = 2", True),  # one record: names matter, order does not
        ("x = 2, y = 3", "(2, 3)", True),  # bare values in the record's order
        ("x = 2, y = 3", "2, 3", True),
        ("x = 2, y = 3", "(3, 2)", False),
        ("x = 2, y = 3", "x = 3, y = 2", False),
        ("x=1, y=2 \\text{ or } x=2, y=1", "(2,1),(1,2)", True),  # a repeated name starts the next solution
        ("x=1, y=2 \\text{ or } x=2, y=1", "(x, y) = (1, 2), (2, 1)", True),
        ("x_1 = 1, x_2 = 5", "5, 1", True),  # x_1, x_2 list the values of one unknown
        ("x = 1 \\text{ or } x = 2", "x \\in \\{1, 2\\}", True),
        ("\\{-2, 0, 2\\}", "0, \\pm 2", True),
        ("\\boxed{3} and \\boxed{5}", "5", False),  # a missing answer
        ("5", "3, 5", False),  # a hedged answer
        ("The answer is \\boxed{12} apples.", "12", True),  # words around the gold's box
    ],
)
def test_multi_answer_matching(gold: str, pred: str, expected: bool) -> None:
    assert match(gold, pred) is expected


def test_the_multi_part_rule_reads_the_last_boxes_when_the_final_group_is_short() -> None:
    response = "(1) so $\\boxed{3}$.\n\n(2) Dividing by four gives $\\boxed{\\frac{1}{2}}$."
    boxes = find_answer_boxes(response, max_chars=100)
    assert boxes.group == ("\\frac{1}{2}",) and boxes.recent == ("3", "\\frac{1}{2}")
    gold, pred = parse_answer("3; \\frac{1}{2}"), parse_answer(", ".join(boxes.group))
    assert gold is not None and pred is not None
    assert not answers_match(gold, pred)
    assert matching.multipart_match(gold, pred, list(boxes.recent))
    assert not matching.multipart_match(gold, pred, ["4", "\\frac{1}{2}"])


@pytest.mark.parametrize(
    ("response", "group"),
    [
        ("so $x = \\boxed{2}$ and $y = \\boxed{3}$.", ("2", "3")),
        ("\\boxed{1}, \\boxed{2}; \\boxed{3}", ("1", "2", "3")),
        ("(a) \\boxed{1} (b) \\boxed{2}", ("1", "2")),
        ("First \\boxed{3}, corrected: \\boxed{5}", ("5",)),  # words end the group
        ("\\boxed{3}. Wait, that is wrong: \\boxed{5}", ("5",)),
        ("The answer is \\boxed 5.", ("5",)),  # brace-less box with one token
        ("\\boxed{4}. I used \\boxed as asked.", ("4",)),  # prose after a brace-less command is no answer
    ],
)
def test_the_final_answer_group(response: str, group: tuple[str, ...]) -> None:
    assert find_answer_boxes(response, max_chars=100).group == group


@pytest.mark.parametrize(
    ("text", "items"),
    [
        (r"\text{yes and no}", [("", r"\text{yes}"), ("and", r"\text{no}")]),
        (r"\text{(A) or (B)}", [("", r"\text{(A)}"), ("or", r"\text{(B)}")]),
        (r"\text{Alice, Bob and Carol}", [("", r"\text{Alice}"), (",", r"\text{Bob}"), ("and", r"\text{Carol}")]),
        # only an item that is the text group alone is split: units and prose inside an item stay
        (r"5 \text{ apples and } 3", [("", r"5 \text{ apples and } 3")]),
        (r"\text{no solution}", [("", r"\text{no solution}")]),
        (r"\text{rock (and roll)}", [("", r"\text{rock (and roll)}")]),  # brackets group, as in math
    ],
)
def test_words_joined_inside_one_text_group_are_separate_items(text: str, items: list[tuple[str, str]]) -> None:
    assert matching.split_items(text) == items


@pytest.mark.parametrize(
    ("gold", "pred", "expected"),
    [
        (r"\text{yes and no}", r"\text{no and yes}", True),
        (r"\text{yes and no}", r"\text{yes}", False),  # a missing answer
        (r"\text{yes}", r"\text{yes and no}", False),  # a hedge
        (r"\text{(A) or (B)}", r"\text{(B) or (A)}", True),
        (r"\text{(C)}", r"\text{(A) or (C)}", False),
        (r"\text{Alice and Bob}", r"\text{Bob and Alice}", True),
        (r"Alice and Bob", r"\text{Bob and Alice}", True),
        (r"\text{Alice, Bob and Carol}", r"\text{Carol and Bob}", False),
        (r"\text{cat and dog}", r"\text{dog}, \text{cat}", True),
        (r"x=1 \text{ and } x=2", r"x = 2 \text{ or } x = 1", True),
    ],
)
def test_text_connected_multi_answers(gold: str, pred: str, expected: bool) -> None:
    assert match(gold, pred) is expected


def test_a_numina_multi_answer_gold_from_data_preparation_is_read_box_by_box() -> None:
    from cures_verl.data.answers import solution_answer

    gold = solution_answer(r"So $x = \boxed{2}$ or $x = \boxed{-3}$.")
    assert gold is not None
    assert match(gold, "-3, 2") and match(gold, r"x = -3 \text{ or } x = 2")
    assert not match(gold, "2") and not match(gold, "2, -3, 5")


# -------------------------------------------------------------------------------------------- unparseable input


@pytest.mark.parametrize("text", ["", "   ", "\\frac{", "\\text{", "\\boxed{}", "$$"])
def test_empty_or_unparseable_answers_parse_to_none(text: str) -> None:
    assert parse_answer(text) is None
