#!/usr/bin/env python
"""Prepare CurES training and evaluation data in verl's parquet format (see docs/data.md).

Examples:
    # the paper's training data: the 15 Numina subsets from the Hub, concatenated in order
    python scripts/prepare_data.py dataset numina_math --output data/numina_math.parquet

    # one local Numina file split into 15 curriculum subsets, deterministically
    python scripts/prepare_data.py dataset numina_math --input numina.parquet --num-subsets 15 \\
        --output data/numina_math.parquet

    # the eight Table 1 benchmarks from the Hub into data/eval/<name>.parquet
    python scripts/prepare_data.py eval --output-dir data/eval

    # a custom local file
    python scripts/prepare_data.py dataset my_set --input my.jsonl --format qa --split train \\
        --output data/my_set.parquet

    # check a prepared file against the schema and its manifest
    python scripts/prepare_data.py validate data/numina_math.parquet
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from cures_verl.data.build import BuildResult, build_dataset, check_prepared_file, load_inputs, parse_subset_range
from cures_verl.data.prepare import DataValidationError, PrepareOptions
from cures_verl.data.registry import DATASETS, TABLE1_BENCHMARKS
from cures_verl.data.sources import SOURCE_FORMATS, ColumnOverrides
from cures_verl.data.template import PROMPT_TEMPLATES, PromptTemplate, get_template


def _add_conversion_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("prompt template")
    group.add_argument("--template", default="cures", choices=sorted(PROMPT_TEMPLATES), help="base template")
    group.add_argument("--system-prompt", help="replace the template's system message")
    group.add_argument("--no-system-prompt", action="store_true", help="drop the system message")
    group.add_argument("--user-suffix", help="replace the text appended to the problem")
    group = parser.add_argument_group("columns")
    group.add_argument("--problem-column", help="source column holding the problem")
    group.add_argument("--answer-column", help="source column holding the final answer (gsm8k: the '####' column)")
    group.add_argument("--solution-column", help="source column holding a worked solution with \\boxed{}")
    group.add_argument("--id-column", help="source column with a stable problem id (default: <source>:<row>)")
    group.add_argument("--pass-rate-column", help="source column with a pass rate in [0, 1] to keep as a prior")
    parser.add_argument(
        "--allow-bad-rows",
        action="store_true",
        help="write the valid rows and a <output>.bad_rows.jsonl report instead of failing",
    )
    parser.add_argument(
        "--no-check-answers",
        action="store_true",
        help="do not parse every ground truth with the math reward (math-verify) to reject the ones it cannot grade "
        "against (empty answers are rejected either way)",
    )
    parser.add_argument("--hf-path", help="Hugging Face dataset id (default: the registry's)")
    parser.add_argument("--hf-config", help="Hugging Face config name")
    parser.add_argument("--hf-split", help="Hugging Face split name")


def _template(args: argparse.Namespace) -> PromptTemplate:
    base = get_template(args.template)
    if args.system_prompt is None and not args.no_system_prompt and args.user_suffix is None:
        return base
    if args.system_prompt is not None and args.no_system_prompt:
        raise SystemExit("error: --system-prompt and --no-system-prompt contradict each other; pass one")
    return PromptTemplate(
        name="custom",
        system=None
        if args.no_system_prompt
        else (args.system_prompt if args.system_prompt is not None else base.system),
        user_prefix=base.user_prefix,
        user_suffix=args.user_suffix if args.user_suffix is not None else base.user_suffix,
        separator=base.separator,
    )


def _report(result: BuildResult) -> None:
    manifest = result.prepared.manifest
    print(f"wrote {manifest['num_rows']} rows to {result.output}")
    print(f"  data_source={manifest['data_source']} fingerprint={manifest['fingerprint'][:16]}")
    if manifest["subsets"] is not None:
        print(f"  subsets: {manifest['subsets']['num_subsets']} with sizes {manifest['subsets']['sizes']}")
    if result.bad_rows_path is not None:
        print(
            f"  EXCLUDED {manifest['num_bad_rows_excluded']} of {manifest['num_input_rows']} input rows "
            f"(--allow-bad-rows); report: {result.bad_rows_path}"
        )


def _prepare_one(name: str, args: argparse.Namespace, output: Path, input_paths: list[str]) -> BuildResult:
    spec = DATASETS.get(name)
    source_format = args.format or (spec.source_format if spec else None)
    split = args.split or (spec.split if spec else None)
    if source_format is None or split is None:
        raise SystemExit(f"error: {name!r} is not a known dataset; pass --format and --split")
    numina_subsets = parse_subset_range(args.subsets) if getattr(args, "subsets", None) else None
    if numina_subsets is not None and (name != "numina_math" or input_paths or args.hf_path):
        raise SystemExit(
            "error: --subsets selects Hub subsets of numina_math; it cannot be combined with --input/--hf-path"
        )
    inputs = load_inputs(
        name,
        input_paths=input_paths,
        hf_path=args.hf_path,
        hf_config=args.hf_config,
        hf_split=args.hf_split,
        numina_subsets=numina_subsets,
    )
    options = PrepareOptions(
        dataset_name=name,
        split=split,
        source_format=source_format,
        template=_template(args),
        columns=ColumnOverrides(problem=args.problem_column, answer=args.answer_column, solution=args.solution_column),
        # the registry's id column belongs to the registry's Hub copy only
        id_column=args.id_column
        if args.id_column is not None
        else (spec.id_column if spec and not input_paths and args.hf_path is None else None),
        pass_rate_column=args.pass_rate_column,
        num_subsets=getattr(args, "num_subsets", None),
        subset_seed=getattr(args, "subset_seed", 0),
        allow_bad_rows=args.allow_bad_rows,
        index_offset=getattr(args, "index_offset", 0),
        check_answers=not args.no_check_answers,
    )
    return build_dataset(inputs, options, output)


def cmd_dataset(args: argparse.Namespace) -> int:
    output = Path(args.output) if args.output else Path("data") / f"{args.name}.parquet"
    _report(_prepare_one(args.name, args, output, args.input or []))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    names = TABLE1_BENCHMARKS if args.benchmarks == "all" else tuple(b.strip() for b in args.benchmarks.split(","))
    local: dict[str, str] = {}
    for item in args.input or []:
        name, sep, path = item.partition("=")
        if not sep:
            raise SystemExit(f"error: --input expects NAME=PATH, got {item!r}")
        local[name] = path
    unknown = sorted((set(names) | set(local)) - set(TABLE1_BENCHMARKS))
    if unknown:
        raise SystemExit(f"error: unknown benchmark(s) {unknown}; choose from {', '.join(TABLE1_BENCHMARKS)}")
    if args.hf_path is not None or args.hf_config is not None or args.hf_split is not None:
        raise SystemExit(
            "error: --hf-path/--hf-config/--hf-split name one dataset; use the `dataset` command for a custom Hub "
            "copy of a benchmark (e.g. `dataset amc23 --hf-path AI-MO/aimo-validation-amc --hf-split train "
            "--output data/eval/amc23.parquet`)"
        )
    for name in names:
        _report(
            _prepare_one(name, args, Path(args.output_dir) / f"{name}.parquet", [local[name]] if name in local else [])
        )
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    status = 0
    for path in args.files:
        problems, summary = check_prepared_file(path)
        if problems:
            status = 1
            print(f"{path}: {len(problems)} problem(s)")
            for problem in problems[:50]:
                print(f"  - {problem.describe()}")
        else:
            print(f"{path}: OK, {summary['num_rows']} rows, fingerprint {summary['fingerprint'][:16]}")
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    commands = parser.add_subparsers(dest="command", required=True)

    dataset = commands.add_parser("dataset", help="prepare one dataset (known name or custom file)")
    dataset.add_argument("name", help=f"short name; known: {', '.join(DATASETS)}")
    dataset.add_argument("--input", action="append", help="local .jsonl/.json/.parquet file (repeatable)")
    dataset.add_argument("--output", help="output .parquet (default: data/<name>.parquet)")
    dataset.add_argument(
        "--index-offset",
        type=int,
        default=0,
        help="first extra_info.index (default: 0); give files trained together disjoint ranges, e.g. the row count "
        "of the files before it",
    )
    dataset.add_argument("--format", choices=sorted(SOURCE_FORMATS), help="source format (default: the registry's)")
    dataset.add_argument("--split", choices=("train", "test"), help="extra_info.split (default: the registry's)")
    dataset.add_argument("--subsets", help="numina_math from the Hub: which subsets, e.g. '1-15' (default all)")
    dataset.add_argument("--num-subsets", type=int, help="split one dataset into T curriculum subsets")
    dataset.add_argument("--subset-seed", type=int, default=0, help="seed of that split")
    _add_conversion_args(dataset)
    dataset.set_defaults(func=cmd_dataset)

    evaluation = commands.add_parser("eval", help="prepare the Table 1 benchmarks (one parquet each)")
    evaluation.add_argument("--output-dir", default="data/eval", help="directory for <benchmark>.parquet")
    evaluation.add_argument("--benchmarks", default="all", help=f"comma list or 'all' ({', '.join(TABLE1_BENCHMARKS)})")
    evaluation.add_argument("--input", action="append", metavar="NAME=PATH", help="use a local file for a benchmark")
    evaluation.set_defaults(format=None, split=None)
    _add_conversion_args(evaluation)
    evaluation.set_defaults(func=cmd_eval)

    validate = commands.add_parser("validate", help="check prepared files against the schema and manifest")
    validate.add_argument("files", nargs="+", help="prepared .parquet files")
    validate.set_defaults(func=cmd_validate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return int(args.func(args))
    except DataValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
