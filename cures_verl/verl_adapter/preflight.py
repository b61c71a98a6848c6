"""Pre-flight check of a training run: ``python -m cures_verl.preflight <the run's Hydra overrides>``.

Give it the overrides of ``python -m cures_verl.main`` (a recipe's command line) and, in well under a minute and
without GPUs, it

1. composes the config the run would get (same config package and name as :func:`cures_verl.verl_adapter.main.main`,
   ``profile=cpu`` included);
2. runs the run's own start-up refusals, in :func:`cures_verl.verl_adapter.main.run`'s order (the ``cures:`` block,
   logger credentials, the verl version, CPU mode, :func:`~cures_verl.verl_adapter.trainer.check_trainer_config`,
   verl's own ``validate_config``);
3. reads only the ``extra_info`` column of ``data.train_files`` (pyarrow) and checks the prompt ids as the trainer
   does (duplicates within or across files: the trainer's error and hint), the subsets and priors, and builds
   the core :class:`~cures_verl.core.CurriculumSampler` as the trainer's ``_init_dataloader`` does; reads the
   ``reward_model`` column of the training and validation files and rejects rows whose ground truth the math
   reward cannot grade against (empty, wrong type, or, with this package's reward configured, unparseable),
   naming file, row and field;
4. checks the GPU counts against what verl's workers assert only once they have started;
5. prints the step plan (steps, cold-start steps, rollouts, policy updates), from the core
   :class:`~cures_verl.core.Schedule` the trainer uses, or plain GRPO's steps x batch x n;
6. estimates the checkpoints' disk need against the free space of ``trainer.default_local_dir``.

It exits 0 when everything passes, 1 with every problem listed otherwise. It does not check what needs the
model's weights or a GPU (tokenizer, prompt lengths, memory).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import logging
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from hydra.errors import HydraException
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from cures_verl.config import CuresConfig
from cures_verl.verl_adapter.hydra_config import CONFIG_DIR, CONFIG_NAME, cures_config_from, register_resolvers
from cures_verl.verl_adapter.main import _resolve_cures_block, check_logger_credentials

__all__ = [
    "CHECKPOINT_BYTES_PER_PARAMETER",
    "PreflightReport",
    "compose_config",
    "count_parameters",
    "main",
    "preflight",
]

logger = logging.getLogger(__name__)

#: The config package ``python -m cures_verl.main`` composes from (its ``@hydra.main(config_path=CONFIG_DIR)`` is
#: relative to this package).
CONFIG_MODULE = f"{__package__}.{CONFIG_DIR}"

#: Bytes per parameter of each part of one FSDP checkpoint (``actor.checkpoint.save_contents``; verl 0.9.1
#: ``utils/checkpoint/fsdp_checkpoint_manager.py``): fp32 weights, Adam's two fp32 moments, a bf16 Hugging Face copy.
CHECKPOINT_BYTES_PER_PARAMETER = {"model": 4, "optimizer": 8, "hf_model": 2}

#: What a failed check raises (verl's validate_config asserts; config access may raise OmegaConf errors).
_CHECK_ERRORS = (ValueError, AssertionError, RuntimeError, ImportError, KeyError, TypeError, OmegaConfBaseException)
_T = TypeVar("_T")

GB = 1e9


@dataclass
class PreflightReport:
    """What :func:`preflight` found: ``problems`` make the run fail (exit 1), ``warnings`` do not."""

    overrides: list[str]
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    """Human-readable results, section by section."""
    plan: dict[str, int] = field(default_factory=dict)
    """The step plan (empty when it could not be made): see :func:`_plan`."""
    checkpoints: dict[str, Any] = field(default_factory=dict)
    """The checkpoint estimate: parameters, bytes per checkpoint, checkpoints kept, bytes needed and free."""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when there is no problem."""
        return not self.problems

    def info(self, section: str, text: str) -> None:
        self.lines.append(f"{section:<12} {text}")

    def attempt(self, label: str, check: Callable[..., _T], *args: Any, **kwargs: Any) -> _T | None:
        """Run one check; record its error as a problem (prefixed by ``label``) and return None if it fails."""
        try:
            return check(*args, **kwargs)
        except _CHECK_ERRORS as error:
            self.problems.append(f"{label}: {error}")
            return None

    def render(self) -> str:
        out = [f"CurES pre-flight ({len(self.overrides)} overrides)", *self.lines]
        if self.warnings:
            out.append(f"warnings ({len(self.warnings)}):")
            out.extend(f"  - {text}" for text in self.warnings)
        if self.ok:
            out.append(f"PASSED in {self.seconds:.1f} s")
        else:
            out.append(f"FAILED in {self.seconds:.1f} s: {len(self.problems)} problem(s)")
            out.extend(f"  {i}. {text}" for i, text in enumerate(self.problems, 1))
        return "\n".join(out) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


