"""Names of the metrics CurES adds to verl's trackers (each is defined in docs/metrics.md).

Components return namespace-relative keys (``sampler/weight_entropy``); the adapter prefixes them with
``cures/``. Timings go through verl's ``marked_timer`` and appear as ``timing_s/<name>``.
"""

from __future__ import annotations

__all__ = ["PREFIX", "TIMER_PLAN", "TIMER_UPDATE", "key"]

PREFIX = "cures/"
#: Time to plan a step (draw prompts, allocate rollouts) and collate its batch: ``timing_s/cures_plan``.
TIMER_PLAN = "cures_plan"
#: Time to read the step's rewards and update the posterior and metrics: ``timing_s/cures_update``.
TIMER_UPDATE = "cures_update"


def key(name: str) -> str:
    """``sampler/weight_entropy`` -> ``cures/sampler/weight_entropy``."""
    return PREFIX + name
