"""Every ground truth the converters produce is accepted by the training reward (math-verify)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cures_verl.data import PrepareOptions, get_template, prepare_rows
from cures_verl.data.build import load_inputs

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

CASES = [
    ("math", "math", "math_sample.jsonl"),
    ("gsm8k", "gsm8k", "gsm8k_sample.jsonl"),
    ("numina_math", "numina", "numina_sample.jsonl"),
    ("deepscaler", "deepscaler", "deepscaler_sample.json"),
    ("olympiadbench", "qa", "eval_qa_sample.jsonl"),
]


@pytest.mark.parametrize(("name", "fmt", "fixture"), CASES)
def test_each_ground_truth_parses_and_verifies_against_itself(name: str, fmt: str, fixture: str) -> None:
    pytest.importorskip("math_verify")
    reward = pytest.importorskip("cures_verl.reward.math_verify")
    options = PrepareOptions(dataset_name=name, split="test", source_format=fmt, template=get_template("cures"))
    rows = prepare_rows(load_inputs(name, input_paths=[FIXTURES / fixture]), options).rows
    for row in rows:
        truth = row["reward_model"]["ground_truth"]
        result = reward.compute_score(
            data_source=row["data_source"], solution_str=f"Thus $\\boxed{{{truth}}}$.", ground_truth=truth
        )
        assert (result["gold_parsed"], result["acc"]) == (1.0, 1.0), (name, truth, result)
