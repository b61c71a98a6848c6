"""The run length the trainer and the pre-flight share (cures_verl.verl_adapter.trainer.run_length)."""

from __future__ import annotations

import doctest

from hypothesis import given
from hypothesis import strategies as st

from cures_verl.verl_adapter.trainer import run_length


def test_doctests() -> None:
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner()
    for test in finder.find(run_length, "run_length", globs={"run_length": run_length}):
        runner.run(test)
    assert runner.failures == 0 and runner.tries >= 2


@given(
    dataset_steps=st.integers(1, 500),
    configured=st.none() | st.integers(1, 5000),
    epochs=st.integers(1, 20),
)
def test_a_continuous_schedule_runs_every_configured_step(
    dataset_steps: int, configured: int | None, epochs: int
) -> None:
    steps_per_epoch, total = run_length(
        schedule_steps_per_epoch=None,
        dataset_steps_per_epoch=dataset_steps,
        configured_total=configured,
        total_epochs=epochs,
    )
    assert total == (dataset_steps * epochs if configured is None else configured)
    assert steps_per_epoch * epochs >= total  # verl's epoch bound never ends the run early
    assert steps_per_epoch >= dataset_steps  # stretched, never shortened
    if total > dataset_steps * epochs:
        assert (steps_per_epoch - 1) * epochs < total  # by no more than needed


@given(
    fixed=st.integers(1, 500),
    dataset_steps=st.integers(1, 500),
    configured=st.none() | st.integers(1, 5000),
    epochs=st.integers(1, 20),
)
def test_a_fixed_schedule_keeps_its_steps_per_epoch(
    fixed: int, dataset_steps: int, configured: int | None, epochs: int
) -> None:
    steps_per_epoch, total = run_length(
        schedule_steps_per_epoch=fixed,
        dataset_steps_per_epoch=dataset_steps,
        configured_total=configured,
        total_epochs=epochs,
    )
    assert steps_per_epoch == fixed
    assert total == (fixed * epochs if configured is None else configured)
