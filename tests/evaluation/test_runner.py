"""evaluate_model with a scripted generator: exact accuracies, files written, settings per benchmark."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from cures_verl.data import read_prepared
from cures_verl.data.registry import TABLE1_BENCHMARKS
from cures_verl.evaluation.generation import Completion, SamplingSettings
from cures_verl.evaluation.runner import (
    EvalSettings,
    discover_tasks,
    evaluate_model,
    load_results,
    results_row,
)
from cures_verl.evaluation.scoring import load_scorer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SCORER = load_scorer(f"{FIXTURES / 'exact_match_scorer.py'}:compute_score")


class ScriptedGenerator:
    """Answers from a rule ``(problem text, ground truth, sample number) -> response``; records every call."""

    def __init__(self, eval_dir: Path, rule: Callable[[str, str, int], str]) -> None:
        self.truth = {}
        for path in eval_dir.glob("*.parquet"):
            for row in read_prepared(path):
                self.truth[row["prompt"][-1]["content"]] = (
                    row["extra_info"]["problem"],
                    row["reward_model"]["ground_truth"],
                )
        self.rule = rule
        self.calls: list[tuple[str, SamplingSettings]] = []

    def generate(self, prompts: Sequence[Any], settings: SamplingSettings, *, desc: str = "") -> list[list[Completion]]:
        self.calls.append((desc, settings))
        out = []
        for messages in prompts:
            problem, truth = self.truth[messages[-1]["content"]]
            texts = [self.rule(problem, truth, j) for j in range(settings.n)]
            out.append([Completion(text, len(text.split()), False) for text in texts])
        return out


@pytest.fixture
def eval_dir(tmp_path: Path, prepare_benchmark) -> Path:
    directory = tmp_path / "eval"
    prepare_benchmark(directory, "gsm8k", "gsm8k_sample.jsonl")  # 4 problems, pass@1
    prepare_benchmark(directory, "aime24", "deepscaler_sample.json")  # 3 problems, avg@16
    return directory


def test_accuracies_follow_the_protocol_and_files_are_written(eval_dir: Path, tmp_path: Path) -> None:
    def rule(problem: str, truth: str, j: int) -> str:
        if "times 100,000" in problem:  # the last GSM8K problem is answered wrongly
            return "the answer is 5"
        if truth == "32":  # AIME: 4/4, 2/4, 0/4 samples right -> 100, 50, 0 -> 50.0
            return f"answer {truth}"
        if truth == "2":
            return f"answer {truth}" if j < 2 else "answer 0"
        return "no idea" if truth == "1" else f"answer {truth}"

    generator = ScriptedGenerator(eval_dir, rule)
    tasks = discover_tasks(eval_dir, ["gsm8k", "aime24"])
    settings = EvalSettings(max_new_tokens=32, avg_num_samples=4, seed=3)
    results = evaluate_model(
        generator, tasks, scorer=SCORER, settings=settings, output_dir=tmp_path / "out", label="m1", paper="1.5B"
    )
    gsm8k, aime = results.benchmarks["gsm8k"], results.benchmarks["aime24"]
    assert (gsm8k.accuracy, gsm8k.metric, gsm8k.num_problems, gsm8k.num_samples) == (75.0, "pass@1", 4, 1)
    assert (aime.accuracy, aime.metric, aime.num_problems, aime.num_samples) == (50.0, "avg@4", 3, 4)
    assert gsm8k.scorer_extras == {"answered": 1.0} and gsm8k.data_sources == ["cures-gsm8k"]

    # decoding: greedy for pass@1, sampled for avg@k, both with the run's budget and seed
    (desc0, s0), (desc1, s1) = generator.calls
    assert (desc0, s0.n, s0.temperature, s0.max_new_tokens, s0.seed) == ("gsm8k", 1, 0.0, 32, 3)
    assert (desc1, s1.n, s1.temperature, s1.top_p, s1.seed) == ("aime24", 4, 1.0, 1.0, 3)

    root = tmp_path / "out" / "m1"
    saved = load_results(root / "results.json")
    assert saved["benchmarks"]["aime24"]["accuracy"] == 50.0 and saved["settings"]["avg_num_samples"] == 4
    samples = [json.loads(line) for line in (root / "samples" / "aime24.jsonl").read_text().splitlines()]
    assert [s["accuracies"] for s in samples] == [[1.0] * 4, [1.0, 1.0, 0.0, 0.0], [0.0] * 4]
    assert samples[1]["responses"][3] == "answer 0" and samples[1]["ground_truth"] == "2"
    table = (root / "table.md").read_text()
    assert "| m1 | – | 75.00 | – | – | – | 50.00 | – | – | – |" in table
    assert "Qwen2.5-Math-1.5B +CurES-GRPO (paper)" in table
    assert "| m1 | aime24 | avg@4 | 50.00 ± 28.87 | 3 x 4 | 0.0% |" in table


def test_all_eight_benchmarks_give_an_average(tmp_path: Path, prepare_benchmark) -> None:
    directory = tmp_path / "eval"
    for name in TABLE1_BENCHMARKS:
        prepare_benchmark(directory, name, "gsm8k_sample.jsonl" if name == "gsm8k" else "deepscaler_sample.json")
    generator = ScriptedGenerator(directory, lambda problem, truth, j: f"so {truth}" if j % 2 == 0 else "so ?")
    settings = EvalSettings(avg_num_samples=2)
    results = evaluate_model(
        generator, discover_tasks(directory), scorer=SCORER, settings=settings, output_dir=tmp_path, label="half"
    )
    row = results_row(results.to_dict())
    # pass@1 benchmarks use sample 0 only (always right); avg@2 benchmarks get one right, one wrong
    assert row.scores == {"MATH500": 100.0, "GSM8K": 100.0, "GAO23": 100.0, "MINERVA": 100.0, "OLYM": 100.0,
                          "AIME24": 50.0, "AIME25": 50.0, "AMC23": 50.0}  # fmt: skip
    assert row.average == pytest.approx((5 * 100 + 3 * 50) / 8)
    assert "81.25 |" in (tmp_path / "half" / "table.md").read_text()


def test_greedy_avg_at_k_is_rejected_before_any_generation(eval_dir: Path, tmp_path: Path) -> None:
    generator = ScriptedGenerator(eval_dir, lambda *_: "x")
    with pytest.raises(ValueError, match="identical samples"):
        evaluate_model(
            generator,
            discover_tasks(eval_dir, ["gsm8k", "aime24"]),
            scorer=SCORER,
            settings=EvalSettings(avg_temperature=0.0),
            output_dir=tmp_path,
            label="m",
        )
    assert generator.calls == []


def test_a_scorer_that_returns_no_accuracy_is_reported_with_its_location(eval_dir: Path, tmp_path: Path) -> None:
    generator = ScriptedGenerator(eval_dir, lambda *_: "x")
    with pytest.raises(ValueError, match="gsm8k row 0 sample 0: scorer accuracy 5.0"):
        evaluate_model(
            generator,
            discover_tasks(eval_dir, ["gsm8k"]),
            scorer=lambda **kwargs: 5.0,
            settings=EvalSettings(),
            output_dir=tmp_path,
            label="m",
        )


def test_discover_tasks_reads_protocol_and_custom_sample_counts(eval_dir: Path, tmp_path: Path) -> None:
    (eval_dir / "custom.parquet").write_bytes((eval_dir / "gsm8k.parquet").read_bytes())
    tasks = {t.name: t for t in discover_tasks(eval_dir, ["gsm8k", "aime24", "custom@3"])}
    assert (tasks["gsm8k"].num_samples, tasks["gsm8k"].column) == (1, "GSM8K")
    assert (tasks["aime24"].num_samples, tasks["aime24"].metric) == (16, "avg@16")
    assert (tasks["custom"].num_samples, tasks["custom"].column) == (3, None)
    with pytest.raises(FileNotFoundError, match="prepare_data.py eval --benchmarks amc23"):
        discover_tasks(eval_dir, ["amc23"])
    with pytest.raises(ValueError, match="listed twice"):
        discover_tasks(eval_dir, ["gsm8k", "gsm8k@4"])


def test_load_results_rejects_other_json(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"benchmarks": {}}))
    with pytest.raises(ValueError, match="not a results.json"):
        load_results(path)
