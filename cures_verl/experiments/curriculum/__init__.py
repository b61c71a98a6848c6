"""The curriculum benchmark: ``python -m cures_verl.experiments.curriculum`` (or ``cures-bench``).

Two parts, each printing ratios measured side by side in one run:

1. :mod:`~cures_verl.experiments.curriculum.overhead`: the cost of one :class:`~cures_verl.core.CurriculumSampler`
   step on datasets of 10k to 1M prompts against a dense numpy reference step, plus the O(N) modes.
2. :mod:`~cures_verl.experiments.curriculum.experiment`: sample efficiency of prompt-selection and rollout-allocation
   strategies (:mod:`cures_verl.experiments.strategies`) on a simulated GRPO learner
   (:mod:`~cures_verl.experiments.curriculum.simulator`), at an equal rollout budget per step, over several seeds.

Beyond the paper: :mod:`~cures_verl.experiments.curriculum.beyond` (the pre-registered suites) and
:mod:`~cures_verl.experiments.curriculum.recommended` (the ``recommended`` preset's ablations);
:mod:`~cures_verl.experiments.curriculum.report` prints and plots, :mod:`~cures_verl.experiments.curriculum.baseline`
times the sampler of another git revision side by side.

docs/benchmark.md describes the model, every option and its default, and the measured results. These modules import
numpy and the core only; matplotlib is imported lazily for the plot. This package module imports nothing (the
strategies build on the simulator, and the runner on the strategies), so import the modules themselves.
"""
