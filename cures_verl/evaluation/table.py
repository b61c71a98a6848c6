"""Results tables shaped like the paper's Table 1, plus the paper's own rows for comparison.

Table 1 of CurES (arXiv 2510.01037, v1) has one row per model and eight benchmark columns: MATH500,
GSM8K, GAO23, MINERVA, OLYM (pass@1) and AIME24, AIME25, AMC23 (avg@16), then ``Avg.``, the unweighted
mean of the eight. We print ``Avg.`` only for rows that have all eight columns; a partial row would not
be comparable with the paper.

The paper's numbers below are transcribed from v1 (``/work/shared/docs/cures_method.md`` section 8);
``tests/evaluation/test_table.py`` checks that every row's ``Avg.`` is the mean of its columns.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "TABLE1_COLUMNS",
    "PAPER_TABLE1",
    "TableRow",
    "paper_rows",
    "table_average",
    "to_markdown",
    "details_markdown",
    "to_json",
]

TABLE1_COLUMNS: tuple[str, ...] = ("MATH500", "GSM8K", "GAO23", "MINERVA", "OLYM", "AIME24", "AIME25", "AMC23")

# (base model, method, the eight columns in TABLE1_COLUMNS order, reported Avg.)
PAPER_TABLE1: tuple[tuple[str, str, tuple[float, ...], float], ...] = (
    ("Qwen2.5-Math-1.5B", "base", (40.20, 43.90, 25.19, 11.40, 21.04, 1.67, 1.67, 14.84), 20.00),
    ("Qwen2.5-Math-1.5B", "GRPO", (73.80, 86.43, 48.83, 27.94, 35.41, 8.54, 6.67, 45.47), 41.64),
    ("Qwen2.5-Math-1.5B", "RPP", (64.80, 82.94, 42.08, 21.32, 29.19, 4.17, 3.33, 39.06), 35.86),
    ("Qwen2.5-Math-1.5B", "Speed-RL-GRPO", (68.80, 85.67, 47.14, 27.40, 35.56, 12.08, 6.88, 47.19), 41.34),
    ("Qwen2.5-Math-1.5B", "Speed-RL-RPP", (65.80, 85.67, 48.31, 27.94, 36.30, 12.58, 10.08, 47.34), 41.75),
    ("Qwen2.5-Math-1.5B", "GVM-GRPO", (74.80, 84.23, 48.83, 27.21, 35.56, 10.21, 11.25, 50.47), 42.82),
    ("Qwen2.5-Math-1.5B", "GVM-RPP", (75.40, 84.00, 49.61, 24.63, 35.56, 11.46, 6.04, 50.94), 42.21),
    ("Qwen2.5-Math-1.5B", "CurES-GRPO", (77.20, 85.97, 51.43, 31.62, 37.33, 13.33, 10.42, 52.19), 44.94),
    ("Qwen2.5-Math-1.5B", "CurES-RPP", (75.40, 85.82, 51.43, 28.31, 37.04, 12.71, 11.46, 50.94), 44.14),
    ("Qwen2.5-Math-7B", "base", (60.20, 72.40, 44.68, 22.79, 30.81, 7.92, 1.88, 27.19), 33.48),
    ("Qwen2.5-Math-7B", "GRPO", (80.00, 91.43, 51.43, 31.99, 38.37, 20.00, 10.00, 57.50), 47.59),
    ("Qwen2.5-Math-7B", "RPP", (81.20, 91.89, 55.58, 39.71, 40.00, 18.54, 11.67, 62.81), 50.18),
    ("Qwen2.5-Math-7B", "Speed-RL-GRPO", (82.80, 88.70, 55.58, 29.41, 42.37, 20.21, 11.46, 60.16), 48.84),
    ("Qwen2.5-Math-7B", "Speed-RL-RPP", (78.60, 91.81, 53.77, 37.13, 42.96, 17.29, 12.08, 62.81), 49.56),
    ("Qwen2.5-Math-7B", "GVM-GRPO", (81.60, 91.28, 54.03, 32.72, 42.67, 23.54, 15.00, 64.31), 50.64),
    ("Qwen2.5-Math-7B", "GVM-RPP", (81.60, 90.07, 55.32, 29.04, 40.30, 17.50, 8.33, 53.44), 46.95),
    ("Qwen2.5-Math-7B", "CurES-GRPO", (84.80, 92.27, 56.62, 37.87, 43.56, 24.58, 15.21, 64.38), 52.41),
    ("Qwen2.5-Math-7B", "CurES-RPP", (81.80, 91.89, 54.55, 33.09, 40.59, 23.33, 12.92, 58.75), 49.62),
)

PAPER_MODELS = {"1.5B": "Qwen2.5-Math-1.5B", "7B": "Qwen2.5-Math-7B"}


def table_average(scores: Mapping[str, float | None]) -> float | None:
    """Return the unweighted mean of the eight Table 1 columns, or ``None`` if any is missing.

    Args:
        scores: Column name -> score in percent (``None`` or absent when not evaluated).

    Example:
        >>> table_average(dict.fromkeys(TABLE1_COLUMNS, 50.0))
        50.0
        >>> table_average({"MATH500": 80.0}) is None
        True
    """
    values = [scores.get(column) for column in TABLE1_COLUMNS]
    if any(value is None for value in values):
        return None
    return math.fsum(float(value) for value in values if value is not None) / len(TABLE1_COLUMNS)


@dataclass(frozen=True)
class TableRow:
    """One row of a results table.

    Attributes:
        label: Row name (model or checkpoint label).
        scores: Column -> score in percent; columns not evaluated are absent.
        source: ``measured`` (our evaluation) or ``paper`` (reported in the paper).
        details: Extra per-column information for the JSON output (metric, problems, samples, stderr...).
    """

    label: str
    scores: dict[str, float]
    source: str = "measured"
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def average(self) -> float | None:
        """``Avg.`` over the eight columns, ``None`` unless all eight are present."""
        return table_average(self.scores)


def paper_rows(which: str) -> list[TableRow]:
    """Return the paper's Table 1 rows for ``which`` in ``{"1.5B", "7B", "all", "none"}``.

    Raises:
        ValueError: If ``which`` is not one of these.

    Example:
        >>> [row.label for row in paper_rows("7B")][-1]
        'Qwen2.5-Math-7B +CurES-RPP (paper)'
    """
    if which == "none":
        return []
    if which not in (*PAPER_MODELS, "all"):
        raise ValueError(f"paper rows {which!r} unknown: choose 1.5B, 7B, all or none")
    models = set(PAPER_MODELS.values()) if which == "all" else {PAPER_MODELS[which]}
    rows = []
    for model, method, values, _reported_avg in PAPER_TABLE1:
        if model in models:
            label = f"{model} (paper)" if method == "base" else f"{model} +{method} (paper)"
            rows.append(TableRow(label, dict(zip(TABLE1_COLUMNS, values, strict=True)), source="paper"))
    return rows


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def to_markdown(rows: Sequence[TableRow], *, columns: Sequence[str] = TABLE1_COLUMNS) -> str:
    """Render rows as a GitHub markdown table with the Table 1 columns and ``Avg.``.

    Example:
        >>> print(to_markdown([TableRow("m", {"MATH500": 12.5})], columns=("MATH500", "GSM8K")))
        | Model | MATH500 | GSM8K | Avg. |
        |---|---|---|---|
        | m | 12.50 | – | – |
        <BLANKLINE>
        Avg. is the mean of all 8 Table 1 columns; it is shown only for rows that have all of them.
    """
    lines = ["| Model | " + " | ".join(columns) + " | Avg. |", "|" + "---|" * (len(columns) + 2)]
    for row in rows:
        cells = [_cell(row.scores.get(column)) for column in columns]
        lines.append(f"| {row.label} | " + " | ".join(cells) + f" | {_cell(row.average)} |")
    lines.append("")
    lines.append("Avg. is the mean of all 8 Table 1 columns; it is shown only for rows that have all of them.")
    return "\n".join(lines)


def details_markdown(rows: Sequence[TableRow]) -> str:
    """Render every benchmark of the measured rows (Table 1 or not) with its metric, error and lengths.

    Example:
        >>> detail = {"metric": "avg@16", "accuracy": 12.5, "stderr": 1.25, "num_problems": 30,
        ...           "num_samples": 16, "truncated_rate": 0.1}
        >>> print(details_markdown([TableRow("m", {}, details={"aime24": detail})]).splitlines()[-1])
        | m | aime24 | avg@16 | 12.50 ± 1.25 | 30 x 16 | 10.0% |
    """
    lines = [
        "| Model | Benchmark | Metric | Accuracy (%) | Problems x samples | Truncated |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        for name, d in row.details.items():
            lines.append(
                f"| {row.label} | {name} | {d['metric']} | {d['accuracy']:.2f} ± {d['stderr']:.2f} | "
                f"{d['num_problems']} x {d['num_samples']} | {100 * d['truncated_rate']:.1f}% |"
            )
    return "\n".join(lines)


def to_json(rows: Sequence[TableRow], *, settings: Mapping[str, Any] | None = None) -> str:
    """Render rows as JSON: ``{"columns", "rows": [{"label", "source", "scores", "avg", "details"}], "settings"}``."""
    payload = {
        "columns": list(TABLE1_COLUMNS),
        "rows": [
            {"label": r.label, "source": r.source, "scores": r.scores, "avg": r.average, "details": r.details}
            for r in rows
        ],
        "settings": dict(settings or {}),
    }
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
