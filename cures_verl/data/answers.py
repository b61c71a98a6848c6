"""Ground-truth extraction from reference solutions (MATH, Numina, GSM8K).

The reward compares a model's final answer with ``reward_model.ground_truth``; this module turns a
reference solution into that ground truth:

* MATH-style solutions (MATH, Numina without an answer column): :func:`solution_answer`. One answer (one box,
  or the same box repeated) is the content of the **last** ``\\boxed{...}`` (or ``\\fbox{...}``,
  :func:`last_boxed_content`), read with balanced braces so nested groups such as ``\\boxed{\\frac{1}{2}}``
  come out whole. verl's ``last_boxed_only_string`` does the same for the braced form; we also skip escaped
  braces (``\\{``, ``\\}``) when counting, and return ``None`` instead of a truncated answer when the group
  never closes. Several different boxes are a multi-answer gold when they form the solution's final answer
  group (the reward's rule for responses: boxes separated only by connectors such as ``,``, "and", ``x =``),
  and an ambiguous row otherwise (:class:`AmbiguousAnswerError`).
* GSM8K: the text after the ``####`` marker, with thousands separators removed (``1,000`` -> ``1000``).

Every function here is pure string processing (no regex backtracking on long inputs).
"""

from __future__ import annotations

from cures_verl.reward.boxes import box_contents, matching_brace
from cures_verl.reward.extraction import find_answer_boxes

__all__ = [
    "AmbiguousAnswerError",
    "last_boxed_content",
    "solution_answer",
    "gsm8k_final_answer",
    "strip_math_delimiters",
]

_BOX_COMMANDS = ("\\boxed", "\\fbox")


def _last_box_command(text: str) -> tuple[int, int] | None:
    """Return ``(start, end)`` of the last ``\\boxed``/``\\fbox`` command name in ``text``."""
    best: tuple[int, int] | None = None
    for command in _BOX_COMMANDS:
        search_from = len(text)
        while True:
            start = text.rfind(command, 0, search_from)
            if start < 0:
                break
            end = start + len(command)
            # "\boxedfoo" is another command, not \boxed: the name must end here
            if end < len(text) and text[end].isalpha():
                search_from = start
                continue
            if best is None or start > best[0]:
                best = (start, end)
            break
    return best


def last_boxed_content(text: str) -> str | None:
    """Return the content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) in ``text``.

    Braces are matched with a depth counter; a backslash escapes the next character, so ``\\{`` and
    ``\\}`` do not count. The space form ``\\boxed 5`` (no braces) yields the text up to the next
    whitespace or ``$``.

    Args:
        text: A reference solution or model output.

    Returns:
        The boxed content with surrounding whitespace stripped, or ``None`` if ``text`` has no box
        command or the last one's brace group never closes. An empty ``\\boxed{}`` returns ``""``.

    Example:
        >>> last_boxed_content(r"so $x=\\boxed{\\frac{1}{2}}$; check: \\boxed{\\{1, 2\\}}")
        '\\\\{1, 2\\\\}'
        >>> last_boxed_content(r"\\boxed{3} then \\boxed{\\sqrt{2}")  # last group is unclosed
        >>> last_boxed_content("no box here") is None
        True
    """
    found = _last_box_command(text)
    if found is None:
        return None
    _, pos = found
    if pos < len(text) and text[pos] == " ":
        # "\boxed 5$": the argument is the next whitespace-delimited token
        rest = text[pos:].lstrip(" ")
        token = []
        for char in rest:
            if char.isspace() or char == "$":
                break
            token.append(char)
        return "".join(token).strip() if token else None
    if pos >= len(text) or text[pos] != "{":
        return None
    end = matching_brace(text, pos)
    return None if end is None else text[pos + 1 : end].strip()


class AmbiguousAnswerError(ValueError):
    """A reference solution boxes several different answers that are not one final answer group."""