# ---- 1. composition ---------------------------------------------------------------------------------------------


def compose_config(overrides: Sequence[str]) -> DictConfig:
    """The config ``python -m cures_verl.main <overrides>`` composes (interpolations unresolved, as ``hydra.main``
    gives them, and without the ``hydra:`` node).

    Raises:
        hydra.errors.HydraException, omegaconf.errors.OmegaConfBaseException: If the overrides do not compose
            (unknown key, bad syntax, missing config group option).
    """
    from hydra import compose, initialize_config_module

    register_resolvers()
    with initialize_config_module(config_module=CONFIG_MODULE, version_base=None):
        return compose(config_name=CONFIG_NAME, overrides=list(overrides))


# ---- 2. the run's start-up refusals -----------------------------------------------------------------------------


def _startup_checks(
    config: DictConfig, report: PreflightReport, environ: Mapping[str, str] | None
) -> CuresConfig | None:
    """:func:`cures_verl.verl_adapter.main.run`'s checks, in its order, each failure recorded (not only the first)."""
    passed = []
    cures = report.attempt("cures config", cures_config_from, config)
    if cures is not None:
        passed.append("cures config")
        _resolve_cures_block(config)
    if _passes(report, "logger", check_logger_credentials, config, None if environ is None else dict(environ)):
        passed.append("logger credentials")
    from cures_verl.verl_adapter.compat import check_verl_version

    version = report.attempt("verl version", check_verl_version)
    if version is not None:
        passed.append(f"verl {version}")
    cpu_mode = OmegaConf.select(config, "trainer.device") == "cpu"
    cpu_ready = False
    if cpu_mode:
        # the run prepares CPU mode before importing verl's trainer modules (main.py); so do we
        from cures_verl.cpu.launch import prepare_cpu_mode

        cpu_ready = _passes(report, "CPU mode (profile=cpu)", prepare_cpu_mode)
        if cpu_ready:
            passed.append("CPU mode plugin")
    if cures is not None and cures.enable:
        from cures_verl.verl_adapter.trainer import check_trainer_config

        if _passes(report, "check_trainer_config", check_trainer_config, config, cures):
            passed.append("check_trainer_config")
    if cpu_ready:
        from cures_verl.cpu.launch import validate_cpu_config
        from cures_verl.cpu.resources import check_ray_resources

        if _passes(report, "CPU mode", validate_cpu_config, config):
            passed.append("validate_cpu_config")
        if report.attempt("Ray resources", check_ray_resources, config) is not None:
            passed.append("Ray resources")
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config
    from verl.utils.device import auto_set_device

    auto_set_device(config)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        # need_critic warns that GRPO has no critic; validate_config prints a success line
        warnings.simplefilter("ignore")
        verl_ok = _passes(
            report,
            "verl validate_config",
            lambda: validate_config(
                config=config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config)
            ),
        )
    if verl_ok:
        passed.append("verl validate_config")
    report.info("start-up", "passed: " + (", ".join(passed) or "nothing"))
    if cures is not None:
        if cures.enable:
            changed = cures.differences_from_preset()
            text = ", ".join(f"{key}={value!r}" for key, (_, value) in sorted(changed.items())) or "nothing"
            report.info("cures", f"enable=true, preset {cures.preset}; changed from the preset: {text}")
        else:
            report.info("cures", "enable=false: plain verl (main_ppo) on the same config")
    return cures


def _passes(report: PreflightReport, label: str, check: Callable[..., Any], *args: Any) -> bool:
    before = len(report.problems)
    report.attempt(label, check, *args)
    return len(report.problems) == before


# ---- 3. the training data ---------------------------------------------------------------------------------------


@dataclass
class _TrainData:
    num_prompts: int
    schedule: Any = None
    """The core Schedule the trainer would build (CurES runs only)."""


def _as_paths(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, ListConfig):
        value = OmegaConf.to_container(value, resolve=True)
    return [str(value)] if isinstance(value, str) else [str(v) for v in value]


def _is_remote(path: str) -> bool:
    return "://" in path


