"""Known datasets: where each comes from on the Hugging Face Hub and how to read it.

Training data (CurES Sec. 5, following GVM): Numina-Math split into 15 subsets of about 10k prompts,
published as ``ScaleML-RLHF/numina_math_{1..15}`` (columns ``problem``, ``answer``).

Evaluation (CurES Table 1): MATH500, GSM8K, Gaokao-EN 2023, Minerva Math and OlympiadBench scored
pass@1; AIME24, AIME25 and AMC23 scored avg@16 (mean accuracy over 16 samples per problem).

The paper does not name the Hub copies it evaluated on. The defaults below are widely used copies with
the standard sizes (500 / 1319 / 385 / 272 / 675 / 30 / 30 / 40); they were chosen from the Hub's
dataset cards and **not downloaded here** (no network in development). The CurES repository's AMC file
has 83 rows, which suggests ``AI-MO/aimo-validation-amc`` rather than the 40 AMC 2023 problems; pass
``--hf-path`` to use another copy. ``expected_rows`` only produces a warning when a copy differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cures_verl.data.schema import lookup

__all__ = ["DatasetSpec", "DATASETS", "TABLE1_BENCHMARKS", "NUMINA_NUM_SUBSETS", "get_dataset", "numina_subset_path"]

NUMINA_NUM_SUBSETS = 15
_NUMINA_HF_PATTERN = "ScaleML-RLHF/numina_math_{subset}"


@dataclass(frozen=True, kw_only=True)
class DatasetSpec:
    """One dataset known to ``scripts/prepare_data.py``.

    Attributes:
        name: Short name; the prepared file is ``<name>.parquet`` and ``data_source`` is ``cures-<name>``.
        hf_path: Hub dataset id (for Numina, a pattern with ``{subset}``).
        hf_config: Hub config name, or ``None``.
        hf_split: Hub split to read.
        source_format: A :data:`~cures_verl.data.sources.SOURCE_FORMATS` key.
        split: ``train`` or ``test`` (stored in ``extra_info.split``).
        table_column: Column header in the paper's Table 1 (evaluation benchmarks only).
        num_samples: Samples per problem in the paper's protocol: 1 (pass@1) or 16 (avg@16).
        expected_rows: Rows of the standard version, for a sanity warning; ``None`` to skip.
        id_column: Source column with a stable problem id, or ``None`` (then ``<source>:<row>``).
    """

    name: str
    hf_path: str
    hf_config: str | None = None
    hf_split: str = "train"
    source_format: str = "qa"
    split: str = "test"
    table_column: str | None = None
    num_samples: int | None = None
    expected_rows: int | None = None
    id_column: str | None = None

    @property
    def metric(self) -> str | None:
        """``pass@1`` or ``avg@16`` for evaluation benchmarks, else ``None``."""
        if self.num_samples is None:
            return None
        return "pass@1" if self.num_samples == 1 else f"avg@{self.num_samples}"


def _benchmark(name: str, hf_path: str, column: str, samples: int, rows: int, **fields: Any) -> DatasetSpec:
    """An evaluation benchmark of the paper's Table 1 (its Hub ``test`` split unless ``hf_split`` says otherwise)."""
    fields = {"hf_split": "test", **fields, "table_column": column, "num_samples": samples, "expected_rows": rows}
    return DatasetSpec(name=name, hf_path=hf_path, **fields)


_SPECS = [
    # training data
    DatasetSpec(
        name="numina_math", hf_path=_NUMINA_HF_PATTERN, source_format="numina", split="train", expected_rows=None
    ),
    DatasetSpec(
        name="math",
        hf_path="DigitalLearningGmbH/MATH-lighteval",
        source_format="math",
        split="train",
        expected_rows=7500,
    ),
    DatasetSpec(
        name="gsm8k_train",
        hf_path="openai/gsm8k",
        hf_config="main",
        source_format="gsm8k",
        split="train",
        expected_rows=7473,
    ),
    DatasetSpec(
        name="deepscaler", hf_path="agentica-org/DeepScaleR-Preview-Dataset", source_format="deepscaler", split="train"
    ),
    # evaluation benchmarks, in Table 1 order
    _benchmark("math500", "HuggingFaceH4/MATH-500", "MATH500", 1, 500, id_column="unique_id"),
    _benchmark("gsm8k", "openai/gsm8k", "GSM8K", 1, 1319, hf_config="main", source_format="gsm8k"),
    _benchmark("gaokao2023en", "MARIO-Math-Reasoning/Gaokao2023-Math-En", "GAO23", 1, 385, hf_split="train"),
    _benchmark("minerva_math", "math-ai/minervamath", "MINERVA", 1, 272),
    _benchmark("olympiadbench", "math-ai/olympiadbench", "OLYM", 1, 675),
    _benchmark("aime24", "HuggingFaceH4/aime_2024", "AIME24", 16, 30, hf_split="train", id_column="id"),
    _benchmark("aime25", "math-ai/aime25", "AIME25", 16, 30),
    _benchmark("amc23", "math-ai/amc23", "AMC23", 16, 40),
]

DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in _SPECS}

TABLE1_BENCHMARKS: tuple[str, ...] = tuple(spec.name for spec in _SPECS if spec.table_column is not None)
"""The eight evaluation benchmarks in the column order of the paper's Table 1."""


def get_dataset(name: str) -> DatasetSpec:
    """Return the spec of a known dataset.

    Raises:
        ValueError: If ``name`` is unknown; the message lists the known names.

    Example:
        >>> get_dataset("aime24").metric, get_dataset("math500").metric
        ('avg@16', 'pass@1')
    """
    return lookup(DATASETS, name, "dataset")


def numina_subset_path(subset: int) -> str:
    """Hub id of Numina subset ``subset`` (1-based, as in GVM and CurES).

    Raises:
        ValueError: If ``subset`` is outside ``1 .. 15``.

    Example:
        >>> numina_subset_path(3)
        'ScaleML-RLHF/numina_math_3'
    """
    if not 1 <= subset <= NUMINA_NUM_SUBSETS:
        raise ValueError(f"Numina subset {subset} does not exist; the paper's subsets are 1..{NUMINA_NUM_SUBSETS}")
    return _NUMINA_HF_PATTERN.format(subset=subset)
