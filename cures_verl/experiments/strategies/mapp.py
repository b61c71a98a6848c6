"""MaPP-style: one Beta posterior per prompt both selects the prompts and denoises the GRPO advantage.

Source: MaPP as described in issue 19 ("the Beta posterior also denoises the GRPO advantage, not only selection;
beats MoPPS and DAPO dynamic sampling with a quarter of the rollouts"). We found no paper id or code for it, so this
is our reading of that description, built from parts this project already has:

* **Selection** as MoPPS (Qu et al. 2025, arXiv 2507.04632, :class:`~cures_verl.experiments.strategies.mopps.MoPPS`):
  ratio x m uniformly drawn candidates, one Thompson draw from each one's Beta posterior, keep the m draws nearest
  0.5, n rollouts each; after training, alpha <- lambda alpha + (1 - lambda) alpha_0 + successes (beta alike).
* **Advantage**: every rollout's advantage is the posterior-baseline one of
  :func:`cures_verl.core.advantage.posterior_advantages` (leave-one-out posterior mean as the baseline, divided by
  its Bernoulli std; docs/posterior_advantage.md) with the posterior *before* this step's rewards, for every group
  whatever its size (MaPP's description does not restrict it to small groups; the CurES option
  ``allocation.advantage_baseline=posterior`` does). All-equal groups therefore train too.

The candidate ratio and decay are MoPPS's options (``--mopps-candidate-ratio``, ``--mopps-decay``).
"""

from __future__ import annotations

import numpy as np

from cures_verl.core.advantage import posterior_advantages
from cures_verl.experiments.curriculum.simulator import FloatArray, IntArray
from cures_verl.experiments.strategies.environment import Rollouts
from cures_verl.experiments.strategies.mopps import MoPPS

__all__ = ["MaPP"]


class MaPP(MoPPS):
    """MaPP-style (issue 19): MoPPS's selection plus posterior-baseline advantages for every group.

    The same generators and posterior updates as :class:`~cures_verl.experiments.strategies.mopps.MoPPS`, so on a
    seed the two select the same prompts in the first step and differ only through what the updates learn.
    """

    name = "mapp"

    def _advantages(self, chosen: IntArray, out: Rollouts) -> FloatArray:
        """Posterior-baseline advantages with the posterior before this step's rewards (module docstring)."""
        # each rollout's prompt -> its row among the chosen prompts (distinct), the row of its posterior
        order = np.argsort(chosen)
        rows = order[np.searchsorted(chosen[order], out.prompt_ids)]
        return posterior_advantages(out.rewards, rows, self.alpha[chosen], self.beta[chosen])