def _read_extra_info(path: str) -> Any:
    """The ``extra_info`` column of one training file as a pyarrow table (verl reads .parquet, .json and .jsonl)."""
    import pyarrow.parquet as pq

    if path.endswith(".parquet"):
        names = pq.read_schema(path).names
        if "extra_info" not in names:
            raise ValueError(
                f"data.train_files: {path} has no extra_info column (columns: {', '.join(names)}); CurES needs "
                "extra_info.index, a stable unique id per prompt (scripts/prepare_data.py writes it)"
            )
        return pq.read_table(path, columns=["extra_info"])
    if path.endswith((".json", ".jsonl")):
        import pyarrow.json as pj

        table = pj.read_json(path)
        if "extra_info" not in table.column_names:
            raise ValueError(f"data.train_files: {path} has no extra_info column; CurES needs extra_info.index")
        return table.select(["extra_info"])
    raise ValueError(f"data.train_files: {path}: unsupported file format (verl reads .parquet, .json and .jsonl)")


def _num_rows(path: str) -> int:
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        return int(pq.read_metadata(path).num_rows)
    if path.endswith((".json", ".jsonl")):
        import pyarrow.json as pj

        return int(pj.read_json(path).num_rows)
    raise ValueError(f"data.train_files: {path}: unsupported file format (verl reads .parquet, .json and .jsonl)")


def _max_samples_rows(config: DictConfig, total: int, report: PreflightReport) -> np.ndarray | None:
    """The rows verl keeps under ``data.train_max_samples`` (verl 0.9.1 ``rl_dataset.py:185-191``), None for all."""
    max_samples = int(OmegaConf.select(config, "data.train_max_samples", default=-1) or -1)
    if not 0 < max_samples < total:
        return None
    if OmegaConf.select(config, "data.shuffle", default=False):
        seed = OmegaConf.select(config, "data.seed", default=None)
        if seed is None:
            report.warnings.append(
                f"data.train_max_samples={max_samples} with data.shuffle=true and data.seed=null: verl keeps a "
                "different random subset on every start, so the subset sizes below are one draw; set data.seed"
            )
        rng = np.random.default_rng(*((seed,) if seed is not None else ()))
        return np.asarray(rng.choice(total, size=max_samples, replace=False))
    return np.arange(max_samples)


def _check_files(config: DictConfig, report: PreflightReport) -> list[str] | None:
    """The local training files, or None when one is missing or remote; missing validation files are problems."""
    readable = True
    for key in ("data.train_files", "data.val_files"):
        paths = _as_paths(OmegaConf.select(config, key, default=None))
        if not paths:
            report.problems.append(f"{key} is not set")
            readable = readable and key != "data.train_files"
        for path in paths:
            if _is_remote(path):
                report.warnings.append(f"{key}: {path} is remote; not checked")
                readable = readable and key != "data.train_files"
            elif not Path(path).is_file():
                report.problems.append(f"{key}: {path} does not exist")
                readable = readable and key != "data.train_files"
    reward = OmegaConf.select(config, "reward.custom_reward_function.path", default=None)
    if reward and not _is_remote(str(reward)) and not Path(str(reward)).is_file():
        report.problems.append(f"reward.custom_reward_function.path={reward} does not exist")
    model = str(OmegaConf.select(config, "actor_rollout_ref.model.path", default=""))
    if model.startswith(("/", ".", "~")) and not Path(model).expanduser().exists():
        report.problems.append(f"actor_rollout_ref.model.path={model} does not exist")
    return _as_paths(config.data.train_files) if readable else None


def _cures_data(config: DictConfig, cures: CuresConfig, files: list[str], report: PreflightReport) -> _TrainData:
    """The trainer's ``_init_dataloader`` (trainer.py) on the ``extra_info`` column only: prompt ids, subsets and
    priors read the same way, and the same :class:`~cures_verl.core.CurriculumSampler`.

    Raises:
        ValueError: With the trainer's messages (and its collision hint for several files).
    """
    import datasets

    from cures_verl.core import CurriculumSampler
    from cures_verl.verl_adapter.sampler import (
        PromptIndex,
        curriculum_inputs,
        index_collision_hint,
        read_extra_info_field,
    )

    # verl concatenates the files in order (rl_dataset.py:170-180), then keeps train_max_samples rows
    frames = [datasets.Dataset(_read_extra_info(path)) for path in files]
    frame = datasets.concatenate_datasets(frames) if len(frames) > 1 else frames[0]
    rows = _max_samples_rows(config, len(frame), report)
    if rows is not None:
        frame = frame.select(rows.tolist())
    try:
        index = PromptIndex(read_extra_info_field(frame, "index"))
    except ValueError as error:
        raise ValueError(f"{error}{index_collision_hint(files)}") from error
    ids = index.stable_ids
    report.info(
        "data", f"{index.num_prompts} prompts in {len(files)} file(s), extra_info.index unique ({ids[0]}..{ids[-1]})"
    )

    inputs = curriculum_inputs(frame, index, cures)
    prior = inputs.prior_accuracy
    if cures.posterior.prior_source == "dataset" and prior is not None:
        report.info("priors", f"extra_info.{cures.posterior.prior_field}: {int(np.isfinite(prior).sum())} prompts")
    elif cures.posterior.prior_source == "checkpoint" and prior is not None:
        found = int(np.isfinite(prior).sum())
        report.info("priors", f"{cures.posterior.prior_path}: {found} of {index.num_prompts} prompts found")
    if inputs.prompt_features is not None:
        report.info(
            "features",
            f"extra_info.{cures.posterior.feature_field}: {inputs.prompt_features.shape[1]} per prompt",
        )
    subsets = inputs.subset_ids
    curriculum = CurriculumSampler(
        index.num_prompts,
        batch_size=int(config.data.train_batch_size),
        rollouts_per_prompt=int(config.actor_rollout_ref.rollout.n),
        config=cures,
        prior_accuracy=prior,
        subset_ids=subsets,
        prompt_features=inputs.prompt_features,
    )
    schedule = curriculum.schedule
    sizes = [schedule.subset(s).size for s in range(schedule.num_subsets)]
    how = f"extra_info.{cures.schedule.subset_field}" if subsets is not None else f"split={cures.schedule.split}"
    report.info(
        "subsets",
        f"{schedule.num_subsets} ({how}) of {min(sizes)}..{max(sizes)} prompts"
        if cures.schedule.mode == "iterations"
        else "continuous schedule: the whole dataset is eligible at every step",
    )
    return _TrainData(index.num_prompts, schedule)


