"""How many steps each arm needs to spend the same rollouts as a CurES run (cold starts included), from the data.

A CurES run with the paper's schedule spends ``batch x cold_start_rollouts`` rollouts on each cold-start step
(no policy update) and ``batch x n`` on each training step; plain GRPO spends ``batch x n`` on every step. So
GRPO at equal rollouts runs floor(CurES rollouts / (batch x n)) steps, not the T x M training steps. The
subset sizes (hence the cold-start steps) come from the training file itself (``extra_info.<subset_field>``
with ``cures.schedule.split=field``, as scripts/prepare_data.py writes for Numina-Math).

Usage (what recipes/compare_1.5b.sh does)::

    python scripts/equal_rollouts.py --train-file ~/data/cures/numina_math.parquet --batch-size 1024 \\
        --rollout-n 8 cures.preset=paper cures.schedule.num_iterations=15 cures.schedule.steps_per_iteration=10 \\
        cures.schedule.split=field
    # prints: cures_steps=... cures_updates=... cures_rollouts=... equal_steps=... equal_rollouts=...

``--format json`` prints the same as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from cures_verl.config import config_from_overrides
from cures_verl.core.schedule import COLD_START, Schedule


def _subset_ids(train_file: str, field: str) -> tuple[int, np.ndarray | None]:
    import pyarrow.parquet as pq

    table = pq.read_table(train_file, columns=["extra_info"])
    infos = table.column("extra_info").to_pylist()
    if any(not isinstance(info, dict) or field not in info or info[field] is None for info in infos):
        return len(infos), None
    return len(infos), np.array([int(info[field]) for info in infos], dtype=np.int64)


def plan(train_file: str, batch_size: int, rollout_n: int, overrides: list[str], epochs: int = 1) -> dict[str, int]:
    """The CurES run's steps, updates and rollouts, and the steps a full-budget arm needs to match them.

    Raises:
        SystemExit: If the overrides select no CurES run or a continuous schedule (whose length is yours to set).
    """
    cfg = config_from_overrides(overrides)
    if cfg is None:
        raise SystemExit("give the CurES run's overrides (cures.preset=..., schedule keys), not cures.enable=false")
    if cfg.schedule.mode != "iterations":
        raise SystemExit(
            "cures.schedule.mode=continuous has no schedule length of its own: its rollouts are "
            f"trainer.total_training_steps x {batch_size} x {rollout_n} (plus the cold start); nothing to compute"
        )
    num_prompts, subsets = _subset_ids(train_file, cfg.schedule.subset_field)
    if cfg.schedule.split != "field":
        subsets = None
    elif subsets is None:
        raise SystemExit(
            f"{train_file}: cures.schedule.split=field needs extra_info.{cfg.schedule.subset_field} on every row "
            "(scripts/prepare_data.py dataset numina_math writes it)"
        )
    schedule = Schedule(num_prompts, batch_size, cfg.schedule, seed=cfg.seed, subset_ids=subsets)
    assert schedule.steps_per_epoch is not None
    steps = schedule.steps_per_epoch * epochs
    spent = schedule.planned_rollouts(steps, rollout_n)
    updates = sum(1 for step in range(steps) if schedule.phase(step).kind != COLD_START)
    total = int(spent.sum())
    equal_steps = total // (batch_size * rollout_n)
    return {
        "num_prompts": num_prompts,
        "cures_steps": steps,
        "cures_updates": updates,
        "cures_rollouts": total,
        "equal_steps": equal_steps,
        "equal_rollouts": equal_steps * batch_size * rollout_n,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-file", required=True, help="the prepared training parquet")
    parser.add_argument("--batch-size", type=int, required=True, help="data.train_batch_size")
    parser.add_argument("--rollout-n", type=int, required=True, help="actor_rollout_ref.rollout.n")
    parser.add_argument("--epochs", type=int, default=1, help="trainer.total_epochs (default: %(default)s)")
    parser.add_argument("--format", choices=("shell", "json"), default="shell")
    parser.add_argument("overrides", nargs="*", help="the CurES run's cures.* overrides")
    args = parser.parse_args(argv)
    result = plan(args.train_file, args.batch_size, args.rollout_n, args.overrides, args.epochs)
    if args.format == "json":
        print(json.dumps(result))
    else:
        print("\n".join(f"{key}={value}" for key, value in result.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
