"""No identifier written by the model ever reaches Python's ``eval``.

Two math-verify code paths end in sympy's string parser (``sympy.parsing.sympy_parser.parse_expr``), which
compiles the text and ``eval``s it (every such call goes through ``sympy_parser.eval_expr``):

* the LaTeX path: latex2sympy2_extended's ``parse_number`` calls ``sympy.Number(text)`` on numeric lexer tokens
  (digits, ``.``, ``E``, a sign), which sympify turns into ``Integer (1 )`` / ``Float ('1.5' )`` and evals;
* the plain-expression path (``ExprExtractionConfig``, used only by our fallback extraction modes): math-verify's
  regex admits only digits, whitespace, ``.``, ``+ - * / ^ ( ) × ÷``, and sympy turns that into calls of its own
  constructors.

These tests spy on ``eval_expr`` while the worker's own parsing code runs in-process, and check that every
evaluated program names only sympy constructors, whatever the answer contains. A math-verify or latex2sympy
upgrade that starts eval-ing other text fails them.
"""

from __future__ import annotations

import re
import types
from collections.abc import Iterator

import pytest

pytest.importorskip("math_verify")

import sympy.parsing.sympy_parser as sympy_parser  # noqa: E402

from cures_verl.reward._worker import _Verifier  # noqa: E402
from cures_verl.reward.extraction import normalize_answer, to_math_verify_input  # noqa: E402

# Names sympy itself writes into the programs it evals; none can come from the model.
SYMPY_CONSTRUCTORS = {"Integer", "Float", "Rational", "Add", "Mul", "Pow"}
NUMERIC_LITERAL = re.compile(r"^[0-9.eE+\-]*$")

ANSWERS = [
    "\\frac{1}{2}",
    "0.5",
    "1/2",
    "-3",
    "1E5",
    "\\{1,2,3\\}",
    "(1, 2]",
    "x \\in (1,2]",
    "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}",
    "10\\text{ meters}",
    "\\$1,000.50",
    "30^\\circ",
    "\\text{Monday}",
    "50\\%",
    "12.5%",
    "x=3",
    "(x+1)^2",
    "\\sqrt{8}",
    "1+i",
    "\\infty",
    "\\operatorname{foo}(1, 2)",
    "\\mathrm{import}(x)",
    "__import__('os').system('true')",
    "lambda: 1",
    'exec("1")',
    "x.__class__.__bases__",
    "\\text{__import__('os')}",
    "\\operatorname{eval}(1)",
]

FALLBACK_RESPONSES = [
    "so the final answer is 3*(4+5)",
    "Answer: __import__('os').system('true') + 1*2",
    "Answer: 2^10 / 4 - (3-1)",
    "The final answer is eval('1')",
    "Answer: (lambda: 1)()",
]


def _names_and_strings(program: object) -> tuple[set[str], list[str]]:
    """Identifiers a program uses, and the string literals in it."""
    if isinstance(program, types.CodeType):
        strings = [const for const in program.co_consts if isinstance(const, str)]
        return set(program.co_names), strings
    text = str(program)
    strings = re.findall(r"'([^']*)'", text)
    return set(re.findall(r"[A-Za-z_]\w*", re.sub(r"'[^']*'", "", text))), strings


@pytest.fixture(scope="module")
def verifier() -> _Verifier:
    return _Verifier()


@pytest.fixture
def evaluated(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    programs: list[object] = []
    original = sympy_parser.eval_expr

    def spy(code: object, local_dict: dict[str, object], global_dict: dict[str, object]) -> object:
        programs.append(code)
        return original(code, local_dict, global_dict)

    monkeypatch.setattr(sympy_parser, "eval_expr", spy)
    yield programs


@pytest.mark.parametrize("answer", ANSWERS)
def test_boxed_mode_evals_only_numeric_literals(verifier: _Verifier, evaluated: list[object], answer: str) -> None:
    text = to_math_verify_input(normalize_answer(answer))
    verifier.parse_gold(text + " ")  # a fresh string, so the worker's gold cache cannot skip the parse
    verifier.parse_pred(text, "boxed")
    for program in evaluated:
        names, strings = _names_and_strings(program)
        assert names <= {"Integer", "Float"}, program
        assert all(NUMERIC_LITERAL.match(string) for string in strings), program


def test_the_spy_sees_the_numbers_of_a_boxed_answer(verifier: _Verifier, evaluated: list[object]) -> None:
    # Without this, the test above could pass by checking nothing: if eval_expr were not the function the LaTeX
    # path calls, its loop would see no program for any answer. (Numbers parsed before may come from sympy's caches
    # and not reach eval_expr again, hence numbers that no other test uses.)
    verifier.parse_pred(to_math_verify_input("73541 + 91823.5"), "boxed")
    texts = [str(program) for program in evaluated]
    texts += [string for program in evaluated for string in _names_and_strings(program)[1]]
    assert any("73541" in text for text in texts), evaluated
    assert any("91823.5" in text for text in texts), evaluated


def test_fallback_modes_eval_only_sympy_arithmetic(verifier: _Verifier, evaluated: list[object]) -> None:
    for response in FALLBACK_RESPONSES:
        verifier.parse_pred(response, "any")
        verifier.parse_pred(response, "answer")
    assert evaluated  # the spy does see this path (so the boxed-mode test above can fail)
    for program in evaluated:
        names, strings = _names_and_strings(program)
        assert names <= SYMPY_CONSTRUCTORS, program
        assert all(NUMERIC_LITERAL.match(string) for string in strings), program
