"""Evaluate one model on prepared benchmark files and write samples, results and a Table 1 row.

Protocol (CurES Sec. 5, Table 1): MATH500, GSM8K, Gaokao-EN 2023, Minerva Math and OlympiadBench are
scored pass@1; AIME24, AIME25 and AMC23 avg@16. **The paper states no decoding settings for
evaluation**; our defaults (:class:`EvalSettings`) are:

* pass@1 benchmarks: greedy decoding (temperature 0), one sample;
* avg@16 benchmarks: temperature 1.0, top-p 1.0, 16 samples (the setting of the paper's training
  rollouts and of the GVM evaluation scripts the CurES repository inherited);
* at most 3072 new tokens (the training ``max_response_length``);
* the prompt template stored in the prepared file (the paper's by default).

Inputs are verl-format parquet files, one per benchmark (``scripts/prepare_data.py eval`` writes them
as ``<eval_dir>/<benchmark>.parquet``). Outputs under ``<output_dir>/<label>/``:

* ``samples/<benchmark>.jsonl``: every problem with its responses, per-sample accuracies and lengths;
* ``results.json``: settings and per-benchmark scores (the input of ``scripts/evaluate.py table``);
* ``table.md`` / ``table.json``: this model's Table 1 row (optionally with the paper's rows).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cures_verl.data.registry import DATASETS, TABLE1_BENCHMARKS
from cures_verl.evaluation.generation import Generator, SamplingSettings
from cures_verl.evaluation.scoring import Scorer, aggregate, sample_accuracy
from cures_verl.evaluation.table import TableRow, details_markdown, paper_rows, to_json, to_markdown

__all__ = [
    "EvalTask",
    "EvalSettings",
    "BenchmarkResult",
    "ModelResults",
    "discover_tasks",
    "load_task_rows",
    "evaluate_model",
    "load_results",
    "results_row",
    "write_table",
]

logger = logging.getLogger(__name__)

RESULTS_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class EvalTask:
    """One benchmark file to evaluate.

    Attributes:
        name: Benchmark name (``math500`` ...); the samples file is ``<name>.jsonl``.
        path: Prepared parquet file.
        num_samples: Samples per problem in the protocol (1 = pass@1, k > 1 = avg@k).
        column: Table 1 column, or ``None`` for a benchmark outside the table.
    """

    name: str
    path: Path
    num_samples: int
    column: str | None = None

    @property
    def metric(self) -> str:
        """``pass@1`` or ``avg@k``."""
        return "pass@1" if self.num_samples == 1 else f"avg@{self.num_samples}"


@dataclass(frozen=True, kw_only=True)
class EvalSettings:
    """Decoding settings of an evaluation run (the paper gives none; see the module docstring).

    Attributes:
        max_new_tokens: Maximum response tokens.
        pass1_temperature: Temperature of pass@1 benchmarks (0 = greedy).
        pass1_top_p: Top-p of pass@1 benchmarks (ignored when greedy).
        avg_temperature: Temperature of avg@k benchmarks (must be > 0).
        avg_top_p: Top-p of avg@k benchmarks.
        top_k: Top-k for sampled decoding (-1 = off).
        avg_num_samples: Replaces the protocol's k = 16 of avg@k benchmarks (e.g. fewer for a smoke test).
        seed: Sampling seed (each benchmark starts from it).
    """

    max_new_tokens: int = 3072
    pass1_temperature: float = 0.0
    pass1_top_p: float = 1.0
    avg_temperature: float = 1.0
    avg_top_p: float = 1.0
    top_k: int = -1
    avg_num_samples: int | None = None
    seed: int = 0

    def sampling_for(self, task: EvalTask) -> SamplingSettings:
        """Sampling settings of ``task``.

        Raises:
            ValueError: If an avg@k benchmark would be decoded greedily (k identical samples).
        """
        if task.num_samples == 1:
            return SamplingSettings(
                n=1,
                temperature=self.pass1_temperature,
                top_p=self.pass1_top_p,
                top_k=self.top_k,
                max_new_tokens=self.max_new_tokens,
                seed=self.seed,
            )
        n = self.avg_num_samples if self.avg_num_samples is not None else task.num_samples
        return SamplingSettings(
            n=n,
            temperature=self.avg_temperature,
            top_p=self.avg_top_p,
            top_k=self.top_k,
            max_new_tokens=self.max_new_tokens,
            seed=self.seed,
        )


@dataclass(frozen=True)
class BenchmarkResult:
    """Score of one benchmark for one model (accuracies in percent)."""

    name: str
    column: str | None
    metric: str
    data_sources: list[str]
    accuracy: float
    stderr: float
    num_problems: int
    num_samples: int
    mean_response_tokens: float
    truncated_rate: float
    scorer_extras: dict[str, float]
    sampling: dict[str, Any]
    path: str


@dataclass
class ModelResults:
    """All benchmark results of one model."""

    label: str
    model_path: str
    backend: str
    benchmarks: dict[str, BenchmarkResult] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (the ``results.json`` layout)."""
        return {
            "results_version": RESULTS_VERSION,
            "label": self.label,
            "model_path": self.model_path,
            "backend": self.backend,
            "settings": self.settings,
            "benchmarks": {name: asdict(result) for name, result in self.benchmarks.items()},
        }


