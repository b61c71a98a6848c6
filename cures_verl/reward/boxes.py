r"""Box arguments in text: the one implementation of the ``\boxed``/``\fbox`` rules, standard library only.

Three places read boxes: the reward's extraction of a response's final answer (:mod:`.extraction`, in the
calling process), the matcher reading golds that hold boxes (:mod:`.matching`, in the worker processes) and data
preparation reading reference solutions (:mod:`cures_verl.data.answers`). They share the rules below, so a box
means the same thing in a gold, a response and a reference solution.

Like ``matching.py``, this module is also loaded by file path inside the reward's worker processes (which never
import ``cures_verl``), so it imports nothing but the standard library.
"""

from __future__ import annotations

import re

__all__ = ["BOX_COMMAND", "box_contents", "braceless_box_token", "matching_brace"]

BOX_COMMAND = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
"""A box command name, not the start of a longer command (``\\fboxsep``)."""

# The argument of a brace-less box: the next run of characters up to whitespace or "$", not starting with two
# letters (prose) and holding no brace.
_BRACELESS_TOKEN = re.compile(r"[ \t]*(?![A-Za-z]{2})([^\s${}]{1,200})(?![^\s$])")
_TOKEN_END = re.compile(r"\\[\])]|[.,;:!?]+$")


def braceless_box_token(text: str, position: int) -> tuple[str, int] | None:
    r"""``(token, end)`` for the argument of a brace-less box whose command name ends at ``position``.

    The argument is the next run of non-space characters (cut at ``$``, ``\]``, ``\)`` and trailing sentence
    punctuation); ``end`` is the index just after it. It must look like an answer: a run starting with two letters
    is an English word (``\boxed as asked``), and a run holding braces or another box command is not one token;
    both give ``None``, so that prose does not hide a real box.

    Example:
        >>> braceless_box_token(r"\boxed 12.", 6), braceless_box_token(r"\boxed\pi$", 6)
        (('12', 9), ('\\pi', 9))
        >>> braceless_box_token(r"\boxed as asked", 6) is None
        True
    """
    match = _BRACELESS_TOKEN.match(text, position)
    if match is None:
        return None
    token = match.group(1)
    cut = _TOKEN_END.search(token)
    if cut is not None:
        token = token[: cut.start()]
    if not token or "\\boxed" in token or "\\fbox" in token:
        return None
    return token, match.start(1) + len(token)


def matching_brace(text: str, brace: int) -> int | None:
    r"""Index of the ``}`` closing the ``{`` at ``text[brace]``, or ``None`` if the group never closes.

    A backslash escapes the next character, so ``\{``, ``\}`` and ``\\`` do not count.

    Example:
        >>> matching_brace(r"{a\}{b}}c", 0), matching_brace("{{}", 0)
        (7, None)
    """
    depth = 0
    index = brace
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    return None


def box_contents(text: str, *, limit: int = 64) -> list[str] | None:
    r"""The arguments of every complete box in ``text`` (braced, or brace-less with one token), in order.

    ``None`` when ``text`` has no box command at all; boxes that never close are skipped.

    Example:
        >>> box_contents(r"x = \boxed{3} and \boxed 5.")
        ['3', '5']
        >>> box_contents("3") is None
        True
    """
    if "\\boxed" not in text and "\\fbox" not in text:
        return None
    found: list[str] = []
    position = 0
    seen_command = False
    while len(found) < limit:
        match = BOX_COMMAND.search(text, position)
        if match is None:
            break
        seen_command = True
        start = match.end()
        brace = start
        while brace < len(text) and text[brace].isspace():
            brace += 1
        if brace < len(text) and text[brace] == "{":
            end = matching_brace(text, brace)
            if end is None:
                position = start
                continue
            found.append(text[brace + 1 : end])
            position = end + 1
        else:
            token = braceless_box_token(text, start)
            if token is not None:
                found.append(token[0])
            position = start
    return found if seen_command else None
