"""Tiny random ``Qwen2ForCausalLM`` for the demo task, and its supervised warm start.

The default model (hidden 64, 2 layers, 4 query / 2 key-value heads, tied embeddings) has about 77k
parameters with the 38-token demo vocabulary; it builds in well under a second and the default 120-step
warm start takes about 3 s on 2 CPU threads.

Warm start (measured in the CPU demo probe, see ``docs/cpu_mode.md``): cross-entropy on the answer token
only, then from ``eos_start_step`` on an EOS cross-entropy term is added. Training the EOS target from step 0
stalls learning (p(correct) stays near 0.05-0.09 for hundreds of steps). With the defaults (120 steps, lr
3e-3, EOS from step 90) we measured, over seeds 0/1/2, mean p(correct) 0.57-0.88 on tier 1, 0.48-0.61 on
tier 2 and 0.06-0.12 on tier 3, and p(EOS after the answer) > 0.99, so GRPO responses are 2 tokens. Only
tiers 1-2 are trained, so tier 3 stays near p=0 (the "too hard" prompts a curriculum should skip); 200 steps
push tiers 1-2 to 0.8-0.97, leaving GRPO little to learn there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase, Qwen2Config, Qwen2ForCausalLM

from .task import DigitSumProblem, all_problems

__all__ = [
    "WarmStartReport",
    "answer_probabilities",
    "build_model",
    "eos_probabilities",
    "prompt_token_ids",
    "warm_start",
]


def build_model(
    tokenizer: PreTrainedTokenizerBase,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int | None = None,
    max_position_embeddings: int = 64,
    seed: int = 0,
) -> Qwen2ForCausalLM:
    """Build a randomly initialised float32 ``Qwen2ForCausalLM`` sized to the tokenizer's vocabulary.

    The global torch RNG is left untouched (the init runs under ``torch.random.fork_rng``).

    Args:
        tokenizer: The demo tokenizer; its vocabulary size, EOS and pad ids go into the model config.
        hidden_size: Model width; must be divisible by ``num_heads``.
        num_layers: Number of decoder layers.
        num_heads: Attention heads; must be divisible by ``num_kv_heads``.
        num_kv_heads: Key-value heads (grouped-query attention).
        intermediate_size: MLP width; defaults to ``2 * hidden_size``.
        max_position_embeddings: Longest sequence (prompt + response) the model accepts.
        seed: Seed of the weight init; same seed, same weights.

    Returns:
        The model in eval mode.

    Raises:
        ValueError: If the head counts do not divide the width or each other.
    """
    if hidden_size % num_heads or num_heads % num_kv_heads:
        raise ValueError(
            f"hidden_size={hidden_size}, num_heads={num_heads}, num_kv_heads={num_kv_heads} are inconsistent: "
            "hidden_size must be divisible by num_heads and num_heads by num_kv_heads"
        )
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or 2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        attn_implementation="sdpa",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = None
    return model.to(torch.float32).eval()


def prompt_token_ids(tokenizer: PreTrainedTokenizerBase, problem: DigitSumProblem) -> list[int]:
    """Token ids of the chat-templated prompt, as verl's agent loop builds them.

    Example:
        >>> from cures_verl.experiments.trainer.tokenizer import build_tokenizer
        >>> len(prompt_token_ids(build_tokenizer(27), DigitSumProblem((3, 4))))
        12
    """
    encoded = tokenizer.apply_chat_template(
        [{"role": "user", "content": problem.question}], add_generation_prompt=True, tokenize=True
    )
    ids = encoded["input_ids"] if isinstance(encoded, Mapping) else encoded
    return [int(token) for token in ids]


def _batch(
    tokenizer: PreTrainedTokenizerBase, problems: Sequence[DigitSumProblem]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    # right-pad prompt + [answer, eos]: causal attention never looks at the padding on the right,
    # so the logits at prompt_len-1 (answer) and prompt_len (eos) are exact without a mask.
    prompts = [prompt_token_ids(tokenizer, problem) for problem in problems]
    answers = [tokenizer.convert_tokens_to_ids(problem.answer) for problem in problems]
    width = max(len(prompt) for prompt in prompts) + 2
    input_ids = torch.full((len(problems), width), tokenizer.pad_token_id, dtype=torch.long)
    for row, (prompt, answer) in enumerate(zip(prompts, answers, strict=True)):
        input_ids[row, : len(prompt) + 2] = torch.tensor([*prompt, answer, tokenizer.eos_token_id])
    prompt_lengths = torch.tensor([len(prompt) for prompt in prompts])
    return input_ids, prompt_lengths, torch.tensor(answers)


@torch.no_grad()
def answer_probabilities(
    model: Qwen2ForCausalLM, tokenizer: PreTrainedTokenizerBase, problems: Sequence[DigitSumProblem]
) -> np.ndarray:
    """Probability that the model's first response token is the right answer, per problem.

    Args:
        model: The demo model.
        tokenizer: The demo tokenizer.
        problems: Problems to score.

    Returns:
        float64 array, shape ``(len(problems),)``, values in [0, 1]: the expected accuracy of temperature-1
        sampling under the task's first-token reward.
    """
    model.eval()
    input_ids, prompt_lengths, answers = _batch(tokenizer, problems)
    logits = model(input_ids=input_ids).logits
    rows = torch.arange(len(problems))
    probs = torch.softmax(logits[rows, prompt_lengths - 1].float(), dim=-1)
    return probs[rows, answers].double().numpy()


@torch.no_grad()
def eos_probabilities(
    model: Qwen2ForCausalLM, tokenizer: PreTrainedTokenizerBase, problems: Sequence[DigitSumProblem]
) -> np.ndarray:
    """Probability of EOS right after the correct answer, per problem (does the model stop after answering?).

    Returns:
        float64 array, shape ``(len(problems),)``, values in [0, 1].
    """
    model.eval()
    input_ids, prompt_lengths, _ = _batch(tokenizer, problems)
    logits = model(input_ids=input_ids).logits
    rows = torch.arange(len(problems))
    probs = torch.softmax(logits[rows, prompt_lengths].float(), dim=-1)
    return probs[:, tokenizer.eos_token_id].double().numpy()


@dataclass(frozen=True)
class WarmStartReport:
    """What the warm start did: per-step losses and the final p(correct) per tier."""

    losses: list[float]
    """Total loss of every step."""

    accuracy_by_tier: dict[int, float] = field(default_factory=dict)
    """Mean p(correct first token) over all problems of each tier 1..3, after the warm start."""

    eos_probability: float = 0.0
    """Mean p(EOS right after the correct answer) over all tier 1-2 problems, after the warm start."""


def warm_start(
    model: Qwen2ForCausalLM,
    tokenizer: PreTrainedTokenizerBase,
    *,
    steps: int = 120,
    learning_rate: float = 3e-3,
    batch_size: int = 64,
    eos_start_step: int | None = None,
    tier_weights: Mapping[int, float] | None = None,
    seed: int = 0,
) -> WarmStartReport:
    """Supervised warm start on digit sums: answer token first, EOS loss added later.

    Args:
        model: Model to train in place (float32).
        tokenizer: The demo tokenizer.
        steps: Optimizer steps; 0 leaves the model untouched.
        learning_rate: AdamW learning rate.
        batch_size: Problems per step, drawn with replacement.
        eos_start_step: First step that also trains EOS after the answer; default ``3 * steps // 4``.
        tier_weights: Sampling weight of each tier; default ``{1: 1, 2: 4}`` (tier 3 never seen).
        seed: Seed of problem sampling and of the torch RNG used inside (global state is restored).

    Returns:
        A :class:`WarmStartReport`.

    Raises:
        ValueError: If ``steps < 0``, ``batch_size < 1`` or a tier weight is invalid.
    """
    if steps < 0 or batch_size < 1:
        raise ValueError(f"steps={steps}, batch_size={batch_size} are invalid: need steps >= 0, batch_size >= 1")
    weights = dict(tier_weights or {1: 1.0, 2: 4.0})
    tiers = sorted(weights)
    probabilities = np.array([weights[tier] for tier in tiers], dtype=np.float64)
    if np.any(probabilities < 0) or probabilities.sum() <= 0:
        raise ValueError(f"tier_weights={weights} is invalid: weights must be >= 0 with a positive sum")
    probabilities /= probabilities.sum()
    pools = {tier: all_problems(tier) for tier in tiers}
    eos_start = 3 * steps // 4 if eos_start_step is None else eos_start_step
    rng = np.random.default_rng(seed)
    losses: list[float] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
        for step in range(steps):
            batch_tiers = rng.choice(tiers, size=batch_size, p=probabilities)
            problems = [pools[tier][rng.integers(len(pools[tier]))] for tier in batch_tiers]
            input_ids, prompt_lengths, answers = _batch(tokenizer, problems)
            logits = model(input_ids=input_ids).logits
            rows = torch.arange(batch_size)
            loss = torch.nn.functional.cross_entropy(logits[rows, prompt_lengths - 1], answers)
            if step >= eos_start:
                eos_targets = torch.full_like(answers, tokenizer.eos_token_id)
                loss = loss + torch.nn.functional.cross_entropy(logits[rows, prompt_lengths], eos_targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
    model.eval()
    accuracy = {tier: float(answer_probabilities(model, tokenizer, all_problems(tier)).mean()) for tier in (1, 2, 3)}
    stop = float(eos_probabilities(model, tokenizer, all_problems(1) + all_problems(2)).mean())
    return WarmStartReport(losses=losses, accuracy_by_tier=accuracy, eos_probability=stop)
