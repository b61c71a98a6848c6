"""Response generation for evaluation: vLLM on GPUs, transformers ``generate`` on CPU.

Both backends render each prompt the same way: the tokenizer's chat template with
``add_generation_prompt=True`` as text, then tokenised with ``add_special_tokens=False`` (the template
already holds any BOS), so the two backends see identical token ids. Every sampling parameter is set
explicitly; nothing is inherited from the model's ``generation_config.json`` (Qwen checkpoints ship
``repetition_penalty`` and ``top_k`` defaults there) except the stop tokens:

* stop tokens: the model's ``generation_config.eos_token_id`` (one id or a list) plus the tokenizer's
  EOS, as vLLM does by default;
* greedy decoding is ``temperature == 0``; it needs ``n == 1`` (n identical greedy samples would
  silently fake an avg@k).

:class:`VLLMGenerator` imports vLLM lazily and is the path for real checkpoints (it cannot run on the
CPU development machines; keep it small). :class:`HFGenerator` is for small models on CPU and for tests.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

__all__ = ["SamplingSettings", "Completion", "Generator", "HFGenerator", "VLLMGenerator", "build_generator"]

logger = logging.getLogger(__name__)

Messages = Sequence[Mapping[str, str]]


@dataclass(frozen=True, kw_only=True)
class SamplingSettings:
    """Decoding settings of one generation call.

    Attributes:
        n: Samples per prompt.
        temperature: Sampling temperature; 0 means greedy.
        top_p: Nucleus sampling threshold (1.0 = off).
        top_k: Top-k filtering; 0 or -1 = off.
        max_new_tokens: Maximum generated tokens per sample.
        seed: Seed of the sampling RNG.
    """

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = -1
    max_new_tokens: int = 3072
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n={self.n}: need at least one sample per prompt")
        if self.temperature < 0:
            raise ValueError(f"temperature={self.temperature} must be >= 0 (0 = greedy)")
        if self.temperature == 0 and self.n > 1:
            raise ValueError(
                f"greedy decoding (temperature=0) with n={self.n} gives {self.n} identical samples; "
                "set a temperature > 0 for avg@k, or n=1"
            )
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p={self.top_p} must be in (0, 1]")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens={self.max_new_tokens} must be >= 1")

    @property
    def greedy(self) -> bool:
        """Whether this is greedy decoding."""
        return self.temperature == 0

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for results files."""
        return asdict(self)


@dataclass(frozen=True)
class Completion:
    """One generated sample.

    Attributes:
        text: Decoded response, special tokens removed, without the stop token.
        num_tokens: Generated tokens before the stop token (all of them when truncated).
        truncated: True when generation hit ``max_new_tokens`` without a stop token.
    """

    text: str
    num_tokens: int
    truncated: bool


class Generator(Protocol):
    """Anything that turns chat prompts into ``n`` completions each."""

    def generate(
        self, prompts: Sequence[Messages], settings: SamplingSettings, *, desc: str = ""
    ) -> list[list[Completion]]:
        """Return ``settings.n`` completions per prompt, in prompt order."""
        ...


def _stop_token_ids(tokenizer: Any, generation_config: Any) -> list[int]:
    ids: list[int] = []
    configured = getattr(generation_config, "eos_token_id", None)
    if isinstance(configured, int):
        ids.append(configured)
    elif isinstance(configured, list | tuple):
        ids.extend(int(i) for i in configured)
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(int(tokenizer.eos_token_id))
    if not ids:
        raise ValueError(
            "neither the model's generation_config nor the tokenizer defines an EOS token, so generation "
            "could never stop early; set eos_token_id in generation_config.json or the tokenizer"
        )
    return ids