def discover_tasks(eval_dir: str | Path, names: Sequence[str] = TABLE1_BENCHMARKS) -> list[EvalTask]:
    """Return the tasks for ``names`` found as ``<eval_dir>/<name>.parquet``.

    Known benchmarks take their sample count and Table 1 column from the registry; an unknown name
    ``foo`` may be given as ``foo@k`` to set its sample count (default 1).

    Raises:
        FileNotFoundError: If a benchmark file is missing; the message gives the command that writes it.
    """
    tasks = []
    seen: set[str] = set()
    for entry in names:
        name, _, k = entry.partition("@")
        if name in seen:
            raise ValueError(f"benchmark {name!r} is listed twice; each benchmark is evaluated once per run")
        seen.add(name)
        spec = DATASETS.get(name)
        path = Path(eval_dir) / f"{name}.parquet"
        if not path.is_file():
            raise FileNotFoundError(
                f"benchmark file {path} not found; write it with: python scripts/prepare_data.py eval "
                f"--benchmarks {name} --output-dir {eval_dir}"
            )
        if k:
            num_samples = int(k)
        elif spec is not None and spec.num_samples is not None:
            num_samples = spec.num_samples
        else:
            num_samples = 1
        if num_samples < 1:
            raise ValueError(f"benchmark {entry!r}: the sample count after '@' must be >= 1")
        tasks.append(
            EvalTask(name=name, path=path, num_samples=num_samples, column=spec.table_column if spec else None)
        )
    return tasks


def load_task_rows(path: str | Path) -> list[dict[str, Any]]:
    """Read a verl-format parquet and check the fields evaluation needs.

    Raises:
        ValueError: If a row lacks ``prompt`` messages, a string ``data_source`` or a ground truth.
    """
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = pq.read_table(Path(path)).to_pylist()
    if not rows:
        raise ValueError(f"{path} has no rows")
    for position, row in enumerate(rows):
        reward = row.get("reward_model")
        if not isinstance(row.get("prompt"), list) or not row["prompt"]:
            raise ValueError(f"{path} row {position}: 'prompt' must be a non-empty list of chat messages")
        if not isinstance(row.get("data_source"), str):
            raise ValueError(f"{path} row {position}: 'data_source' must be a string")
        if not isinstance(reward, Mapping) or reward.get("ground_truth") is None:
            raise ValueError(f"{path} row {position}: 'reward_model.ground_truth' is missing")
    return rows


def _score_task(
    task: EvalTask, rows: Sequence[Mapping[str, Any]], completions: Sequence[Sequence[Any]], scorer: Scorer
) -> tuple[list[list[float]], list[list[dict[str, float]]], list[dict[str, Any]]]:
    accuracies: list[list[float]] = []
    extras: list[list[dict[str, float]]] = []
    records: list[dict[str, Any]] = []
    for position, (row, samples) in enumerate(zip(rows, completions, strict=True)):
        info = row.get("extra_info") or {}
        problem_acc: list[float] = []
        problem_extras: list[dict[str, float]] = []
        for j, completion in enumerate(samples):
            result = scorer(
                data_source=row["data_source"],
                solution_str=completion.text,
                ground_truth=row["reward_model"]["ground_truth"],
                extra_info=dict(info),
            )
            try:
                accuracy, extra = sample_accuracy(result)
            except ValueError as exc:
                raise ValueError(f"{task.name} row {position} sample {j}: {exc}") from None
            problem_acc.append(accuracy)
            problem_extras.append(extra)
        accuracies.append(problem_acc)
        extras.append(problem_extras)
        records.append(
            {
                "position": position,
                "index": info.get("index", position),
                "data_source": row["data_source"],
                "ground_truth": row["reward_model"]["ground_truth"],
                "problem": info.get("problem"),
                "mean_accuracy": math.fsum(problem_acc) / len(problem_acc),
                "responses": [c.text for c in samples],
                "accuracies": problem_acc,
                "num_tokens": [c.num_tokens for c in samples],
                "truncated": [c.truncated for c in samples],
            }
        )
    return accuracies, extras, records


