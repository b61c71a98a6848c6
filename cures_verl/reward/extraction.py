"""Cheap, pure-Python answer extraction that runs before any parsing.

The reward pipeline (:mod:`cures_verl.reward.math_verify`) never hands a whole model response to a worker. It
first finds the final answer here (:func:`find_answer_boxes`: the final group of boxes, brace-less boxes
included), in linear time and with a hard length cap, and only those short strings cross into a worker process,
where :mod:`cures_verl.reward.matching` parses and compares them. This module also turns a ground truth (bare or
holding boxes, string or number) into the same form (:func:`gold_answers`) and trims answers
(:func:`normalize_answer`). :func:`to_math_verify_input` wraps an answer for calling math-verify's ``parse``
directly (the percent form it needs); the reward itself does not use it.

Not part of the paper: CurES only says the reward is a 0/1 ``math_verify`` check (cures_method.md).
"""

from __future__ import annotations

import decimal
import math
import numbers
import re
from dataclasses import dataclass
from typing import Literal

from cures_verl.reward.boxes import braceless_box_token

__all__ = [
    "BOX_COMMANDS",
    "AnswerBoxes",
    "BoxedAnswer",
    "find_answer_boxes",
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
# Whitespace and LaTeX spacing commands at either end of an answer (``\,``, ``\;``, ``\quad``, ``~``...).
_EDGE_SPACING = re.compile(r"^(?:\s|~|\\[,;: !]|\\q?quad(?![A-Za-z]))+|(?:\s|~|\\[,;: !]|\\q?quad(?![A-Za-z]))+$")
# A LaTeX thin space used as a thousands separator: ``1\,000`` (math-verify reads it as ``1*0``).
_THIN_SPACE_THOUSANDS = re.compile(r"(?<=\d)\\,(?=\d{3}(?!\d))")


@dataclass(frozen=True)
class BoxedAnswer:
    """Outcome of :func:`find_last_boxed`.

    Attributes:
        status: ``"found"`` (``content`` holds the argument), ``"missing"`` (no box command with an argument),
            ``"unclosed"`` (the last box never closes, e.g. a truncated response) or ``"too_long"`` (the
            argument is longer than the cap; ``content`` is empty).
        content: The argument of the last box when ``status == "found"``, else ``""``.
    """

    status: Literal["found", "missing", "unclosed", "too_long"]
    content: str = ""


@dataclass(frozen=True)
class AnswerBoxes:
    """Outcome of :func:`find_answer_boxes`.

    Attributes:
        status: As :attr:`BoxedAnswer.status`, for the last box of the response.
        group: The final answer group when ``status == "found"``: the last box and the boxes just before it that
            only connectors separate (``\\boxed{3} and \\boxed{5}``, ``x = \\boxed{2}, y = \\boxed{3}``), oldest
            first. A single box is a group of one.
        recent: The last ``max_boxes`` complete boxes of the response whatever separates them, oldest first
            (used for golds with several answers spread over a multi-part response).
    """

    status: Literal["found", "missing", "unclosed", "too_long"]
    group: tuple[str, ...] = ()
    recent: tuple[str, ...] = ()


# Text allowed between two boxes of one answer group: whitespace, punctuation, math delimiters, spacing
# commands, the words "and"/"or" (bare or in \text{}), line breaks, and short labels ("x =", "x_1 =", "(2)", "b)").
_CONNECTOR = re.compile(
    r"^(?:\s|[,;:.&=]|\$|\\[()\[\],;:! ]|\\\\|\\q?quad(?![A-Za-z])|\\text\s*\{\s*(?:and|or|,|;)?\s*\}"
    r"|\band\b|\bor\b|[A-Za-z](?:_\{?\w{1,3}\}?)?'?\s*=|\(\s*[A-Za-z](?:\s*,\s*[A-Za-z])*\s*\)\s*="
    r"|\(\s*(?:\d{1,2}|[a-z]|[ivx]{1,4})\s*\)|(?<![A-Za-z])(?:\d{1,2}|[a-z])\))*$"
)
_MAX_CONNECTOR_CHARS = 60
_MAX_GOLD_BOXES = 64
_COMMAND_TAIL = re.compile(r"[A-Za-z]")


def _box_at(text: str, start: int, command: str, max_chars: int) -> tuple[str, str, int] | None:
    """The box whose command starts at ``start``: ``(status, content, end)``, or ``None`` if it is no box."""
    name_end = start + len(command)
    if _COMMAND_TAIL.match(text, name_end):
        return None  # another command, e.g. \fboxsep
    opening = _OPENING_BRACE.match(text, name_end)
    if opening is not None:
        return _scan_braced(text, opening.end() - 1, max_chars)
    braceless = braceless_box_token(text, name_end)
    if braceless is None:
        return None
    token, end = braceless
    if len(token) > max_chars:
        return "too_long", "", end
    return "found", token, end


def find_answer_boxes(text: str, *, max_chars: int, max_boxes: int = 8) -> AnswerBoxes:
    r"""Find the response's final answer group and its last few boxes (see :class:`AnswerBoxes`).

    A box is ``\boxed{...}``/``\fbox{...}`` (braces matched, escaped braces skipped) or a brace-less box with
    a one-token argument (``\boxed 5``, ``\boxed\pi``). The scan runs right to left, visits each box command
    once and reads at most ``max_chars`` characters of any argument, so it is linear in ``len(text)``. A box
    that encloses the one after it (``\boxed{\boxed{3}}``) is skipped. The last box decides the status: if it
    never closes, the response has no answer even when earlier boxes are complete.

    Args:
        text: The model response.
        max_chars: Longest accepted argument; must be >= 1.
        max_boxes: How many boxes :attr:`AnswerBoxes.recent` keeps; must be >= 1.

    Raises:
        ValueError: If ``max_chars`` or ``max_boxes`` is below 1.

    Example:
        >>> find_answer_boxes(r"so $x = \boxed{2}$ and $y = \boxed{3}$.", max_chars=100).group
        ('2', '3')
        >>> find_answer_boxes(r"First \boxed{3}, corrected: \boxed{5}", max_chars=100).group
        ('5',)
        >>> find_answer_boxes(r"the answer is \boxed 12.", max_chars=100).group
        ('12',)
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be >= 1, got {max_chars}")
    if max_boxes < 1:
        raise ValueError(f"max_boxes must be >= 1, got {max_boxes}")
    last = {command: text.rfind(command) for command in BOX_COMMANDS}
    group: list[str] = []
    recent: list[str] = []
    status: Literal["found", "missing", "unclosed", "too_long"] = "missing"
    grouping = True
    left_edge = len(text)  # start of the leftmost box taken so far
    while len(recent) < max_boxes:
        command = BOX_COMMANDS[0] if last[BOX_COMMANDS[0]] >= last[BOX_COMMANDS[1]] else BOX_COMMANDS[1]
        start = last[command]
        if start < 0:
            break
        last[command] = text.rfind(command, 0, start)
        box = _box_at(text, start, command, max_chars)
        if box is None:
            continue
        box_status, content, end = box
        if not recent and status == "missing":
            status = box_status  # type: ignore[assignment]
            if box_status != "found":
                break
        elif box_status != "found":
            break  # an earlier unclosed or over-long box ends the search
        if recent and end > left_edge:
            continue  # encloses the box after it
        if grouping and group:
            between = text[end:left_edge]
            grouping = len(between) <= _MAX_CONNECTOR_CHARS and _CONNECTOR.match(between) is not None
        if grouping:
            group.append(content)
        recent.append(content)
        left_edge = start
    if status != "found":
        return AnswerBoxes(status)
    return AnswerBoxes("found", tuple(reversed(group)), tuple(reversed(recent)))


def find_last_boxed(text: str, *, max_chars: int) -> BoxedAnswer:
    r"""Return the argument of the last box in ``text`` (see :func:`find_answer_boxes` for what a box is).

    Only the *last* box counts: if it never closes (a truncated response), the result is ``"unclosed"`` even
    when an earlier box is complete. A box command followed by neither ``{`` nor a one-token argument (prose
    such as ``"I used \boxed as asked"``) is skipped, so it does not hide an earlier box.

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
    boxes = find_answer_boxes(text, max_chars=max_chars, max_boxes=1)
    if boxes.status != "found":
        return BoxedAnswer(boxes.status)
    return BoxedAnswer("found", boxes.recent[-1])


def _scan_braced(text: str, brace: int, max_chars: int) -> tuple[str, str, int]:
    """Scan from the ``{`` at index ``brace`` to its match: ``(status, content, index after the "}")``."""
    depth = 0
    # Look one character past the cap: a closing brace there means the argument is exactly max_chars long.
    limit = min(len(text), brace + max_chars + 2)
    for token in _BRACE_TOKEN.finditer(text, brace, limit):
        if token.group() == "{":
            depth += 1
        elif token.group() == "}":
            depth -= 1
            if depth == 0:
                return "found", text[brace + 1 : token.start()], token.end()
    if limit < len(text):
        return "too_long", "", limit
    return "unclosed", "", limit


def normalize_answer(answer: str) -> str:
    r"""Apply the small, documented rewrites that math-verify 0.9.0 needs, to a gold or predicted answer.

    1. Surrounding whitespace, LaTeX spacing (``\,``, ``\quad``...) and trailing periods go: math-verify fails
       to parse ``5.``. An ellipsis ``...`` stays (``0.333...`` is a repeating decimal).
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
    answer = _EDGE_SPACING.sub("", answer)
    while answer.endswith(".") and not answer.endswith(("\\.", "...")):
        answer = _EDGE_SPACING.sub("", answer[:-1])
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

    Accepted forms: a string (bare such as ``"\frac{1}{2}"``, or holding boxes such as ``"\boxed{3}"`` or
    ``"\boxed{3} and \boxed{5}"``, in which case the boxes' arguments, joined by ``", "``, are the answer: a gold
    with several boxes has several answers), an integer or a finite real number (formatted without exponent:
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
        >>> gold_answers(r"The solutions are $\boxed{(3,4)}$ and $\boxed{(4,3)}$.")
        ('(3,4), (4,3)',)
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
            boxes = find_answer_boxes(text, max_chars=max(1, len(text)), max_boxes=_MAX_GOLD_BOXES)
            if boxes.status == "found":
                text = ", ".join(part for part in map(normalize_answer, boxes.recent) if part)
    text = normalize_answer(text)
    if not text:
        raise ValueError(f"ground_truth answer {item!r} is empty; fix the dataset's reward_model.ground_truth")
    return text
