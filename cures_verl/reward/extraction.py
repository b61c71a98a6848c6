"""Cheap, pure-Python answer extraction that runs before any math-verify call.

The reward pipeline (:mod:`cures_verl.reward.math_verify`) never hands a whole model response to math-verify.
It first finds the final answer here, in linear time and with a hard length cap, and only that short string
crosses into a worker process. This module also turns a ground truth (bare or already boxed, string or number)
into the same form, and applies three small normalisations that work around math-verify 0.9.0 /
latex2sympy2_extended 1.11 parsing gaps (each one is listed in :func:`normalize_answer`).

Not part of the paper: CurES only says the reward is a 0/1 ``math_verify`` check (cures_method.md).
"""

from __future__ import annotations

import decimal
import math
import numbers
import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "BOX_COMMANDS",
    "BoxedAnswer",
    "find_last_boxed",
    "gold_answers",
    "normalize_answer",
    "to_math_verify_input",
]

BOX_COMMANDS: tuple[str, ...] = ("\\boxed", "\\fbox")
"""LaTeX commands whose braced argument counts as the final answer."""

# One token of the brace scan: an escaped character (``\{``, ``\}``, ``\\``, ``\x``...) or a bare brace.
_BRACE_TOKEN = re.compile(r"\\.|[{}]", re.DOTALL)
# Optional whitespace, then the brace that opens a box command's argument.
_OPENING_BRACE = re.compile(r"\s*\{")
# A percent marker at the very end of an answer: ``\%``, ``%`` or ``\text{\%}``.
_TRAILING_PERCENT = re.compile(r"^(?P<body>.*?)\s*(?:\\%|%|\\text\{\s*\\?%\s*\})\s*$", re.DOTALL)
# A LaTeX thin space used as a thousands separator: ``1\,000`` (math-verify reads it as ``1*0``).
_THIN_SPACE_THOUSANDS = re.compile(r"(?<=\d)\\,(?=\d{3}(?!\d))")


@dataclass(frozen=True)
class BoxedAnswer:
    """Outcome of :func:`find_last_boxed`.

    Attributes:
        status: ``"found"`` (``content`` holds the argument), ``"missing"`` (no box command followed by ``{``),
            ``"unclosed"`` (the last box never closes, e.g. a truncated response) or ``"too_long"`` (the
            argument is longer than the cap; ``content`` is empty).
        content: The text between the braces of the last box when ``status == "found"``, else ``""``.
    """

    status: Literal["found", "missing", "unclosed", "too_long"]
    content: str = ""


