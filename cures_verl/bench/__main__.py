"""Command line of the benchmark: ``python -m cures_verl.bench`` (also installed as ``cures-bench``).

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
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from cures_verl import __version__
from cures_verl.bench.beyond import SUITES, run_suite
from cures_verl.bench.experiment import (
    SimulationConfig,
    config_to_dict,
    default_workers,
    quick_config,
    resolve_specs,
    run_simulation,
    summarise,
)
from cures_verl.bench.overhead import OverheadConfig, run_overhead
from cures_verl.bench.report import format_overhead, format_simulation, plot_curves, write_json
from cures_verl.bench.simulator import DEFAULT_LR, OPTIMIZERS, LearnerConfig
from cures_verl.bench.strategies import DEFAULT_STRATEGIES, STRATEGIES, StrategyOptions, parse_cures_variant

logger = logging.getLogger("cures_verl.bench")

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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (defaults shown in ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="python -m cures_verl.bench",
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
    over.add_argument("--overhead-sizes", type=_int_list, default=_H.sizes, help="dataset sizes, comma-separated")
    over.add_argument("--overhead-batch-size", type=int, default=_H.batch_size, help="prompts per step (paper)")
    over.add_argument("--overhead-rollouts", type=int, default=_H.rollouts_per_prompt, help="n; budget = m x n")
    over.add_argument("--overhead-seconds", type=float, default=_H.seconds, help="timing time per dataset size")
    over.add_argument("--overhead-min-repeats", type=int, default=_H.min_repeats, help="minimum timed steps")
    over.add_argument("--overhead-max-repeats", type=int, default=_H.max_repeats, help="maximum timed steps")
    over.add_argument("--overhead-warmup", type=int, default=_H.warmup, help="untimed steps first")
    over.add_argument(
        "--baseline-ref",
        default=_H.baseline_ref,
        help="also time the sampler as it is at this git revision (e.g. HEAD), side by side: before/after ratios",
    )

    sim = parser.add_argument_group("part 2: simulated learner")
    sim.add_argument("--num-prompts", type=int, default=_L.num_prompts, help="dataset size (15 x 10 batches x 64)")
    sim.add_argument("--num-clusters", type=int, default=_L.num_clusters, help="clusters sharing a parameter")
    sim.add_argument("--transfer", type=float, default=_L.transfer, help="shared fraction of an update, in [0, 1]")
    sim.add_argument("--difficulty-mean", type=float, default=_L.difficulty_mean, help="mean starting logit")
    sim.add_argument("--difficulty-std", type=float, default=_L.difficulty_std, help="std of starting logits")
    sim.add_argument(
        "--cluster-difficulty-share",
        type=float,
        default=_L.cluster_difficulty_share,
        help="fraction of the starting-logit variance between clusters",
    )
    sim.add_argument("--optimizer", choices=OPTIMIZERS, default=_L.optimizer, help="optimiser")
    sim.add_argument(
        "--lr",
        type=float,
        default=None,
        help="learning rate; default per optimizer: " + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items()),
    )
    sim.add_argument("--beta1", type=float, default=_L.beta1, help="Adam first-moment decay")
    sim.add_argument("--beta2", type=float, default=_L.beta2, help="Adam second-moment decay")
    sim.add_argument("--batch-size", type=int, default=_S.batch_size, help="m, prompts per step")
    sim.add_argument("--rollouts-per-prompt", type=int, default=_S.rollouts_per_prompt, help="n; B = m x n per step")
    sim.add_argument("--steps", type=int, default=_S.steps, help="steps of B rollouts (one CurES paper epoch)")
    sim.add_argument("--num-seeds", type=int, default=len(_S.seeds), help="seeds (each a different dataset)")
    sim.add_argument("--first-seed", type=int, default=0, help="seeds are first-seed .. first-seed + num-seeds - 1")
    sim.add_argument("--target", type=float, default=None, help="absolute target accuracy (default: derived)")
    sim.add_argument(
        "--target-fraction", type=float, default=_S.target_fraction, help="target = start + this x uniform's gain"
    )
    sim.add_argument(
        "--strategies",
        type=_name_list,
        default=DEFAULT_STRATEGIES,
        help=f"comma-separated, from: {', '.join(STRATEGIES)} (plus --cures-variant names)",
    )
    sim.add_argument(
        "--cures-variant",
        action="append",
        default=[],
        metavar="NAME=PRESET[:JSON]",
        help='extra CurES strategy, e.g. \'cures_thompson=paper:{"sampler": {"score": "thompson"}}\' (repeatable)',
    )

    strat = parser.add_argument_group("strategy hyperparameters")
    strat.add_argument("--dapo-max-rounds", type=int, default=_O.dapo_max_rounds, help="DAPO rounds per update")
    strat.add_argument(
        "--speed-screen-rollouts", type=int, default=_O.speed_screen_rollouts, help="Speed-RL screening rollouts"
    )
    strat.add_argument("--gvm-a", type=float, default=_O.gvm_a, help="GVM a")
    strat.add_argument("--gvm-b", type=float, default=_O.gvm_b, help="GVM b")
    strat.add_argument("--knapsack-min", type=int, default=_O.knapsack_min, help="Knapsack-RL min rollouts")
    strat.add_argument("--knapsack-max", type=int, default=_O.knapsack_max, help="Knapsack-RL max rollouts")
    strat.add_argument(
        "--mopps-candidate-ratio", type=int, default=_O.mopps_candidate_ratio, help="MoPPS candidates per pick"
    )
    strat.add_argument("--mopps-decay", type=float, default=_O.mopps_decay, help="MoPPS posterior decay lambda")
    strat.add_argument(
        "--cures-subset-batches", type=int, default=_O.cures_subset_batches, help="CurES/GVM subset size in batches"
    )
    strat.add_argument(
        "--cures-steps-per-iteration",
        type=int,
        default=_O.cures_steps_per_iteration,
        help="CurES/GVM training steps per subset",
    )
    strat.add_argument(
        "--cold-start-rollouts", type=int, default=_O.cold_start_rollouts, help="CurES/GVM N' per prompt"
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
        "command": ["python", "-m", "cures_verl.bench", *(argv if argv is not None else sys.argv[1:])],
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
