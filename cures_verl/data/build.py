"""End-to-end builders behind ``scripts/prepare_data.py``: load, convert, validate, write.

* :func:`build_dataset` prepares one dataset (a known one from :mod:`cures_verl.data.registry` or a
  custom local file) into one parquet file plus its manifest (and a bad-rows report when needed).
* :func:`check_prepared_file` re-validates a prepared file and compares it with its manifest.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cures_verl.data import io as data_io
from cures_verl.data.io import HubLoader, bad_rows_path, load_hub_records, manifest_path, read_prepared, read_records
from cures_verl.data.prepare import DataValidationError, PreparedData, PrepareOptions, SourceInput, prepare_rows
from cures_verl.data.registry import DATASETS, NUMINA_NUM_SUBSETS, numina_subset_path
from cures_verl.data.schema import BadRow, fingerprint, validate_prepared_rows

__all__ = ["BuildResult", "build_dataset", "load_inputs", "check_prepared_file", "parse_subset_range"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildResult:
    """What :func:`build_dataset` wrote.

    Attributes:
        output: The parquet file.
        manifest_path: Its manifest.
        bad_rows_path: The bad-rows report, or ``None`` if every row was valid.
        prepared: The prepared rows and manifest.
        warnings: Human-readable warnings (e.g. an unexpected row count).
    """

    output: Path
    manifest_path: Path
    bad_rows_path: Path | None
    prepared: PreparedData
    warnings: list[str]


def parse_subset_range(text: str) -> list[int]:
    """Parse ``"1-15"``, ``"3"`` or ``"1,2,5-7"`` into a sorted list of distinct subset numbers.

    Raises:
        ValueError: If the text is malformed or a subset is outside ``1 .. 15``.

    Example:
        >>> parse_subset_range("1,3-5")
        [1, 3, 4, 5]
    """
    subsets: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part:
                low, high = (int(x) for x in part.split("-", 1))
                subsets.update(range(low, high + 1))
            else:
                subsets.add(int(part))
        except ValueError:
            raise ValueError(f"invalid subset list {text!r}: use e.g. '1-15' or '1,3,5-7'") from None
    for subset in subsets:
        numina_subset_path(subset)  # raises for subsets outside 1..15
    if not subsets:
        raise ValueError(f"invalid subset list {text!r}: it selects no subset")
    return sorted(subsets)


def load_inputs(
    name: str,
    *,
    input_paths: Sequence[str | Path] = (),
    hf_path: str | None = None,
    hf_config: str | None = None,
    hf_split: str | None = None,
    numina_subsets: Sequence[int] | None = None,
    hub_loader: HubLoader | None = None,
) -> list[SourceInput]:
    """Load the source records of dataset ``name``.

    Local files win over the Hub: with ``input_paths`` the files are read in order. Otherwise the
    records come from ``hf_path`` (default: the registry's Hub id). For ``numina_math`` without local
    files, each of ``numina_subsets`` (default all 15) is loaded from ``ScaleML-RLHF/numina_math_<k>``
    and tagged as curriculum subset ``k``.

    Raises:
        ValueError: If the dataset is unknown and neither files nor ``hf_path`` are given.
    """
    if input_paths:
        inputs: list[SourceInput] = []
        for file_path in input_paths:
            records, read_errors, rows = read_records(file_path)
            # the file name, not the path: ids and the subset split must not depend on the working directory
            label = Path(file_path).name
            if any(source.name == label for source in inputs):
                raise ValueError(f"two inputs are named {label!r}; rename one so their row ids stay distinct")
            inputs.append(
                SourceInput(
                    name=label,
                    records=records,
                    row_numbers=rows,
                    read_errors=[replace(bad, source=label) for bad in read_errors],
                    location=str(file_path),
                )
            )
        return inputs
    spec = DATASETS.get(name)
    if name == "numina_math" and hf_path is None:
        subsets = list(numina_subsets) if numina_subsets else list(range(1, NUMINA_NUM_SUBSETS + 1))
        split = hf_split or "train"
        return [
            SourceInput(
                name=numina_subset_path(k),
                records=load_hub_records(numina_subset_path(k), config=hf_config, split=split, loader=hub_loader),
                subset=k,
            )
            for k in subsets
        ]
    path = hf_path or (spec.hf_path if spec else None)
    if path is None:
        raise ValueError(f"dataset {name!r} is not a known dataset: give --input FILE or --hf-path ID")
    config = hf_config if hf_config is not None else (spec.hf_config if spec and hf_path is None else None)
    split = hf_split or (spec.hf_split if spec else "train")
    return [SourceInput(name=path, records=load_hub_records(path, config=config, split=split, loader=hub_loader))]


def build_dataset(inputs: Sequence[SourceInput], options: PrepareOptions, output: str | Path) -> BuildResult:
    """Prepare ``inputs`` and write ``output`` (parquet), its manifest and, if needed, a bad-rows report.

    Args:
        inputs: Loaded sources (see :func:`load_inputs`).
        options: Conversion options.
        output: Target ``.parquet`` path.

    Returns:
        The paths written and the prepared data.

    Raises:
        DataValidationError: If rows are bad and ``options.allow_bad_rows`` is False. The bad-rows report
            is still written (``<output stem>.bad_rows.jsonl``) and the message names it; the parquet
            file is not written.
    """
    output = Path(output)
    try:
        prepared = prepare_rows(inputs, options)
    except DataValidationError as exc:
        if exc.bad_rows:
            report = data_io.write_bad_rows(exc.bad_rows, output)
            raise DataValidationError(f"{exc}\nFull report: {report}", exc.bad_rows) from None
        raise
    stale_report = bad_rows_path(output)
    if stale_report.exists():
        stale_report.unlink()  # a report from an earlier run would describe rows that are now valid
    report_path = data_io.write_bad_rows(prepared.bad_rows, output) if prepared.bad_rows else None
    warnings: list[str] = []
    problems = validate_prepared_rows(prepared.rows, source=str(output))
    if problems:  # a bug in this package, not in the input: the converter must produce valid rows
        raise RuntimeError("prepared rows fail schema validation:\n" + "\n".join(p.describe() for p in problems[:20]))
    spec = DATASETS.get(options.dataset_name)
    if spec is not None and spec.expected_rows is not None and prepared.num_input_rows != spec.expected_rows:
        warnings.append(
            f"{options.dataset_name}: read {prepared.num_input_rows} rows, the standard version has "
            f"{spec.expected_rows}; check that this is the copy you intended"
        )
    for warning in warnings:
        logger.warning(warning)
    manifest = data_io.write_prepared(prepared.rows, output, prepared.manifest)
    return BuildResult(output, manifest, report_path, prepared, warnings)


def check_prepared_file(path: str | Path) -> tuple[list[BadRow], dict[str, Any]]:
    """Validate a prepared parquet file and compare it with its manifest.

    Args:
        path: A file written by :func:`build_dataset` (or any verl file using our schema).

    Returns:
        ``(problems, summary)``: schema problems (plus a manifest mismatch, if any, reported as a
        ``BadRow`` with row ``-1``) and a summary with ``num_rows``, ``fingerprint`` and
        ``manifest_fingerprint`` (``None`` when there is no manifest).
    """
    path = Path(path)
    rows = read_prepared(path)
    problems = validate_prepared_rows(rows, source=str(path))
    hashes = [row["extra_info"]["content_hash"] for row in rows if isinstance(row.get("extra_info"), dict)]
    actual = fingerprint(hashes)
    expected = None
    manifest_file = manifest_path(path)
    if manifest_file.exists():
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        expected = manifest.get("fingerprint")
        if expected != actual:
            problems.append(
                BadRow(
                    str(path),
                    -1,
                    "fingerprint",
                    f"file fingerprint {actual[:16]} differs from the manifest's {str(expected)[:16]}: "
                    "the file changed after it was prepared; re-run scripts/prepare_data.py",
                )
            )
    summary = {"num_rows": len(rows), "fingerprint": actual, "manifest_fingerprint": expected}
    return problems, summary