def find_last_boxed(text: str, *, max_chars: int) -> BoxedAnswer:
    r"""Return the argument of the last ``\boxed{...}`` (or ``\fbox{...}``) in ``text``.

    The scan is linear in ``len(text)`` and stops ``max_chars`` characters after the opening brace, so a
    megabyte of unbalanced braces costs one ``str.rfind`` plus a bounded regex walk. Escaped characters
    (``\{``, ``\}``, ``\\``) do not count as braces. A box command not followed by ``{`` (after optional
    whitespace) is skipped, so prose such as ``"I used \boxed as asked"`` does not hide an earlier box. Only the
    *last* box counts: if it never closes (a truncated response), the result is ``"unclosed"`` even when an
    earlier box is complete.

    Args:
        text: The model response (any string; NUL bytes and lone surrogates are fine).
        max_chars: Longest accepted argument, in characters; must be >= 1.

    Returns:
        A :class:`BoxedAnswer`.

    Raises:
        ValueError: If ``max_chars < 1``.

    Example:
        >>> find_last_boxed(r"so \boxed{1} or rather \boxed{\frac{1}{2}}.", max_chars=100)
        BoxedAnswer(status='found', content='\\frac{1}{2}')
        >>> find_last_boxed(r"\boxed{\{1, 2\}}", max_chars=100).content
        '\\{1, 2\\}'
        >>> find_last_boxed(r"\boxed{3} then \boxed{\frac{1}{", max_chars=100).status
        'unclosed'
        >>> find_last_boxed("no answer here", max_chars=100).status
        'missing'
        >>> find_last_boxed(r"\boxed{123456}", max_chars=5).status
        'too_long'
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be >= 1, got {max_chars}")
    # Last position of each command; each is only ever searched further left, so the loop is linear overall.
    last = {command: text.rfind(command) for command in BOX_COMMANDS}
    while True:
        command, start = max(last.items(), key=lambda item: item[1])
        if start < 0:
            return BoxedAnswer("missing")
        opening = _OPENING_BRACE.match(text, start + len(command))
        if opening is not None:
            return _scan_braced(text, opening.end() - 1, max_chars)
        last[command] = text.rfind(command, 0, start)  # not followed by "{": look further left


def _scan_braced(text: str, brace: int, max_chars: int) -> BoxedAnswer:
    """Scan from the ``{`` at index ``brace`` to its matching ``}``, looking at most ``max_chars + 1`` chars."""
    depth = 0
    # Look one character past the cap: a closing brace there means the argument is exactly max_chars long.
    limit = min(len(text), brace + max_chars + 2)
    for token in _BRACE_TOKEN.finditer(text, brace, limit):
        if token.group() == "{":
            depth += 1
        elif token.group() == "}":
            depth -= 1
            if depth == 0:
                return BoxedAnswer("found", text[brace + 1 : token.start()])
    if limit < len(text):
        return BoxedAnswer("too_long")
    return BoxedAnswer("unclosed")


def normalize_answer(answer: str) -> str:
    r"""Apply the small, documented rewrites that math-verify 0.9.0 needs, to a gold or predicted answer.

    1. Surrounding whitespace and trailing periods go: math-verify fails to parse ``5.``.
    2. A LaTeX thin space between digit groups is dropped: math-verify reads ``1\,000`` as ``1*0`` (= 0).

    The percent suffix is handled separately by :func:`to_math_verify_input`.

    Args:
        answer: An extracted answer or a ground truth.

    Returns:
        The rewritten answer.

    Example:
        >>> normalize_answer(r" 1\,000. ")
        '1000'
        >>> normalize_answer(r"x\,dx")
        'x\\,dx'
    """
    answer = answer.strip()
    while answer.endswith(".") and not answer.endswith("\\."):
        answer = answer[:-1].rstrip()
    return _THIN_SPACE_THOUSANDS.sub("", answer)


def to_math_verify_input(answer: str) -> str:
    r"""Wrap a bare answer so that math-verify's LaTeX extractor parses exactly that answer.

    Most answers become ``\boxed{answer}`` (what verl does with its gold). An answer ending in a percent sign
    becomes ``$body$\%`` (or ``\[body\]\%`` when the body contains ``$``): latex2sympy2_extended 1.11 fails on
    ``50\%`` inside a box (an ``AttributeError`` on ``FUNC_GAMMA``, so ``\boxed{50\%}`` is *unparseable*), while
    math-verify's percent-after-environment rule parses it and then accepts both ``50`` and ``0.5`` against it.

    Args:
        answer: A normalised answer (see :func:`normalize_answer`).

    Returns:
        The string to pass to ``math_verify.parse``.

    Example:
        >>> to_math_verify_input(r"\frac{1}{2}")
        '\\boxed{\\frac{1}{2}}'
        >>> to_math_verify_input(r"12.5\%")
        '$12.5$\\%'
    """
    # The regex backtracks over the whole answer: only run it when the answer ends near a percent sign.
    match = _TRAILING_PERCENT.match(answer) if "%" in answer[-40:] else None
    if match is not None:
        body = " ".join(match.group("body").split())  # inline math may not span lines
        if body:
            if "$" not in body:
                return f"${body}$\\%"
            if "\\]" not in body:
                return f"\\[{body}\\]\\%"
    return "\\boxed{" + answer + "}"


def gold_answers(ground_truth: object) -> tuple[str, ...]:
    r"""Turn a ground truth into a tuple of bare answers, any of which counts as correct.

    Accepted forms: a string (bare such as ``"\frac{1}{2}"``, or already boxed such as ``"\boxed{3}"``, in which
    case the last box's argument is used), an integer or a finite real number (formatted without exponent:
    math-verify reads ``1e-05`` as ``-5 + e``), or a non-empty list / tuple / 1-D array of those (several
    accepted answers; parquet stores lists as numpy arrays).

    Args:
        ground_truth: ``reward_model["ground_truth"]`` from the verl dataset row.

    Returns:
        The non-empty tuple of normalised answers.

    Raises:
        TypeError: For ``None``, booleans, bytes, mappings, nested lists and other types.
        ValueError: For NaN/inf, empty strings and empty lists.

    Example:
        >>> gold_answers(r"\boxed{\dfrac{3}{4}}")
        ('\\dfrac{3}{4}',)
        >>> gold_answers(["2", 1e-05])
        ('2', '0.00001')
    """
    if isinstance(ground_truth, str | numbers.Real) and not isinstance(ground_truth, bool):
        return (_one_gold(ground_truth),)
    items = ground_truth.tolist() if hasattr(ground_truth, "tolist") else ground_truth
    if isinstance(items, list | tuple):
        if not items:
            raise ValueError("ground_truth is an empty list; give at least one accepted answer")
        return tuple(_one_gold(item) for item in items)
    raise TypeError(
        f"ground_truth must be a string, a number or a list of those, got {type(ground_truth).__name__}: "
        f"{ground_truth!r:.80}; fix the dataset's reward_model.ground_truth column"
    )


def _one_gold(item: object) -> str:
    if isinstance(item, bool) or not isinstance(item, str | numbers.Real):
        raise TypeError(
            f"each ground_truth answer must be a string or a number, got {type(item).__name__}: {item!r:.80}; "
            "fix the dataset's reward_model.ground_truth column"
        )
    if isinstance(item, numbers.Integral):
        text = str(int(item))
    elif isinstance(item, numbers.Real) and not isinstance(item, str):
        value = float(item)
        if not math.isfinite(value):
            raise ValueError(f"ground_truth answer {value!r} is not finite; fix the dataset")
        text = format(decimal.Decimal(repr(value)), "f")
    else:
        text = str(item)
        if any(command in text for command in BOX_COMMANDS):
            boxed = find_last_boxed(text, max_chars=max(1, len(text)))
            if boxed.status == "found":
                text = boxed.content
    text = normalize_answer(text)
    if not text:
        raise ValueError(f"ground_truth answer {item!r} is empty; fix the dataset's reward_model.ground_truth")
    return text
