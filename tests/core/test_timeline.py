"""Timeline: the schedule position, resets at subset entry, constant and adaptive forgetting, online updates."""

from __future__ import annotations

import numpy as np
import pytest

from cures_verl.config import PosteriorConfig, ScheduleConfig
from cures_verl.core.difficulty import BetaAccuracyTracker
from cures_verl.core.grouping import PromptCounts
from cures_verl.core.schedule import Schedule
from cures_verl.core.timeline import Timeline


def _timeline(schedule=None, **posterior):
    config = schedule or ScheduleConfig(num_iterations=2, steps_per_iteration=2, cold_start_rollouts=4)
    return Timeline(Schedule(8, 2, config), PosteriorConfig(**posterior))


def _counts(ids, correct, total):
    return PromptCounts(np.array(ids), np.array(correct, dtype=float), np.array(total, dtype=float))


def test_subsets_reset_when_their_iteration_starts_and_only_then():
    timeline = _timeline()
    resets = []
    for _ in range(12):  # two iterations of 2 cold-start + 2 training steps, then the first again
        phase = timeline.phase()
        reset = timeline.resets(phase)
        resets.append(None if reset is None else reset.tolist())
        timeline.advance(phase)
    assert resets == [[0, 1, 2, 3], None, None, None, [4, 5, 6, 7], None, None, None, [0, 1, 2, 3], None, None, None]
    continuous = _timeline(ScheduleConfig(mode="continuous", cold_start_rollouts=0))
    assert continuous.resets(continuous.phase()) is None
    kept = _timeline(ScheduleConfig(num_iterations=2, reset_each_iteration=False))
    assert kept.resets(kept.phase()) is None


def test_cold_start_steps_always_learn_and_are_never_forgotten():
    timeline = _timeline(online_update=False, forgetting=0.3)
    tracker = BetaAccuracyTracker(8)
    counts = _counts([0, 1], [1, 2], [4, 4])
    timeline.advance(timeline.phase())  # a cold-start step
    assert timeline.learns and timeline.forgetting_rate(counts, tracker) is None
    timeline.advance(timeline.phase())
    timeline.advance(timeline.phase())  # a training step
    assert not timeline.learns and timeline.forgetting_rate(counts, tracker) == 0.3


def test_adaptive_forgetting_is_zero_for_calibrated_predictions_and_capped_under_drift():
    schedule = ScheduleConfig(mode="continuous", cold_start_rollouts=0)
    calm = _timeline(schedule, forgetting=0.2, forgetting_rule="adaptive")
    calm.advance(calm.phase())
    tracker = BetaAccuracyTracker(8)
    tracker.update(np.arange(8), np.full(8, 50.0), np.full(8, 100.0))  # p = 1/2, well known
    assert calm.forgetting_rate(_counts(np.arange(8), [4] * 8, [8] * 8), tracker) == 0.0
    drift = _timeline(schedule, forgetting=0.9, forgetting_rule="adaptive")
    drift.advance(drift.phase())
    # 6 of 8 right where 1/2 was predicted, step after step: the error ratio builds up, the rate up to the cap
    rates = [drift.forgetting_rate(_counts(np.arange(8), [6] * 8, [8] * 8), tracker) for _ in range(40)]
    assert 0 < rates[0] < 0.9 and np.all(np.diff(rates) >= 0) and rates[-1] == pytest.approx(0.9)
    assert drift.residual_ratio > 1


def test_state_round_trip():
    timeline = _timeline(forgetting=0.2, forgetting_rule="adaptive")
    for _ in range(3):
        timeline.advance(timeline.phase())
    timeline.residual_ratio = 2.5
    clone = _timeline(forgetting=0.2, forgetting_rule="adaptive")
    clone.load_state_dict(timeline.state_dict())
    assert (clone.step, clone.last_phase, clone.residual_ratio) == (3, "train", 2.5)
