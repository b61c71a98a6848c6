"""CurES inside verl's default (V1, synchronous) trainer, through narrow overrides.

Built against verl 0.9.1 (``verl/trainer/ppo/v1/trainer_base.py``, ``trainer_sync.py``). Each override
calls ``super()`` and says which verl behaviour it relies on; ``fit()`` and ``step()``'s pipeline are
verl's own. What changes, step by step:

1. ``_init_dataloader``: verl builds the datasets; we swap the training loader's sampler for
   :class:`~cures_verl.verl_adapter.sampler.CuresBatchSampler` (one batch = one CurES step) and set the
   step count of the paper's schedule.
2. ``_fetch_one_gen_batch``: verl fetches the step's prompts from that loader; we attach each prompt's
   rollout count as ``__rollout_n__``, which V1's agent loop honours (``agent_loop_tq.py:114``).
3. ``_compute_advantage``: after verl's GRPO advantages, prompt i's advantages are scaled by
   mean_n / n_i (mean_n: the step's mean rollouts per prompt) so every prompt weighs the same in the loss
   (the paper's Eq. 16) and the loss scale is the unweighted one, unless ``cures.allocation.loss_weighting=rollout``.
4. ``_update_actor`` / ``_update_critic``: skipped on cold-start steps unless
   ``cures.schedule.train_on_cold_start`` (the paper only estimates on them). Such a step also skips every
   model pass it does not use: old and reference log-probs (unless ``algorithm.use_kl_in_reward``; the
   rollout correction, which only reweights the update, is bypassed for its advantages) and, when it saves no
   checkpoint, the rollout replicas' sleep and the weight sync after it (the weights did not change)
   (``on_sample_end`` / ``on_step_end``).
5. ``step``: after verl's step, before ``fit()`` clears TransferQueue, the rollouts' rewards update the
   posterior and the ``cures/*`` metrics join verl's (plus ``progress/*``, from
   :class:`~cures_verl.verl_adapter.progress.ProgressTrainer`, which every run uses).
6. ``_load_checkpoint``: refuses a checkpoint without this run's curriculum state (or at another step) before any
   weights load, and drops ``cures_steps.jsonl`` records the resumed run replays.
"""

from __future__ import annotations

import json
import logging
import operator
import os
import time
from typing import Any

import numpy as np
import torch
import transfer_queue as tq
from omegaconf import DictConfig, OmegaConf, open_dict
from tensordict.tensorclass import NonTensorData, NonTensorStack
from torchdata.stateful_dataloader import StatefulDataLoader
from verl.utils import tensordict_utils as tu
from verl.utils.dataset.rl_dataset import collate_fn
from verl.utils.debug import marked_timer

from cures_verl.config import CuresConfig
from cures_verl.core import (
    CurriculumSampler,
    StepPlan,
    advantage_weights,
    informative_scale,
    rewards_to_outcomes,
    small_group_advantages,
)
from cures_verl.core.grouping import run_starts
from cures_verl.verl_adapter import metrics as cures_metrics
from cures_verl.verl_adapter.hydra_config import cures_config_from
from cures_verl.verl_adapter.progress import ProgressTrainer
from cures_verl.verl_adapter.sampler import (
    CuresBatchSampler,
    PromptIndex,
    curriculum_inputs,
    index_collision_hint,
    read_extra_info_field,
)

__all__ = ["CuresTrainer", "check_trainer_config"]

logger = logging.getLogger(__name__)


