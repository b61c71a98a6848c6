"""scripts/evaluate.py end to end on CPU: the transformers backend on a tiny model, then the merged table."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


@pytest.fixture(scope="module")
def cli() -> ModuleType:
    spec = importlib.util.spec_from_file_location("evaluate_script", ROOT / "scripts" / "evaluate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_run_then_table_on_cpu(cli: ModuleType, tiny_model, prepare_benchmark, tmp_path: Path, capsys) -> None:
    eval_dir = tmp_path / "eval"
    prepare_benchmark(eval_dir, "gsm8k", "gsm8k_sample.jsonl")
    prepare_benchmark(eval_dir, "amc23", "eval_qa_sample.jsonl")
    scorer = f"{FIXTURES / 'exact_match_scorer.py'}:compute_score"
    common = ["run", "--model", str(tiny_model.model_dir), "--tokenizer", str(tiny_model.tokenizer_dir)]
    common += ["--backend", "hf", "--eval-dir", str(eval_dir), "--benchmarks", "gsm8k,amc23", "--scorer", scorer]
    common += ["--max-new-tokens", "4", "--avg-num-samples", "2", "--batch-size", "3", "--output-dir", str(tmp_path)]
    assert cli.main([*common, "--label", "step0"]) == 0
    assert cli.main([*common, "--label", "step1", "--seed", "1"]) == 0
    results = json.loads((tmp_path / "step0" / "results.json").read_text())
    amc = results["benchmarks"]["amc23"]
    assert (amc["metric"], amc["num_problems"], amc["num_samples"]) == ("avg@2", 4, 2)
    assert amc["sampling"]["temperature"] == 1.0 and results["backend"] == "hf"
    samples = [json.loads(line) for line in (tmp_path / "step0" / "samples" / "gsm8k.jsonl").read_text().splitlines()]
    assert len(samples) == 4 and all(len(s["responses"]) == 1 and s["num_tokens"][0] <= 4 for s in samples)

    stem = tmp_path / "merged"
    files = [str(tmp_path / label / "results.json") for label in ("step0", "step1")]
    assert cli.main(["table", *files, "--paper-rows", "7B", "--output", str(stem)]) == 0
    table = json.loads(stem.with_suffix(".json").read_text())
    assert [row["label"] for row in table["rows"]][-2:] == ["step0", "step1"]
    assert sum(row["source"] == "paper" for row in table["rows"]) == 9
    assert "| step1 |" in capsys.readouterr().out


def test_run_reports_a_missing_benchmark_file(cli: ModuleType, tmp_path: Path, capsys) -> None:
    argv = ["run", "--model", "unused", "--backend", "hf", "--eval-dir", str(tmp_path), "--benchmarks", "math500"]
    assert cli.main(argv) == 2
    assert "prepare_data.py eval --benchmarks math500" in capsys.readouterr().err
