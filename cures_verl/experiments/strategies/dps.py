"""DPS-style: a Markov model of each prompt's solving state predicts, before any rollout, which prompts are partial.

DPS, Mao et al. 2026, "Dynamics-Predictive Sampling for Active RL Finetuning of Large Reasoning Models",
arXiv 2603.10887 (ICLR 2026; code at github.com/maoyixiu/DPS, not read here). The paper models each prompt's solving
progress as a dynamical system whose state (how far the prompt is solved) moves by a hidden Markov model, infers
each prompt's state distribution online from its past rollout rewards, and selects the prompts most likely to be
*partially solved* (a GRPO group with both outcomes) without any screening rollouts.

Our reading, with the assumptions we had to make (the paper's exact state space, emission model and transition
estimation were not available to us):

* **States.** Three: 0 = unsolved (no rollout of the group correct), 1 = partially solved, 2 = solved (all
  correct). A rolled-out group reveals its state (identity emission); between two visits the state is hidden.
* **Transitions.** One 3 x 3 transition matrix shared by all prompts, applied once per *visit* (our assumption; the
  paper's chain may step with training time), estimated online as the row-normalised counts of consecutive observed
  states of the same prompt plus a Dirichlet(1) prior per row.
* **Prediction.** A visited prompt's belief is the row of its last observed state; a never-visited prompt's is the
  distribution of first-visit states seen so far (Dirichlet(1) prior). Its predicted accuracy (for the benchmark's
  prediction metrics only) is the belief times each state's running mean realised accuracy.
* **Selection.** The m prompts of the whole dataset with the largest predicted probability of the partial state,
  ties in random order; n rollouts each, one GRPO update.
"""

from __future__ import annotations

import numpy as np

from cures_verl.experiments.curriculum.simulator import FloatArray, IntArray
from cures_verl.experiments.strategies.base import Strategy, StrategyContext
from cures_verl.experiments.strategies.environment import Environment

__all__ = ["DPS", "SolvingStateModel", "solving_states"]

#: Number of solving states: unsolved, partially solved, solved.
NUM_STATES = 3
PARTIAL = 1


def solving_states(correct: FloatArray, rollouts: IntArray) -> IntArray:
    """The solving state of each group: 0 if no rollout is correct, 2 if all are, 1 otherwise.

    Example:
        >>> solving_states(np.array([0.0, 3.0, 8.0]), np.array([8, 8, 8])).tolist()
        [0, 1, 2]
    """
    c = np.asarray(correct, dtype=np.float64)
    k = np.asarray(rollouts, dtype=np.float64)
    return np.where(c <= 0, 0, np.where(c >= k, 2, PARTIAL)).astype(np.int64)


class SolvingStateModel:
    """The per-visit Markov chain over solving states shared by all prompts, and each prompt's last state.

    Args:
        num_prompts: Dataset size.

    Example:
        >>> model = SolvingStateModel(3)
        >>> model.observe(np.array([0, 1]), np.array([1, 1]), np.array([0.5, 0.5]))  # first visits: partial
        >>> model.observe(np.array([0]), np.array([2]), np.array([1.0]))  # prompt 0: partial -> solved
        >>> model.belief(np.array([1, 2])).round(3).tolist()  # prompt 1 was last partial: row 1; 2 unseen
        [[0.25, 0.25, 0.5], [0.2, 0.6, 0.2]]
    """

    def __init__(self, num_prompts: int) -> None:
        self.last_state = np.full(num_prompts, -1, dtype=np.int64)
        self.transitions = np.ones((NUM_STATES, NUM_STATES))
        self.first_visits = np.ones(NUM_STATES)
        self.state_accuracy_sum = np.array([0.0, 0.5, 1.0])
        self.state_count = np.ones(NUM_STATES)

    def belief(self, prompt_ids: IntArray) -> FloatArray:
        """Predicted distribution of each prompt's next state, shape ``(k, 3)``."""
        last = self.last_state[np.asarray(prompt_ids, dtype=np.int64)]
        rows = self.transitions / self.transitions.sum(axis=1, keepdims=True)
        unseen = self.first_visits / self.first_visits.sum()
        result: FloatArray = np.where((last >= 0)[:, None], rows[np.maximum(last, 0)], unseen[None, :])
        return result

    def predicted_accuracy(self, prompt_ids: IntArray) -> FloatArray:
        """Belief times each state's running mean realised accuracy, shape ``(k,)``, in [0, 1]."""
        result: FloatArray = np.clip(self.belief(prompt_ids) @ (self.state_accuracy_sum / self.state_count), 0, 1)
        return result

    def observe(self, prompt_ids: IntArray, states: IntArray, accuracy: FloatArray) -> None:
        """Record each (distinct) prompt's observed state and realised group accuracy."""
        ids = np.asarray(prompt_ids, dtype=np.int64)
        states = np.asarray(states, dtype=np.int64)
        last = self.last_state[ids]
        seen = last >= 0
        np.add.at(self.transitions, (last[seen], states[seen]), 1.0)
        self.first_visits += np.bincount(states[~seen], minlength=NUM_STATES)
        self.state_accuracy_sum += np.bincount(states, weights=accuracy, minlength=NUM_STATES)
        self.state_count += np.bincount(states, minlength=NUM_STATES)
        self.last_state[ids] = states


class DPS(Strategy):
    """DPS-style predictive selection (Mao et al. 2026, arXiv 2603.10887): see the module docstring."""

    name = "dps"

    def __init__(self, ctx: StrategyContext) -> None:
        self.m, self.n = ctx.batch_size, ctx.rollouts_per_prompt
        self.model = SolvingStateModel(ctx.num_prompts)
        self.rng = ctx.rng(1)
        self.all_prompts = np.arange(ctx.num_prompts, dtype=np.int64)

    def step(self, env: Environment) -> None:
        partial = self.model.belief(self.all_prompts)[:, PARTIAL]
        chosen = np.lexsort((self.rng.random(partial.size), -partial))[: self.m].astype(np.int64)
        out = env.generate(chosen, np.full(self.m, self.n))
        env.record_prediction(chosen, self.model.predicted_accuracy(chosen), out)
        env.train(out)
        correct = out.rewards.reshape(self.m, self.n).sum(axis=1)  # rollouts come prompt by prompt
        self.model.observe(chosen, solving_states(correct, np.full(self.m, self.n)), correct / self.n)