def check_trainer_config(config: DictConfig, cures: CuresConfig) -> None:
    """Refuse verl settings CurES cannot honour, and CurES options the adapter does not support (before any
    worker starts), naming the keys.

    Raises:
        ValueError: On an incompatible combination.
    """
    problems = []
    if not config.trainer.get("use_v1", True):
        problems.append(
            "trainer.use_v1=false: CurES runs on verl's V1 trainer (the default since verl 0.9; the legacy trainer "
            "is deprecated upstream and has no per-prompt rollout counts); set trainer.use_v1=true"
        )
    mode = config.trainer.v1.trainer_mode
    if mode != "sync":
        problems.append(
            f"trainer.v1.trainer_mode={mode}: CurES needs the synchronous trainer (the posterior is updated between "
            "steps); set trainer.v1.trainer_mode=sync"
        )
    if config.trainer.v1.get(mode, {}).get("parameter_sync_step", 1) != 1:
        problems.append(f"trainer.v1.{mode}.parameter_sync_step must be 1 with CurES")
    filter_groups = config.algorithm.get("filter_groups", None)
    if filter_groups is not None and filter_groups.get("enable", False):
        problems.append(
            "algorithm.filter_groups.enable=true: DAPO's group filtering refills prompts outside CurES's plan; "
            "disable it (cures.allocation.zero_variance=drop is CurES's own way to skip zero-variance prompts)"
        )
    gen_batch_size = config.data.get("gen_batch_size", None)
    if gen_batch_size not in (None, config.data.train_batch_size):
        problems.append(
            f"data.gen_batch_size={gen_batch_size}: CurES plans whole steps of data.train_batch_size prompts; "
            "leave data.gen_batch_size unset"
        )
    if config.trainer.v1.sampler.get("sync_refill_failed_groups", False):
        problems.append("trainer.v1.sampler.sync_refill_failed_groups=true is not supported with CurES")
    strategy = OmegaConf.select(config, "actor_rollout_ref.actor.strategy", default=None)
    if strategy not in ("fsdp", "fsdp2"):
        problems.append(
            f"actor_rollout_ref.actor.strategy={strategy} (model_engine={config.get('model_engine')}): CurES is tested "
            "with verl's FSDP engines only (model_engine=dp, strategy fsdp or fsdp2); Megatron, TorchTitan and VeOmni "
            "are not supported yet"
        )
    if cures.allocation.grad_std == "gradient_norms":
        problems.append(
            "cures.allocation.grad_std=gradient_norms: the verl adapter does not collect per-prompt gradient-norm "
            "statistics (Eq. 21 needs them; core/benchmark only), so the first allocation would fail; use "
            "cures.allocation.grad_std=accuracy"
        )
    if cures.allocation.min_per_prompt < 2 and config.algorithm.adv_estimator != "gae":
        # verl 0.9.1 core_algos.py:315-317: a group of one rollout gets mean 0 and std 1, i.e. its raw reward as
        # advantage, not a group-relative one
        problems.append(
            f"cures.allocation.min_per_prompt={cures.allocation.min_per_prompt} with "
            f"algorithm.adv_estimator={config.algorithm.adv_estimator}: a prompt with one rollout would get its raw "
            "reward as advantage (verl's group estimators need 2 rollouts); set cures.allocation.min_per_prompt=2"
        )
    rollout_n = int(config.actor_rollout_ref.rollout.n)
    if cures.preset == "small_groups" and rollout_n > cures.allocation.posterior_baseline_max_group:
        # the preset's point is the posterior baseline, which only acts on groups of <= posterior_baseline_max_group
        problems.append(
            f"cures.preset=small_groups with actor_rollout_ref.rollout.n={rollout_n}: its posterior baseline acts "
            f"on groups of at most cures.allocation.posterior_baseline_max_group="
            f"{cures.allocation.posterior_baseline_max_group} rollouts, so with n={rollout_n} it would be paper "
            "without a cold start; set actor_rollout_ref.rollout.n=2 and data.train_batch_size to 4x the prompts "
            "(the same rollouts a step), or choose another preset"
        )
    if cures.sampler.screening_rollouts > 0:
        # A screened step needs two generation rounds (screen, then continue the kept prompts), and verl 0.9.1's V1
        # trainer generates once per step (trainer_sync.py's step); the option exists for the core and the benchmark.
        problems.append(
            f"cures.sampler.screening_rollouts={cures.sampler.screening_rollouts}: screening is a benchmark/core "
            "option (it needs two generation rounds per step, which verl's V1 trainer does not do); set "
            "cures.sampler.screening_rollouts=0, and cures.allocation.loss_normalizer=informative for its one-round "
            "form (docs/screening.md)"
        )
    if cures.allocation.advantage_baseline == "posterior":
        # the posterior baseline replaces verl's GRPO outcome advantage (core_algos.py compute_grpo_outcome_advantage)
        # on small groups; other estimators and a KL-shaped token reward have no per-rollout outcome to centre
        if config.algorithm.adv_estimator != "grpo":
            problems.append(
                f"cures.allocation.advantage_baseline=posterior with algorithm.adv_estimator="
                f"{config.algorithm.adv_estimator}: the posterior baseline replaces GRPO's group baseline only; set "
                "algorithm.adv_estimator=grpo or cures.allocation.advantage_baseline=group"
            )
        if config.algorithm.get("use_kl_in_reward", False):
            problems.append(
                "cures.allocation.advantage_baseline=posterior with algorithm.use_kl_in_reward=true: the KL-shaped "
                "token reward is not an outcome the posterior predicts; use the actor's KL loss "
                "(actor_rollout_ref.actor.use_kl_loss=true) or cures.allocation.advantage_baseline=group"
            )
    if problems:
        raise ValueError("CurES cannot run with these settings:\n  - " + "\n  - ".join(problems))


def _as_list(values: Any) -> list[Any]:
    """A non-tensor column of a TensorDict as a list (tensordict returns a LinkedList, NonTensorStack or array).

    Read ``batch[key]`` through tensordict's public API: a private shortcut read the rows of a re-indexed stack in
    their old order, which hid exactly the reordering the plan check exists to catch.
    """
    return values.tolist() if hasattr(values, "tolist") else list(values)


