#!/usr/bin/env python
"""Plot a CurES run: the paper's curriculum figures and accuracy curves (docs/metrics.md#plots).

Examples:
    # curriculum figures from the sampler's per-step record (cures.dump_dir=...)
    python scripts/plot_curriculum.py curriculum runs/cures/cures_steps.jsonl --out-dir plots/

    # the same plus accuracy per difficulty bucket (the CPU demo's operand count)
    python scripts/plot_curriculum.py curriculum outputs/cpu_demo/cures/cures_steps.jsonl --out-dir plots/ \\
        --bucket-file outputs/cpu_demo/assets/train.parquet --bucket-field difficulty

    # accuracy curves of two runs from verl's file logger against cumulative rollouts (cold starts included; the
    # progress/rollouts metric every run of cures_verl.main logs), with the paper's speed-up ratio measured in
    # rollouts to the baseline's peak; --x updates / response_tokens / step for the other axes
    python scripts/plot_curriculum.py curves --run GRPO=logs/cures/grpo.jsonl --run CurES=logs/cures/cures.jsonl \\
        --metric val-core/cures-math500/acc/mean@1 --out plots/math500.png

    # logs without progress/* (older runs): rollouts from the CurES run's records and GRPO's fixed step size
    python scripts/plot_curriculum.py curves --run GRPO=logs/cures/grpo.jsonl --run CurES=logs/cures/cures.jsonl \\
        --steps-log CurES=checkpoints/cures/cures/cures_steps.jsonl --rollouts-per-step 8192 --out plots/math500.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from cures_verl.experiments.plots import (
    PROGRESS_AXES,
    cumulative_rollouts,
    load_metric_log,
    load_step_records,
    plot_accuracy_by_bucket,
    plot_accuracy_curves,
    plot_accuracy_violins,
    plot_calibration,
    plot_rollouts_vs_accuracy,
    progress_at,
)


def _bucket_map(path: str, field: str) -> dict[int, object]:
    import pyarrow.parquet as pq

    info = pq.read_table(path, columns=["extra_info"]).column("extra_info").to_pylist()
    missing = [row for row, item in enumerate(info) if item is None or field not in item or "index" not in item]
    if missing:
        raise SystemExit(f"{path}: rows {missing[:5]} lack extra_info.index or extra_info.{field}")
    return {int(item["index"]): item[field] for item in info}


def cmd_curriculum(args: argparse.Namespace) -> int:
    records = load_step_records(args.records)
    out = Path(args.out_dir)
    written = [
        plot_accuracy_violins(records, out / "accuracy_violins.png"),
        plot_rollouts_vs_accuracy(records, out / "rollouts_vs_accuracy.png"),
        plot_calibration(records, out / "calibration.png"),
    ]
    if args.bucket_file:
        path, windows = plot_accuracy_by_bucket(
            records,
            _bucket_map(args.bucket_file, args.bucket_field),
            out / "accuracy_by_bucket.png",
            window=args.window,
        )
        written.append(path)
        print(json.dumps({"accuracy_by_bucket": windows}, indent=1))
    for path in written:
        print(f"wrote {path}")
    return 0


def _pairs(specs: list[str] | None, flag: str) -> dict[str, str]:
    out = {}
    for spec in specs or []:
        name, _, path = spec.partition("=")
        if not name or not path:
            raise SystemExit(f"{flag} wants NAME=PATH, got {spec!r}")
        out[name] = path
    return out


def _to_rollouts(name: str, steps, steps_logs: dict[str, str], per_step: int | None):
    if name in steps_logs:
        table = cumulative_rollouts(load_step_records(steps_logs[name]))
        missing = [int(s) for s in steps if int(s) not in table]
        if missing:
            raise SystemExit(f"{steps_logs[name]} has no record of step(s) {missing[:5]} (run {name})")
        return np.array([table[int(s)] for s in steps], dtype=np.float64)
    if per_step is None:
        raise SystemExit(
            f"--x rollouts: run {name} has no --steps-log (its cures_steps.jsonl); for a plain GRPO run give "
            "--rollouts-per-step (data.train_batch_size x actor_rollout_ref.rollout.n)"
        )
    return np.asarray(steps, dtype=np.float64) * per_step


_XLABEL = {
    "step": "training step",
    "rollouts": "cumulative rollouts (cold starts included)",
    "updates": "policy updates",
    "response_tokens": "cumulative response tokens generated",
}


def _x_axis(args: argparse.Namespace, name: str, path: str, log, steps, steps_logs: dict[str, str]):
    if args.x == "step":
        return steps
    try:
        counts = progress_at(log, steps, args.x)
    except ValueError as error:
        raise SystemExit(f"{path}: {error}") from error
    if counts is not None:
        return counts
    if args.x == "rollouts":
        return _to_rollouts(name, steps, steps_logs, args.rollouts_per_step)
    raise SystemExit(
        f"--x {args.x}: {path} has no progress/{args.x} metric (logged by cures_verl.main since it counts progress); "
        "use --x rollouts with --steps-log/--rollouts-per-step, or --x step"
    )


def cmd_curves(args: argparse.Namespace) -> int:
    runs = {}
    steps_logs = _pairs(args.steps_log, "--steps-log")
    for name, path in _pairs(args.run, "--run").items():
        log = load_metric_log(path)
        if args.metric not in log:
            close = [k for k in log if args.metric.split("/")[0] in k][:10]
            raise SystemExit(f"{path} has no metric {args.metric!r}; metrics like it: {close}")
        steps, values = log[args.metric]
        runs[name] = (_x_axis(args, name, path, log, steps, steps_logs), values)
    unit = "step" if args.x == "step" else args.x.replace("_", " ")
    png, comparisons = plot_accuracy_curves(
        runs, args.out, metric=args.metric, baseline=args.baseline, xlabel=_XLABEL[args.x]
    )
    for name, cmp in comparisons.items():
        print(
            f"{name}: baseline peak {cmp.peak:.4f} at {unit} {cmp.baseline_step:g}; reached at {unit} "
            f"{cmp.method_step if cmp.method_step is not None else 'never'}; ratio {cmp.ratio}"
        )
    print(f"wrote {png}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    cur = sub.add_parser("curriculum", help="violins, allocation and calibration from cures_steps.jsonl")
    cur.add_argument("records", help="cures_steps.jsonl written under cures.dump_dir")
    cur.add_argument("--out-dir", required=True)
    cur.add_argument("--bucket-file", help="training parquet whose extra_info holds a bucket per prompt")
    cur.add_argument("--bucket-field", default="difficulty")
    cur.add_argument("--window", type=int, default=10, help="steps per point of the bucket curves")
    cur.set_defaults(func=cmd_curriculum)
    cur2 = sub.add_parser("curves", help="a metric of several runs from verl's file logger")
    cur2.add_argument("--run", action="append", required=True, help="NAME=path/to/file-logger.jsonl (repeat)")
    cur2.add_argument("--metric", default="val-core/cures-math500/acc/mean@1")
    cur2.add_argument("--baseline", help="run the ratio is measured against (default: the first --run)")
    cur2.add_argument(
        "--x",
        choices=(*PROGRESS_AXES, "step"),
        default="rollouts",
        help="x axis (default: %(default)s); counts from each log's progress/* metrics",
    )
    cur2.add_argument(
        "--steps-log",
        action="append",
        help="NAME=path/to/cures_steps.jsonl: rollouts of a CurES run whose log has no progress/rollouts (repeat)",
    )
    cur2.add_argument(
        "--rollouts-per-step", type=int, help="rollouts of every step of runs with neither progress/* nor --steps-log"
    )
    cur2.add_argument("--out", required=True)
    cur2.set_defaults(func=cmd_curves)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