#: Seconds the pre-flight check spends parsing ground truths with the math reward (distinct values, all files).
GOLD_CHECK_SECONDS = 20.0
_MAX_LISTED_ROWS = 5


def _ground_truths(path: str) -> list[Any]:
    """``reward_model.ground_truth`` of every row of one data file (``None`` where a row has none)."""
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        names = pq.read_schema(path).names
        if "reward_model" not in names:
            raise ValueError(f"{path} has no reward_model column (columns: {', '.join(names)})")
        column = pq.read_table(path, columns=["reward_model"]).column("reward_model")
    elif path.endswith((".json", ".jsonl")):
        import pyarrow.json as pj

        table = pj.read_json(path)
        if "reward_model" not in table.column_names:
            raise ValueError(f"{path} has no reward_model column")
        column = table.column("reward_model")
    else:
        raise ValueError(f"{path}: unsupported file format (verl reads .parquet, .json and .jsonl)")
    return [row.get("ground_truth") if isinstance(row, dict) else None for row in column.to_pylist()]


def _uses_cures_reward(config: DictConfig) -> bool:
    path = str(OmegaConf.select(config, "reward.custom_reward_function.path", default="") or "")
    return "cures_verl" in path and "math_verify" in path


def _check_ground_truths(config: DictConfig, report: PreflightReport) -> None:
    """Every row's ``reward_model.ground_truth`` must be gradable: a run would score such a row 0 on every rollout
    (``gold_unparseable=1``). Empty and wrong-typed values are found in every file; with this package's math reward
    configured, the distinct values are also parsed by the reward itself, within :data:`GOLD_CHECK_SECONDS`."""
    from cures_verl.reward.extraction import gold_answers

    located: list[tuple[str, str, int, Any]] = []  # (config key, file, row, value)
    for key in ("data.train_files", "data.val_files"):
        for path in _as_paths(OmegaConf.select(config, key, default=None)):
            if _is_remote(path) or not Path(path).is_file():
                continue  # reported by _check_files
            located += [(key, path, row, value) for row, value in enumerate(_ground_truths(path))]
    bad: list[tuple[str, str, int, str]] = []
    for key, path, row, value in located:
        try:
            gold_answers(value)
        except (TypeError, ValueError) as error:
            bad.append((key, path, row, str(error)))
    checked = "empty and wrong-typed values"
    if _uses_cures_reward(config) and importlib.util.find_spec("math_verify") is not None:
        from cures_verl.reward.math_verify import NOT_CHECKED, check_ground_truths

        failed = {(key, path, row) for key, path, row, _ in bad}
        rest = [item for item in located if item[:3] not in failed]
        verdicts = check_ground_truths([value for *_, value in rest], deadline=time.monotonic() + GOLD_CHECK_SECONDS)
        unchecked = {str(value) for (*_, value), verdict in zip(rest, verdicts, strict=True) if verdict == NOT_CHECKED}
        bad += [
            (key, path, row, f"the math reward cannot grade against {value!r}: {verdict}")
            for (key, path, row, value), verdict in zip(rest, verdicts, strict=True)
            if verdict is not None and verdict != NOT_CHECKED
        ]
        distinct = len({str(value) for *_, value in rest})
        checked = f"parsed by the math reward ({distinct - len(unchecked)} of {distinct} distinct values)"
        if unchecked:
            report.warnings.append(
                f"only {distinct - len(unchecked)} of {distinct} distinct ground truths were parsed within "
                f"{GOLD_CHECK_SECONDS:g} s; the others are checked when training scores them (a bad one scores 0 with "
                "gold_unparseable=1, see cures/reward/gold_unparseable)"
            )
    if not bad:
        report.info("answers", f"{len(located)} ground truths, none empty; {checked}")
        return
    for key, path, row, reason in bad[:_MAX_LISTED_ROWS]:
        report.problems.append(f"{key}: {path} row {row}: field reward_model.ground_truth: {reason}")
    if len(bad) > _MAX_LISTED_ROWS:
        report.problems.append(f"... and {len(bad) - _MAX_LISTED_ROWS} more rows with an ungradable ground truth")
    report.problems.append(
        "fix or drop these rows: scripts/prepare_data.py rejects them when it writes a file (a run would score them 0 "
        "on every rollout, with gold_unparseable=1)"
    )


