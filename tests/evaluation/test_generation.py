"""Generation backends: the transformers path on a tiny model, the vLLM path against a stand-in module."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from typing import Any

import pytest

from cures_verl.evaluation.generation import HFGenerator, SamplingSettings, VLLMGenerator, build_generator

PROMPTS = [
    [{"role": "user", "content": "3 ="}],
    [{"role": "system", "content": "add"}, {"role": "user", "content": "1 + 2 + 3 ="}],
    [{"role": "user", "content": "4 + 4 ="}],
    [{"role": "user", "content": "9 + 8 + 7 + 6 + 5 ="}],
    [{"role": "user", "content": "2 + 2 ="}],
]


@pytest.fixture(scope="module")
def generator(tiny_model) -> HFGenerator:
    return HFGenerator(
        str(tiny_model.model_dir), tokenizer_path=str(tiny_model.tokenizer_dir), batch_size=2, show_progress=False
    )


def test_each_prompt_gets_n_completions_within_the_token_budget(generator: HFGenerator) -> None:
    out = generator.generate(PROMPTS, SamplingSettings(n=3, temperature=1.0, max_new_tokens=5, seed=1))
    assert [len(samples) for samples in out] == [3] * len(PROMPTS)
    for samples in out:
        for completion in samples:
            assert 0 <= completion.num_tokens <= 5
            assert "<|im_end|>" not in completion.text and "<pad>" not in completion.text


def test_truncation_flag_matches_the_budget(generator: HFGenerator) -> None:
    out = generator.generate(PROMPTS, SamplingSettings(n=4, temperature=1.0, max_new_tokens=3, seed=0))
    flat = [c for samples in out for c in samples]
    assert all(c.num_tokens == 3 for c in flat if c.truncated)
    assert all(c.num_tokens < 3 for c in flat if not c.truncated)


def test_batched_greedy_matches_one_prompt_at_a_time(tiny_model, generator: HFGenerator) -> None:
    settings = SamplingSettings(max_new_tokens=6)
    single = HFGenerator(
        str(tiny_model.model_dir), tokenizer_path=str(tiny_model.tokenizer_dir), batch_size=1, show_progress=False
    )
    # prompts of different lengths share a left-padded batch; the attention mask must hide the padding
    assert generator.generate(PROMPTS, settings) == single.generate(PROMPTS, settings)


def test_greedy_output_depends_on_the_prompt(generator: HFGenerator) -> None:
    # guards the fixture: the batching test above is only meaningful if prompts lead to different outputs
    texts = [samples[0].text for samples in generator.generate(PROMPTS, SamplingSettings(max_new_tokens=6))]
    assert len(set(texts)) > 1


def test_completions_stop_at_the_first_stop_token_and_group_samples_by_prompt(
    generator: HFGenerator, monkeypatch
) -> None:
    import torch

    tokenizer = generator.tokenizer
    eos, pad = generator.stop_ids[0], generator.pad_id
    seven, eight, plus = (tokenizer.convert_tokens_to_ids(t) for t in ("7", "8", "+"))

    def fake_generate(input_ids, attention_mask, generation_config):
        width = input_ids.shape[1]
        assert generation_config.num_return_sequences == 2 and generation_config.eos_token_id == [eos]
        new = torch.tensor(
            [
                [seven, eos, pad],  # prompt 0, sample 0: stops after one token
                [seven, eight, plus],  # prompt 0, sample 1: runs out of budget
                [eos, seven, seven],  # prompt 1, sample 0: stops at once; tokens after EOS are dropped
                [plus, seven, eos],  # prompt 1, sample 1
            ]
        )
        return torch.cat([input_ids.repeat_interleave(2, dim=0), new], dim=1)[:, : width + 3]

    monkeypatch.setattr(generator.model, "generate", fake_generate)
    out = generator.generate(PROMPTS[:2], SamplingSettings(n=2, temperature=1.0, max_new_tokens=3))
    assert [[(c.text, c.num_tokens, c.truncated) for c in samples] for samples in out] == [
        [("7", 1, False), ("7 8 +", 3, True)],
        [("", 0, False), ("+ 7", 2, False)],
    ]


def test_sampling_is_reproducible_with_a_seed_and_varies_across_seeds(generator: HFGenerator) -> None:
    def texts(seed: int) -> list[list[str]]:
        settings = SamplingSettings(n=2, temperature=1.0, max_new_tokens=4, seed=seed)
        return [[c.text for c in samples] for samples in generator.generate(PROMPTS, settings)]

    assert texts(3) == texts(3)
    assert texts(3) != texts(4)


def test_greedy_with_several_samples_is_rejected() -> None:
    with pytest.raises(ValueError, match="identical samples"):
        SamplingSettings(n=16, temperature=0.0)


@pytest.mark.parametrize(
    "kwargs", [{"n": 0}, {"temperature": -0.1}, {"top_p": 0.0}, {"top_p": 1.5}, {"max_new_tokens": 0}]
)
def test_invalid_sampling_settings_are_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        SamplingSettings(**kwargs)


def test_a_tokenizer_without_chat_template_is_rejected(tiny_model, tmp_path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model.tokenizer_dir)
    tokenizer.chat_template = None
    tokenizer.save_pretrained(tmp_path)
    (tmp_path / "chat_template.jinja").unlink(missing_ok=True)
    generator = HFGenerator(str(tiny_model.model_dir), tokenizer_path=str(tmp_path), show_progress=False)
    with pytest.raises(ValueError, match="chat template"):
        generator.generate(PROMPTS[:1], SamplingSettings(max_new_tokens=2))


def test_unknown_backend_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown backend"):
        build_generator("tgi", "model")


@dataclass
class _FakeOutput:
    text: str
    token_ids: list[int]
    finish_reason: str


class _FakeLLM:
    """Records the engine and request arguments; answers each request with n outputs."""

    instances: list[_FakeLLM] = []

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.calls: list[tuple[list[dict[str, Any]], Any, bool]] = []
        _FakeLLM.instances.append(self)

    def get_tokenizer(self) -> Any:
        return self.tokenizer

    def generate(self, requests: list[dict[str, Any]], params: Any, use_tqdm: bool) -> list[Any]:
        self.calls.append((requests, params, use_tqdm))
        outputs = []
        for r, request in enumerate(requests):
            samples = [
                _FakeOutput(f"req{r}-s{j}", list(range(j + 1)), "length" if j == 0 else "stop") for j in range(params.n)
            ]
            outputs.append(types.SimpleNamespace(outputs=samples, prompt_token_ids=request["prompt_token_ids"]))
        return outputs


class _FakeSamplingParams:
    def __init__(self, **kwargs: Any) -> None:
        self.__dict__.update(kwargs)


def test_vllm_generator_passes_explicit_settings_and_keeps_request_order(tiny_model, monkeypatch) -> None:
    from transformers import AutoTokenizer

    fake = types.ModuleType("vllm")
    fake.LLM = _FakeLLM  # type: ignore[attr-defined]
    fake.SamplingParams = _FakeSamplingParams  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", fake)
    _FakeLLM.tokenizer = AutoTokenizer.from_pretrained(tiny_model.tokenizer_dir)  # type: ignore[attr-defined]

    generator = VLLMGenerator("ckpt", tensor_parallel_size=2, max_model_len=4096, seed=5)
    settings = SamplingSettings(n=3, temperature=0.6, top_p=0.95, top_k=20, max_new_tokens=64, seed=9)
    out = generator.generate(PROMPTS[:2], settings, desc="aime24")

    llm = _FakeLLM.instances[-1]
    assert llm.kwargs["model"] == "ckpt" and llm.kwargs["tokenizer"] == "ckpt"
    assert (llm.kwargs["tensor_parallel_size"], llm.kwargs["max_model_len"], llm.kwargs["seed"]) == (2, 4096, 5)
    requests, params, use_tqdm = llm.calls[0]
    assert use_tqdm
    expected = {"n": 3, "temperature": 0.6, "top_p": 0.95, "top_k": 20, "max_tokens": 64, "seed": 9}
    assert {key: params.__dict__[key] for key in expected} == expected
    assert params.repetition_penalty == 1.0
    # the prompt is the chat template's rendering, tokenised without extra special tokens
    tokenizer = _FakeLLM.tokenizer  # type: ignore[attr-defined]
    text = tokenizer.apply_chat_template(PROMPTS[1], add_generation_prompt=True, tokenize=False)
    assert requests[1]["prompt_token_ids"] == tokenizer(text, add_special_tokens=False)["input_ids"]
    assert [[c.text for c in samples] for samples in out] == [[f"req{r}-s{j}" for j in range(3)] for r in range(2)]
    assert [c.truncated for c in out[0]] == [True, False, False]
    assert [c.num_tokens for c in out[0]] == [1, 2, 3]


def test_vllm_generator_without_vllm_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(ImportError, match="--backend hf"):
        VLLMGenerator("ckpt")
