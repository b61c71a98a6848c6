"""Per-prompt prior accuracies from an earlier run (``cures.posterior.prior_source=checkpoint``).

Accepts either a verl checkpoint's ``global_step_N/data.pt`` (the training dataloader state, which holds the
CurES sampler state: see :mod:`cures_verl.verl_adapter.sampler`) or an ``.npz`` with ``stable_ids`` and
``accuracy`` written by ``scripts/export_posterior.py``. Prompts are matched by their stable
``extra_info.index``; prompts the earlier run did not have get NaN (the uniform prior).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cures_verl.core.difficulty import beta_mean

__all__ = ["load_posterior", "prior_accuracy_for"]

logger = logging.getLogger(__name__)


def load_posterior(path: str | Path) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """``(stable_ids, posterior_mean_accuracy)`` of an earlier run.

    Raises:
        ValueError: If the file is neither a CurES-bearing ``data.pt`` nor a valid ``.npz``.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"cures.posterior.prior_path={path} does not exist")
    if path.suffix == ".npz":
        with np.load(path) as data:
            missing = {"stable_ids", "accuracy"} - set(data.files)
            if missing:
                raise ValueError(f"{path} lacks {sorted(missing)} (write it with scripts/export_posterior.py)")
            return data["stable_ids"].astype(np.int64), data["accuracy"].astype(np.float64)
    import torch

    state: Any = torch.load(path, weights_only=False, map_location="cpu")
    sampler_state = state.get("_index_sampler_state") if isinstance(state, dict) else None
    if not isinstance(sampler_state, dict) or "curriculum" not in sampler_state:
        raise ValueError(
            f"{path} holds no CurES sampler state; pass a data.pt written by a CurES run (python -m cures_verl.main) "
            "or an .npz from scripts/export_posterior.py"
        )
    tracker = sampler_state["curriculum"]["tracker"]
    alpha = np.asarray(tracker["prior_correct"], dtype=np.float64) + np.asarray(tracker["num_correct"])
    beta = np.asarray(tracker["prior_incorrect"], dtype=np.float64) + np.asarray(tracker["num_incorrect"])
    return np.asarray(sampler_state["stable_ids"], dtype=np.int64), beta_mean(alpha, beta)


def prior_accuracy_for(stable_ids: NDArray[np.int64], path: str | Path) -> NDArray[np.float64]:
    """Prior accuracy of each current prompt (by stable id) from an earlier run; NaN where it had no such prompt."""
    saved_ids, accuracy = load_posterior(path)
    order = np.argsort(saved_ids)
    saved_ids, accuracy = saved_ids[order], accuracy[order]
    pos = np.clip(np.searchsorted(saved_ids, stable_ids), 0, max(saved_ids.size - 1, 0))
    found = saved_ids.size > 0 and saved_ids[pos] == stable_ids
    out = np.where(found, accuracy[pos], np.nan)
    logger.info("CurES priors from %s: %d of %d prompts found", path, int(np.count_nonzero(found)), stable_ids.size)
    return out