def _check_data(config: DictConfig, cures: CuresConfig | None, report: PreflightReport) -> _TrainData | None:
    files = _check_files(config, report)
    report.attempt("answers", _check_ground_truths, config, report)
    if files is None:
        report.info("data", "not read (see the problems/warnings)")
        return None
    data: _TrainData | None
    if cures is not None and cures.enable:
        data = report.attempt("data", _cures_data, config, cures, files, report)
    else:
        total = report.attempt("data", lambda: sum(_num_rows(path) for path in files))
        if total is None:
            return None
        rows = _max_samples_rows(config, total, report)
        data = _TrainData(total if rows is None else int(rows.size))
        report.info("data", f"{data.num_prompts} prompts in {len(files)} file(s)")
    if data is not None and OmegaConf.select(config, "data.filter_overlong_prompts", default=False):
        report.info(
            "",
            f"(before verl's data.filter_overlong_prompts, which drops prompts over data.max_prompt_length="
            f"{OmegaConf.select(config, 'data.max_prompt_length')} tokens when the run loads the data)",
        )
    return data


# ---- 4. GPUs and workers ----------------------------------------------------------------------------------------


def _check_cluster(config: DictConfig, report: PreflightReport) -> None:
    """What verl's workers assert once they have started (minutes into a run), from the config alone."""
    trainer = config.trainer
    nnodes, per_node = int(trainer.nnodes), int(trainer.n_gpus_per_node)
    n_gpus = nnodes * per_node
    where = f"the {n_gpus} GPUs of trainer.nnodes={nnodes} x trainer.n_gpus_per_node={per_node}"
    actor = config.actor_rollout_ref.actor
    rollout = config.actor_rollout_ref.rollout
    tp, dp, pp = (int(rollout.get(k, 1) or 1) for k in ("tensor_model_parallel_size", "data_parallel_size",
                                                      "pipeline_model_parallel_size"))  # fmt: skip
    infer_world = tp * dp * pp
    text = [f"{n_gpus} GPU(s) ({nnodes} x {per_node})"]
    if n_gpus % infer_world:
        # verl 0.9.1 workers/engine_workers.py:659
        report.problems.append(
            f"actor_rollout_ref.rollout.tensor_model_parallel_size={tp} x data_parallel_size={dp} x "
            f"pipeline_model_parallel_size={pp} = {infer_world} GPUs per rollout replica does not divide {where}; "
            "choose a tensor_model_parallel_size that divides the GPU count"
        )
    elif infer_world % min(per_node, infer_world):
        # verl 0.9.1 workers/rollout/replica.py:113
        report.problems.append(
            f"a rollout replica of {infer_world} GPUs (actor_rollout_ref.rollout.tensor_model_parallel_size x "
            f"data_parallel_size x pipeline_model_parallel_size) must fill whole nodes of "
            f"trainer.n_gpus_per_node={per_node}"
        )
    else:
        text.append(f"rollout: {n_gpus // infer_world} replica(s) of TP {tp} x DP {dp} x PP {pp}")
    strategy = actor.get("strategy")
    if strategy in ("fsdp", "fsdp2"):
        # FSDPActorConfig.__post_init__: the deprecated actor.ulysses_sequence_parallel_size wins when > 1
        sp = int(actor.get("ulysses_sequence_parallel_size", 1) or 1)
        if sp <= 1:
            sp = int(OmegaConf.select(actor, "fsdp_config.ulysses_sequence_parallel_size", default=1) or 1)
        if n_gpus % sp:
            report.problems.append(
                f"actor_rollout_ref.actor.fsdp_config.ulysses_sequence_parallel_size={sp} does not divide {where}"
            )
        else:
            dp_size = n_gpus // sp
            n = int(rollout.n)
            mini = int(actor.ppo_mini_batch_size) * n
            # verl 0.9.1 workers/engine_workers.py:267: each update's mini-batch of ppo_mini_batch_size x n samples is
            # split evenly over the data-parallel ranks
            if mini % dp_size:
                report.problems.append(
                    f"actor_rollout_ref.actor.ppo_mini_batch_size={actor.ppo_mini_batch_size} x "
                    f"actor_rollout_ref.rollout.n={n} = {mini} samples per update is not divisible by the {dp_size} "
                    f"data-parallel ranks ({n_gpus} GPUs / ulysses {sp}); verl asserts it at the first update"
                )
            text.append(f"actor: data parallel {dp_size} x ulysses {sp}")
    if actor.get("use_dynamic_bsz", False) != rollout.get("log_prob_use_dynamic_bsz", False):
        # verl 0.9.1 workers/engine_workers.py:616
        report.problems.append(
            f"actor_rollout_ref.actor.use_dynamic_bsz={actor.get('use_dynamic_bsz')} but "
            f"actor_rollout_ref.rollout.log_prob_use_dynamic_bsz={rollout.get('log_prob_use_dynamic_bsz')}: verl "
            "needs both equal"
        )
    report.info("gpus", "; ".join(text))


