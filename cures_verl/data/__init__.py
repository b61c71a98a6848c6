"""Data preparation for CurES runs: sources -> verl's RL parquet schema (see ``docs/data.md``).

Imports only the standard library at import time; pyarrow and ``datasets`` are imported when a file
is read or written. No verl, no torch.
"""

from __future__ import annotations

from cures_verl.data.answers import gsm8k_final_answer, last_boxed_content, strip_math_delimiters
from cures_verl.data.io import load_hub_records, read_prepared, read_records, write_bad_rows, write_prepared
from cures_verl.data.prepare import DataValidationError, PreparedData, PrepareOptions, SourceInput, prepare_rows
from cures_verl.data.registry import DATASETS, TABLE1_BENCHMARKS, DatasetSpec, get_dataset, numina_subset_path
from cures_verl.data.schema import (
    DATA_SOURCE_PREFIX,
    EXTRA_INFO_FIELDS,
    BadRow,
    arrow_schema,
    content_hash,
    data_source_name,
    validate_prepared_rows,
)
from cures_verl.data.sources import SOURCE_FORMATS, ColumnOverrides, extract_fields
from cures_verl.data.splitting import assign_subsets, subset_sizes
from cures_verl.data.template import PROMPT_TEMPLATES, PromptTemplate, get_template

__all__ = [
    "BadRow",
    "ColumnOverrides",
    "DATA_SOURCE_PREFIX",
    "DATASETS",
    "DataValidationError",
    "DatasetSpec",
    "EXTRA_INFO_FIELDS",
    "PROMPT_TEMPLATES",
    "PrepareOptions",
    "PreparedData",
    "PromptTemplate",
    "SOURCE_FORMATS",
    "SourceInput",
    "TABLE1_BENCHMARKS",
    "arrow_schema",
    "assign_subsets",
    "content_hash",
    "data_source_name",
    "extract_fields",
    "get_dataset",
    "get_template",
    "gsm8k_final_answer",
    "last_boxed_content",
    "load_hub_records",
    "numina_subset_path",
    "prepare_rows",
    "read_prepared",
    "read_records",
    "strip_math_delimiters",
    "subset_sizes",
    "validate_prepared_rows",
    "write_bad_rows",
    "write_prepared",
]
