"""Per-step cost of the CurES hooks in verl's trainer at a paper-sized step (1024 prompts x 8 = 8192 responses).

Times the code CurES adds to each step of verl 0.9.1's V1 trainer (``cures_verl/verl_adapter/trainer.py``), on
real verl/TensorDict/nested-tensor objects, without Ray or a model:

* ``plan``: the batch sampler's next plan (``CurriculumSampler.plan_step``: draw, allocate) and what
  ``CuresTrainer._fetch_one_gen_batch`` adds to verl's fetch (plan check, ``__rollout_n__`` column, uid map);
* ``advantage``: what ``CuresTrainer._compute_advantage`` adds after verl's GRPO advantage: Eq. 16 weights,
  one multiply over every response token of the jagged advantages;
* ``observe``: ``CuresTrainer._observe``: read the rewards, map rows to prompts, update the posterior, metrics.

verl's own work is not timed: its GRPO advantage is replaced by the identity, and its TransferQueue client
by an in-memory store holding tensors of the shapes verl stores (``rm_scores`` and ``advantages`` as jagged
rows of ``--response-tokens`` tokens on average). Run::

    python -m cures_verl.experiments.trainer.hook_overhead                       # 40,000 prompts, 1024 x 8, 1024 tokens
    python -m cures_verl.experiments.trainer.hook_overhead --num-prompts 1000000 --response-tokens 3072
    python -m cures_verl.experiments.trainer.hook_overhead --presets paper,official_code,recommended --baseline-ref HEAD

``--baseline-ref REV`` also times the hooks as they are at git revision REV
(:mod:`cures_verl.experiments.curriculum.baseline`),
step by step in the same loop as the current ones, and prints the before/after ratio of each preset.
"""

from __future__ import annotations

import argparse
import statistics
import time
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync
from verl.utils import tensordict_utils as tu

from cures_verl import config as cures_config
from cures_verl import core as cures_core
from cures_verl.verl_adapter import sampler as sampler_module
from cures_verl.verl_adapter import trainer as trainer_module
from cures_verl.verl_adapter.trainer import CuresTrainer


class _Store:
    """In-memory stand-in for TransferQueue's ``kv_batch_get`` / ``kv_batch_put`` (verl's I/O is not timed)."""

    def __init__(self) -> None:
        self.fields: dict[str, Any] = {}

    def kv_batch_get(self, keys: list[str], partition_id: str, select_fields: list[str]) -> dict[str, Any]:
        return {name: self.fields[name] for name in select_fields}

    def kv_batch_put(self, keys: list[str], partition_id: str, fields: Any) -> None:
        for name in fields.keys():
            self.fields[name] = fields[name]


def _jagged(lengths: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    offsets = torch.from_numpy(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))
    values = torch.from_numpy(rng.standard_normal(int(lengths.sum())).astype(np.float32))
    return _nested(values, offsets, lengths)


def _nested(values: torch.Tensor, offsets: torch.Tensor, lengths: np.ndarray) -> torch.Tensor:
    # min/max seqlen given, as verl's own jagged tensors carry them (else a reduction sizes its padding blindly)
    return torch.nested.nested_tensor_from_jagged(
        values, offsets=offsets, min_seqlen=int(lengths.min()), max_seqlen=int(lengths.max())
    )


def _classes(trainer: ModuleType, sampler: ModuleType, core: ModuleType, config: ModuleType) -> SimpleNamespace:
    """The classes the benchmark builds a trainer from, out of the adapter's, the core's and the config's modules."""
    return SimpleNamespace(
        CuresTrainer=trainer.CuresTrainer,
        CurriculumSampler=core.CurriculumSampler,
        PromptIndex=sampler.PromptIndex,
        CuresBatchSampler=sampler.CuresBatchSampler,
        preset_config=config.preset_config,
        trainer_module=trainer,
    )


def _current() -> SimpleNamespace:
    """The classes of this checkout."""
    return _classes(trainer_module, sampler_module, cures_core, cures_config)


def _baseline(ref: str) -> SimpleNamespace:
    """The same classes as they are at git revision ``ref``, imported under another package name."""
    from cures_verl.experiments.curriculum.baseline import import_baseline

    modules = (".verl_adapter.trainer", ".verl_adapter.sampler", ".core", ".config")
    return _classes(*(import_baseline(ref, module) for module in modules))