def evaluate_model(
    generator: Generator,
    tasks: Sequence[EvalTask],
    *,
    scorer: Scorer,
    settings: EvalSettings,
    output_dir: str | Path,
    label: str,
    model_path: str = "",
    backend: str = "",
    paper: str = "none",
) -> ModelResults:
    """Generate, score and write every task for one model.

    Args:
        generator: The model's generator (:mod:`cures_verl.evaluation.generation`).
        tasks: Benchmarks to run (see :func:`discover_tasks`).
        scorer: Reward function (see :mod:`cures_verl.evaluation.scoring`).
        settings: Decoding settings.
        output_dir: Results go to ``<output_dir>/<label>/``.
        label: Row label of this model in the table.
        model_path: Recorded in ``results.json``.
        backend: Recorded in ``results.json``.
        paper: Which paper rows to add to ``table.md``: ``1.5B``, ``7B``, ``all`` or ``none``.

    Returns:
        The per-benchmark results (also written to ``results.json``).
    """
    paper_rows(paper)  # fail on a bad value before any generation
    samplings = {task.name: settings.sampling_for(task) for task in tasks}  # likewise for bad decoding settings
    tables = {task.name: load_task_rows(task.path) for task in tasks}
    root = Path(output_dir) / label
    (root / "samples").mkdir(parents=True, exist_ok=True)
    results = ModelResults(label, model_path, backend, settings=asdict(settings))
    for task in tasks:
        rows = tables[task.name]
        sampling = samplings[task.name]
        logger.info("%s: %d problems x %d samples (%s)", task.name, len(rows), sampling.n, task.metric)
        completions = generator.generate([row["prompt"] for row in rows], sampling, desc=task.name)
        if len(completions) != len(rows) or any(len(c) != sampling.n for c in completions):
            raise RuntimeError(f"{task.name}: the generator returned the wrong number of completions")
        accuracies, extras, records = _score_task(task, rows, completions, scorer)
        score = aggregate(accuracies, extras)
        all_samples = [c for samples in completions for c in samples]
        metric = "pass@1" if sampling.n == 1 else f"avg@{sampling.n}"
        results.benchmarks[task.name] = BenchmarkResult(
            name=task.name,
            column=task.column,
            metric=metric,
            data_sources=sorted({row["data_source"] for row in rows}),
            accuracy=score.accuracy,
            stderr=score.stderr,
            num_problems=score.num_problems,
            num_samples=score.num_samples,
            mean_response_tokens=math.fsum(c.num_tokens for c in all_samples) / len(all_samples),
            truncated_rate=sum(c.truncated for c in all_samples) / len(all_samples),
            scorer_extras=score.extras,
            sampling=sampling.to_dict(),
            path=str(task.path),
        )
        with (root / "samples" / f"{task.name}.jsonl").open("w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        logger.info("%s: %s = %.2f (+- %.2f)", task.name, metric, score.accuracy, score.stderr)
    (root / "results.json").write_text(json.dumps(results.to_dict(), indent=2) + "\n", encoding="utf-8")
    write_table([results_row(results.to_dict())], root / "table", paper=paper, settings=asdict(settings))
    return results


def load_results(path: str | Path) -> dict[str, Any]:
    """Read a ``results.json`` written by :func:`evaluate_model`.

    Raises:
        ValueError: If the file is not a results file of a supported version.
    """
    data: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    if data.get("results_version") != RESULTS_VERSION or "benchmarks" not in data:
        raise ValueError(f"{path} is not a results.json written by scripts/evaluate.py (version {RESULTS_VERSION})")
    return data


def results_row(results: Mapping[str, Any], label: str | None = None) -> TableRow:
    """Turn a results dict into a Table 1 row (benchmarks outside the table go to ``details`` only)."""
    scores: dict[str, float] = {}
    details: dict[str, Any] = {}
    for name, bench in results["benchmarks"].items():
        details[name] = {
            key: bench[key] for key in ("metric", "accuracy", "stderr", "num_problems", "num_samples", "truncated_rate")
        }
        if bench.get("column"):
            scores[bench["column"]] = float(bench["accuracy"])
    return TableRow(label or results["label"], scores, source="measured", details=details)


def write_table(
    rows: Sequence[TableRow], stem: str | Path, *, paper: str = "none", settings: Mapping[str, Any] | None = None
) -> tuple[Path, Path]:
    """Write ``<stem>.md`` and ``<stem>.json`` with ``rows`` plus the requested paper rows.

    Returns:
        The markdown and JSON paths.
    """
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    all_rows = [*paper_rows(paper), *rows]
    markdown = stem.with_suffix(".md")
    markdown.write_text(to_markdown(all_rows) + "\n\n" + details_markdown(rows) + "\n", encoding="utf-8")
    as_json = stem.with_suffix(".json")
    as_json.write_text(to_json(all_rows, settings=settings), encoding="utf-8")
    return markdown, as_json
