"""The iteration schedule (paper Sec. 4.3) and the continuous one."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cures_verl.config import ScheduleConfig
from cures_verl.core.schedule import Schedule


@given(st.integers(1, 8), st.integers(1, 6), st.integers(1, 5), st.sampled_from([0, 2, 4]), st.data())
def test_subsets_partition_the_dataset_and_cold_starts_cover_each_subset(t, m, steps, n_cold, data):
    num_prompts = data.draw(st.integers(t * m, t * m + 40))
    split = data.draw(st.sampled_from(["contiguous", "shuffled"]))
    cfg = ScheduleConfig(num_iterations=t, steps_per_iteration=steps, cold_start_rollouts=n_cold, split=split)
    sched = Schedule(num_prompts, m, cfg, seed=3)
    subsets = [sched.subset(i) for i in range(t)]
    assert sorted(np.concatenate(subsets).tolist()) == list(range(num_prompts))
    sizes = [s.size for s in subsets]
    assert max(sizes) - min(sizes) <= 1
    step = 0
    for i in range(t):
        seen = set()
        phases = [sched.phase(step + k) for k in range(sched.num_cold_start_steps(i) + steps)]
        assert phases[0].starts_iteration and not any(p.starts_iteration for p in phases[1:])
        assert all(p.iteration == i and p.subset == i for p in phases)
        for p in phases:
            if p.kind == "cold_start":
                chunk = sched.cold_start_prompts(p)
                assert chunk.size == m and np.unique(chunk).size == m
                assert set(chunk.tolist()) <= set(subsets[i].tolist())
                seen |= set(chunk.tolist())
        assert [p.kind for p in phases].count("train") == steps
        if n_cold:
            assert seen == set(subsets[i].tolist())
        step += len(phases)
    assert sched.steps_per_epoch == step
    # the schedule wraps around into a second epoch with the iteration counter still increasing
    wrapped = sched.phase(step)
    assert wrapped.subset == 0 and wrapped.iteration == t and wrapped.starts_iteration


def test_paper_setting_numbers():
    # 15 subsets of ~10k Numina prompts, batch 1024, 10 steps, N' = 4: 10 cold-start + 10 train steps each
    sched = Schedule(150_000, 1024, ScheduleConfig(), seed=0)
    assert sched.num_cold_start_steps(0) == 10 and sched.steps_per_epoch == 15 * 20
    assert sched.phase(10).kind == "train" and sched.phase(20).iteration == 1


def test_continuous_schedule_has_one_pool_and_an_optional_cold_start():
    sched = Schedule(10, 4, ScheduleConfig(mode="continuous", cold_start_rollouts=2))
    kinds = [sched.phase(i).kind for i in range(5)]
    assert kinds == ["cold_start"] * 3 + ["train"] * 2
    assert sched.steps_per_epoch is None and sched.subset(0).tolist() == list(range(10))
    assert sched.phase(100).iteration == 0


def test_subset_smaller_than_a_batch_is_rejected_with_the_fix():
    with pytest.raises(ValueError, match="lower cures.schedule.num_iterations or data.train_batch_size"):
        Schedule(100, 16, ScheduleConfig(num_iterations=15))
    with pytest.raises(ValueError, match="cold-start step"):
        Schedule(10, 2, ScheduleConfig(num_iterations=1, cold_start_rollouts=0)).cold_start_prompts(
            Schedule(10, 2, ScheduleConfig(num_iterations=1, cold_start_rollouts=0)).phase(0)
        )


def test_field_split_follows_the_datas_own_subsets():
    ids = np.array([2, 1, 2, 1, 3, 3, 1, 2, 3])
    sched = Schedule(9, 2, ScheduleConfig(num_iterations=3, split="field", cold_start_rollouts=0), subset_ids=ids)
    assert [sched.subset(i).tolist() for i in range(3)] == [[1, 3, 6], [0, 2, 7], [4, 5, 8]]
    with pytest.raises(ValueError, match="set num_iterations=3"):
        Schedule(9, 2, ScheduleConfig(num_iterations=2, split="field"), subset_ids=ids)
    with pytest.raises(ValueError, match="needs each prompt's subset id"):
        Schedule(9, 2, ScheduleConfig(num_iterations=3, split="field"))
