"""The prepared-data schema: verl's RL parquet columns plus the CurES bookkeeping fields.

verl 0.9.1's ``RLHFDataset`` (``verl/utils/dataset/rl_dataset.py``) reads a parquet file with
``datasets.load_dataset("parquet")`` and uses these columns:

* ``data_source`` (str): passed to the reward function and used to group validation metrics
  (``val-core/<data_source>/acc/mean@N``).
* ``prompt`` (list of ``{"role", "content"}``): the chat messages; the agent loop applies the chat
  template.
* ``ability`` (str): informational (``"math"``).
* ``reward_model`` (``{"style": "rule", "ground_truth": str}``): ``ground_truth`` goes to the reward.
* ``extra_info`` (struct): ``extra_info["index"]`` becomes the item's ``index``; the whole dict is
  passed to the reward as ``extra_info``.

Our ``extra_info`` has a fixed set of fields (:data:`EXTRA_INFO_FIELDS`) in **every** file, so files
prepared from different sources share one Arrow schema and verl can concatenate them (e.g. several
validation benchmarks). Files are written with an explicit Arrow schema (:func:`arrow_schema`).

``extra_info.index`` is the prompt's stable id: the 0-based row position in the written file (so
``0 .. N-1``, unique). The CurES sampler keys its per-prompt posterior by it. Re-running the same
preparation command on the same input gives the same index for every prompt; ``content_hash``
(a hash of the prompt messages and the ground truth) detects a changed input or template, and the
manifest's ``fingerprint`` (a hash of all content hashes in index order) detects any drift of the file
as a whole. ``source_id`` and ``source_row`` trace each prompt back to its source row.

``data_source`` values are ``"cures-<name>"`` (e.g. ``cures-numina_math``, ``cures-math500``). Our
reward (``cures_verl.reward.math_verify.compute_score``) scores every data source the same way with
math-verify; the ``cures-`` prefix makes verl's built-in ``default_compute_score`` reject the rows
loudly (``NotImplementedError``) if a run forgets ``reward.custom_reward_function``, instead of
silently scoring them with another rule (verl routes ``numina_*`` to ``prime_math`` and ``aime*`` to
``math_dapo``).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "DATA_SOURCE_PREFIX",
    "EXTRA_INFO_FIELDS",
    "REQUIRED_COLUMNS",
    "BadRow",
    "data_source_name",
    "content_hash",
    "fingerprint",
    "arrow_schema",
    "validate_prepared_rows",
]

T = TypeVar("T")

DATA_SOURCE_PREFIX = "cures-"
ABILITY = "math"
REWARD_STYLE = "rule"
REQUIRED_COLUMNS = ("data_source", "prompt", "ability", "reward_model", "extra_info")

# name -> (type name, nullable); the order is the struct's field order
EXTRA_INFO_FIELDS: dict[str, tuple[str, bool]] = {
    "index": ("int64", False),  # stable prompt id = row position in the written file
    "split": ("string", False),  # "train" / "test"
    "source": ("string", False),  # HF dataset name or input file name
    "source_row": ("int64", False),  # 0-based row in that source
    "source_id": ("string", False),  # id column value, or "<source>:<source_row>"
    "subset": ("int64", True),  # 1-based curriculum subset (Numina iterations), null if none
    "content_hash": ("string", False),  # hash of prompt messages + ground truth
    "pass_rate": ("float64", True),  # source pass rate in [0, 1] (prior for the sampler), null if none
    "problem": ("string", False),  # the raw problem text, before the template
    "answer_origin": ("string", False),  # where ground_truth came from, e.g. "answer_column"
}

_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.]*$")


@dataclass(frozen=True)
class BadRow:
    """One rejected input row.

    Attributes:
        source: Input name (HF dataset name or file path).
        row: 0-based row number in that source (line number - 1 for JSON lines).
        field: Offending field (a source column, or a prepared-file column such as ``extra_info.index``).
        reason: What is wrong, in words.
        value: Short ``repr`` of the offending value (at most 80 characters).
    """

    source: str
    row: int
    field: str
    reason: str
    value: str = ""

    def describe(self) -> str:
        """One line for logs and error messages."""
        shown = f" (value: {self.value})" if self.value else ""
        where = "file" if self.row < 0 else f"row {self.row} (0-based)"
        return f"{self.source} {where}: field {self.field!r}: {self.reason}{shown}"

    def to_dict(self) -> dict[str, Any]:
        """Return the row as a JSON-serialisable dict."""
        return {"source": self.source, "row": self.row, "field": self.field, "reason": self.reason, "value": self.value}


def short_repr(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def data_source_name(name: str) -> str:
    """Return the ``data_source`` value for a dataset short name.

    Args:
        name: Lower-case short name (letters, digits, ``_`` and ``.``), e.g. ``"math500"``.

    Raises:
        ValueError: If ``name`` is empty or has other characters (it becomes part of metric keys).

    Example:
        >>> data_source_name("numina_math")
        'cures-numina_math'
    """
    if not _NAME_PATTERN.match(name):
        raise ValueError(
            f"dataset name {name!r} is not a valid short name: use lower-case letters, digits, '_' and '.', "
            "starting with a letter or digit (e.g. 'math500')"
        )
    return DATA_SOURCE_PREFIX + name


def content_hash(messages: Sequence[Mapping[str, Any]], ground_truth: str) -> str:
    """Return a 16-hex-digit SHA-256 hash of the prompt messages and the ground truth.

    The hash covers exactly what the model sees and what it is scored against, so it changes when the
    problem, the template or the answer changes, and not otherwise.

    Example:
        >>> h = content_hash([{"role": "user", "content": "1+1?"}], "2")
        >>> len(h), h == content_hash([{"role": "user", "content": "1+1?"}], "3")
        (16, False)
    """
    payload = json.dumps(
        [[{"role": str(m["role"]), "content": str(m["content"])} for m in messages], ground_truth],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def fingerprint(content_hashes: Sequence[str]) -> str:
    """Return a SHA-256 hash of all content hashes in index order (a whole-file identity).

    Example:
        >>> fingerprint(["a", "b"]) == fingerprint(["b", "a"])
        False
    """
    digest = hashlib.sha256()
    for value in content_hashes:
        digest.update(value.encode("ascii"))
        digest.update(b"\n")
    return digest.hexdigest()


def arrow_schema() -> pa.Schema:
    """Return the explicit Arrow schema of a prepared file (imports pyarrow lazily)."""
    import pyarrow as pa

    types = {"int64": pa.int64(), "string": pa.string(), "float64": pa.float64()}
    extra_info = pa.struct(
        [
            pa.field(name, types[type_name], nullable=nullable)
            for name, (type_name, nullable) in EXTRA_INFO_FIELDS.items()
        ]
    )
    message = pa.struct([pa.field("role", pa.string()), pa.field("content", pa.string())])
    return pa.schema(
        [
            pa.field("data_source", pa.string()),
            pa.field("prompt", pa.list_(message)),
            pa.field("ability", pa.string()),
            pa.field(
                "reward_model", pa.struct([pa.field("style", pa.string()), pa.field("ground_truth", pa.string())])
            ),
            pa.field("extra_info", extra_info),
        ]
    )


def _row_problems(row: Mapping[str, Any], position: int, source: str) -> list[BadRow]:
    """Schema problems of one prepared row (see :func:`validate_prepared_rows`)."""
    bad: list[BadRow] = []

    def flag(field: str, reason: str, value: object = "") -> None:
        bad.append(BadRow(source, position, field, reason, short_repr(value) if value != "" else ""))

    missing = [column for column in REQUIRED_COLUMNS if column not in row]
    if missing:
        flag(",".join(missing), "missing column(s)")
        return bad
    if not isinstance(row["data_source"], str) or not row["data_source"]:
        flag("data_source", "must be a non-empty string", row["data_source"])
    messages = row["prompt"]
    if not isinstance(messages, Sequence) or isinstance(messages, str) or not messages:
        flag("prompt", "must be a non-empty list of {'role', 'content'} messages", messages)
        messages = []
    for k, message in enumerate(messages):
        if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
            flag(f"prompt[{k}]", "each message needs a string 'role' and 'content'", message)
        elif not isinstance(message.get("content"), str) or not message["content"].strip():
            flag(f"prompt[{k}].content", "must be a non-empty string", message.get("content"))
    if messages and isinstance(messages[-1], Mapping) and messages[-1].get("role") != "user":
        flag("prompt", "the last message must be the user turn", messages[-1])
    reward = row["reward_model"]
    ground_truth = reward.get("ground_truth") if isinstance(reward, Mapping) else None
    if not isinstance(ground_truth, str) or not ground_truth.strip():
        flag("reward_model.ground_truth", "must be a non-empty string", ground_truth)
    elif reward.get("style") != REWARD_STYLE:
        flag("reward_model.style", f"must be {REWARD_STYLE!r}", reward.get("style"))
    info = row["extra_info"]
    if not isinstance(info, Mapping):
        flag("extra_info", "must be a dict", info)
        return bad
    absent = [name for name in EXTRA_INFO_FIELDS if name not in info]
    if absent:
        flag("extra_info", f"missing field(s) {', '.join(absent)}")
        return bad
    index = info["index"]
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        flag("extra_info.index", "must be a non-negative integer", index)
    pass_rate = info["pass_rate"]
    if pass_rate is not None and not (
        isinstance(pass_rate, float | int) and not isinstance(pass_rate, bool) and 0.0 <= pass_rate <= 1.0
    ):
        flag("extra_info.pass_rate", "must be null or a number in [0, 1]", pass_rate)
    if not bad and isinstance(ground_truth, str):
        expected = content_hash(messages, ground_truth)
        if info["content_hash"] != expected:
            flag("extra_info.content_hash", f"does not match the row's prompt and ground truth ({expected})")
    return bad


def validate_prepared_rows(rows: Sequence[Mapping[str, Any]], *, source: str = "<rows>") -> list[BadRow]:
    """Check prepared rows against the schema; return every problem found (empty list if valid).

    Checks per row: required columns; non-empty string ``data_source``; ``prompt`` a non-empty message
    list ending with the user turn; non-empty string ground truth with style ``rule``; all
    ``extra_info`` fields present; ``pass_rate`` null or in [0, 1]; ``content_hash`` equal to the hash
    recomputed from the row. Across rows: ``extra_info.index`` equals the row position (``0 .. N-1``),
    which also makes it unique.

    Args:
        rows: Rows as dicts (e.g. ``pyarrow.Table.to_pylist()`` of a prepared file).
        source: Name used in the reports (e.g. the file path).

    Returns:
        One :class:`BadRow` per problem, with ``row`` the 0-based position in ``rows``.

    Example:
        >>> validate_prepared_rows([{"data_source": "cures-x"}])[0].reason
        'missing column(s)'
    """
    bad: list[BadRow] = []
    seen: dict[int, int] = {}
    for position, row in enumerate(rows):
        bad.extend(_row_problems(row, position, source))
        info = row.get("extra_info")
        index = info.get("index") if isinstance(info, Mapping) else None
        if isinstance(index, int) and not isinstance(index, bool):
            if index in seen:
                bad.append(
                    BadRow(
                        source,
                        position,
                        "extra_info.index",
                        f"duplicate index, first used by row {seen[index]}",
                        str(index),
                    )
                )
            else:
                seen[index] = position
            if index != position:
                bad.append(
                    BadRow(source, position, "extra_info.index", f"must equal the row position {position}", str(index))
                )
    return bad


def lookup(table: Mapping[str, T], name: str, kind: str) -> T:
    """Return ``table[name]``: the one lookup of datasets, source formats and prompt templates by name.

    Raises:
        ValueError: If ``name`` is unknown: ``unknown <kind> <name>; choose one of: <the names, in table order>``.

    Example:
        >>> lookup({"a": 1, "b": 2}, "b", "letter")
        2
    """
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"unknown {kind} {name!r}; choose one of: {', '.join(table)}") from None


def is_missing(value: object) -> bool:
    """True for ``None`` and float NaN (how pandas and Arrow spell a missing cell)."""
    return value is None or (isinstance(value, float) and math.isnan(value))
