"""CurES in verl's real trainer: a tiny, fully offline "digit sums" RL task and what runs on it.

The task (tokenizer, model, data, warm start and reward) is used by CPU mode's end-to-end tests and by the laptop
demo (``python -m cures_verl.experiments.trainer.demo run``, ``docs/cpu_mode.md``); ``demo compare`` runs the
real-loop comparison with plain GRPO (:mod:`.compare`, scored exactly by :mod:`.exact`, docs/results/real_loop).
These modules import torch, transformers and tokenizers but never verl (the demo starts verl in a subprocess).
Its reward (``reward.py``) imports only the standard library, because verl loads it by file path in its reward
workers. :mod:`.hook_overhead` (``python -m cures_verl.experiments.trainer.hook_overhead``) times the adapter's
per-step hooks on verl's trainer and imports verl.

Example:
    >>> from cures_verl.experiments.trainer import build_demo_assets  # doctest: +SKIP
    >>> assets = build_demo_assets("/tmp/demo", num_prompts=64, seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

from .assets import DemoAssets, build_demo_assets
from .model import WarmStartReport, answer_probabilities, build_model, prompt_token_ids, warm_start
from .recipe import demo_overrides
from .reward import compute_score
from .task import DATA_SOURCE, DigitSumProblem, all_problems, sample_problem_splits, to_verl_rows, write_parquet
from .tokenizer import build_tokenizer, save_tokenizer

__all__ = [
    "DATA_SOURCE",
    "DemoAssets",
    "DigitSumProblem",
    "WarmStartReport",
    "all_problems",
    "answer_probabilities",
    "build_demo_assets",
    "build_model",
    "build_tokenizer",
    "compute_score",
    "demo_overrides",
    "prompt_token_ids",
    "sample_problem_splits",
    "save_tokenizer",
    "to_verl_rows",
    "warm_start",
    "write_parquet",
]