def _trainer(args: argparse.Namespace, preset: str, impl: SimpleNamespace | None = None) -> CuresTrainer:
    """A CuresTrainer with only the state its per-step hooks read (no Ray, no workers, no model)."""
    impl = impl if impl is not None else _current()
    CuresTrainer, CurriculumSampler, preset_config = impl.CuresTrainer, impl.CurriculumSampler, impl.preset_config
    PromptIndex, CuresBatchSampler = impl.PromptIndex, impl.CuresBatchSampler
    trainer = object.__new__(CuresTrainer)
    trainer.cures_config = preset_config(preset, {"seed": args.seed})
    trainer.config = OmegaConf.create(
        {"actor_rollout_ref": {"rollout": {"n": args.rollout_n}}, "algorithm": {"use_kl_in_reward": False}}
    )
    trainer.curriculum = CurriculumSampler(
        args.num_prompts, batch_size=args.batch_size, rollouts_per_prompt=args.rollout_n, config=trainer.cures_config
    )
    index = PromptIndex(np.arange(args.num_prompts, dtype=np.int64) * 7 + 3)  # stable ids != row positions
    trainer.batch_sampler = CuresBatchSampler(trainer.curriculum, index, num_batches=10**9)
    trainer._prompt_of_uid, trainer._step_plan, trainer._dump_path = {}, None, None
    trainer.global_steps = 0
    return trainer


