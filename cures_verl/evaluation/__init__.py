"""Evaluation of checkpoints on the paper's Table 1 benchmarks (see ``docs/evaluation.md``).

Imports only the standard library at import time; torch/transformers (``hf`` backend), vLLM (``vllm``
backend), pyarrow and tqdm are imported when used. No verl.
"""

from __future__ import annotations

from cures_verl.evaluation.generation import (
    Completion,
    Generator,
    HFGenerator,
    SamplingSettings,
    VLLMGenerator,
    build_generator,
)
from cures_verl.evaluation.runner import (
    BenchmarkResult,
    EvalSettings,
    EvalTask,
    ModelResults,
    discover_tasks,
    evaluate_model,
    load_results,
    load_task_rows,
    results_row,
    write_table,
)
from cures_verl.evaluation.scoring import DEFAULT_SCORER, aggregate, load_scorer, sample_accuracy
from cures_verl.evaluation.table import PAPER_TABLE1, TABLE1_COLUMNS, TableRow, paper_rows, to_json, to_markdown

__all__ = [
    "BenchmarkResult",
    "Completion",
    "DEFAULT_SCORER",
    "EvalSettings",
    "EvalTask",
    "Generator",
    "HFGenerator",
    "ModelResults",
    "PAPER_TABLE1",
    "SamplingSettings",
    "TABLE1_COLUMNS",
    "TableRow",
    "VLLMGenerator",
    "aggregate",
    "build_generator",
    "discover_tasks",
    "evaluate_model",
    "load_results",
    "load_scorer",
    "load_task_rows",
    "paper_rows",
    "results_row",
    "sample_accuracy",
    "to_json",
    "to_markdown",
    "write_table",
]
