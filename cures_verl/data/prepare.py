"""Source records -> verl-format rows, with every bad row reported (CurES Sec. 5 data setup).

:func:`prepare_rows` is the whole pipeline behind ``scripts/prepare_data.py``:

1. read problem and ground truth from each record (:mod:`cures_verl.data.sources`), plus the optional
   id and pass-rate columns; every failure becomes a :class:`~cures_verl.data.schema.BadRow`, including a
   ground truth the math reward cannot grade against (nothing left once boxes, ``$`` and trailing periods are
   removed: the reward would score every response 0 with ``gold_unparseable=1``);
2. reject duplicate source ids, and with ``check_answers`` the ground truths the math reward cannot parse
   (math-verify, in the reward's own worker processes);
3. optionally assign curriculum subsets (:mod:`cures_verl.data.splitting`) and order rows by subset;
4. build the messages with the prompt template and number the rows ``extra_info.index = 0 .. N-1``;
5. by default raise :class:`DataValidationError` if any row was bad; with ``allow_bad_rows`` keep the
   good rows and return the bad ones for the report file.

Same inputs and options give the same rows in the same order, hence the same indices and the same
manifest fingerprint.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from cures_verl.data.schema import (
    ABILITY,
    REWARD_STYLE,
    BadRow,
    content_hash,
    data_source_name,
    fingerprint,
    is_missing,
    short_repr,
)
from cures_verl.data.sources import ColumnOverrides, RowError, SourceFormat, extract_fields, get_source_format
from cures_verl.data.splitting import assign_subsets, subset_sizes
from cures_verl.data.template import PromptTemplate
from cures_verl.reward.extraction import gold_answers

__all__ = ["SourceInput", "PrepareOptions", "PreparedData", "DataValidationError", "prepare_rows"]

logger = logging.getLogger(__name__)

MANIFEST_VERSION = 1
_MAX_REPORTED = 20


class DataValidationError(ValueError):
    """Some input rows are invalid; ``bad_rows`` lists all of them."""

    def __init__(self, message: str, bad_rows: Sequence[BadRow]) -> None:
        super().__init__(message)
        self.bad_rows = list(bad_rows)


@dataclass(frozen=True, kw_only=True)
class SourceInput:
    """The records of one source (a Hub split or a local file).

    Attributes:
        name: Label stored in ``extra_info.source`` (Hub id or file path).
        records: The records, in source order.
        row_numbers: 0-based source row of each record; ``None`` means ``0 .. len(records)-1``.
        read_errors: Rows that could not even be read (e.g. invalid JSON lines).
        subset: Curriculum subset of every record (pre-split sources such as the Numina subsets).
        location: Where the records were read from (a file path), for the manifest; ``None`` for the Hub.
    """

    name: str
    records: Sequence[Mapping[str, Any]]
    row_numbers: Sequence[int] | None = None
    read_errors: Sequence[BadRow] = ()
    subset: int | None = None
    location: str | None = None


@dataclass(frozen=True, kw_only=True)
class PrepareOptions:
    """How to convert the inputs.

    Attributes:
        dataset_name: Short name; ``data_source`` becomes ``cures-<dataset_name>``.
        split: ``extra_info.split`` (``train`` or ``test``).
        source_format: A :data:`~cures_verl.data.sources.SOURCE_FORMATS` key.
        template: Prompt template.
        columns: Column-name overrides.
        id_column: Column with a stable problem id (else ``<source>:<row>``).
        pass_rate_column: Column with a per-problem pass rate in [0, 1] to carry as ``extra_info.pass_rate``.
        num_subsets: Split the (single) dataset into this many curriculum subsets; ``None`` for no split.
        subset_seed: Seed of that split.
        allow_bad_rows: Keep the good rows instead of failing when some rows are bad.
        index_offset: First ``extra_info.index``; rows are numbered ``index_offset, index_offset + 1, ...``. Give
            files trained together (several ``data.train_files``) disjoint ranges, e.g. the previous file's row
            count, so CurES's per-prompt ids stay unique.
        check_answers: Also parse every ground truth as the math reward does
            (:func:`cures_verl.reward.math_verify.check_ground_truths`; needs math-verify) and reject the rows it
            cannot parse, naming the answer field. ``scripts/prepare_data.py`` turns this on unless
            ``--no-check-answers``.
    """

    dataset_name: str
    split: str
    source_format: str
    template: PromptTemplate
    columns: ColumnOverrides = field(default_factory=ColumnOverrides)
    id_column: str | None = None
    pass_rate_column: str | None = None
    num_subsets: int | None = None
    subset_seed: int = 0
    allow_bad_rows: bool = False
    index_offset: int = 0
    check_answers: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.index_offset, bool) or not isinstance(self.index_offset, int) or self.index_offset < 0:
            raise ValueError(f"index_offset={self.index_offset!r} is invalid: give a non-negative integer")


@dataclass(frozen=True)
class PreparedData:
    """Result of :func:`prepare_rows`.

    Attributes:
        rows: Prepared rows (verl schema), ``extra_info.index`` equal to the position.
        bad_rows: Rejected input rows (empty unless ``allow_bad_rows``).
        num_input_rows: Rows read from all sources, bad ones included.
        manifest: Summary to write next to the file.
    """

    rows: list[dict[str, Any]]
    bad_rows: list[BadRow]
    num_input_rows: int
    manifest: dict[str, Any]


@dataclass(frozen=True)
class _Example:
    problem: str
    ground_truth: str
    answer_origin: str
    source: str
    source_row: int
    source_id: str
    subset: int | None
    pass_rate: float | None
    answer_field: str = "answer"


def _pass_rate(record: Mapping[str, Any], column: str) -> float:
    if column not in record or is_missing(record[column]):
        raise RowError(column, "pass rate is missing")
    value = record[column]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RowError(column, f"pass rate must be a number in [0, 1], got {type(value).__name__}", value)
    if not 0.0 <= float(value) <= 1.0:
        raise RowError(column, "pass rate must be in [0, 1]", value)
    return float(value)


def _source_id(record: Mapping[str, Any], column: str | None, source: str, row: int) -> str:
    if column is None:
        return f"{source}:{row}"
    if column not in record or is_missing(record[column]):
        raise RowError(column, "id is missing")
    value = record[column]
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RowError(column, f"id must be a string or an integer, got {type(value).__name__}", value)
    text = str(value).strip()
    if not text:
        raise RowError(column, "id is empty", value)
    return text


def _extract(source: SourceInput, options: PrepareOptions) -> tuple[list[_Example], list[BadRow]]:
    fmt = options.columns.apply(get_source_format(options.source_format))
    examples: list[_Example] = []
    bad: list[BadRow] = list(source.read_errors)
    row_numbers = source.row_numbers if source.row_numbers is not None else range(len(source.records))
    if len(row_numbers) != len(source.records):
        raise ValueError(f"{source.name}: row_numbers has {len(row_numbers)} entries for {len(source.records)} records")
    for row, record in zip(row_numbers, source.records, strict=True):
        try:
            problem, ground_truth, origin = extract_fields(record, fmt)
            answer_field = _answer_field(record, fmt, origin)
            _check_gradable(ground_truth, answer_field)
            source_id = _source_id(record, options.id_column, source.name, row)
            pass_rate = _pass_rate(record, options.pass_rate_column) if options.pass_rate_column else None
        except RowError as exc:
            bad.append(BadRow(source.name, row, exc.field, exc.reason, exc.value))
            continue
        examples.append(
            _Example(problem, ground_truth, origin, source.name, row, source_id, source.subset, pass_rate, answer_field)
        )
    return examples, bad


def _answer_field(record: Mapping[str, Any], fmt: SourceFormat, origin: str) -> str:
    """The column the ground truth of ``record`` came from (``origin`` as :func:`extract_fields` returns it)."""
    columns = {
        "answer_column": fmt.answer_columns,
        "solution_boxed": fmt.solution_columns,
        "gsm8k_marker": fmt.gsm8k_columns,
    }[origin]
    return next((column for column in columns if column in record), "/".join(columns))


def _check_gradable(ground_truth: str, answer_field: str) -> None:
    """Reject a ground truth the math reward would read as empty (``\\boxed{}``, ``$ $``, ``.``)."""
    try:
        gold_answers(ground_truth)
    except (TypeError, ValueError):
        raise RowError(
            answer_field,
            "holds no answer once boxes, math delimiters and trailing periods are removed (the math reward would "
            "score every response 0)",
            ground_truth,
        ) from None


def _reject_unparseable_answers(examples: list[_Example]) -> tuple[list[_Example], list[BadRow]]:
    """Split off the examples whose ground truth the math reward cannot parse (``check_answers``)."""
    from cures_verl.reward.math_verify import check_ground_truths

    verdicts = check_ground_truths([example.ground_truth for example in examples])
    kept: list[_Example] = []
    bad: list[BadRow] = []
    for example, verdict in zip(examples, verdicts, strict=True):
        if verdict is None:
            kept.append(example)
        else:
            reason = f"the math reward cannot grade against this ground truth: {verdict}"
            bad.append(
                BadRow(
                    example.source, example.source_row, example.answer_field, reason, short_repr(example.ground_truth)
                )
            )
    return kept, bad


def _reject_duplicate_ids(examples: list[_Example]) -> tuple[list[_Example], list[BadRow]]:
    first: dict[str, _Example] = {}
    kept: list[_Example] = []
    bad: list[BadRow] = []
    for example in examples:
        previous = first.get(example.source_id)
        if previous is not None:
            reason = f"duplicate id, first seen at {previous.source} row {previous.source_row}"
            bad.append(BadRow(example.source, example.source_row, "id", reason, short_repr(example.source_id)))
            continue
        first[example.source_id] = example
        kept.append(example)
    return kept, bad


def _error_message(options: PrepareOptions, bad: Sequence[BadRow], num_input_rows: int) -> str:
    lines = [f"{len(bad)} of {num_input_rows} input rows for {options.dataset_name!r} are invalid:"]
    lines += [f"  - {row.describe()}" for row in bad[:_MAX_REPORTED]]
    if len(bad) > _MAX_REPORTED:
        lines.append(f"  ... and {len(bad) - _MAX_REPORTED} more (see the bad-rows report)")
    lines.append(
        "Fix these rows (or the column names: --problem-column/--answer-column/--solution-column), or set "
        "allow_bad_rows (CLI: --allow-bad-rows) to write only the valid rows plus a bad-rows report."
    )
    return "\n".join(lines)


def prepare_rows(inputs: Sequence[SourceInput], options: PrepareOptions) -> PreparedData:
    """Convert source records into verl rows (see the module docstring for the steps).

    Args:
        inputs: One or more sources; their rows are concatenated in this order.
        options: Conversion options.

    Returns:
        The prepared rows, the excluded bad rows and a manifest.

    Raises:
        DataValidationError: If any row is bad and ``options.allow_bad_rows`` is False, or no valid row
            is left.
        ValueError: If ``num_subsets`` is combined with pre-split inputs, or the options are invalid.

    Example:
        >>> from cures_verl.data.template import PROMPT_TEMPLATES
        >>> opts = PrepareOptions(dataset_name="toy", split="train", source_format="deepscaler",
        ...                       template=PROMPT_TEMPLATES["plain"])
        >>> out = prepare_rows([SourceInput(name="toy.jsonl", records=[{"problem": "1+1?", "answer": "2"}])], opts)
        >>> out.rows[0]["reward_model"], out.rows[0]["extra_info"]["index"]
        ({'style': 'rule', 'ground_truth': '2'}, 0)
    """
    data_source = data_source_name(options.dataset_name)
    if options.num_subsets is not None and any(source.subset is not None for source in inputs):
        raise ValueError("num_subsets splits one dataset; these inputs are already split into subsets")
    if len({source.subset is None for source in inputs}) > 1:
        raise ValueError("either every input carries a subset number or none does; got a mix")
    examples: list[_Example] = []
    bad: list[BadRow] = []
    num_input_rows = 0
    for source in inputs:
        source_examples, source_bad = _extract(source, options)
        examples += source_examples
        bad += source_bad
        num_input_rows += len(source.records) + len(source.read_errors)
    examples, duplicates = _reject_duplicate_ids(examples)
    bad += duplicates
    if options.check_answers and examples:
        examples, unparseable = _reject_unparseable_answers(examples)
        bad += unparseable
    source_order = {source.name: k for k, source in enumerate(inputs)}
    bad.sort(key=lambda b: (source_order.get(b.source, len(source_order)), b.row))
    if bad and not options.allow_bad_rows:
        raise DataValidationError(_error_message(options, bad, num_input_rows), bad)
    if not examples:
        raise DataValidationError(f"no valid rows for {options.dataset_name!r} ({num_input_rows} input rows)", bad)
    if bad:
        logger.warning("excluding %d of %d input rows for %r", len(bad), num_input_rows, options.dataset_name)

    sizes: list[int] | None = None
    if options.num_subsets is not None:
        subsets = assign_subsets([e.source_id for e in examples], options.num_subsets, seed=options.subset_seed)
        examples = [replace(e, subset=s) for e, s in zip(examples, subsets, strict=True)]
        sizes = subset_sizes(len(examples), options.num_subsets)
    if any(e.subset is not None for e in examples):
        # stable sort: subset 1 first, input order inside a subset -> contiguous blocks
        examples = sorted(examples, key=lambda e: e.subset or 0)
        counts = Counter(e.subset or 0 for e in examples)
        sizes = [counts[k] for k in sorted(counts)]

    rows: list[dict[str, Any]] = []
    hashes: list[str] = []
    for index, example in enumerate(examples):
        messages = options.template.messages(example.problem)
        hashes.append(content_hash(messages, example.ground_truth))
        rows.append(
            {
                "data_source": data_source,
                "prompt": messages,
                "ability": ABILITY,
                "reward_model": {"style": REWARD_STYLE, "ground_truth": example.ground_truth},
                "extra_info": {
                    "index": options.index_offset + index,
                    "split": options.split,
                    "source": example.source,
                    "source_row": example.source_row,
                    "source_id": example.source_id,
                    "subset": example.subset,
                    "content_hash": hashes[-1],
                    "pass_rate": example.pass_rate,
                    "problem": example.problem,
                    "answer_origin": example.answer_origin,
                },
            }
        )
    num_duplicate_prompts = len(hashes) - len(set(hashes))
    if num_duplicate_prompts:
        logger.warning(
            "%d prompts of %r repeat an earlier prompt with the same answer (kept; they get their own index)",
            num_duplicate_prompts,
            options.dataset_name,
        )
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "dataset": options.dataset_name,
        "data_source": data_source,
        "split": options.split,
        "source_format": options.source_format,
        "sources": [
            {
                "name": s.name,
                "location": s.location,
                "num_records": len(s.records) + len(s.read_errors),
                "subset": s.subset,
            }
            for s in inputs
        ],
        "template": options.template.to_dict(),
        "columns": {
            "problem": options.columns.problem,
            "answer": options.columns.answer,
            "solution": options.columns.solution,
            "id": options.id_column,
            "pass_rate": options.pass_rate_column,
        },
        "num_input_rows": num_input_rows,
        "num_rows": len(rows),
        "num_bad_rows_excluded": len(bad),
        "num_duplicate_prompts": num_duplicate_prompts,
        "answer_origins": dict(sorted(Counter(e.answer_origin for e in examples).items())),
        "subsets": None
        if sizes is None
        else {
            "num_subsets": len(sizes),
            "seed": options.subset_seed if options.num_subsets is not None else None,
            "sizes": sizes,
        },
        "fingerprint": fingerprint(hashes),
    }
    return PreparedData(rows, bad, num_input_rows, manifest)
