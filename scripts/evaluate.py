#!/usr/bin/env python
"""Evaluate checkpoints on the paper's Table 1 benchmarks and build the results table (docs/evaluation.md).

Examples:
    # prepare the eight benchmarks once
    python scripts/prepare_data.py eval --output-dir data/eval

    # evaluate one checkpoint with vLLM (GPU), with the paper's 1.5B rows for comparison
    python scripts/evaluate.py run --model checkpoints/cures_grpo_1p5b/hf --label CurES-GRPO-1.5B \\
        --eval-dir data/eval --backend vllm --output-dir results --paper-rows 1.5B

    # several evaluated checkpoints into one table
    python scripts/evaluate.py table results/*/results.json --paper-rows 1.5B --output results/table1

    # small model on CPU (transformers backend)
    python scripts/evaluate.py run --model /tmp/tiny/model --tokenizer /tmp/tiny/tokenizer --backend hf \\
        --eval-dir data/eval --benchmarks math500,gsm8k --max-new-tokens 64 --output-dir results
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from cures_verl.data.registry import TABLE1_BENCHMARKS
from cures_verl.evaluation.generation import build_generator
from cures_verl.evaluation.runner import (
    EvalSettings,
    discover_tasks,
    evaluate_model,
    load_results,
    results_row,
    write_table,
)
from cures_verl.evaluation.scoring import DEFAULT_SCORER, load_scorer
from cures_verl.evaluation.table import details_markdown, to_markdown


def cmd_run(args: argparse.Namespace) -> int:
    names = TABLE1_BENCHMARKS if args.benchmarks == "all" else tuple(n.strip() for n in args.benchmarks.split(","))
    tasks = discover_tasks(args.eval_dir, names)
    settings = EvalSettings(
        max_new_tokens=args.max_new_tokens,
        pass1_temperature=args.pass1_temperature,
        pass1_top_p=args.pass1_top_p,
        avg_temperature=args.avg_temperature,
        avg_top_p=args.avg_top_p,
        top_k=args.top_k,
        avg_num_samples=args.avg_num_samples,
        seed=args.seed,
    )
    for task in tasks:
        settings.sampling_for(task)  # reject bad decoding settings before loading the model
    scorer = load_scorer(args.scorer)
    if args.backend == "hf":
        kwargs = {"device": args.device, "dtype": args.dtype or "float32", "batch_size": args.batch_size}
    else:
        kwargs = {
            "tensor_parallel_size": args.tensor_parallel_size,
            "gpu_memory_utilization": args.gpu_memory_utilization,
            "max_model_len": args.max_model_len,
            "dtype": args.dtype or "auto",
            "seed": args.seed,
        }
    generator = build_generator(args.backend, args.model, tokenizer_path=args.tokenizer, **kwargs)
    label = args.label or Path(args.model.rstrip("/")).name
    results = evaluate_model(
        generator,
        tasks,
        scorer=scorer,
        settings=settings,
        output_dir=args.output_dir,
        label=label,
        model_path=args.model,
        backend=args.backend,
        paper=args.paper_rows,
    )
    root = Path(args.output_dir) / label
    row = results_row(results.to_dict())
    print(to_markdown([row]) + "\n\n" + details_markdown([row]))
    print(f"\nwrote {root / 'results.json'}, {root / 'table.md'} and samples under {root / 'samples'}")
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    rows = [results_row(load_results(path)) for path in args.results]
    markdown, as_json = write_table(rows, args.output, paper=args.paper_rows)
    print(markdown.read_text(encoding="utf-8"))
    print(f"wrote {markdown} and {as_json}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="evaluate one model")
    run.add_argument("--model", required=True, help="HF model directory or Hub id")
    run.add_argument("--tokenizer", help="tokenizer directory (default: the model's)")
    run.add_argument("--label", help="row label (default: the model directory name)")
    run.add_argument("--eval-dir", default="data/eval", help="directory holding <benchmark>.parquet")
    run.add_argument(
        "--benchmarks",
        default="all",
        help=f"comma list or 'all' ({', '.join(TABLE1_BENCHMARKS)}); other files as NAME or NAME@k",
    )
    run.add_argument("--output-dir", default="results", help="results go to <output-dir>/<label>/")
    run.add_argument("--backend", choices=("vllm", "hf"), default="vllm", help="vllm (GPU) or hf (transformers)")
    run.add_argument("--scorer", default=DEFAULT_SCORER, help="reward 'module:function' or 'file.py:function'")
    run.add_argument("--paper-rows", default="none", choices=("none", "1.5B", "7B", "all"), help="add paper rows")
    group = run.add_argument_group("decoding (the paper states none; defaults documented in docs/evaluation.md)")
    group.add_argument("--max-new-tokens", type=int, default=3072)
    group.add_argument("--pass1-temperature", type=float, default=0.0, help="0 = greedy")
    group.add_argument("--pass1-top-p", type=float, default=1.0)
    group.add_argument("--avg-temperature", type=float, default=1.0)
    group.add_argument("--avg-top-p", type=float, default=1.0)
    group.add_argument("--top-k", type=int, default=-1, help="-1 = off")
    group.add_argument("--avg-num-samples", type=int, help="override k of the avg@16 benchmarks")
    group.add_argument("--seed", type=int, default=0)
    group = run.add_argument_group("backend")
    group.add_argument("--dtype", help="weight dtype (default: float32 for hf, auto for vllm)")
    group.add_argument("--device", default="cpu", help="hf only")
    group.add_argument("--batch-size", type=int, default=8, help="hf only: prompts per generate call")
    group.add_argument("--tensor-parallel-size", type=int, default=1, help="vllm only")
    group.add_argument("--gpu-memory-utilization", type=float, default=0.9, help="vllm only")
    group.add_argument("--max-model-len", type=int, help="vllm only: prompt + response tokens")
    run.set_defaults(func=cmd_run)

    table = commands.add_parser("table", help="merge results.json files into one Table 1")
    table.add_argument("results", nargs="+", help="results.json files written by `run`")
    table.add_argument("--output", default="results/table1", help="writes <output>.md and <output>.json")
    table.add_argument("--paper-rows", default="none", choices=("none", "1.5B", "7B", "all"), help="add paper rows")
    table.set_defaults(func=cmd_table)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return int(args.func(args))
    except (ValueError, FileNotFoundError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
