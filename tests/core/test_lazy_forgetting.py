"""Lazy forgetting (BetaAccuracyTracker.decay(lazy=True)) reads the posterior of eager forgetting."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cures_verl.core.difficulty import BetaAccuracyTracker

N = 7


class EagerReference:
    """The plain implementation: every count multiplied at every decay (what the tracker did before)."""

    def __init__(self, prior_correct, prior_incorrect):
        self.prior_correct, self.prior_incorrect = (
            np.broadcast_to(prior_correct, N),
            np.broadcast_to(prior_incorrect, N),
        )
        self.correct, self.incorrect = np.zeros(N), np.zeros(N)

    def update(self, idx, correct, total):
        np.add.at(self.correct, idx, correct)
        np.add.at(self.incorrect, idx, total - correct)

    def decay(self, factor):
        self.correct *= factor
        self.incorrect *= factor

    def reset(self, idx):
        self.correct[idx] = 0.0
        self.incorrect[idx] = 0.0


@st.composite
def step_sequences(draw):
    """Random steps: observations, lazy and eager decays, resets, reads, checkpoint round trips."""
    steps = []
    for _ in range(draw(st.integers(1, 60))):
        kind = draw(st.sampled_from(["update", "update", "lazy", "lazy", "lazy", "eager", "reset", "read", "save"]))
        if kind == "update":
            k = draw(st.integers(1, 10))
            idx = draw(st.lists(st.integers(0, N - 1), min_size=k, max_size=k))
            total = draw(st.lists(st.integers(0, 8), min_size=k, max_size=k))
            correct = [draw(st.integers(0, t)) for t in total]
            steps.append((kind, (np.array(idx), np.array(correct, float), np.array(total, float))))
        elif kind in ("lazy", "eager"):
            steps.append((kind, draw(st.floats(0.05, 1.0))))
        elif kind in ("reset", "read"):
            steps.append((kind, np.array(draw(st.lists(st.integers(0, N - 1), min_size=1, max_size=N)))))
        else:
            steps.append((kind, None))
    return steps


@settings(max_examples=200, deadline=None)
@given(step_sequences(), st.booleans())
def test_lazy_forgetting_reads_the_same_posterior_as_eager_forgetting(steps, per_prompt_prior):
    prior_a = np.linspace(0.5, 3.0, N) if per_prompt_prior else 1.0
    tracker, eager = BetaAccuracyTracker(N, prior_correct=prior_a), EagerReference(prior_a, 1.0)
    for kind, arg in steps:
        if kind == "update":
            tracker.update(*arg)
            eager.update(*arg)
        elif kind in ("lazy", "eager"):
            tracker.decay(arg, lazy=kind == "lazy")
            eager.decay(arg)
        elif kind == "reset":
            tracker.reset(arg)
            eager.reset(arg)
        elif kind == "save":  # a checkpoint continues bit for bit
            clone = BetaAccuracyTracker(N)
            clone.load_state_dict(pickle.loads(pickle.dumps(tracker.state_dict())))
            np.testing.assert_array_equal(clone.alpha(), tracker.alpha())
            np.testing.assert_array_equal(clone.beta(), tracker.beta())
            assert clone.log_scale == tracker.log_scale
            tracker = clone
        else:
            idx = arg  # reading a prompt gives its eagerly decayed posterior (float rounding aside)
            np.testing.assert_allclose(tracker.correct_counts(idx), eager.correct[idx], rtol=1e-12, atol=1e-300)
            np.testing.assert_allclose(tracker.alpha(idx), eager.prior_correct[idx] + eager.correct[idx], rtol=1e-12)
            np.testing.assert_allclose(tracker.beta(idx), eager.prior_incorrect[idx] + eager.incorrect[idx], rtol=1e-12)
    np.testing.assert_allclose(tracker.num_correct, eager.correct, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(tracker.num_incorrect, eager.incorrect, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(
        tracker.posterior_mean(),
        (eager.prior_correct + eager.correct)
        / (eager.prior_correct + eager.correct + eager.prior_incorrect + eager.incorrect),
        rtol=1e-12,
    )


def test_lazy_decay_is_constant_time_and_eager_decay_is_unchanged():
    tracker = BetaAccuracyTracker(4)
    tracker.update(np.array([0, 1]), np.array([2.0, 0.0]), np.array([4.0, 3.0]))
    stored = tracker._correct.copy()
    tracker.decay(0.5, lazy=True)
    np.testing.assert_array_equal(tracker._correct, stored)  # nothing written: only the log-scale moved
    assert tracker.log_scale == pytest.approx(np.log(0.5))
    np.testing.assert_allclose(tracker.correct_counts(np.array([0])), [1.0])
    # an eager decay writes every count out (bit-identical to the old multiply-in-place afterwards)
    tracker.decay(0.5)
    assert tracker._stamp is None and tracker.log_scale == 0.0
    np.testing.assert_allclose(tracker.num_correct, [0.5, 0, 0, 0])
    with pytest.raises(ValueError):
        tracker.num_correct[0] = 1.0  # a read-only view, not the storage


def test_a_checkpoint_without_lazy_state_still_loads():
    old_style = {
        "num_prompts": 3,
        "prior_correct": np.array(1.0),
        "prior_incorrect": np.array(1.0),
        "num_correct": np.array([1.0, 0.0, 2.0]),
        "num_incorrect": np.array([0.0, 1.0, 0.0]),
    }
    tracker = BetaAccuracyTracker(3)
    tracker.load_state_dict(old_style)
    np.testing.assert_array_equal(tracker.alpha(), [2.0, 1.0, 3.0])
    tracker.decay(0.5, lazy=True)
    state = tracker.state_dict()
    np.testing.assert_allclose(state["num_correct"], [0.5, 0.0, 1.0])  # readers of data.pt see current counts
    assert "lazy" in state
