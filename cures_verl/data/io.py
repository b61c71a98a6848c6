"""Reading source records and writing prepared files (pyarrow and datasets imported lazily).

Inputs:

* a local ``.jsonl`` (one JSON object per line), ``.json`` (a JSON array of objects; a file whose first
  non-blank character is ``{`` is read as JSON lines, as Hugging Face ``datasets`` does) or ``.parquet``
  file; a line that is not valid JSON, or a value that is not an object, is reported as a bad row;
* a Hugging Face Hub dataset, through ``datasets.load_dataset(path, config, split=split)``. The loader
  is a parameter so tests (and offline users with their own mirror) can replace it.

Outputs, for ``<out>.parquet``:

* ``<out>.parquet``: the prepared rows, written with the explicit schema of
  :func:`cures_verl.data.schema.arrow_schema`;
* ``<out>.manifest.json``: row counts, template, data sources, subset sizes and the file fingerprint;
* ``<out>.bad_rows.jsonl``: one JSON object per rejected input row (only when there are any).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cures_verl.data.schema import BadRow, arrow_schema, short_repr

__all__ = [
    "HubLoader",
    "read_records",
    "load_hub_records",
    "write_prepared",
    "read_prepared",
    "write_bad_rows",
    "manifest_path",
    "bad_rows_path",
]

logger = logging.getLogger(__name__)

HubLoader = Callable[[str, str | None, str], Iterable[Mapping[str, Any]]]
"""``loader(path, config, split)`` returning the split's records (e.g. a ``datasets.Dataset``)."""

LOCAL_SUFFIXES = (".jsonl", ".json", ".parquet")


def manifest_path(output: Path) -> Path:
    """``data/train.parquet`` -> ``data/train.manifest.json``."""
    return output.with_name(output.stem + ".manifest.json")


def bad_rows_path(output: Path) -> Path:
    """``data/train.parquet`` -> ``data/train.bad_rows.jsonl``."""
    return output.with_name(output.stem + ".bad_rows.jsonl")


def _read_json_lines(path: Path, lines: Iterable[str]) -> tuple[list[dict[str, Any]], list[BadRow], list[int]]:
    records: list[dict[str, Any]] = []
    rows: list[int] = []
    bad: list[BadRow] = []
    for row, line in enumerate(lines):
        if not line.strip():
            continue  # blank lines hold no record; row numbers stay line numbers - 1
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            bad.append(BadRow(str(path), row, "<json>", f"invalid JSON: {exc.msg}", short_repr(line.strip())))
            continue
        if not isinstance(value, dict):
            bad.append(BadRow(str(path), row, "<json>", "each line must be a JSON object", short_repr(value)))
            continue
        records.append(value)
        rows.append(row)
    return records, bad, rows


def read_records(path: str | Path) -> tuple[list[dict[str, Any]], list[BadRow], list[int]]:
    """Read a local source file.

    Args:
        path: A ``.jsonl``, ``.json`` or ``.parquet`` file.

    Returns:
        ``(records, bad_rows, row_numbers)``: the readable records, the rows that could not be read (as
        :class:`BadRow`), and the 0-based source row number of each record (JSON lines: line number
        minus one; blank lines are skipped but keep their number).

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the suffix is not supported, or a ``.json`` file is neither an array of objects
            nor JSON lines.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"input file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        records = pq.read_table(path).to_pylist()
        return records, [], list(range(len(records)))
    if suffix not in LOCAL_SUFFIXES:
        raise ValueError(f"unsupported input file {path}: use one of {', '.join(LOCAL_SUFFIXES)}")
    text = path.read_text(encoding="utf-8")
    if suffix == ".jsonl" or text.lstrip().startswith("{"):
        return _read_json_lines(path, text.rstrip("\n").split("\n") if text.strip() else [])
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); use a JSON array of objects or JSON lines") from exc
    if not isinstance(data, list):
        raise ValueError(f"{path} must hold a JSON array of objects, got {type(data).__name__}")
    records = []
    rows = []
    bad = []
    for row, value in enumerate(data):
        if isinstance(value, dict):
            records.append(value)
            rows.append(row)
        else:
            bad.append(BadRow(str(path), row, "<json>", "each array element must be a JSON object", short_repr(value)))
    return records, bad, rows


def _default_hub_loader(path: str, config: str | None, split: str) -> Iterable[Mapping[str, Any]]:
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - datasets ships with verl
        raise ImportError("loading from the Hugging Face Hub needs `pip install datasets`") from exc
    return datasets.load_dataset(path, config, split=split)  # type: ignore[no-any-return]


def load_hub_records(
    path: str, *, config: str | None = None, split: str = "train", loader: HubLoader | None = None
) -> list[dict[str, Any]]:
    """Load one split of a Hugging Face Hub dataset as a list of dicts.

    Args:
        path: Hub dataset id, e.g. ``"ScaleML-RLHF/numina_math_1"``.
        config: Hub config name, or ``None``.
        split: Split name.
        loader: Replacement for ``datasets.load_dataset`` (tests, local mirrors).

    Returns:
        The records, in the Hub's row order.
    """
    logger.info("loading %s (config=%s, split=%s) from the Hugging Face Hub", path, config, split)
    source = (loader or _default_hub_loader)(path, config, split)
    return [dict(record) for record in source]


def write_prepared(rows: Sequence[Mapping[str, Any]], output: str | Path, manifest: Mapping[str, Any]) -> Path:
    """Write prepared rows to ``output`` (parquet) and the manifest next to it.

    Args:
        rows: Rows following :func:`cures_verl.data.schema.arrow_schema`.
        output: Target ``.parquet`` path; parent directories are created.
        manifest: JSON-serialisable summary written to ``<output stem>.manifest.json``.

    Returns:
        The manifest path.

    Raises:
        ValueError: If ``output`` does not end in ``.parquet``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    output = Path(output)
    if output.suffix != ".parquet":
        raise ValueError(f"output {output} must end in .parquet (verl's RLHFDataset reads parquet)")
    output.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(list(rows), schema=arrow_schema())
    pq.write_table(table, output)
    target = manifest_path(output)
    target.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return target


def read_prepared(path: str | Path) -> list[dict[str, Any]]:
    """Read a prepared parquet file as a list of row dicts."""
    import pyarrow.parquet as pq

    return pq.read_table(Path(path)).to_pylist()  # type: ignore[no-any-return]


def write_bad_rows(bad_rows: Sequence[BadRow], output: str | Path) -> Path:
    """Write the bad-rows report (JSON lines) next to ``output`` and return its path."""
    target = bad_rows_path(Path(output))
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", encoding="utf-8") as handle:
        for bad in bad_rows:
            handle.write(json.dumps(bad.to_dict(), ensure_ascii=False) + "\n")
    return target
