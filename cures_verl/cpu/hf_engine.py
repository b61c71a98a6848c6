"""Token-in/token-out generation with ``transformers``, the engine behind CPU mode's ``hf`` rollout.

This module knows nothing of Ray or verl: it turns verl's sampling parameters into a ``GenerationConfig``,
runs ``AutoModelForCausalLM.generate`` on a left-padded batch, and returns, per prompt, the response tokens
(cut after the first EOS, which is kept, as vLLM does), their log-probabilities and why generation stopped.
It also loads weights by name, which is how the trainer's FSDP weights reach the rollout after each step.

Semantics follow verl's vLLM server (``verl/workers/rollout/vllm_rollout/vllm_async_server.py:586-757``):

* ``max_tokens`` (or ``max_new_tokens``) caps the response; without it the cap is
  ``min(response_length, prompt_length + response_length - len(prompt))``; the cap is then clamped to
  ``[1, max_model_len - len(prompt)]``.
* ``temperature == 0`` is greedy; ``top_k <= 0`` and ``top_p >= 1`` disable those filters.
* Log-probabilities are "processed" (verl's default ``rollout.logprobs_mode``): ``log_softmax`` of the
  scores after temperature, top-k and top-p, as ``generate(output_scores=True)`` returns them.

Determinism: each :meth:`HFGenerationEngine.generate` call draws its torch seed from a numpy generator seeded
with ``seed``, and runs under ``torch.random.fork_rng``; the same sequence of calls with the same batches
gives the same tokens. Inside verl the batches depend on when concurrent requests arrive, so end-to-end runs
are not bitwise reproducible (nor are vLLM's without ``full_determinism``). With explicit per-prompt ``seeds``
every prompt is generated on its own under its seed, whatever else is in flight: the server does this for
``rollout.full_determinism=true``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig, PreTrainedModel

__all__ = [
    "GenerationResult",
    "HFGenerationEngine",
    "SamplingSettings",
    "WeightUpdateError",
]

logger = logging.getLogger(__name__)

FinishReason = Literal["stop", "length"]

# verl sampling keys this engine understands; anything else is refused (see SamplingSettings.from_verl).
_KNOWN_SAMPLING_KEYS = frozenset(
    {"temperature", "top_p", "top_k", "repetition_penalty", "logprobs", "max_tokens", "max_new_tokens", "ignore_eos"}
)
_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


class WeightUpdateError(RuntimeError):
    """A weight update named an unknown tensor, had a wrong shape, or left parameters stale."""


@dataclass(frozen=True)
class SamplingSettings:
    """Sampling parameters of one request, normalised; requests with equal settings share a batch."""

    temperature: float
    top_p: float
    top_k: int
    repetition_penalty: float
    max_new_tokens: int
    logprobs: bool
    ignore_eos: bool

    @classmethod
    def from_verl(cls, params: Mapping[str, Any], *, default_max_tokens: int) -> SamplingSettings:
        """Build settings from the ``sampling_params`` dict verl's agent loop sends.

        Args:
            params: verl's sampling parameters (``temperature``, ``top_p``, ``top_k``, ``repetition_penalty``,
                ``logprobs``, optionally ``max_tokens``/``max_new_tokens`` and ``ignore_eos``).
            default_max_tokens: Cap used when ``params`` has no ``max_tokens``.

        Returns:
            The normalised settings (``top_k`` 0 means disabled).

        Raises:
            ValueError: On an unknown key, a negative temperature, ``top_p`` outside (0, 1] or a
                repetition penalty <= 0.

        Example:
            >>> SamplingSettings.from_verl({"temperature": 1.0, "top_p": 1, "top_k": -1, "logprobs": True},
            ...                            default_max_tokens=8)
            SamplingSettings(temperature=1.0, top_p=1.0, top_k=0, repetition_penalty=1.0, max_new_tokens=8, \
logprobs=True, ignore_eos=False)
        """
        unknown = set(params) - _KNOWN_SAMPLING_KEYS
        if unknown:
            raise ValueError(
                f"the hf rollout does not support sampling parameters {sorted(unknown)}; supported: "
                f"{sorted(_KNOWN_SAMPLING_KEYS)}"
            )
        temperature = float(params.get("temperature", 1.0))
        top_p = float(params.get("top_p", 1.0))
        top_k = int(params.get("top_k", -1))
        repetition_penalty = float(params.get("repetition_penalty", 1.0))
        if temperature < 0:
            raise ValueError(f"sampling temperature={temperature} must be >= 0 (0 is greedy)")
        if not 0 < top_p <= 1:
            raise ValueError(f"sampling top_p={top_p} must be in (0, 1]")
        if repetition_penalty <= 0:
            raise ValueError(f"sampling repetition_penalty={repetition_penalty} must be > 0")
        max_tokens = params.get("max_tokens", params.get("max_new_tokens", default_max_tokens))
        return cls(
            temperature=temperature,
            top_p=top_p,
            top_k=max(top_k, 0),
            repetition_penalty=repetition_penalty,
            max_new_tokens=int(max_tokens),
            logprobs=bool(params.get("logprobs", False)),
            ignore_eos=bool(params.get("ignore_eos", False)),
        )


@dataclass(frozen=True)
class GenerationResult:
    """Response of one prompt."""

    token_ids: list[int]
    """Generated tokens, including the EOS that ended them (if any)."""

    log_probs: list[float] | None
    """Processed log-probability of each generated token; ``None`` unless requested."""

    finish_reason: FinishReason
    """``"stop"`` (EOS generated) or ``"length"`` (token budget reached)."""


class HFGenerationEngine:
    """A causal LM that generates batches of token sequences and accepts weight updates by name.

    Args:
        model: The model (any ``AutoModelForCausalLM``), on CPU.
        eos_token_ids: Token ids that end a response.
        pad_token_id: Id used to left-pad prompts (never attended to).
        max_model_len: Longest prompt + response the engine accepts.
        seed: Seed of the engine's sampling RNG (see the module docstring).

    Raises:
        ValueError: If ``eos_token_ids`` is empty or ``max_model_len < 2``.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        *,
        eos_token_ids: Sequence[int],
        pad_token_id: int,
        max_model_len: int,
        seed: int,
    ) -> None:
        if not eos_token_ids:
            raise ValueError("eos_token_ids is empty: the hf rollout needs at least one end-of-sequence token")
        if max_model_len < 2:
            raise ValueError(f"max_model_len={max_model_len} must be >= 2 (one prompt token and one response token)")
        self.model = model.eval()
        # generate() fills every unset GenerationConfig field from the model's own generation config, so an
        # explicit eos_token_id=None (ignore_eos) would silently become the model's EOS. A blank default makes
        # the config built in _generation_config the only source of sampling settings.
        self.model.generation_config = GenerationConfig()
        self.eos_token_ids = sorted({int(token) for token in eos_token_ids})
        self.pad_token_id = int(pad_token_id)
        self.max_model_len = int(max_model_len)
        self._rng = np.random.default_rng(seed)
        self._pending_update: set[str] | None = None

    @classmethod
    def from_pretrained(
        cls,
        path: str,
        *,
        dtype: str = "float32",
        random_init: bool = False,
        attn_implementation: str = "sdpa",
        eos_token_ids: Sequence[int],
        pad_token_id: int,
        max_model_len: int | None = None,
        seed: int = 0,
    ) -> HFGenerationEngine:
        """Load a model directory (or only its config, for ``random_init``) into an engine.

        Args:
            path: Local model directory.
            dtype: Parameter dtype name, e.g. ``"float32"`` (use float32 on CPU).
            random_init: Build from the config with random weights (verl's ``load_format=dummy``: the
                trainer pushes real weights before the first generation).
            attn_implementation: transformers attention backend; ``"sdpa"`` works on CPU.
            eos_token_ids: See the class.
            pad_token_id: See the class.
            max_model_len: Longest prompt + response; default ``max_position_embeddings`` of the config.
            seed: See the class.

        Returns:
            The engine.

        Raises:
            ValueError: On an unknown ``dtype``.
        """
        if dtype not in _DTYPES:
            raise ValueError(
                f"rollout dtype={dtype!r} is not supported by the hf rollout; use one of {sorted(_DTYPES)}"
            )
        torch_dtype = _DTYPES[dtype]
        if random_init:
            config = AutoConfig.from_pretrained(path, attn_implementation=attn_implementation)
            model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype, attn_implementation=attn_implementation)
        else:
            model = AutoModelForCausalLM.from_pretrained(
                path, dtype=torch_dtype, attn_implementation=attn_implementation
            )
        limit = max_model_len or int(getattr(model.config, "max_position_embeddings", 0))
        return cls(model, eos_token_ids=eos_token_ids, pad_token_id=pad_token_id, max_model_len=limit, seed=seed)

    # ------------------------------------------------------------------ generation

    def _generation_config(self, settings: SamplingSettings, max_new_tokens: int) -> GenerationConfig:
        greedy = settings.temperature == 0
        kwargs: dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "do_sample": not greedy,
            "eos_token_id": None if settings.ignore_eos else list(self.eos_token_ids),
            "pad_token_id": self.pad_token_id,
            "repetition_penalty": settings.repetition_penalty,
            "output_scores": settings.logprobs,
            "return_dict_in_generate": True,
        }
        if not greedy:
            kwargs.update(temperature=settings.temperature, top_p=settings.top_p, top_k=settings.top_k)
        return GenerationConfig(**kwargs)

    @torch.no_grad()
    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        settings: SamplingSettings,
        *,
        seeds: Sequence[int] | None = None,
    ) -> list[GenerationResult]:
        """Generate one response per prompt, as one left-padded batch (or one prompt at a time with ``seeds``).

        Args:
            prompts: Prompt token ids, each non-empty.
            settings: Sampling settings shared by the batch.
            seeds: Optional torch seed per prompt; each prompt is then generated alone under its seed, so its
                tokens do not depend on the other prompts of the batch.

        Returns:
            One :class:`GenerationResult` per prompt, in order.

        Raises:
            ValueError: If a prompt is empty or leaves no room for one response token within
                ``max_model_len``, or ``seeds`` does not match ``prompts``.
        """
        if seeds is None:
            return self._generate_batch(prompts, settings, int(self._rng.integers(0, 2**63 - 1)))
        if len(seeds) != len(prompts):
            raise ValueError(f"got {len(seeds)} seeds for {len(prompts)} prompts")
        pairs = zip(prompts, seeds, strict=True)
        return [self._generate_batch([prompt], settings, int(seed))[0] for prompt, seed in pairs]

    def _generate_batch(
        self, prompts: Sequence[Sequence[int]], settings: SamplingSettings, seed: int
    ) -> list[GenerationResult]:
        if not prompts:
            return []
        budgets = []
        for index, prompt in enumerate(prompts):
            room = self.max_model_len - len(prompt)
            if not prompt or room < 1:
                raise ValueError(
                    f"prompt {index} has {len(prompt)} tokens; the hf rollout needs 1..{self.max_model_len - 1} "
                    f"(max_model_len={self.max_model_len}); shorten data.max_prompt_length or raise "
                    "actor_rollout_ref.rollout.max_model_len"
                )
            budgets.append(max(1, min(settings.max_new_tokens, room)))
        width = max(len(prompt) for prompt in prompts)
        # left padding: [pad, pad, p0, p1] so every row's next token is generated at the same column
        input_ids = torch.full((len(prompts), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, prompt in enumerate(prompts):
            input_ids[row, width - len(prompt) :] = torch.as_tensor(list(prompt), dtype=torch.long)
            attention_mask[row, width - len(prompt) :] = 1
        generation_config = self._generation_config(settings, max(budgets))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            output = self.model.generate(
                input_ids=input_ids, attention_mask=attention_mask, generation_config=generation_config
            )
        new_tokens = output.sequences[:, width:]
        step_log_probs = None
        if settings.logprobs:
            # scores: one (batch, vocab) tensor per generated position, after temperature/top-k/top-p
            scores = torch.stack(list(output.scores), dim=1).float()
            step_log_probs = torch.log_softmax(scores, dim=-1)
            step_log_probs = step_log_probs.gather(-1, new_tokens[:, : scores.shape[1]].unsqueeze(-1)).squeeze(-1)
        eos = set(self.eos_token_ids)
        results = []
        for row, budget in enumerate(budgets):
            tokens = new_tokens[row, :budget].tolist()
            finish: FinishReason = "length"
            if not settings.ignore_eos:
                for position, token in enumerate(tokens):
                    if token in eos:
                        tokens, finish = tokens[: position + 1], "stop"
                        break
            log_probs = None
            if step_log_probs is not None:
                log_probs = step_log_probs[row, : len(tokens)].tolist()
            results.append(GenerationResult(token_ids=tokens, log_probs=log_probs, finish_reason=finish))
        return results

    # ------------------------------------------------------------------ weights

    def begin_weight_update(self) -> None:
        """Start a full weight update: every parameter must be loaded before :meth:`finish_weight_update`."""
        self._pending_update = set()

    @torch.no_grad()
    def load_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> int:
        """Copy tensors into the model's parameters and buffers, by state-dict name.

        Tied weights (e.g. ``lm_head.weight`` and ``model.embed_tokens.weight``) share one parameter; loading
        either name updates it.

        Args:
            named_tensors: ``(name, tensor)`` pairs with full (unsharded) tensors.

        Returns:
            How many tensors were loaded.

        Raises:
            WeightUpdateError: On a name the model does not have or a shape mismatch.
        """
        state = self.model.state_dict(keep_vars=True)
        count = 0
        for name, tensor in named_tensors:
            target = state.get(name)
            if target is None:
                raise WeightUpdateError(
                    f"weight update names {name!r}, which the rollout model does not have: the trainer and rollout "
                    "models differ (check actor_rollout_ref.model.path)"
                )
            if tuple(target.shape) != tuple(tensor.shape):
                raise WeightUpdateError(
                    f"weight update for {name!r} has shape {tuple(tensor.shape)}, the rollout model expects "
                    f"{tuple(target.shape)}"
                )
            target.data.copy_(tensor.to(dtype=target.dtype, device=target.device))
            if self._pending_update is not None:
                self._pending_update.add(name)
            count += 1
        return count

    def abort_weight_update(self) -> None:
        """Forget a weight update that failed half-way (parameters may be partially updated)."""
        self._pending_update = None

    def finish_weight_update(self) -> int:
        """End a full weight update, checking that every parameter received new values.

        Returns:
            How many distinct parameters were updated.

        Raises:
            WeightUpdateError: If no update was begun, or parameters were not loaded (they would stay stale).
        """
        if self._pending_update is None:
            raise WeightUpdateError("finish_weight_update called without begin_weight_update")
        loaded, self._pending_update = self._pending_update, None
        state = self.model.state_dict(keep_vars=True)
        updated_ids = {id(state[name]) for name in loaded}
        stale = [name for name, parameter in self.model.named_parameters() if id(parameter) not in updated_ids]
        if stale:
            raise WeightUpdateError(
                f"weight update left {len(stale)} parameters stale (e.g. {stale[:3]}); the rollout would sample "
                "from an outdated policy"
            )
        return len(updated_ids)
