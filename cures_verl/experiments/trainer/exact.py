"""Exact evaluation of a digit-sums policy: each problem's probability of a rewarded response, no sampling.

The demo's reward (``reward.py``) scores 1 when the first whitespace-separated word of the decoded response
(special tokens skipped, as verl decodes it) is the right sum. So whether a response is rewarded is decided by
its first token that decodes to a word: tokens that decode to nothing or to whitespace (``<pad>``, ``<unk>``,
``<|im_start|>``, ``\\n``) are *transparent*, the end-of-sequence token ends the response unrewarded, and any
other token decides. The probability of reward under the rollout policy is then

    P(correct | x) = sum over transparent prefixes t_1..t_k (k < L) of
                     prod_j q(t_j | x, t_<j) * q(answer | x, t_1..t_k)

with q the policy's next-token distribution after temperature, top-k and top-p (applied in that order, as
``transformers``' sampling and our ``hf`` rollout do) and L the response budget. We expand transparent
prefixes breadth-first, one batched forward pass per depth, and stop expanding a prefix once its probability
is below ``prune_below``: the returned ``unresolved`` mass bounds the error of each value (in practice below
1e-6 for a warm-started model, whose responses start with a number).

This module imports torch and transformers, not verl.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerBase

from .model import prompt_token_ids
from .task import DigitSumProblem

__all__ = ["ExactAccuracy", "exact_accuracy", "load_policy", "transparent_token_ids"]


@dataclass(frozen=True)
class ExactAccuracy:
    """Per-problem probability of a rewarded response, with the bound on its error."""

    probability: np.ndarray
    """P(correct | problem), float64, shape ``(num_problems,)``."""

    unresolved: np.ndarray
    """Probability mass of pruned or unfinished transparent prefixes, shape ``(num_problems,)``; the exact value
    lies in ``[probability, probability + unresolved]``."""


def transparent_token_ids(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Token ids that decode to nothing or whitespace (so they never decide the reward), EOS excluded.

    Example:
        >>> from cures_verl.experiments.trainer.tokenizer import build_tokenizer
        >>> tok = build_tokenizer(27)
        >>> sorted(tok.convert_ids_to_tokens(transparent_token_ids(tok)))
        ['\\n', '<pad>', '<unk>', '<|im_start|>']
    """
    eos = tokenizer.eos_token_id
    ids = []
    for token_id in range(len(tokenizer)):
        if token_id != eos and not tokenizer.decode([token_id], skip_special_tokens=True).split():
            ids.append(token_id)
    return ids


def _filtered_distribution(logits: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    # [rows, vocab] logits -> sampling distribution after temperature, top-k, top-p (transformers' warper order)
    scores = logits.double() / temperature
    if 0 < top_k < scores.shape[-1]:
        kth = torch.topk(scores, top_k, dim=-1).values[:, -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if top_p < 1.0:
        sorted_scores, order = torch.sort(scores, descending=True, dim=-1)
        cumulative = torch.softmax(sorted_scores, dim=-1).cumsum(dim=-1)
        # drop a token when the mass before it already reaches top_p (the first token is always kept)
        drop_sorted = (cumulative - torch.softmax(sorted_scores, dim=-1)) >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        scores = scores.masked_fill(drop, float("-inf"))
    return torch.softmax(scores, dim=-1)


@torch.no_grad()
def _next_token_distributions(
    model: PreTrainedModel, sequences: list[list[int]], pad_id: int, temperature: float, top_k: int, top_p: float
) -> torch.Tensor:
    # right-padded batch: causal attention never looks right, so the last real position's logits are exact
    width = max(len(seq) for seq in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    for row, seq in enumerate(sequences):
        input_ids[row, : len(seq)] = torch.tensor(seq)
    last = torch.tensor([len(seq) - 1 for seq in sequences])
    logits = model(input_ids=input_ids).logits[torch.arange(len(sequences)), last]
    return _filtered_distribution(logits, temperature, top_k, top_p)


def exact_accuracy(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    problems: Sequence[DigitSumProblem],
    *,
    temperature: float = 1.0,
    top_k: int = -1,
    top_p: float = 1.0,
    max_response_length: int = 8,
    prune_below: float = 1e-7,
    batch_size: int = 2048,
) -> ExactAccuracy:
    """Each problem's exact probability of a rewarded response under the sampling policy.

    Args:
        model: The policy (a causal LM), evaluated in float64 softmax over its logits.
        tokenizer: The demo tokenizer (its answers are single tokens).
        problems: Problems to evaluate.
        temperature: Sampling temperature, > 0 (as ``actor_rollout_ref.rollout.temperature``).
        top_k: Top-k filter; <= 0 disables it (verl's -1).
        top_p: Top-p filter in (0, 1]; 1 disables it.
        max_response_length: Response token budget L (``data.max_response_length``).
        prune_below: Transparent prefixes less likely than this are not expanded; their mass is reported.
        batch_size: Sequences per forward pass.

    Returns:
        An :class:`ExactAccuracy`.

    Raises:
        ValueError: On a non-positive temperature, a top_p outside (0, 1] or a response budget < 1.
    """
    if not temperature > 0:
        raise ValueError(f"temperature={temperature} is invalid: exact evaluation needs sampling, temperature > 0")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p={top_p} is invalid: use a value in (0, 1]")
    if max_response_length < 1:
        raise ValueError(f"max_response_length={max_response_length} is invalid: need >= 1")
    model.eval()
    transparent = torch.tensor(transparent_token_ids(tokenizer), dtype=torch.long)
    answers = [int(tokenizer.convert_tokens_to_ids(problem.answer)) for problem in problems]
    pad = int(tokenizer.pad_token_id)
    correct = np.zeros(len(problems))
    unresolved = np.zeros(len(problems))
    # frontier: (problem row, token sequence, probability of its transparent prefix)
    frontier = [(row, prompt_token_ids(tokenizer, problem), 1.0) for row, problem in enumerate(problems)]
    for depth in range(max_response_length):
        expanded = []
        for start in range(0, len(frontier), batch_size):
            chunk = frontier[start : start + batch_size]
            dist = _next_token_distributions(model, [seq for _, seq, _ in chunk], pad, temperature, top_k, top_p)
            for (row, seq, mass), q in zip(chunk, dist, strict=True):
                correct[row] += mass * float(q[answers[row]])
                for token, q_token in zip(transparent.tolist(), q[transparent].tolist(), strict=True):
                    child = mass * q_token
                    if child >= prune_below and depth + 1 < max_response_length:
                        expanded.append((row, [*seq, token], child))
                    elif depth + 1 < max_response_length:
                        unresolved[row] += child
                    # at the last position a transparent token ends the response unrewarded: exact, not unresolved
        frontier = expanded
    return ExactAccuracy(probability=np.clip(correct, 0.0, 1.0), unresolved=unresolved)


# transformers' from_pretrained is not thread-safe: it patches process-wide state while it builds a model (the
# default dtype, empty-weight initialisation), and two loads at once in one process (the comparison scores two runs
# in threads) gave models with uninitialised weights (logits ~1e38, NaN accuracies). Loads take turns.
_LOAD_LOCK = threading.Lock()


def load_policy(path: str | Path) -> PreTrainedModel:
    """Load a policy saved by ``save_pretrained`` (the demo's initial model, or verl's ``huggingface/``
    checkpoint) in float32; verl writes float32 tensors under a bfloat16 config ``dtype``. Thread-safe."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    with _LOAD_LOCK:
        return AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).eval()
