"""Prepared files load the way verl 0.9.1 loads them (datasets parquet reader, RLHFDataset, collate_fn)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cures_verl.data import PrepareOptions, get_template
from cures_verl.data.build import build_dataset, load_inputs

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _prepare(tmp_path: Path, name: str, fmt: str, fixture: str, **kwargs: object) -> Path:
    options = PrepareOptions(
        dataset_name=name, split="test", source_format=fmt, template=get_template("cures"), **kwargs
    )
    inputs = load_inputs(name, input_paths=[FIXTURES / fixture])
    return build_dataset(inputs, options, tmp_path / f"{name}.parquet").output


def test_files_from_different_sources_concatenate_in_datasets(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    gsm8k = _prepare(tmp_path, "gsm8k", "gsm8k", "gsm8k_sample.jsonl")
    numina = _prepare(tmp_path, "numina_math", "numina", "numina_sample.jsonl", pass_rate_column="pass_rate")
    # verl's RLHFDataset: load_dataset("parquet", ...)["train"] per file, then concatenate_datasets
    parts = [datasets.load_dataset("parquet", data_files=str(p))["train"] for p in (gsm8k, numina)]
    merged = datasets.concatenate_datasets(parts)
    assert len(merged) == 14
    assert merged[4]["data_source"] == "cures-numina_math"
    assert merged[4]["extra_info"]["pass_rate"] == 0.75 and merged[0]["extra_info"]["pass_rate"] is None


def test_verl_rlhf_dataset_reads_prompt_index_and_extra_info(tmp_path: Path) -> None:
    pytest.importorskip("verl")
    from omegaconf import OmegaConf
    from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn

    path = _prepare(tmp_path, "numina_math", "numina", "numina_sample.jsonl", id_column="id", num_subsets=3)
    config = OmegaConf.create({"filter_overlong_prompts": False, "cache_dir": str(tmp_path / "cache")})
    dataset = RLHFDataset(str(path), tokenizer=None, config=config)
    assert len(dataset) == 10
    batch = collate_fn([dataset[i] for i in range(len(dataset))])
    # verl turns extra_info.index into the item's index: it must be the row position
    assert batch["index"].tolist() == list(range(10))
    assert [info["index"] for info in batch["extra_info"]] == list(range(10))
    assert batch["raw_prompt"][0][0]["role"] == "system"
    assert {gt["style"] for gt in batch["reward_model"]} == {"rule"}
    assert [info["subset"] for info in batch["extra_info"]] == sorted(info["subset"] for info in batch["extra_info"])


def test_verls_builtin_scorer_refuses_our_data_sources() -> None:
    # our data_source names must not be silently routed to another rule by verl's default_compute_score
    pytest.importorskip("verl")
    from verl.utils.reward_score import default_compute_score

    from cures_verl.data import DATASETS, data_source_name

    for name in DATASETS:
        with pytest.raises(NotImplementedError):
            default_compute_score(data_source_name(name), "\\boxed{1}", "1")
