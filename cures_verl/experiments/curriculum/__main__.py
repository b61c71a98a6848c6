"""Command line of the benchmark: ``python -m cures_verl.experiments.curriculum`` (also installed as ``cures-bench``).

Runs part 1 (sampler-step overhead against a dense numpy reference) and then part 2 (sample efficiency of the
strategies on the simulated learner), prints the tables, and writes ``results.json`` and ``accuracy.png`` to
``--out``. ``--quick`` shrinks both parts to a few seconds. Every option's default and the reason for it are in
docs/benchmark.md.
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from cures_verl import __version__
from cures_verl.experiments.curriculum.beyond import SUITES, run_suite
from cures_verl.experiments.curriculum.experiment import (
    SimulationConfig,
    config_to_dict,
    default_workers,
    quick_config,
    resolve_specs,
    run_simulation,
    summarise,
)
from cures_verl.experiments.curriculum.overhead import OverheadConfig, run_overhead
from cures_verl.experiments.curriculum.report import format_overhead, format_simulation, plot_curves, write_json
from cures_verl.experiments.curriculum.simulator import DEFAULT_LR, OPTIMIZERS, LearnerConfig
from cures_verl.experiments.strategies import DEFAULT_STRATEGIES, STRATEGIES, StrategyOptions, parse_cures_variant

logger = logging.getLogger("cures_verl.experiments.curriculum")

_L = LearnerConfig()
_O = StrategyOptions()
_S = SimulationConfig()
_H = OverheadConfig()


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x.replace("_", "")) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from exc


def _name_list(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def _add_options(group: argparse._ArgumentGroup, *options: tuple[str, Callable[[str], Any], Any, str]) -> None:
    """Add plain options to ``group``: one (flag, type, default, help) row each."""
    for flag, kind, default, text in options:
        group.add_argument(flag, type=kind, default=default, help=text)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (defaults shown in ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="python -m cures_verl.experiments.curriculum",
        description=(
            "CurES benchmark: sampler-step overhead vs a dense numpy reference, and sample efficiency of prompt "
            "selection / rollout allocation strategies on a simulated GRPO learner. See docs/benchmark.md."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    run = parser.add_argument_group("run")
    run.add_argument("--part", choices=("all", "overhead", "simulation"), default="all", help="which part to run")
    run.add_argument(
        "--quick",
        action="store_true",
        help="a few seconds in all: overhead at 10,000 prompts only; simulation on 640 prompts, batch 16, 30 steps, "
        "2 seeds (overrides those options)",
    )
    run.add_argument("--out", type=Path, default=Path("outputs/bench"), help="directory for results.json, accuracy.png")
    run.add_argument("--no-plot", action="store_true", help="skip the PNG (no matplotlib needed)")
    run.add_argument("--workers", type=int, default=default_workers(), help="processes for the simulation")
    run.add_argument("-v", "--verbose", action="store_true", help="log progress")
    run.add_argument(
        "--suite",
        choices=SUITES,
        default=None,
        help="run a pre-registered suite of docs/beyond_the_paper.md instead of the parts: 'beyond' (the reported "
        "settings, about 15 minutes on 2 cores) or 'dev' (the development setting); only --out, --workers, "
        "--no-plot and --quick apply",
    )
    run.add_argument(
        "--suite-settings",
        type=_name_list,
        default=None,
        help="with --suite: run only these settings (comma-separated names, e.g. default,hard)",
    )

    over = parser.add_argument_group("part 1: overhead")
    _add_options(
        over,
        ("--overhead-sizes", _int_list, _H.sizes, "dataset sizes, comma-separated"),
        ("--overhead-batch-size", int, _H.batch_size, "prompts per step (paper)"),
        ("--overhead-rollouts", int, _H.rollouts_per_prompt, "n; budget = m x n"),
        ("--overhead-seconds", float, _H.seconds, "timing time per dataset size"),
        ("--overhead-min-repeats", int, _H.min_repeats, "minimum timed steps"),
        ("--overhead-max-repeats", int, _H.max_repeats, "maximum timed steps"),
        ("--overhead-warmup", int, _H.warmup, "untimed steps first"),
        (
            "--baseline-ref",
            str,
            _H.baseline_ref,
            "also time the sampler as it is at this git revision (e.g. HEAD), side by side: before/after ratios",
        ),
    )

    sim = parser.add_argument_group("part 2: simulated learner")
    _add_options(
        sim,
        ("--num-prompts", int, _L.num_prompts, "dataset size (15 x 10 batches x 64)"),
        ("--num-clusters", int, _L.num_clusters, "clusters sharing a parameter"),
        ("--transfer", float, _L.transfer, "shared fraction of an update, in [0, 1]"),
        ("--difficulty-mean", float, _L.difficulty_mean, "mean starting logit"),
        ("--difficulty-std", float, _L.difficulty_std, "std of starting logits"),
        (
            "--cluster-difficulty-share",
            float,
            _L.cluster_difficulty_share,
            "fraction of the starting-logit variance between clusters",
        ),
    )
    sim.add_argument("--optimizer", choices=OPTIMIZERS, default=_L.optimizer, help="optimiser")
    sim.add_argument(
        "--loss-normalization",
        choices=("rollouts", "budget"),
        default=_S.loss_normalization,
        help="divide each update's loss by its rollouts (verl's token-mean) or by the step budget B",
    )
    _add_options(
        sim,
        (
            "--lr",
            float,
            None,
            "learning rate; default per optimizer: " + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items()),
        ),
        ("--beta1", float, _L.beta1, "Adam first-moment decay"),
        ("--beta2", float, _L.beta2, "Adam second-moment decay"),
        ("--batch-size", int, _S.batch_size, "m, prompts per step"),
        ("--rollouts-per-prompt", int, _S.rollouts_per_prompt, "n; B = m x n per step"),
        ("--steps", int, _S.steps, "steps of B rollouts (one CurES paper epoch)"),
        ("--num-seeds", int, len(_S.seeds), "seeds (each a different dataset)"),
        ("--first-seed", int, 0, "seeds are first-seed .. first-seed + num-seeds - 1"),
        ("--target", float, None, "absolute target accuracy (default: derived)"),
        ("--target-fraction", float, _S.target_fraction, "target = start + this x uniform's gain"),
        (
            "--strategies",
            _name_list,
            DEFAULT_STRATEGIES,
            f"comma-separated, from: {', '.join(STRATEGIES)} (plus --cures-variant names)",
        ),
    )
    sim.add_argument(
        "--cures-variant",
        action="append",
        default=[],
        metavar="NAME=PRESET[:JSON]",
        help='extra CurES strategy, e.g. \'cures_thompson=paper:{"sampler": {"score": "thompson"}}\' (repeatable)',
    )

    strat = parser.add_argument_group("strategy hyperparameters")
    _add_options(
        strat,
        ("--dapo-max-rounds", int, _O.dapo_max_rounds, "DAPO rounds per update"),
        ("--speed-screen-rollouts", int, _O.speed_screen_rollouts, "Speed-RL screening rollouts"),
        ("--gvm-a", float, _O.gvm_a, "GVM a"),
        ("--gvm-b", float, _O.gvm_b, "GVM b"),
        ("--knapsack-min", int, _O.knapsack_min, "Knapsack-RL min rollouts"),
        ("--knapsack-max", int, _O.knapsack_max, "Knapsack-RL max rollouts"),
        ("--mopps-candidate-ratio", int, _O.mopps_candidate_ratio, "MoPPS candidates per pick"),
        ("--mopps-decay", float, _O.mopps_decay, "MoPPS posterior decay lambda"),
        ("--cures-subset-batches", int, _O.cures_subset_batches, "CurES/GVM subset size in batches"),
        ("--cures-steps-per-iteration", int, _O.cures_steps_per_iteration, "CurES/GVM training steps per subset"),
        ("--cold-start-rollouts", int, _O.cold_start_rollouts, "CurES/GVM N' per prompt"),
    )
    return parser


def configs_from_args(args: argparse.Namespace) -> tuple[OverheadConfig, SimulationConfig]:
    """The two parts' configs from parsed arguments (``--quick`` applied).

    Raises:
        ValueError: With the offending option named, for invalid values.
    """
    overhead = OverheadConfig(
        sizes=tuple(args.overhead_sizes),
        batch_size=args.overhead_batch_size,
        rollouts_per_prompt=args.overhead_rollouts,
        seconds=args.overhead_seconds,
        min_repeats=args.overhead_min_repeats,
        max_repeats=args.overhead_max_repeats,
        warmup=args.overhead_warmup,
        baseline_ref=args.baseline_ref,
    )
    learner = LearnerConfig(
        num_prompts=args.num_prompts,
        num_clusters=args.num_clusters,
        transfer=args.transfer,
        difficulty_mean=args.difficulty_mean,
        difficulty_std=args.difficulty_std,
        cluster_difficulty_share=args.cluster_difficulty_share,
        optimizer=args.optimizer,
        lr=args.lr,
        beta1=args.beta1,
        beta2=args.beta2,
    )
    options = StrategyOptions(
        dapo_max_rounds=args.dapo_max_rounds,
        speed_screen_rollouts=args.speed_screen_rollouts,
        gvm_a=args.gvm_a,
        gvm_b=args.gvm_b,
        knapsack_min=args.knapsack_min,
        knapsack_max=args.knapsack_max,
        mopps_candidate_ratio=args.mopps_candidate_ratio,
        mopps_decay=args.mopps_decay,
        cures_subset_batches=args.cures_subset_batches,
        cures_steps_per_iteration=args.cures_steps_per_iteration,
        cold_start_rollouts=args.cold_start_rollouts,
    )
    variants = tuple(parse_cures_variant(text) for text in args.cures_variant)
    strategies = tuple(args.strategies) + tuple(v[0] for v in variants if v[0] not in args.strategies)
    if args.num_seeds < 1:
        raise ValueError(f"--num-seeds={args.num_seeds} must be >= 1")
    simulation = SimulationConfig(
        learner=learner,
        options=options,
        batch_size=args.batch_size,
        rollouts_per_prompt=args.rollouts_per_prompt,
        steps=args.steps,
        seeds=tuple(range(args.first_seed, args.first_seed + args.num_seeds)),
        strategies=strategies,
        cures_variants=variants,
        target=args.target,
        target_fraction=args.target_fraction,
        loss_normalization=args.loss_normalization,
    )
    if args.quick:
        overhead = replace(overhead, sizes=(10_000,), seconds=0.2, min_repeats=5, max_repeats=50, warmup=2)
        simulation = quick_config(simulation)
    return overhead, simulation


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the process exit code (2 for invalid options)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    if args.suite is not None:
        started = time.perf_counter()
        try:
            result = run_suite(
                args.suite,
                out=args.out,
                workers=args.workers,
                quick=args.quick,
                plot=not args.no_plot,
                only=args.suite_settings,
            )
        except ValueError as exc:
            parser.error(str(exc))
        print(result.text, flush=True)
        for path in result.files:
            print(f"wrote {path}")
        print(f"({time.perf_counter() - started:.0f} s)")
        return 0
    try:
        overhead_config, simulation_config = configs_from_args(args)
        specs = resolve_specs(simulation_config) if args.part != "overhead" else {}
    except ValueError as exc:
        parser.error(str(exc))
    payload: dict[str, Any] = {
        "cures_verl_version": __version__,
        "command": ["python", "-m", "cures_verl.experiments.curriculum", *(argv if argv is not None else sys.argv[1:])],
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    started = time.perf_counter()
    if args.part in ("all", "overhead"):
        overhead = run_overhead(overhead_config)
        payload["overhead"] = overhead
        print(format_overhead(overhead), flush=True)
    if args.part in ("all", "simulation"):
        if args.part == "all":
            print()
        results = run_simulation(simulation_config, workers=args.workers)
        targets, summaries = summarise(simulation_config, results, specs)
        print(format_simulation(simulation_config, targets, summaries), flush=True)
        payload["simulation"] = {
            "config": config_to_dict(simulation_config),
            "targets": {str(seed): value for seed, value in targets.items()},
            "equal_updates": int(min(min(v for v in s.updates.values if v is not None) for s in summaries.values())),
            "strategies": {name: s.to_dict() for name, s in summaries.items()},
        }
        if not args.no_plot:
            png = plot_curves(simulation_config, targets, summaries, args.out / "accuracy.png")
            print(f"\nwrote {png}")
    payload["wall_seconds"] = time.perf_counter() - started
    path = write_json(payload, args.out / "results.json")
    print(f"wrote {path} ({payload['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