# ---- 5. the step plan -------------------------------------------------------------------------------------------


def _plan(config: DictConfig, cures: CuresConfig | None, data: _TrainData | None, report: PreflightReport) -> None:
    """Steps, rollouts and updates of the run, as the trainer counts them.

    Steps: CurES's iteration schedule sets the steps per epoch (trainer.py ``_init_dataloader``), its continuous
    schedule stretches verl's epoch to cover ``trainer.total_training_steps``; otherwise verl's
    ``len(dataset) // data.train_batch_size``. The total is ``trainer.total_training_steps`` or steps per epoch x
    ``trainer.total_epochs``, and verl's fit loop (trainer_base.py:467) also ends after ``trainer.total_epochs``.
    """
    if data is None or cures is None:
        report.info("plan", "not made (see the problems)")
        return
    batch = int(config.data.train_batch_size)
    n = int(config.actor_rollout_ref.rollout.n)
    epochs = int(config.trainer.total_epochs)
    configured = OmegaConf.select(config, "trainer.total_training_steps", default=None)
    schedule = data.schedule
    if data.num_prompts // batch == 0:
        report.problems.append(
            f"{data.num_prompts} prompts make no full batch of data.train_batch_size={batch}; lower the batch size"
        )
        return
    from cures_verl.verl_adapter.trainer import run_length

    steps_per_epoch, total = run_length(
        # plain verl (cures.enable=false) keeps its own epochs: like a fixed steps-per-epoch schedule, no stretching
        schedule_steps_per_epoch=data.num_prompts // batch if schedule is None else schedule.steps_per_epoch,
        dataset_steps_per_epoch=data.num_prompts // batch,
        configured_total=configured,
        total_epochs=epochs,
    )
    steps = min(total, steps_per_epoch * epochs)
    if steps < total:
        report.problems.append(
            f"trainer.total_training_steps={total} but the run stops after trainer.total_epochs={epochs} x "
            f"{steps_per_epoch} steps per epoch = {steps} steps (verl's fit loop ends after total_epochs); set "
            f"trainer.total_epochs={-(-total // steps_per_epoch)}"
        )
    if schedule is not None:
        from cures_verl.core.schedule import COLD_START

        per_step = schedule.planned_rollouts(steps, n)
        cold = sum(1 for step in range(steps) if schedule.phase(step).kind == COLD_START)
        updates = schedule.num_updates(steps)  # what the trainer sets the optimizer's horizon to
        rollouts = int(per_step.sum())
        cold_rollouts = batch * cures.schedule.cold_start_rollouts
    else:
        cold, updates, rollouts, cold_rollouts = 0, steps, steps * batch * n, 0
    mini_batches = -(-batch // int(config.actor_rollout_ref.actor.ppo_mini_batch_size))
    report.plan = {
        "num_prompts": data.num_prompts,
        "prompts_per_step": batch,
        "rollouts_per_training_step": batch * n,
        "rollouts_per_cold_start_step": cold_rollouts,
        "steps_per_epoch": steps_per_epoch,
        "total_steps": steps,
        "cold_start_steps": cold,
        "training_steps": steps - cold,
        "total_rollouts": rollouts,
        "policy_updates": updates,
        "optimizer_steps": updates * mini_batches * int(config.actor_rollout_ref.actor.ppo_epochs),
        "equal_rollout_grpo_steps": rollouts // (batch * n),
    }
    plan = report.plan
    source = f"trainer.total_training_steps={configured}" if configured is not None else "derived"
    if schedule is not None:
        kind = f"CurES, {cures.schedule.mode} schedule"
        if cures.schedule.mode == "iterations":
            kind += f" ({schedule.num_subsets} iterations of cold start + {cures.schedule.steps_per_iteration} steps)"
    else:
        kind = "plain verl (cures.enable=false)"
    report.info("plan", f"{kind}, {steps} steps ({source}; {steps_per_epoch} per epoch, total_epochs={epochs})")
    report.info("", f"prompts per step {batch}; rollouts per training step {batch * n} ({batch} x rollout.n={n})")
    if cold:
        report.info(
            "",
            f"cold-start steps {cold} of {cold_rollouts} rollouts ({batch} x {cures.schedule.cold_start_rollouts}), "
            f"{'with' if cures.schedule.train_on_cold_start else 'without'} policy update",
        )
    report.info(
        "",
        f"training steps {plan['training_steps']}; total rollouts {rollouts:,}"
        + (f" (cold start {cold * cold_rollouts:,})" if cold else ""),
    )
    report.info(
        "",
        f"policy updates {updates}; optimizer steps {plan['optimizer_steps']} ({mini_batches} mini-batches of "
        f"ppo_mini_batch_size x ppo_epochs={config.actor_rollout_ref.actor.ppo_epochs})",
    )
    if schedule is not None:
        report.info("", f"plain GRPO spends the same rollouts in {plan['equal_rollout_grpo_steps']} steps")
        if cures.allocation.zero_variance == "drop":
            report.info("", "(cures.allocation.zero_variance=drop: training-step rollouts are upper bounds)")


# ---- 6. checkpoints ---------------------------------------------------------------------------------------------


def _local_model_dir(path: str) -> Path | None:
    """A local directory holding the model's config.json: the path itself, or the Hugging Face cache's copy of a
    Hub id (no download)."""
    if Path(path).is_dir():
        return Path(path)
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        cached = try_to_load_from_cache(path, "config.json")
    except ValueError:  # not a valid repo id
        return None
    return Path(cached).parent if isinstance(cached, str) else None


def count_parameters(model_path: str, trust_remote_code: bool = False) -> tuple[int | None, str]:
    """The parameter count of the model at ``model_path``, from its config.json (the model is built on the meta
    device: no weight is read), and where it came from; ``(None, why)`` when it cannot be counted.

    ``model_path`` is a local directory or a Hugging Face Hub id already in the local cache.
    """
    directory = _local_model_dir(model_path)
    if directory is None:
        return None, f"{model_path} is neither a local directory nor in the Hugging Face cache"
    if not (directory / "config.json").is_file():
        return None, f"{directory} has no config.json"
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model_config = AutoConfig.from_pretrained(str(directory), trust_remote_code=trust_remote_code)
            with torch.device("meta"):
                model = AutoModelForCausalLM.from_config(model_config, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError, ImportError, TypeError) as error:
        return None, f"could not build the model of {directory / 'config.json'} ({type(error).__name__}: {error})"
    return int(sum(p.numel() for p in model.parameters())), str(directory / "config.json")


def _size(num_bytes: float) -> str:
    return f"{num_bytes / GB:.1f} GB" if num_bytes >= 0.1 * GB else f"{num_bytes / 1e6:.1f} MB"


def _existing_dir(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_checkpoints(config: DictConfig, report: PreflightReport) -> None:
    """Disk for the checkpoints the run keeps: parameters x bytes per parameter x checkpoints kept, against the free
    space of ``trainer.default_local_dir``'s filesystem (verl keeps at most max_*_ckpt_to_keep at any time:
    ``checkpoint_manager.py:166-193``)."""
    trainer = config.trainer
    save_freq = int(trainer.get("save_freq", -1) or -1)
    if save_freq <= 0:
        report.info("checkpoints", f"none (trainer.save_freq={trainer.get('save_freq')})")
        return
    steps = report.plan.get("total_steps")
    # verl saves every save_freq steps and at the last step (trainer_base.py:478)
    saves = None if steps is None else steps // save_freq + (1 if steps % save_freq else 0)
    from verl.trainer.ppo.utils import need_critic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        roles = [("actor", "actor_rollout_ref.actor", "actor_rollout_ref.model", "max_actor_ckpt_to_keep")]
        if need_critic(config):
            roles.append(("critic", "critic", "critic.model", "max_critic_ckpt_to_keep"))
    need = 0.0
    parts = []
    for role, key, model_key, keep_key in roles:
        keep = trainer.get(keep_key)
        kept = saves if not (isinstance(keep, int) and keep > 0) else (keep if saves is None else min(keep, saves))
        contents = list(OmegaConf.select(config, f"{key}.checkpoint.save_contents", default=None) or ["model"])
        counted = [str(part) for part in contents if str(part) in CHECKPOINT_BYTES_PER_PARAMETER]
        per_param = sum(CHECKPOINT_BYTES_PER_PARAMETER[part] for part in counted)
        model_path = str(OmegaConf.select(config, f"{model_key}.path"))
        trust = bool(OmegaConf.select(config, f"{model_key}.trust_remote_code", default=False))
        params, source = count_parameters(model_path, trust)
        if params is None or kept is None:
            report.warnings.append(
                f"checkpoint disk need of the {role} not estimated: "
                + (f"{model_key}.path: {source}" if params is None else f"trainer.{keep_key} is unset and no plan")
            )
            return
        size = params * per_param
        need += kept * size
        report.checkpoints[role] = {"parameters": params, "bytes_per_checkpoint": size, "kept": kept}
        parts.append(
            f"{role}: {params:,} parameters ({source}) x {per_param} bytes ({'+'.join(counted)}) = "
            f"{_size(size)} x {kept} kept (trainer.{keep_key}={keep}, {saves} saves)"
        )
    directory = str(trainer.default_local_dir)
    where = _existing_dir(Path(directory))
    free = shutil.disk_usage(where).free
    report.checkpoints.update({"need_bytes": int(need), "free_bytes": int(free), "filesystem_of": str(where)})
    for part in parts:
        report.info("checkpoints", part)
    existing = sorted(Path(directory).glob("global_step_*")) if Path(directory).is_dir() else []
    if existing:
        report.info(
            "",
            f"{directory} already holds {len(existing)} checkpoint(s) (latest {existing[-1].name}); "
            f"trainer.resume_mode={trainer.get('resume_mode')} resumes from it",
        )
    report.info("", f"need {_size(need)}, free {_size(free)} on the filesystem of {where}")
    if need > free:
        report.problems.append(
            f"trainer.default_local_dir={directory}: the checkpoints need about {need / GB:.1f} GB but its filesystem "
            f"({where}) has {free / GB:.1f} GB free; free space, lower trainer.max_actor_ckpt_to_keep, raise "
            "trainer.save_freq, or point trainer.default_local_dir (CKPT_DIR in the recipes) to a larger disk"
        )
    elif need > 0.9 * free:
        report.warnings.append(
            f"trainer.default_local_dir={directory}: the checkpoints need about {need / GB:.1f} GB of the "
            f"{free / GB:.1f} GB free; logs and other jobs may fill the rest"
        )


# ---- entry points -----------------------------------------------------------------------------------------------


def preflight(overrides: Sequence[str], environ: Mapping[str, str] | None = None) -> PreflightReport:
    """Check the run ``python -m cures_verl.main <overrides>`` would start (see the module docstring).

    Args:
        overrides: The run's Hydra overrides.
        environ: The environment for the credential checks (default ``os.environ``).

    Returns:
        The report; ``report.ok`` is False when the run would fail or is misconfigured.
    """
    start = time.perf_counter()
    report = PreflightReport(list(overrides))
    try:
        config = compose_config(overrides)
    except (HydraException, OmegaConfBaseException, ValueError) as error:
        report.problems.append(f"the overrides do not compose ({type(error).__name__}): {error}")
        report.seconds = time.perf_counter() - start
        return report
    profile = "cpu" if OmegaConf.select(config, "trainer.device") == "cpu" else "gpu"
    report.info("config", f"{CONFIG_NAME} ({CONFIG_MODULE}) + {len(overrides)} overrides; {profile} profile")
    cures = _startup_checks(config, report, environ)
    data = _check_data(config, cures, report)
    report.attempt("gpus", _check_cluster, config, report)
    report.attempt("plan", _plan, config, cures, data, report)
    report.attempt("checkpoints", _check_checkpoints, config, report)
    report.seconds = time.perf_counter() - start
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m cures_verl.preflight [--json FILE] <hydra overrides>``: 0 when the run passes, 1 otherwise."""
    parser = argparse.ArgumentParser(
        prog="python -m cures_verl.preflight",
        description="Check a CurES/verl training run before it starts (no GPU, under a minute): give the overrides "
        "of python -m cures_verl.main.",
    )
    parser.add_argument("--json", default=None, help="also write the report as JSON to this file")
    parser.add_argument("overrides", nargs="*", help="the run's Hydra overrides, e.g. data.train_files=...")
    args = parser.parse_args(argv)
    report = preflight(args.overrides)
    sys.stdout.write(report.render())
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
