"""Experiment tooling: everything that measures CurES, laid out like what it measures.

* :mod:`~cures_verl.experiments.curriculum`: the sampler's overhead and a simulated GRPO learner on which the
  strategies run at equal rollouts (``python -m cures_verl.experiments.curriculum``, docs/benchmark.md), the
  pre-registered suites beyond the paper and the ``recommended`` preset's ablations (docs/beyond_the_paper.md);
* :mod:`~cures_verl.experiments.strategies`: CurES and its peers (uniform GRPO, DAPO, Speed-RL, GVM, Knapsack-RL,
  MoPPS, an oracle), one module per family, each citing its paper;
* :mod:`~cures_verl.experiments.trainer`: verl's real trainer: the CPU demo and its tiny task
  (``python -m cures_verl.experiments.trainer.demo run``), the real-loop comparison with plain GRPO
  (``... demo compare``, docs/results/real_loop) and the overhead of the adapter's hooks (``.hook_overhead``);
* :mod:`~cures_verl.experiments.reward`: the math reward against labels, its latency and its throughput;
* :mod:`~cures_verl.experiments.plots` (the paper's figures from run records) and
  :mod:`~cures_verl.experiments.watchdog` (a hard time limit for a run's process group).

Nothing here is imported by the training path (``cures_verl.core``, ``cures_verl.verl_adapter``, ``cures_verl.cpu``).
"""
