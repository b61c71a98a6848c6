"""Shared fixtures: a tiny random Qwen2 model with a word-level tokenizer, and prepared benchmark files."""

from __future__ import annotations

from pathlib import Path

import pytest

from cures_verl.data import PrepareOptions, get_template
from cures_verl.data.build import build_dataset, load_inputs
from cures_verl.data.registry import get_dataset

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory):
    """The demo builder's tiny Qwen2 model and word-level tokenizer, built offline in about a second.

    The weight matrices are re-drawn with std 0.5 (instead of the usual 0.02) so that the untrained model's
    greedy output depends on the prompt: with near-zero weights every prompt yields the same tokens, and a
    test comparing batched with one-at-a-time generation could not notice a broken attention mask.
    """
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from cures_verl.experiments.trainer.assets import build_demo_assets

    assets = build_demo_assets(
        tmp_path_factory.mktemp("tiny"), num_prompts=8, num_val_prompts=8, warm_start_steps=0, seed=0
    )
    model = transformers.AutoModelForCausalLM.from_pretrained(assets.model_dir)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() >= 2:
                parameter.normal_(0.0, 0.5, generator=generator)
    model.save_pretrained(assets.model_dir)
    return assets


def _prepare_benchmark(eval_dir: Path, name: str, fixture: str) -> Path:
    spec = get_dataset(name)
    options = PrepareOptions(
        dataset_name=name, split="test", source_format=spec.source_format, template=get_template("cures")
    )
    inputs = load_inputs(name, input_paths=[FIXTURES / fixture])
    return build_dataset(inputs, options, eval_dir / f"{name}.parquet").output


@pytest.fixture
def prepare_benchmark():
    """``prepare_benchmark(eval_dir, name, fixture)`` writes ``eval_dir/<name>.parquet`` from a fixture file."""
    return _prepare_benchmark
