"""CurES as the batch sampler of verl's training dataloader.

verl's V1 trainer pulls each step's prompts from a torchdata ``StatefulDataLoader``. We give that
loader a *batch sampler* whose every batch is one CurES step: :meth:`CuresBatchSampler.__iter__` asks
the core :class:`~cures_verl.core.CurriculumSampler` for the next plan and yields the dataset rows of
its prompts. The loader calls ``state_dict``/``load_state_dict`` of a stateful batch sampler when it
saves or restores (torchdata ``stateful_dataloader.py``: ``try_to_serialize(self._index_sampler)``), so
verl's own ``data.pt`` checkpoint carries the posterior counts, the generator and the position.

Prompts are identified by the dataset's stable ``extra_info.index``, never by row position: the core's
prompt id is the rank of that index, so a re-ordered training file resumes correctly, and a checkpoint
from different data is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cures_verl.config import CuresConfig
from cures_verl.core import CurriculumSampler, StepPlan
from cures_verl.verl_adapter.priors import prior_accuracy_for

__all__ = [
    "CuresBatchSampler",
    "CurriculumInputs",
    "PromptIndex",
    "curriculum_inputs",
    "index_collision_hint",
    "numeric_field",
    "read_extra_info_field",
]

logger = logging.getLogger(__name__)


def read_extra_info_field(dataframe: Any, field: str, *, as_objects: bool = False) -> NDArray[Any]:
    """``extra_info[field]`` of every row of a Hugging Face dataset (verl's ``RLHFDataset.dataframe``); with
    ``as_objects`` a 1-D object array of the rows' Python values (lists of any length, None), else a numpy column.

    Raises:
        ValueError: If the dataset has no ``extra_info`` column or a row lacks the field.
    """
    if "extra_info" not in dataframe.column_names:
        raise ValueError(
            "the training data has no extra_info column; CurES needs extra_info.index, a stable unique id per "
            "prompt (scripts/prepare_data.py writes it)"
        )
    flat = dataframe.select_columns(["extra_info"]).flatten()
    column = f"extra_info.{field}"
    if column not in flat.column_names:
        raise ValueError(
            f"the training data's extra_info has no {field!r} field (found: "
            f"{', '.join(c.removeprefix('extra_info.') for c in flat.column_names)})"
        )
    if as_objects:
        rows = flat[column]
        objects = np.empty(len(rows), dtype=object)
        objects[:] = rows
        return objects
    values = np.asarray(flat.with_format("numpy")[column])
    return values


def numeric_field(values: NDArray[Any], key: str) -> NDArray[np.float64]:
    """A per-prompt extra_info column as float64, refusing nulls and non-numbers with the config key named."""
    try:
        out = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cures.{key}: the extra_info field must be a number on every row ({exc})") from exc
    if np.isnan(out).any():
        raise ValueError(f"cures.{key}: {int(np.isnan(out).sum())} rows have no value (null) in that extra_info field")
    return out


@dataclass(frozen=True)
class CurriculumInputs:
    """What the core sampler reads from the training data besides the ids (each None when the config needs none)."""

    prior_accuracy: NDArray[np.float64] | None
    subset_ids: NDArray[np.int64] | None
    prompt_features: NDArray[np.float64] | None


def curriculum_inputs(dataframe: Any, index: PromptIndex, config: CuresConfig) -> CurriculumInputs:
    """Per-prompt priors (``posterior.prior_source``), subsets (``schedule.split=field``) and features
    (``posterior.feature_field``) of the training data, in the core's prompt order; shared by the trainer and the
    pre-flight.

    Raises:
        ValueError: Naming the config key and the field when a field is missing, null, not numeric, or (features)
            not a list of the same length on every row.
    """

    def field_values(name: str, key: str, *, as_objects: bool = False) -> NDArray[Any]:
        try:
            return read_extra_info_field(dataframe, name, as_objects=as_objects)[index.rows]
        except ValueError as error:
            raise ValueError(f"cures.{key}={name}: {error}") from error

    post, schedule = config.posterior, config.schedule
    prior = subsets = features = None
    if post.prior_source == "dataset":
        values = field_values(post.prior_field, "posterior.prior_field")
        prior = np.array([np.nan if v is None else v for v in values.tolist()], dtype=np.float64)
    elif post.prior_source == "checkpoint":
        assert post.prior_path is not None  # validated by the config
        prior = prior_accuracy_for(index.stable_ids, Path(post.prior_path))
    if schedule.split == "field" and schedule.mode == "iterations":
        key = "schedule.subset_field"
        subsets = numeric_field(field_values(schedule.subset_field, key), key).astype(np.int64)
    if post.feature_field is not None:
        key = f"posterior.feature_field={post.feature_field}"
        rows = field_values(post.feature_field, "posterior.feature_field", as_objects=True).tolist()
        lengths = {len(row) if row is not None and hasattr(row, "__len__") else -1 for row in rows}
        if len(lengths) != 1 or -1 in lengths or 0 in lengths:
            raise ValueError(
                f"cures.{key}: every row must hold a non-empty list of numbers of one length (found lengths "
                f"{sorted(lengths)[:5]}, -1 = missing or not a list)"
            )
        features = numeric_field(np.array([list(row) for row in rows], dtype=object), key)
    return CurriculumInputs(prior, subsets, features)


def index_collision_hint(train_files: Any) -> str:
    """Which of several training files share ``extra_info.index`` values, and how to fix it ("" if none do).

    Each prepared file numbers its rows from 0 unless given an offset, so two files trained together collide.

    Example:
        >>> index_collision_hint(["only_one.parquet"])
        ''
    """
    files = [str(f) for f in ([train_files] if isinstance(train_files, str) else list(train_files or []))]
    if len(files) < 2:
        return ""
    import pyarrow.parquet as pq

    ids = {}
    for path in files:
        info = pq.read_table(path, columns=["extra_info"]).column("extra_info").to_pylist()
        ids[path] = {row.get("index") for row in info if isinstance(row, dict)}
    clashes = []
    for i, first in enumerate(files):
        for second in files[i + 1 :]:
            shared = ids[first] & ids[second]
            if shared:
                clashes.append(f"{first} and {second} share {len(shared)} ids ({min(shared)}..{max(shared)})")
    if not clashes:
        return ""
    sizes = [len(ids[f]) for f in files]
    offsets = [sum(sizes[:k]) for k in range(len(files))]
    return (
        f"; the training files collide: {'; '.join(clashes)}. Prepare them with disjoint id ranges, e.g. "
        + ", ".join(f"{f}: --index-offset {o}" for f, o in zip(files, offsets, strict=True))
        + " (python scripts/prepare_data.py dataset ... --index-offset N)"
    )


class PromptIndex:
    """The map between dataset rows, stable prompt ids (``extra_info.index``) and the core's prompt ids.

    Args:
        stable_ids: ``extra_info.index`` of every dataset row, shape ``(num_rows,)``.

    Raises:
        ValueError: If an id is missing, not an integer, or repeated (naming the first offending rows).
    """

    def __init__(self, stable_ids: NDArray[Any]) -> None:
        ids = np.asarray(stable_ids)
        if ids.size == 0:
            raise ValueError("the training dataset is empty")
        if ids.dtype == object or not np.issubdtype(ids.dtype, np.integer):
            bad = [i for i, v in enumerate(ids.tolist()) if not isinstance(v, int) or isinstance(v, bool)][:5]
            raise ValueError(
                f"extra_info.index must be an integer on every row; rows {bad} are not "
                "(missing or null values included). Regenerate the data with scripts/prepare_data.py"
            )
        ids = ids.astype(np.int64)
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        repeated = np.flatnonzero(sorted_ids[1:] == sorted_ids[:-1])
        if repeated.size:
            value = int(sorted_ids[repeated[0]])
            rows = np.flatnonzero(ids == value)[:5].tolist()
            raise ValueError(
                f"extra_info.index must be unique; {repeated.size} values repeat, e.g. {value} on rows {rows}. "
                "CurES keys its per-prompt estimates by this id"
            )
        #: stable id of core prompt p (ids sorted), shape (num_prompts,)
        self.stable_ids = sorted_ids
        #: dataset row of core prompt p, shape (num_prompts,)
        self.rows = order.astype(np.int64)

    @property
    def num_prompts(self) -> int:
        """Number of prompts."""
        return int(self.stable_ids.size)

    def prompts_of_stable_ids(self, stable_ids: NDArray[Any]) -> NDArray[np.int64]:
        """Core prompt ids of the given stable ids.

        Raises:
            ValueError: If an id is not in the dataset.
        """
        ids = np.asarray(stable_ids, dtype=np.int64)
        pos = np.searchsorted(self.stable_ids, ids)
        pos_clipped = np.minimum(pos, self.num_prompts - 1)
        unknown = self.stable_ids[pos_clipped] != ids
        if unknown.any():
            raise ValueError(f"prompt ids {ids[unknown][:5].tolist()} are not in the training dataset")
        return pos_clipped.astype(np.int64)


class CuresBatchSampler:
    """A stateful batch sampler: each batch is the dataset rows of one CurES step.

    Args:
        curriculum: The core sampler (prompt ids = ranks of ``extra_info.index``).
        index: The row/id map of the training dataset.
        num_batches: What ``len()`` reports (verl does not rely on it; steps come from the trainer).
    """

    def __init__(self, curriculum: CurriculumSampler, index: PromptIndex, num_batches: int) -> None:
        if curriculum.num_prompts != index.num_prompts:
            raise ValueError(f"curriculum has {curriculum.num_prompts} prompts but the dataset has {index.num_prompts}")
        self.curriculum = curriculum
        self.index = index
        self.num_batches = int(num_batches)
        #: the plan of the batch most recently yielded (read by the trainer to attach rollout counts)
        self.current_plan: StepPlan | None = None

    def __iter__(self) -> Iterator[list[int]]:
        while True:
            plan = self.curriculum.plan_step()
            self.current_plan = plan
            yield self.index.rows[plan.prompt_indices].tolist()

    def __len__(self) -> int:
        return self.num_batches

    def state_dict(self) -> dict[str, Any]:
        """The core sampler's state plus the stable ids it was built on."""
        return {"curriculum": self.curriculum.state_dict(), "stable_ids": self.index.stable_ids.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore; refuses a checkpoint made on different training data."""
        saved = np.asarray(state["stable_ids"], dtype=np.int64)
        if saved.shape != self.index.stable_ids.shape or not np.array_equal(saved, self.index.stable_ids):
            missing = np.setdiff1d(saved, self.index.stable_ids).size
            new = np.setdiff1d(self.index.stable_ids, saved).size
            raise ValueError(
                f"the checkpoint's CurES state was built on different training data ({missing} prompt ids of the "
                f"checkpoint are gone, {new} are new); resume with the same data.train_files"
            )
        self.curriculum.load_state_dict(state["curriculum"])
        self.current_plan = None
        logger.info("restored the CurES sampler at step %d", self.curriculum.step)