def run_length(
    *,
    schedule_steps_per_epoch: int | None,
    dataset_steps_per_epoch: int,
    configured_total: int | None,
    total_epochs: int,
) -> tuple[int, int]:
    """``(steps per epoch, total training steps)`` of a CurES run in verl's fit loop (trainer and pre-flight).

    CurES's iteration schedule fixes the steps per epoch; otherwise verl's ``len(dataset) // batch`` holds. The total
    is ``trainer.total_training_steps`` or steps per epoch x ``trainer.total_epochs``. The continuous schedule draws by
    weight and has no epochs, but verl 0.9.1's fit() (trainer_base.py:467) also stops after ``total_epochs`` epochs:
    the run would end early, silently, so its "epoch" is stretched to ``ceil(total / total_epochs)`` steps.

    Example:
        >>> run_length(schedule_steps_per_epoch=None, dataset_steps_per_epoch=10, configured_total=45, total_epochs=2)
        (23, 45)
        >>> run_length(schedule_steps_per_epoch=30, dataset_steps_per_epoch=10, configured_total=None, total_epochs=2)
        (30, 60)
    """
    steps_per_epoch = dataset_steps_per_epoch if schedule_steps_per_epoch is None else int(schedule_steps_per_epoch)
    total = steps_per_epoch * total_epochs if configured_total is None else int(configured_total)
    if schedule_steps_per_epoch is None and total > steps_per_epoch * total_epochs:
        steps_per_epoch = -(-total // total_epochs)
    return steps_per_epoch, total


def _rollout_counts_column(counts: list[int]) -> NonTensorStack:
    """The ``__rollout_n__`` column as verl's ``assign_non_tensor_stack`` builds it (a NonTensorStack of one
    NonTensorData per prompt, read by the agent loop as ``v[i].data``), with one NonTensorData per distinct count
    shared by the rows that have it: building 1024 NonTensorData costs ~20 ms, the ~10 distinct counts ~0.2 ms."""
    shared = {n: NonTensorData(n) for n in set(counts)}
    return NonTensorStack(*[shared[n] for n in counts])


def _row_sums(values: Any) -> np.ndarray:
    """Per-row sums of a (B, T) tensor as float64, shape (B,): one pass over a jagged tensor's values (float32
    sums in row order; equal to ``values.sum(dim=1)`` when each row holds one nonzero, verl's reward layout)."""
    if not getattr(values, "is_nested", False) or values.dtype not in (torch.float32, torch.float64):
        return np.asarray(values.sum(dim=1).tolist(), dtype=np.float64)
    flat = values.values().detach().cpu().numpy()
    offsets = values.offsets().cpu().numpy()
    out = np.zeros(offsets.size - 1, dtype=np.float64)
    nonempty = np.flatnonzero(offsets[1:] > offsets[:-1])
    if nonempty.size:
        out[nonempty] = np.add.reduceat(flat, offsets[nonempty])
    return out


def _row_nonzero(values: Any) -> np.ndarray:
    """Whether each row of a jagged (B, T) tensor has a nonzero entry, shape (B,)."""
    flat = values.values().detach().cpu().numpy()
    lengths = values.offsets().diff().cpu().numpy()
    row_of_token = np.repeat(np.arange(lengths.size), lengths)
    nonzero: np.ndarray = np.bincount(row_of_token[flat != 0], minlength=lengths.size) > 0
    return nonzero


def _scale_rows(values: Any, row_weights: np.ndarray) -> Any:
    """A jagged (B, T) tensor with row r multiplied by ``row_weights[r]`` (float32, shape (B,); a new tensor).

    The product is the one of ``values * repeat_interleave(weights, lengths).to(values.dtype)``, bit for bit, computed
    one run of equal consecutive weights at a time (rows of a prompt are consecutive in verl's batches) instead of
    building a per-token weight tensor; a dtype other than float32/64 uses that torch expression.
    """
    weights = torch.from_numpy(np.ascontiguousarray(row_weights, dtype=np.float32))
    lengths = values.offsets().diff()
    if values.dtype not in (torch.float32, torch.float64):
        return torch.nested.nested_tensor_from_jagged(
            values.values() * torch.repeat_interleave(weights, lengths).to(values.dtype), offsets=values.offsets()
        )
    flat = values.values().detach().cpu().numpy()
    w = weights.to(values.dtype).numpy()
    offsets = values.offsets().cpu().numpy()
    out = np.empty_like(flat)
    starts = run_starts(w)
    ends = np.append(starts[1:], w.size)
    # [w0 w0 w1 w1 w1 w0] -> runs (0, 2, w0), (2, 5, w1), (5, 6, w0): one multiply per run over its tokens
    for first, last, weight in zip(offsets[starts].tolist(), offsets[ends].tolist(), w[starts], strict=True):
        np.multiply(flat[first:last], weight, out=out[first:last])
    scaled = torch.from_numpy(out).to(values.values().device)
    return torch.nested.nested_tensor_from_jagged(scaled, offsets=values.offsets())


def _reward_extra_means(extra_fields: list[Any]) -> dict[str, float]:
    """Batch mean of every numeric key the reward function returned besides ``score`` (e.g. our math reward's
    ``pred_parsed``, ``gold_parsed``, ``timeout``); verl 0.9.1 keeps them per rollout in
    ``extra_fields["reward_extra_info"]`` but logs none of them for training steps.

    Column by column when every row has the same keys (what a reward function returns); row by row otherwise. Sums
    are sequential in row order either way, so the means are the same bit for bit.
    """
    try:  # the usual layout: every row a dict with a reward_extra_info dict (C-level passes; else row by row)
        infos = list(map(operator.itemgetter("reward_extra_info"), extra_fields))
        first = infos[0].keys() if infos else None
        uniform = first is not None and all(map(first.__eq__, map(dict.keys, infos)))
    except (KeyError, TypeError, IndexError):
        infos = [item.get("reward_extra_info", {}) if isinstance(item, dict) else {} for item in extra_fields]
        uniform = False
    if uniform:
        means: dict[str, tuple[tuple[int, int], float]] = {}  # name -> ((first numeric row, key position), mean)
        for name in infos[0]:
            if name == "score":
                continue
            column = list(map(operator.itemgetter(name), infos))
            if set(map(type, column)) <= {int, float}:
                numeric = None  # every row
                values = np.array(column, dtype=np.float64)
            else:
                numeric = [r for r, v in enumerate(column) if isinstance(v, int | float) and not isinstance(v, bool)]
                values = np.array([float(column[r]) for r in numeric], dtype=np.float64)
            if values.size:
                row = 0 if numeric is None else numeric[0]
                total = np.add.accumulate(values)[-1]  # sequential, in row order, as the loop below adds
                means[name] = ((row, list(infos[row]).index(name)), float(total) / values.size)
        # keys in the order the row-by-row loop meets them: by first numeric row, then within that row
        return {name: mean for name, (_, mean) in sorted(means.items(), key=lambda item: item[1][0])}
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for info in infos:
        for name, value in info.items():
            if name != "score" and isinstance(value, int | float) and not isinstance(value, bool):
                sums[name] = sums.get(name, 0.0) + float(value)
                counts[name] = counts.get(name, 0) + 1
    return {name: sums[name] / counts[name] for name in sums}


class CuresTrainer(ProgressTrainer):
    """verl's synchronous V1 trainer with CurES prompt selection, per-prompt rollout counts and updates."""

    def __init__(self, config: DictConfig) -> None:
        self.cures_config = cures_config_from(config)
        check_trainer_config(config, self.cures_config)
        super().__init__(config)
        self.curriculum: CurriculumSampler | None = None
        self.batch_sampler: CuresBatchSampler | None = None
        self._prompt_of_uid: dict[str, int] = {}
        self._prompts_of_keys_cache: tuple[list[str], np.ndarray] | None = None
        # the step's per-rollout rewards when _compute_advantage already read them (posterior baseline), for _observe
        self._rewards_of_keys: tuple[list[str], np.ndarray] | None = None
        self._step_plan: StepPlan | None = None
        self._dump_path: str | None = None
        self._replicas_kept_awake = False
        self.cures_updates_planned: int | None = None

    # -- 1. data --------------------------------------------------------------------------------------
    def _init_dataloader(self) -> None:
        # verl 0.9.1 trainer_base.py:708: builds train/val RLHFDataset, the train StatefulDataLoader and the step
        # counts; we keep all of it and replace only the training loader's sampler.
        super()._init_dataloader()
        cfg = self.cures_config
        try:
            index = PromptIndex(read_extra_info_field(self.train_dataset.dataframe, "index"))
        except ValueError as error:
            raise ValueError(f"{error}{index_collision_hint(self.config.data.train_files)}") from error
        inputs = curriculum_inputs(self.train_dataset.dataframe, index, cfg)
        rollout_n = int(self.config.actor_rollout_ref.rollout.n)
        self.curriculum = CurriculumSampler(
            index.num_prompts,
            batch_size=int(self.config.data.train_batch_size),
            rollouts_per_prompt=rollout_n,
            config=cfg,
            prior_accuracy=inputs.prior_accuracy,
            subset_ids=inputs.subset_ids,
            prompt_features=inputs.prompt_features,
        )
        schedule = self.curriculum.schedule
        # verl computed steps_per_epoch = len(dataloader) and total_training_steps (configured or per epoch x epochs)
        self.steps_per_epoch, self.total_training_steps = run_length(
            schedule_steps_per_epoch=schedule.steps_per_epoch,
            dataset_steps_per_epoch=self.steps_per_epoch,
            configured_total=self.config.trainer.total_training_steps,
            total_epochs=int(self.config.trainer.total_epochs),
        )
        self._set_optimizer_horizon(schedule.num_updates(self.total_training_steps))
        self.batch_sampler = CuresBatchSampler(self.curriculum, index, num_batches=self.steps_per_epoch)
        # num_workers=0: a worker process would prefetch batches, i.e. plan steps before the posterior saw the
        # previous step's rewards (verl's removed curriculum hook asserted the same).
        self.train_dataloader = StatefulDataLoader(
            dataset=self.train_dataset, batch_sampler=self.batch_sampler, num_workers=0, collate_fn=collate_fn
        )
        self.train_dataloader_it = None
        if cfg.dump_dir:
            os.makedirs(cfg.dump_dir, exist_ok=True)
            self._dump_path = os.path.join(cfg.dump_dir, "cures_steps.jsonl")
        logger.info(
            "CurES: %d prompts, %s schedule, %s steps per epoch, %d total steps of which %d update the policy\n%s",
            index.num_prompts,
            cfg.schedule.mode,
            schedule.steps_per_epoch,
            self.total_training_steps,
            self.cures_updates_planned,
            cfg.describe(),
        )

    # -- resume -----------------------------------------------------------------------------------------------
    def _load_checkpoint(self) -> None:
        # verl only warns when data.pt is missing and keeps global_steps=N, so the curriculum would start again at
        # step 0 (a new cold start) while verl counts on from N. Check the curriculum state before any weights load.
        folder = self._resume_folder()
        if folder is not None:
            self._check_curriculum_state(folder)
        super()._load_checkpoint()
        if self.global_steps > 0:
            self._truncate_step_records(self.global_steps)

    def _check_curriculum_state(self, folder: str) -> None:
        fix = (
            "Resume from a checkpoint this CurES run saved (trainer.resume_mode=resume_path "
            "trainer.resume_from_path=<...>/global_step_K), or start afresh with trainer.resume_mode=disable"
        )
        path = os.path.join(folder, "data.pt")
        if not os.path.isfile(path):
            raise RuntimeError(
                f"cannot resume CurES from {folder}: its data.pt (the dataloader state, which holds the curriculum: "
                "posterior counts, position in the schedule, generator) is missing, and resuming without it would "
                f"restart the curriculum from its first cold start. {fix}"
            )
        try:
            state = torch.load(path, weights_only=False)
        except Exception as error:  # a truncated or foreign file: say which, then stop
            raise RuntimeError(
                f"cannot resume CurES from {folder}: data.pt is unreadable ({error!r}). {fix}"
            ) from error
        # torchdata's StatefulDataLoader keeps the batch sampler's state_dict() under this key (num_workers=0); it
        # is applied when the next iterator starts, so it is checked here rather than on the live sampler
        sampler = state.get("_index_sampler_state") if isinstance(state, dict) else None
        curriculum = sampler.get("curriculum") if isinstance(sampler, dict) else None
        if not isinstance(curriculum, dict) or "step" not in curriculum:
            raise RuntimeError(
                f"cannot resume CurES from {folder}: its data.pt holds no CurES sampler state (saved by a run with "
                f"cures.enable=false, or by another program?). {fix}"
            )
        trainer_step = int(folder.rstrip("/").split("global_step_")[-1])
        if int(curriculum["step"]) != trainer_step:
            raise RuntimeError(
                f"cannot resume CurES from {folder}: verl would resume at global step {trainer_step} but the saved "
                f"curriculum is at step {curriculum['step']} (data.pt from another checkpoint?). {fix}"
            )

    def _truncate_step_records(self, last_step: int) -> None:
        # records the interrupted run wrote after its last checkpoint are replayed by this run: drop them
        if self._dump_path is None or not os.path.exists(self._dump_path):
            return
        with open(self._dump_path) as fh:
            lines = fh.readlines()
        kept = [line for line in lines if line.strip() and json.loads(line)["global_step"] <= last_step]
        if len(kept) != len(lines):
            with open(self._dump_path, "w") as fh:
                fh.writelines(kept)
            logger.info(
                "CurES: dropped %d records after step %d from %s (they are replayed)",
                len(lines) - len(kept),
                last_step,
                self._dump_path,
            )

    def _set_optimizer_horizon(self, updates: int) -> None:
        # verl 0.9.1 trainer_base.py:768-784 sets the optimizer's schedule horizon (warm-up ratio, decay) to
        # global steps x parameter_sync_step; the LR scheduler steps once per actor update, and cold-start steps
        # do not update, so the horizon counts updating steps only.
        self.cures_updates_planned = updates
        with open_dict(self.config):
            for path in ("actor_rollout_ref.actor.optim", "critic.optim"):
                if OmegaConf.select(self.config, path) is not None:
                    OmegaConf.select(self.config, path).total_training_steps = updates * self.parameter_sync_step

    def _fetch_one_gen_batch(self) -> Any:
        # verl 0.9.1 trainer_base.py:1466: one next() on the training loader (= one CurES plan) plus uids.
        timing = getattr(self, "timing_raw", None)
        timing = timing if timing is not None else {}
        with marked_timer(cures_metrics.TIMER_PLAN, timing):
            batch = super()._fetch_one_gen_batch()
        assert self.batch_sampler is not None and self.curriculum is not None
        plan = self.batch_sampler.current_plan
        if plan is None:
            raise RuntimeError("the CurES batch sampler yielded no plan; was the train dataloader replaced?")
        got = np.asarray(_as_list(batch["index"]), dtype=np.int64)
        expected = self.batch_sampler.index.stable_ids[plan.prompt_indices]
        if not np.array_equal(got, expected):
            raise RuntimeError("the fetched batch does not hold the planned prompts (verl changed its data path?)")
        # V1 agent loop: n = prompt.pop("__rollout_n__", rollout.n) (verl 0.9.1 agent_loop_tq.py:114), what
        # tu.assign_non_tensor_stack(batch, "__rollout_n__", counts) would store, built faster
        batch["__rollout_n__"] = _rollout_counts_column(plan.rollouts.tolist())
        uids = _as_list(batch["uid"])
        self._prompt_of_uid = {str(uid): int(p) for uid, p in zip(uids, plan.prompt_indices.tolist(), strict=True)}
        self._prompts_of_keys_cache = None
        self._rewards_of_keys = None
        self._step_plan = plan
        return batch

    def _add_prompts_to_generate(self, num_prompts: int) -> int:
        # verl 0.9.1 replay_buffer.py:468: the sync replay buffer asks for replacement prompts when a rollout group
        # fails. A refill outside the plan would break CurES's budget and posterior bookkeeping.
        raise RuntimeError(
            f"{num_prompts} rollout group(s) failed and verl asked for replacement prompts; CurES plans whole steps "
            "and cannot refill. Check the rollout/reward logs for the failure"
        )

    # -- 2. rollouts: rewards, advantages and updates --------------------------------------------------
    def _real_keys(self, batch: Any) -> list[str]:
        # verl 0.9.1 padding_utils.py: rows added to make the batch divisible carry tag is_padding=True.
        return [key for key, tag in zip(batch.keys, batch.tags, strict=True) if not tag.get("is_padding", False)]

    def _prompts_of_keys(self, keys: list[str]) -> np.ndarray:
        # TransferQueue keys are "{uid}_{session}_{index}" (verl 0.9.1 agent_loop_tq.py: _agent_loop_postprocess);
        # one pass per step: _compute_advantage and _observe map the same keys
        cached = getattr(self, "_prompts_of_keys_cache", None)
        if cached is not None and cached[0] == keys:
            return cached[1]
        of_uid = self._prompt_of_uid
        prompts = np.fromiter((of_uid[key.rsplit("_", 2)[0]] for key in keys), dtype=np.int64, count=len(keys))
        self._prompts_of_keys_cache = (list(keys), prompts)
        return prompts

    def _compute_advantage(self, batch: Any, metrics: dict) -> Any:
        if self._skips_model_passes():
            # verl 0.9.1 trainer_base.py:1762-1771 runs the rollout correction (reads old_log_probs) whenever the
            # rollout returned log-probs, unless rollout_correction.bypass_mode; this step computed no old
            # log-probs and updates nothing, so the advantages (for the logged metrics) are computed in bypass mode
            correction = OmegaConf.select(self.config, "algorithm.rollout_correction")
            bypass = None if correction is None else correction.get("bypass_mode", None)
            if correction is not None:
                with open_dict(correction):
                    correction.bypass_mode = True
            try:
                batch = super()._compute_advantage(batch, metrics)
            finally:
                if correction is not None:
                    with open_dict(correction):
                        correction.bypass_mode = bypass
        else:
            batch = super()._compute_advantage(batch, metrics)
        plan = self._step_plan
        alloc = self.cures_config.allocation
        posterior = alloc.advantage_baseline == "posterior"
        informative = alloc.loss_normalizer == "informative"
        if plan is None or (alloc.loss_weighting == "rollout" and not posterior and not informative):
            return batch
        keys = self._real_keys(batch)
        if not keys:
            return batch
        fields = ["advantages", "rm_scores", "response_mask"] if posterior else ["advantages"]
        data = tq.kv_batch_get(keys=keys, partition_id=batch.partition_id, select_fields=fields)
        advantages = data["advantages"]
        if posterior:
            advantages = self._posterior_baseline(keys, data, metrics)
        row_weights: np.ndarray | None = None
        if alloc.loss_weighting == "prompt":
            # Eq. 16 with the step's actual mean n: the factors average 1 over the step's rollouts
            prompt_weights = advantage_weights(plan.rollouts)
            # each row's prompt -> its position in the plan (prompt ids are distinct) -> its weight
            order = np.argsort(plan.prompt_indices)
            position = order[np.searchsorted(plan.prompt_indices[order], self._prompts_of_keys(keys))]
            row_weights = prompt_weights[position].astype(np.float32)  # as torch.tensor(list of floats) rounds
            metrics[cures_metrics.key("alloc/advantage_weight_max")] = float(row_weights.max())
        if informative:
            # the loss's mean counts only rows with a nonzero advantage: the rows scaled by rows / such rows (the
            # positive Eq. 16 factors keep a row's zeros and nonzeros, so the rows are counted before them)
            nonzero = _row_nonzero(advantages)
            scale = informative_scale(nonzero)
            row_weights = np.full(len(keys), scale, dtype=np.float32) * (1.0 if row_weights is None else row_weights)
            metrics[cures_metrics.key("alloc/informative_share")] = float(nonzero.mean())
            metrics[cures_metrics.key("alloc/informative_scale")] = scale
        if row_weights is not None:
            # jagged rows [a_0 | a_1 ...] -> row r scaled by w_r, in one pass over the tokens
            advantages = _scale_rows(advantages, row_weights)
        tq.kv_batch_put(
            keys=keys, partition_id=batch.partition_id, fields=tu.get_tensordict({"advantages": advantages})
        )
        return batch

    def _posterior_baseline(self, keys: list[str], data: Any, metrics: dict) -> Any:
        """verl's GRPO advantages with the rows of small groups replaced by posterior-baseline advantages
        (cures.allocation.advantage_baseline=posterior; core/advantage.py). The posterior is the one before this
        step's rewards: :meth:`step` observes them after verl's step, advantages included, has run."""
        assert self.curriculum is not None
        alloc, post = self.cures_config.allocation, self.cures_config.posterior
        prompts = self._prompts_of_keys(keys)
        # rm_scores holds the reward on the response's last token (pre-KL): the sum is the rollout's reward
        rewards = _row_sums(data["rm_scores"])
        self._rewards_of_keys = (list(keys), rewards)  # _observe reuses them instead of reading rm_scores again
        outcomes = rewards_to_outcomes(rewards, post.reward_rule, post.reward_threshold)
        alpha, beta = self.curriculum.tracker.alpha_beta(prompts)
        chosen = small_group_advantages(
            prompts,
            outcomes,
            alpha,
            beta,
            max_group_size=alloc.posterior_baseline_max_group,
            scale=alloc.posterior_baseline_scale,
        )
        metrics[cures_metrics.key("alloc/posterior_baseline_share")] = float(chosen.rows.mean())
        metrics[cures_metrics.key("alloc/posterior_baseline_all_equal_share")] = float(
            chosen.all_equal.sum() / len(keys)
        )
        advantages, mask = data["advantages"], data["response_mask"]
        if not torch.equal(advantages.offsets(), mask.offsets()):
            raise RuntimeError("advantages and response_mask rows differ in length; verl's layout changed")
        lengths = advantages.offsets().diff().cpu().numpy()
        row_of_token = np.repeat(np.arange(len(keys)), lengths)
        per_row = np.zeros(len(keys))
        per_row[chosen.rows] = chosen.advantages
        flat = advantages.values().detach().cpu().numpy()
        # [GRPO's a_t | b_r * mask_t]: a chosen row's advantage on each of its response tokens, as verl's GRPO does
        replaced = np.where(
            chosen.rows[row_of_token],
            (per_row[row_of_token] * mask.values().detach().cpu().numpy()).astype(flat.dtype),
            flat,
        )
        return torch.nested.nested_tensor_from_jagged(
            torch.from_numpy(replaced).to(advantages.values().device), offsets=advantages.offsets()
        )

    def _skips_update(self) -> bool:
        return self._step_plan is not None and not self._step_plan.is_training

    def _saves_this_step(self) -> bool:
        # verl 0.9.1 trainer_base.py:483-487: a checkpoint is saved on the last step and every save_freq steps
        save_freq = int(self.config.trainer.save_freq)
        is_last = self.global_steps >= self.total_training_steps
        return save_freq > 0 and (is_last or self.global_steps % save_freq == 0)

    def on_sample_end(self) -> None:
        # verl 0.9.1 trainer_sync.py:40-42 puts the rollout replicas to sleep (freeing their weights and KV cache
        # for the actor's passes) and on_step_end wakes them with a weight sync. A step that does not train runs
        # no actor pass; unless it saves a checkpoint (which needs the memory), the replicas stay awake and keep
        # their weights, which are still the current ones.
        if self._skips_update() and not self._saves_this_step():
            self._replicas_kept_awake = True
            return
        super().on_sample_end()

    def on_step_end(self) -> None:
        if self._replicas_kept_awake:
            self._replicas_kept_awake = False
            return
        super().on_step_end()

    def _skips_model_passes(self) -> bool:
        # A step that does not update needs no old/reference log-probs: they feed the PPO ratio and the KL loss
        # (skipped with the update) and the rollout correction (which only reweights and masks the update; bypassed
        # in _compute_advantage). Only a KL penalty in the reward reads them for the advantage itself.
        return self._skips_update() and not self.config.algorithm.get("use_kl_in_reward", False)

    def _compute_old_log_prob(self, batch: Any, metrics: dict) -> Any:
        if self._skips_model_passes():
            metrics[cures_metrics.key("schedule/skipped_log_prob_passes")] = 1.0
            return batch
        return super()._compute_old_log_prob(batch, metrics)

    def _compute_ref_log_prob(self, batch: Any, metrics: dict) -> Any:
        if self._skips_model_passes():
            return batch
        return super()._compute_ref_log_prob(batch, metrics)

    def _update_actor(self, batch: Any, metrics: dict) -> Any:
        if self._skips_update():
            metrics[cures_metrics.key("schedule/skipped_update")] = 1.0
            return batch
        return super()._update_actor(batch, metrics)

    def _update_critic(self, batch: Any, metrics: dict) -> Any:
        if self._skips_update():
            return batch
        return super()._update_critic(batch, metrics)

    def step(self, metrics: dict, timing_raw: dict) -> Any:
        batch = super().step(metrics, timing_raw)
        # verl 0.9.1 trainer_base.py:511: fit() clears the step's TransferQueue data right after this returns.
        with marked_timer(cures_metrics.TIMER_UPDATE, timing_raw):
            metrics.update(self._observe(batch))
        return batch

    def _observe(self, batch: Any) -> dict[str, float]:
        assert self.curriculum is not None
        plan = self._step_plan
        if plan is None:
            raise RuntimeError("a training step ran without a CurES plan")
        keys = self._real_keys(batch)
        cached = self._rewards_of_keys
        known = cached is not None and cached[0] == keys
        fields = ["extra_fields"] if known else ["rm_scores", "extra_fields"]
        data = tq.kv_batch_get(keys=keys, partition_id=batch.partition_id, select_fields=fields)
        # rm_scores holds the reward on the response's last token (pre-KL): the sum is the rollout's reward
        rewards = cached[1] if known and cached is not None else _row_sums(data["rm_scores"])
        self._rewards_of_keys = None
        reward_means = _reward_extra_means(_as_list(data["extra_fields"]))
        prompts = self._prompts_of_keys(keys)
        realised = np.bincount(np.searchsorted(np.sort(plan.prompt_indices), prompts), minlength=plan.rollouts.size)
        planned = plan.rollouts[np.argsort(plan.prompt_indices)]
        mismatched = int(np.count_nonzero(realised != planned))
        if mismatched:
            logger.warning("CurES: %d prompts got a different number of rollouts than allocated", mismatched)
        out = self.curriculum.observe(prompts, rewards)
        out.update(self.curriculum.metrics(plan))
        out["batch/rollout_count_mismatch"] = float(mismatched)
        out.update({f"reward/{name}": value for name, value in reward_means.items()})
        if self._dump_path is not None:
            self._dump_step(plan, prompts, rewards, out)
        self._step_plan = None
        return {cures_metrics.key(k): v for k, v in out.items()}

    def _dump_step(self, plan: StepPlan, prompts: np.ndarray, rewards: np.ndarray, out: dict[str, float]) -> None:
        assert self.curriculum is not None and self.batch_sampler is not None and self._dump_path is not None
        pool = self.curriculum.schedule.subset(self.curriculum.schedule.phase(plan.step).subset)
        hist, _ = np.histogram(self.curriculum.tracker.posterior_mean(pool), bins=20, range=(0.0, 1.0))
        correct = np.bincount(prompts, weights=rewards, minlength=self.curriculum.num_prompts)[plan.prompt_indices]
        # over the rollouts each prompt got, which differ from the plan if verl ignored __rollout_n__
        seen = np.bincount(prompts, minlength=self.curriculum.num_prompts)[plan.prompt_indices]
        record = {
            "time": time.time(),
            "global_step": int(self.global_steps),
            "step": plan.step,
            "iteration": plan.iteration,
            "phase": plan.phase,
            "prompt_ids": self.batch_sampler.index.stable_ids[plan.prompt_indices].tolist(),
            "rollouts": plan.rollouts.tolist(),
            "predicted_accuracy": np.round(plan.predicted_accuracy, 6).tolist(),
            "realised_accuracy": np.round(correct / np.maximum(seen, 1), 6).tolist(),
            "pool_accuracy_histogram": hist.tolist(),
            "metrics": {k: v for k, v in out.items() if np.isfinite(v)},
        }
        with open(self._dump_path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