def render_prompt_ids(tokenizer: Any, prompts: Sequence[Messages]) -> list[list[int]]:
    """Apply the chat template (with the generation prompt) and tokenise without extra special tokens.

    Raises:
        ValueError: If the tokenizer has no chat template.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            "the tokenizer has no chat template; evaluation prompts are chat messages. Use a tokenizer "
            "with a chat_template (or pass --tokenizer pointing at one)"
        )
    ids = []
    for messages in prompts:
        text = tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
        ids.append(list(tokenizer(text, add_special_tokens=False)["input_ids"]))
    return ids


class HFGenerator:
    """Batched ``transformers`` generation (left padding), for small models on CPU.

    Args:
        model_path: Hugging Face model directory or Hub id.
        tokenizer_path: Tokenizer directory, if not in ``model_path``.
        device: Torch device (``cpu`` or ``cuda``).
        dtype: Torch dtype name of the weights (``float32``, ``bfloat16``...).
        batch_size: Prompts per ``generate`` call (each expands to ``batch_size * n`` sequences).
        show_progress: Show a tqdm progress bar.
    """

    def __init__(
        self,
        model_path: str,
        *,
        tokenizer_path: str | None = None,
        device: str = "cpu",
        dtype: str = "float32",
        batch_size: int = 8,
        show_progress: bool = True,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be >= 1")
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_path or model_path)
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=getattr(torch, dtype)).to(device)
        self.model.eval()
        self.device = device
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.stop_ids = _stop_token_ids(self.tokenizer, self.model.generation_config)
        pad = self.tokenizer.pad_token_id
        # padding positions are masked out by the attention mask, so any id works as the pad value
        self.pad_id = int(pad) if pad is not None else self.stop_ids[0]

    def _generation_config(self, settings: SamplingSettings) -> Any:
        from transformers import GenerationConfig

        sampled = not settings.greedy
        return GenerationConfig(
            do_sample=sampled,
            temperature=settings.temperature if sampled else 1.0,
            top_p=settings.top_p if sampled else 1.0,
            top_k=settings.top_k if sampled and settings.top_k > 0 else 0,
            repetition_penalty=1.0,
            max_new_tokens=settings.max_new_tokens,
            num_return_sequences=settings.n,
            eos_token_id=self.stop_ids,
            pad_token_id=self.pad_id,
        )

    def generate(
        self, prompts: Sequence[Messages], settings: SamplingSettings, *, desc: str = ""
    ) -> list[list[Completion]]:
        """Return ``settings.n`` completions per prompt, in prompt order (see :class:`Generator`)."""
        from tqdm.auto import tqdm

        torch = self.torch
        prompt_ids = render_prompt_ids(self.tokenizer, prompts)
        config = self._generation_config(settings)
        torch.manual_seed(settings.seed)
        stop = set(self.stop_ids)
        results: list[list[Completion]] = []
        with tqdm(total=len(prompt_ids), desc=desc or "generate", unit="prompt", disable=not self.show_progress) as bar:
            for start in range(0, len(prompt_ids), self.batch_size):
                batch = prompt_ids[start : start + self.batch_size]
                width = max(len(ids) for ids in batch)
                # left padding: [pad, pad, p0, p1] so every prompt ends at the same column
                input_ids = torch.tensor([[self.pad_id] * (width - len(ids)) + ids for ids in batch])
                mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch])
                with torch.no_grad():
                    output = self.model.generate(
                        input_ids=input_ids.to(self.device),
                        attention_mask=mask.to(self.device),
                        generation_config=config,
                    )
                new_tokens = output[:, width:].tolist()
                # rows are [prompt0 sample0..n-1, prompt1 sample0..n-1, ...]
                for k in range(len(batch)):
                    samples = []
                    for tokens in new_tokens[k * settings.n : (k + 1) * settings.n]:
                        end = next((i for i, t in enumerate(tokens) if t in stop), None)
                        kept = tokens if end is None else tokens[:end]
                        text = str(self.tokenizer.decode(kept, skip_special_tokens=True))
                        samples.append(Completion(text, len(kept), end is None))
                    results.append(samples)
                bar.update(len(batch))
        return results


class VLLMGenerator:
    """vLLM offline generation (GPU). Imports vLLM lazily.

    Args:
        model_path: Hugging Face model directory or Hub id (merge verl FSDP checkpoints first).
        tokenizer_path: Tokenizer directory, if not in ``model_path``.
        tensor_parallel_size: GPUs per model.
        gpu_memory_utilization: Fraction of GPU memory vLLM may use.
        max_model_len: Context length (prompt + response); ``None`` = the model's.
        dtype: Weight dtype (``auto``, ``bfloat16``...).
        seed: Engine seed.

    Raises:
        ImportError: If vLLM is not installed.
    """

    def __init__(
        self,
        model_path: str,
        *,
        tokenizer_path: str | None = None,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        dtype: str = "auto",
        seed: int = 0,
    ) -> None:
        try:
            from vllm import LLM
        except ImportError as exc:
            raise ImportError(
                "the vllm backend needs vLLM on a GPU machine (pip install -e '.[gpu]'); on CPU use --backend hf"
            ) from exc
        self.llm = LLM(
            model=model_path,
            tokenizer=tokenizer_path or model_path,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            dtype=dtype,
            seed=seed,
        )
        self.tokenizer = self.llm.get_tokenizer()

    def generate(
        self, prompts: Sequence[Messages], settings: SamplingSettings, *, desc: str = ""
    ) -> list[list[Completion]]:
        """Return ``settings.n`` completions per prompt, in prompt order (see :class:`Generator`)."""
        from vllm import SamplingParams

        kwargs: dict[str, Any] = {
            "n": settings.n,
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "max_tokens": settings.max_new_tokens,
            "seed": settings.seed,
            "repetition_penalty": 1.0,
        }
        if settings.top_k > 0:
            kwargs["top_k"] = settings.top_k
        requests = [{"prompt_token_ids": ids} for ids in render_prompt_ids(self.tokenizer, prompts)]
        logger.info("vLLM: %s, %d prompts x %d samples", desc, len(requests), settings.n)
        # vLLM returns one RequestOutput per request, in request order, with its progress bar
        outputs = self.llm.generate(requests, SamplingParams(**kwargs), use_tqdm=True)
        return [
            [Completion(o.text, len(o.token_ids), o.finish_reason == "length") for o in output.outputs]
            for output in outputs
        ]


def build_generator(backend: str, model_path: str, **kwargs: Any) -> Generator:
    """Build the ``hf`` or ``vllm`` generator; ``kwargs`` go to its constructor.

    Raises:
        ValueError: If ``backend`` is unknown.
    """
    if backend == "hf":
        return HFGenerator(model_path, **kwargs)
    if backend == "vllm":
        return VLLMGenerator(model_path, **kwargs)
    raise ValueError(f"unknown backend {backend!r}: use 'vllm' (GPU) or 'hf' (transformers, small models / CPU)")