def _one_step(trainer: CuresTrainer, rows: Any, store: _Store, args: argparse.Namespace, rng: np.random.Generator):
    """One step of CurES's hooks; returns seconds for plan, advantage and observe, and the CPU seconds of all three."""
    started, started_cpu = time.perf_counter(), time.process_time()
    next(rows)  # the sampler plans the step (what verl's dataloader calls)
    sampled, sampled_cpu = time.perf_counter(), time.process_time()
    plan = trainer.batch_sampler.current_plan
    uids = [f"uid-{trainer.global_steps}-{i}" for i in range(plan.prompt_indices.size)]
    stable = trainer.batch_sampler.index.stable_ids[plan.prompt_indices]
    batch = tu.get_tensordict({"index": stable.tolist(), "uid": uids})  # verl's collated batch (not timed)
    # the part of _fetch_one_gen_batch after verl's own fetch
    # PPOTrainerSync inherits the method from PPOTrainer: restore by deleting the override, not by assigning the
    # inherited function to the subclass (which would shadow later patches of PPOTrainer)
    had_own = "_fetch_one_gen_batch" in vars(PPOTrainerSync)
    original = vars(PPOTrainerSync).get("_fetch_one_gen_batch")
    PPOTrainerSync._fetch_one_gen_batch = lambda self: batch  # type: ignore[method-assign]
    try:
        fetch_started, fetch_started_cpu = time.perf_counter(), time.process_time()
        trainer._fetch_one_gen_batch()
        planned, planned_cpu = time.perf_counter(), time.process_time()
    finally:
        if had_own:
            PPOTrainerSync._fetch_one_gen_batch = original  # type: ignore[method-assign]
        else:
            del PPOTrainerSync._fetch_one_gen_batch
    plan_seconds = (sampled - started) + (planned - fetch_started)

    # what verl's rollout produces: one key "{uid}_{session}_{index}" per response, each rollout its own session
    # (verl 0.9.1 agent_loop_tq.py:193), jagged per-token tensors (not timed)
    keys = [f"{uid}_{k}_0" for uid, n in zip(uids, plan.rollouts.tolist(), strict=True) for k in range(n)]
    lengths = rng.integers(args.response_tokens // 2, 3 * args.response_tokens // 2, size=len(keys))
    correct = rng.random(len(keys)) < 0.5
    scores = np.zeros(int(lengths.sum()), dtype=np.float32)
    scores[np.cumsum(lengths) - 1] = correct  # the reward sits on the last response token
    offsets = torch.from_numpy(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))
    store.fields = {
        "advantages": _jagged(lengths, rng),
        "rm_scores": _nested(torch.from_numpy(scores), offsets, lengths),
        # the reward function's extra keys, where verl keeps them (agent_loop_tq.py:175)
        "extra_fields": [{"reward_extra_info": {"acc": float(c), "pred_parsed": 1.0}} for c in correct],
    }
    step_batch = SimpleNamespace(keys=keys, tags=[{}] * len(keys), partition_id="train")

    t0, t0_cpu = time.perf_counter(), time.process_time()
    trainer._compute_advantage(step_batch, {})
    t1 = time.perf_counter()
    trainer._observe(step_batch)
    t2, t2_cpu = time.perf_counter(), time.process_time()
    trainer.global_steps += 1
    cpu = (sampled_cpu - started_cpu) + (planned_cpu - fetch_started_cpu) + (t2_cpu - t0_cpu)
    return plan_seconds, t1 - t0, t2 - t1, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-prompts", type=int, default=40_000, help="training prompts (paper: ~40k Numina rows)")
    parser.add_argument("--batch-size", type=int, default=1024, help="prompts per step (paper: 1024)")
    parser.add_argument("--rollout-n", type=int, default=8, help="nominal rollouts per prompt (paper: 8)")
    parser.add_argument("--response-tokens", type=int, default=1024, help="mean response length in tokens")
    parser.add_argument("--steps", type=int, default=12, help="timed steps per preset (after 2 warm-up steps)")
    parser.add_argument("--presets", default="paper,recommended", help="comma-separated presets to time")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--baseline-ref", default=None, help="also time the hooks at this git revision (e.g. HEAD), interleaved"
    )
    args = parser.parse_args(argv)

    implementations = {"": _current()}
    if args.baseline_ref is not None:
        implementations[f" @{args.baseline_ref}"] = _baseline(args.baseline_ref)
    own_advantage = vars(PPOTrainerSync).get("_compute_advantage")  # None: inherited from PPOTrainer
    original_tq = {suffix: impl.trainer_module.tq for suffix, impl in implementations.items()}
    store = _Store()
    PPOTrainerSync._compute_advantage = lambda self, batch, metrics: batch  # type: ignore[method-assign]
    for impl in implementations.values():
        impl.trainer_module.tq = store
    print(
        f"CurES hooks per step: {args.num_prompts:,} prompts, {args.batch_size} x {args.rollout_n} = "
        f"{args.batch_size * args.rollout_n:,} responses of ~{args.response_tokens} tokens (median of {args.steps})"
    )
    print(f"  {'preset':<20} {'plan ms':>9} {'advantage ms':>13} {'observe ms':>11} {'total ms':>9}")
    totals: dict[str, float] = {}
    cpu_totals: dict[str, float] = {}
    try:
        for preset in args.presets.split(","):
            # every implementation steps in turn (first in turn), so machine load hits them alike; own generators
            runs = {}
            for suffix, impl in implementations.items():
                trainer = _trainer(args, preset, impl)
                runs[suffix] = (trainer, iter(trainer.batch_sampler), np.random.default_rng(args.seed), [])
            for step in range(args.steps + 2):
                order = list(runs.values())
                for trainer, rows, rng, times in order[step % len(order) :] + order[: step % len(order)]:
                    times.append(_one_step(trainer, rows, store, args, rng))
            for suffix, (_, _, _, times) in runs.items():
                times = times[2:]
                plan, advantage, observe = (1e3 * statistics.median(t[k] for t in times) for k in range(3))
                total = totals[preset + suffix] = 1e3 * statistics.median(sum(t[:3]) for t in times)
                cpu_totals[preset + suffix] = 1e3 * statistics.median(t[3] for t in times)
                print(f"  {preset + suffix:<20} {plan:>9.1f} {advantage:>13.1f} {observe:>11.1f} {total:>9.1f}")
    finally:
        if own_advantage is not None:
            PPOTrainerSync._compute_advantage = own_advantage  # type: ignore[method-assign]
        else:  # delete the override; assigning the inherited function would shadow later patches of PPOTrainer
            del PPOTrainerSync._compute_advantage
        for suffix, impl in implementations.items():
            impl.trainer_module.tq = original_tq[suffix]
    # process time: less sensitive than wall time to other jobs taking the CPU (above it when torch uses threads)
    print("  CPU ms per step (median): " + ", ".join(f"{name} {value:.1f}" for name, value in cpu_totals.items()))
    for suffix in list(implementations)[1:]:
        for preset in args.presets.split(","):
            before, after = totals[preset + suffix], totals[preset]
            cpu_before, cpu_after = cpu_totals[preset + suffix], cpu_totals[preset]
            print(
                f"  before/after {preset}: {before:.1f} ms{suffix} -> {after:.1f} ms ({before / after:.1f}x); "
                f"CPU {cpu_before:.1f} -> {cpu_after:.1f} ms ({cpu_before / cpu_after:.1f}x)"
            )
    print("  (a GPU step of this size takes minutes; verl's own advantage and TransferQueue I/O are not included)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
