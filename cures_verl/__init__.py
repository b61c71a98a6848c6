"""cures-verl: CurES curriculum sampling and rollout allocation for verl.

CurES ("CurES: From Gradient Analysis to Efficient Curriculum Learning for Reasoning LLMs",
arXiv 2510.01037) decides which prompts enter each GRPO batch and how many rollouts each gets.
The algorithm lives in :mod:`cures_verl.core` (pure numpy); :mod:`cures_verl.verl_adapter` and CPU mode
(:mod:`cures_verl.cpu`) are the only places that import verl, besides :mod:`cures_verl.experiments`, which measures
CurES (and, in two benchmarks, verl itself).
"""

from __future__ import annotations

__version__ = "0.1.0"