def solution_answer(solution: str) -> str | None:
    r"""The ground truth of a reference solution that boxes its answer(s) (MATH, Numina without an answer column).

    * One answer, or the same one boxed several times: the content of the last box (:func:`last_boxed_content`).
    * Several different boxed answers that together form the solution's final answer group (the last box and the
      boxes before it that only connectors separate: ``,``, "and"/"or", ``x =``, ``(2)``..., the rule the reward
      applies to responses, :func:`cures_verl.reward.extraction.find_answer_boxes`): a multi-answer gold written
      as those boxes, ``\boxed{2}, \boxed{-3}``. The reward reads a gold holding boxes as all their arguments
      together (docs/reward.md, "Several answers").
    * Different boxed answers separated by text (an intermediate result boxed before the final answer, or a
      multi-part problem answered part by part): which of them the gold is cannot be told, so
      :class:`AmbiguousAnswerError` is raised.

    Returns:
        The ground truth, ``""`` for an empty last box, or ``None`` if there is no box or the last one never
        closes.

    Raises:
        AmbiguousAnswerError: If different boxed answers are separated by text; the message shows them.

    Example:
        >>> solution_answer(r"Thus $x = \boxed{2}$ or $x = \boxed{-3}$.")
        '\\boxed{2}, \\boxed{-3}'
        >>> try:
        ...     solution_answer(r"so $a = \boxed{4}$. Check: $4 + 1 = \boxed{5}$")
        ... except AmbiguousAnswerError as exc:
        ...     print(str(exc)[:57])
        2 different \boxed{} answers separated by text ('4', '5')
    """
    last = last_boxed_content(solution)
    if not last:
        return last
    answers = list(dict.fromkeys(content.strip() for content in box_contents(solution, limit=10**6) or ()))
    answers = [answer for answer in answers if answer]
    if len(answers) <= 1:
        return last
    group = find_answer_boxes(solution, max_chars=len(solution), max_boxes=len(answers) + 1).group
    final = list(dict.fromkeys(content.strip() for content in group if content.strip()))
    if set(answers) <= set(final):
        return ", ".join(f"\\boxed{{{answer}}}" for answer in final)
    shown = ", ".join(repr(answer if len(answer) <= 40 else answer[:37] + "...") for answer in answers[:6])
    raise AmbiguousAnswerError(
        f"{len(answers)} different \\boxed{{}} answers separated by text ({shown}): an intermediate result or a "
        "multi-part problem, so the ground truth is ambiguous; give the row an answer column, or box only the "
        "final answer(s), next to each other"
    )


def gsm8k_final_answer(solution: str) -> str | None:
    """Return GSM8K's final answer: the text after the last ``####``, commas removed.

    Args:
        solution: A GSM8K ``answer`` field (worked solution ending in ``#### <number>``).

    Returns:
        The answer string (e.g. ``"1000"``), or ``None`` if there is no ``####`` marker. An empty
        string is returned when the marker is followed by nothing.

    Example:
        >>> gsm8k_final_answer("She pays 2 * 500 = <<2*500=1000>>1000.\\n#### 1,000")
        '1000'
    """
    marker = solution.rfind("####")
    if marker < 0:
        return None
    return solution[marker + 4 :].strip().replace(",", "")


def strip_math_delimiters(answer: str) -> str:
    """Remove one pair of enclosing inline-math delimiters (``$...$`` or ``\\(...\\)``).

    Benchmarks such as OlympiadBench store answers as ``"$\\frac{1}{2}$"``; the reward wraps the
    ground truth in ``\\boxed{}`` itself, so the delimiters are dropped here.

    Example:
        >>> strip_math_delimiters("$\\\\frac{1}{2}$"), strip_math_delimiters("$1$ and $2$")
        ('\\\\frac{1}{2}', '$1$ and $2$')
    """
    text = answer.strip()
    if len(text) >= 2 and text.startswith("$") and text.endswith("$") and "$" not in text[1:-1]:
        return text[1:-1].strip()
    if text.startswith("\\(") and text.endswith("\\)") and "\\(" not in text[2:-2]:
        return text[2:-2].strip()
    return text
