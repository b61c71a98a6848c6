"""Source formats: which columns hold the problem and how the ground truth is read from a record.

=============  =====================  ==============================================================
format         problem column         ground truth
=============  =====================  ==============================================================
``math``       ``problem``            last ``\\boxed{}`` of ``solution`` (balanced braces)
``numina``     ``problem``            ``answer`` if present and non-empty, else last box of ``solution``
``gsm8k``      ``question``           text after ``####`` in ``answer``, commas removed
``deepscaler`` ``problem``            ``answer``
``qa``         ``problem``/``question``  ``answer``/``final_answer`` (first column present)
=============  =====================  ==============================================================

Every column name can be overridden (``ColumnOverrides``). An answer column may hold a string, an
integer (written with ``str``) or a list of strings (OlympiadBench's ``final_answer``: one element is
used as is, several are joined with ``", "``); one enclosing pair of ``$...$`` is removed. Floats are
rejected (``204.0`` vs ``204`` is ambiguous; store answers as strings). Every record that breaks a rule
is reported as a :class:`~cures_verl.data.schema.BadRow` naming the field and the reason; nothing is
dropped silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from cures_verl.data.answers import (
    AmbiguousAnswerError,
    gsm8k_final_answer,
    last_boxed_content,
    solution_answer,
    strip_math_delimiters,
)
from cures_verl.data.schema import is_missing, lookup, short_repr

__all__ = ["SourceFormat", "ColumnOverrides", "SOURCE_FORMATS", "get_source_format", "RowError", "extract_fields"]


class RowError(ValueError):
    """A record cannot be converted; ``field`` names the column and the message says why."""

    def __init__(self, field: str, reason: str, value: object = "") -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.value = short_repr(value) if value != "" else ""


@dataclass(frozen=True, kw_only=True)
class SourceFormat:
    """Column layout of one source format.

    Attributes:
        name: Format name (``math``, ``numina``, ``gsm8k``, ``deepscaler``, ``qa``).
        problem_columns: Candidate problem columns; the first one present in a record is used.
        answer_columns: Candidate final-answer columns, tried before ``solution_columns``.
        solution_columns: Candidate worked-solution columns whose boxes hold the answer.
        gsm8k_columns: Candidate GSM8K answer columns (text after ``####``).
        boxes_rule: How a solution's boxes give the answer: ``"last"``, the last box (verl's convention for
            MATH, whose solutions box the final answer once); ``"final_group"``, the boxes of the final answer
            group as a multi-answer gold, and a bad row when different answers are boxed apart
            (:func:`~cures_verl.data.answers.solution_answer`; Numina solutions box every part of a multi-part
            answer).
    """

    name: str
    problem_columns: tuple[str, ...]
    answer_columns: tuple[str, ...] = ()
    solution_columns: tuple[str, ...] = ()
    gsm8k_columns: tuple[str, ...] = ()
    boxes_rule: Literal["last", "final_group"] = "last"


@dataclass(frozen=True, kw_only=True)
class ColumnOverrides:
    """User-chosen column names; ``None`` keeps the format's default.

    Attributes:
        problem: Problem column.
        answer: Final-answer column (for ``gsm8k``: the ``#### ...`` column).
        solution: Worked-solution column (``math`` and ``numina``).
    """

    problem: str | None = None
    answer: str | None = None
    solution: str | None = None

    def apply(self, fmt: SourceFormat) -> SourceFormat:
        """Return ``fmt`` with these overrides applied."""
        out = fmt
        if self.problem is not None:
            out = replace(out, problem_columns=(self.problem,))
        if self.answer is not None:
            if out.gsm8k_columns:
                out = replace(out, gsm8k_columns=(self.answer,))
            else:
                out = replace(out, answer_columns=(self.answer,))
        if self.solution is not None:
            out = replace(out, solution_columns=(self.solution,))
        return out


SOURCE_FORMATS: dict[str, SourceFormat] = {
    "math": SourceFormat(name="math", problem_columns=("problem",), solution_columns=("solution",)),
    "numina": SourceFormat(
        name="numina",
        problem_columns=("problem",),
        answer_columns=("answer",),
        solution_columns=("solution",),
        boxes_rule="final_group",
    ),
    "gsm8k": SourceFormat(name="gsm8k", problem_columns=("question",), gsm8k_columns=("answer",)),
    "deepscaler": SourceFormat(name="deepscaler", problem_columns=("problem",), answer_columns=("answer",)),
    "qa": SourceFormat(name="qa", problem_columns=("problem", "question"), answer_columns=("answer", "final_answer")),
}


def get_source_format(name: str) -> SourceFormat:
    """Return the named format.

    Raises:
        ValueError: If ``name`` is unknown; the message lists the known formats.
    """
    return lookup(SOURCE_FORMATS, name, "source format")


def _first_present(record: Mapping[str, Any], columns: tuple[str, ...]) -> str | None:
    return next((column for column in columns if column in record), None)


def _answer_text(column: str, value: object) -> str:
    """Normalise an answer-column value to a non-empty string, or raise :class:`RowError`."""
    if isinstance(value, bool):
        raise RowError(column, "must be a string or an integer, got a boolean", value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        raise RowError(column, "is a float; store answers as strings (e.g. '204') so none is altered", value)
    if isinstance(value, list | tuple):
        if not value or not all(isinstance(part, str) for part in value):
            raise RowError(column, "a list answer must be a non-empty list of strings", value)
        parts = [strip_math_delimiters(part) for part in value]
        text = ", ".join(parts)
    elif isinstance(value, str):
        text = strip_math_delimiters(value)
    else:
        raise RowError(column, f"must be a string, got {type(value).__name__}", value)
    if not text.strip():
        raise RowError(column, "is empty", value)
    return text.strip()


def extract_fields(record: Mapping[str, Any], fmt: SourceFormat) -> tuple[str, str, str]:
    """Return ``(problem, ground_truth, answer_origin)`` from one source record.

    ``answer_origin`` says where the ground truth came from: ``answer_column``, ``solution_boxed`` or
    ``gsm8k_marker``.

    Args:
        record: One source row as a dict.
        fmt: Its source format (after column overrides).

    Raises:
        RowError: If the problem is missing, not a string or empty, or no valid ground truth can be read.

    Example:
        >>> extract_fields({"question": "1+1?", "answer": "1 + 1 = 2\\n#### 2"}, SOURCE_FORMATS["gsm8k"])
        ('1+1?', '2', 'gsm8k_marker')
    """
    problem_column = _first_present(record, fmt.problem_columns)
    if problem_column is None:
        raise RowError("/".join(fmt.problem_columns), "missing problem column")
    problem = record[problem_column]
    if is_missing(problem):
        raise RowError(problem_column, "is missing (null)")
    if not isinstance(problem, str):
        raise RowError(problem_column, f"must be a string, got {type(problem).__name__}", problem)
    if not problem.strip():
        raise RowError(problem_column, "is empty", problem)
    problem = problem.strip()

    if fmt.gsm8k_columns:
        column = _first_present(record, fmt.gsm8k_columns)
        if column is None or is_missing(record[column]):
            raise RowError("/".join(fmt.gsm8k_columns), "missing answer")
        value = record[column]
        if not isinstance(value, str):
            raise RowError(column, f"must be a string, got {type(value).__name__}", value)
        answer = gsm8k_final_answer(value)
        if answer is None:
            raise RowError(column, "has no '####' final-answer marker", value)
        if not answer:
            raise RowError(column, "nothing follows the '####' marker", value)
        return problem, answer, "gsm8k_marker"

    answer_column = _first_present(record, fmt.answer_columns)
    if answer_column is not None and not is_missing(record[answer_column]):
        value = record[answer_column]
        # numina: an empty answer cell falls through to the solution column (the documented rule)
        if not (fmt.solution_columns and isinstance(value, str) and not value.strip()):
            return problem, _answer_text(answer_column, value), "answer_column"

    solution_column = _first_present(record, fmt.solution_columns)
    if solution_column is None or is_missing(record[solution_column]):
        wanted = fmt.answer_columns + fmt.solution_columns
        raise RowError("/".join(wanted), "missing answer: no non-empty answer column and no solution column")
    solution = record[solution_column]
    if not isinstance(solution, str):
        raise RowError(solution_column, f"must be a string, got {type(solution).__name__}", solution)
    try:
        boxed = solution_answer(solution) if fmt.boxes_rule == "final_group" else last_boxed_content(solution)
    except AmbiguousAnswerError as exc:
        raise RowError(solution_column, str(exc), solution[-80:]) from None
    if boxed is None:
        raise RowError(
            solution_column, "no complete \\boxed{...} in the solution (missing or unbalanced braces)", solution[-80:]
        )
    if not boxed:
        raise RowError(solution_column, "the last \\boxed{} is empty", solution[-80:])
    return problem, boxed, "solution_boxed"
