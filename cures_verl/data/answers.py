"""Ground-truth extraction from reference solutions (MATH, Numina, GSM8K).

The reward compares a model's final answer with ``reward_model.ground_truth``; this module turns a
reference solution into that ground truth:

* MATH-style solutions (MATH, MATH500, Numina without an answer column): the content of the **last**
  ``\\boxed{...}`` (or ``\\fbox{...}``), read with balanced braces so nested groups such as
  ``\\boxed{\\frac{1}{2}}`` come out whole. verl's ``last_boxed_only_string`` does the same for the
  braced form; we also skip escaped braces (``\\{``, ``\\}``) when counting, and return ``None``
  instead of a truncated answer when the group never closes.
* GSM8K: the text after the ``####`` marker, with thousands separators removed (``1,000`` -> ``1000``).

Every function here is pure string processing (no regex backtracking on long inputs).
"""

from __future__ import annotations

__all__ = ["last_boxed_content", "gsm8k_final_answer", "strip_math_delimiters"]

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
    depth = 0
    i = pos
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2  # skip the escaped character, e.g. "\{" or "\\"
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[pos + 1 : i].strip()
        i += 1
    return None


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
