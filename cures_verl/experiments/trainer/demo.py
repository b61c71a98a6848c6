"""The CPU demo: a real CurES GRPO run through verl's trainer on a laptop, then the curriculum figures.

``python -m cures_verl.experiments.trainer.demo run --out outputs/cpu_demo`` (what ``recipes/cures_cpu_demo.sh`` calls):

1. builds the digit-sums task, a tiny tokenizer and model, and warm-starts the model (seconds, offline);
2. runs ``python -m cures_verl.main profile=cpu ...``: the paper's CurES (cold start, then sampling by Eq. 14 and
   allocation by Eq. 20) in verl's real V1 trainer, with Ray, an FSDP2 actor and our transformers rollout;
   a hard timeout kills the whole run instead of letting a misconfigured Ray job hang;
3. plots accuracy per difficulty tier over steps, rollouts allocated versus estimated accuracy, the
   estimated-accuracy distribution and the posterior's calibration, and prints a summary.

This module starts verl only in a subprocess; it imports no verl itself.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from cures_verl.experiments.watchdog import RunTimeout, run_with_watchdog

from .assets import build_demo_assets
from .recipe import demo_overrides


def cmd_run(args: argparse.Namespace) -> int:
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    print(f"[1/3] building the digit-sums task and warm-starting the tiny model in {out / 'assets'}", flush=True)
    assets = build_demo_assets(out / "assets", num_prompts=args.num_prompts, num_val_prompts=16, seed=args.seed)
    if assets.warm_start is not None:
        tiers = ", ".join(f"tier {k}: {v:.2f}" for k, v in sorted(assets.warm_start.accuracy_by_tier.items()))
        print(f"      warm start: p(correct) {tiers}", flush=True)
    cold_steps = -(-args.num_prompts // args.batch_size)
    overrides = [
        "profile=cpu",
        *demo_overrides(
            assets,
            total_training_steps=cold_steps + args.steps,
            train_batch_size=args.batch_size,
            rollout_n=args.rollout_n,
            seed=args.seed,
        ),
        f"cures.preset={args.preset}",
        # the whole task is one subset: a cold start over it, then training steps sampled by Eq. 14
        "cures.schedule.num_iterations=1",
        f"cures.schedule.steps_per_iteration={args.steps}",
        f"cures.seed={args.seed}",
        f"cures.dump_dir={out / 'cures'}",
        "trainer.project_name=cures_cpu_demo",
        "trainer.experiment_name=demo",
        *args.overrides,
    ]
    (out / "cures").mkdir(exist_ok=True)
    records = out / "cures" / "cures_steps.jsonl"
    if records.exists():
        records.unlink()  # a previous demo's records would mix with this run's
    print(f"[2/3] CurES GRPO in verl's trainer on CPU: {cold_steps} cold-start + {args.steps} training steps")
    started = time.monotonic()
    try:
        done = run_with_watchdog(
            [sys.executable, "-m", "cures_verl.main", *overrides],
            timeout_s=args.timeout,
            log_path=out / "train.log",
            echo=True,
        )
    except RunTimeout:
        raise SystemExit(
            f"the training run exceeded {args.timeout} s and was stopped (log: {out / 'train.log'}); a run this small "
            "takes about 6 minutes on 2 cores, so look at the end of the log for where it stalled"
        ) from None
    rc = done.returncode
    if rc != 0:
        print(f"training failed (exit code {rc}); log: {out / 'train.log'}", file=sys.stderr)
        return rc
    wall = time.monotonic() - started
    if not records.exists():
        # cures.enable=false (plain verl GRPO) writes no curriculum records: there is nothing to plot
        print(
            f"[3/3] no curriculum records in {records} (CurES was off, e.g. cures.enable=false): training finished "
            f"in {wall:.0f} s, no curriculum figures; to compare with plain GRPO use "
            "python -m cures_verl.experiments.trainer.demo compare",
            flush=True,
        )
        return 0
    print(f"[3/3] plotting the curriculum into {out / 'plots'}", flush=True)
    summary = _summarise(records, out / "plots", assets.train_parquet)
    summary["training_wall_s"] = round(wall, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(_describe(summary, out))
    return 0


def _summarise(records_path: Path, plots: Path, train_parquet: Path) -> dict:
    """Write the figures and return the numbers the demo prints."""
    import pyarrow.parquet as pq

    from cures_verl.experiments.plots import (
        draws_by_bucket,
        load_step_records,
        plot_accuracy_by_bucket,
        plot_accuracy_violins,
        plot_calibration,
        plot_rollouts_vs_accuracy,
    )

    records = load_step_records(records_path)
    info = pq.read_table(train_parquet, columns=["extra_info"]).column("extra_info").to_pylist()
    tier = {int(i["index"]): f"{i['difficulty']} operand(s)" for i in info}
    train_records = [r for r in records if r["phase"] == "train"]
    window = max(1, len(train_records) // 5)
    _, windows = plot_accuracy_by_bucket(
        records, tier, plots / "accuracy_by_tier.png", window=window, title="Training accuracy per difficulty tier"
    )
    plot_rollouts_vs_accuracy(records, plots / "rollouts_vs_accuracy.png")
    plot_accuracy_violins(records, plots / "accuracy_distribution.png")
    plot_calibration(records, plots / "calibration.png")
    drawn = draws_by_bucket(records, tier)
    total = sum(v[0] for v in drawn.values())
    corr = [r["metrics"].get("posterior/pred_realised_rank_corr") for r in train_records]
    corr = [c for c in corr if c is not None]
    return {
        "window_steps": window,
        "accuracy_by_tier": windows,
        "share_of_draws_by_tier": {k: round(v[0] / total, 3) for k, v in sorted(drawn.items())},
        "dataset_share_by_tier": {
            k: round(sum(1 for t in tier.values() if t == k) / len(tier), 3) for k in sorted(drawn)
        },
        "mean_rollouts_by_tier": {k: round(v[1] / v[0], 2) for k, v in sorted(drawn.items())},
        "mean_rank_corr_pred_vs_realised": round(sum(corr) / len(corr), 3) if corr else None,
        "steps": len(records),
    }


def _describe(summary: dict, out: Path) -> str:
    lines = [
        "",
        f"CurES CPU demo finished: {summary['steps']} steps, {summary['training_wall_s']:.0f} s of training wall time.",
        f"Training accuracy per tier, in windows of {summary['window_steps']} training steps (first -> last):",
    ]
    for tier, values in sorted(summary["accuracy_by_tier"].items()):
        shown = " -> ".join(f"{v:.2f}" for v in values)
        lines.append(f"  {tier:<14} {shown}")
    lines.append("Share of draws by tier (dataset share) and mean rollouts per draw:")
    for tier, share in summary["share_of_draws_by_tier"].items():
        lines.append(
            f"  {tier:<14} {share:.2f} ({summary['dataset_share_by_tier'][tier]:.2f}), "
            f"{summary['mean_rollouts_by_tier'][tier]:.1f} rollouts"
        )
    corr = summary["mean_rank_corr_pred_vs_realised"]
    lines.append(f"Rank correlation of predicted vs realised group accuracy: {corr}")
    lines.append(f"Figures: {out / 'plots'}; log: {out / 'train.log'}; summary: {out / 'summary.json'}")
    return "\n".join(lines)


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import (
        ARMS,
        SETTINGS,
        ComparisonSpec,
        format_summary,
        merge_results,
        parse_arm,
        run_comparison,
        write_results,
    )

    try:
        settings = [SETTINGS[name] for name in args.settings.split(",")]
    except KeyError as error:
        raise SystemExit(f"--settings: unknown setting {error}; choose from {', '.join(SETTINGS)}") from None
    try:
        arms = dict(parse_arm(text) for text in (args.arm or list(ARMS)))
    except ValueError as error:
        raise SystemExit(str(error)) from None
    if "grpo" not in arms:
        raise SystemExit("--arm: the comparison needs the grpo arm (the baseline every arm is paired with)")
    seeds = [int(s) for s in args.seeds.split(",")]
    out = Path(args.out).resolve()
    # options whose name is the spec's field name pass through as they are
    same_name = ("jobs", "keep_checkpoints", "report_only", "budget_rollouts", "eval_every_rollouts")
    spec = ComparisonSpec(
        settings=settings,
        arms=arms,
        seeds=seeds,
        out=out,
        timeout_s=args.timeout,
        reuse=not args.fresh,
        **{name: getattr(args, name) for name in same_name},
    )
    results = run_comparison(spec)
    results_dir = Path(args.results_dir).resolve() if args.results_dir else out
    existing = results_dir / "results.json"
    if args.merge and existing.exists():
        results = merge_results(json.loads(existing.read_text()), results)
    results = write_results(results, results_dir)
    print(format_summary(results["summary"]))
    print(f"results: {existing}; figures: {results_dir}/<setting>.png; runs: {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cures_verl.experiments.trainer.demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="build the task, train with CurES on CPU, plot")
    run.add_argument("--out", default="outputs/cpu_demo", help="output directory (default: %(default)s)")
    run.add_argument("--steps", type=int, default=50, help="training steps after the cold start (default: %(default)s)")
    run.add_argument("--num-prompts", type=int, default=64, help="training prompts (default: %(default)s)")
    run.add_argument("--batch-size", type=int, default=16, help="prompts per step (default: %(default)s)")
    run.add_argument("--rollout-n", type=int, default=8, help="nominal rollouts per prompt (default: %(default)s)")
    run.add_argument("--preset", default="paper", help="cures.preset (default: %(default)s)")
    run.add_argument("--seed", type=int, default=0, help="seed of data, model and sampler (default: %(default)s)")
    run.add_argument("--timeout", type=int, default=1200, help="limit on the training run, s (default: %(default)s)")
    run.add_argument("overrides", nargs="*", help="extra Hydra overrides for python -m cures_verl.main")
    run.set_defaults(func=cmd_run)
    compare = sub.add_parser(
        "compare",
        help="CurES arms against plain GRPO at equal rollouts in verl's trainer, exactly evaluated",
        description="Run every setting x seed x arm through python -m cures_verl.main profile=cpu and score each "
        "saved policy exactly (docs/results/real_loop/README.md).",
    )
    compare.add_argument("--settings", default="default", help="comma-separated settings (default: %(default)s)")
    compare.add_argument(
        "--arm",
        action="append",
        help="an arm: grpo, paper, official_code, recommended, or NAME=key=value[,key=value...]; repeat it "
        "(default: the four named)",
    )
    compare.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default: %(default)s)")
    compare.add_argument("--jobs", type=int, default=2, help="runs at a time (default: %(default)s)")
    compare.add_argument("--out", default="outputs/compare", help="run directories (default: %(default)s)")
    compare.add_argument("--results-dir", help="where results.json and the figures go (default: --out)")
    compare.add_argument("--merge", action="store_true", help="add these runs to an existing results.json")
    compare.add_argument("--budget-rollouts", type=int, help="override every setting's rollout budget (smoke runs)")
    compare.add_argument(
        "--fresh",
        action="store_true",
        help="rerun runs whose directory already holds a finished run of the same command",
    )
    compare.add_argument(
        "--report-only", action="store_true", help="rebuild results.json, summary.md and figures from finished runs"
    )
    compare.add_argument("--eval-every-rollouts", type=int, help="override every setting's evaluation grid")
    compare.add_argument("--keep-checkpoints", action="store_true", help="keep verl's per-step checkpoints")
    compare.add_argument("--timeout", type=int, default=1800, help="limit per training run, s (default: %(default)s)")
    compare.set_defaults(func=cmd_compare)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
