"""The transformers generation engine behind the hf rollout (no Ray, no verl)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from cures_verl.cpu.hf_engine import (  # noqa: E402
    HFGenerationEngine,
    SamplingSettings,
    WeightUpdateError,
)
from cures_verl.experiments.trainer import DigitSumProblem, all_problems, build_model, prompt_token_ids  # noqa: E402

SAMPLE = {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "repetition_penalty": 1.0, "logprobs": True}
GREEDY = {"temperature": 0, "top_p": 1.0, "top_k": -1, "repetition_penalty": 1.0, "logprobs": True}


@pytest.fixture(scope="module")
def model(demo_tokenizer):
    return build_model(demo_tokenizer, seed=0)


def make_engine(model, tokenizer, *, seed=0, max_model_len=64):
    return HFGenerationEngine(
        model,
        eos_token_ids=[tokenizer.eos_token_id],
        pad_token_id=tokenizer.pad_token_id,
        max_model_len=max_model_len,
        seed=seed,
    )


def prompts_for(tokenizer, operands):
    return [prompt_token_ids(tokenizer, DigitSumProblem(tuple(o))) for o in operands]


# ----------------------------------------------------------------------------------------- sampling settings


def test_sampling_settings_map_verl_conventions():
    settings_ = SamplingSettings.from_verl({**SAMPLE, "top_k": -1, "max_tokens": 3}, default_max_tokens=8)
    assert settings_.top_k == 0 and settings_.max_new_tokens == 3
    assert SamplingSettings.from_verl({"max_new_tokens": 5}, default_max_tokens=8).max_new_tokens == 5
    assert SamplingSettings.from_verl({}, default_max_tokens=8).max_new_tokens == 8


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"seed": 3}, "does not support sampling parameters \\['seed'\\]"),
        ({"temperature": -0.1}, "temperature=-0.1"),
        ({"top_p": 0.0}, "top_p=0.0"),
        ({"repetition_penalty": 0}, "repetition_penalty=0.0"),
    ],
)
def test_sampling_settings_reject_unsupported_values(params, message):
    with pytest.raises(ValueError, match=message):
        SamplingSettings.from_verl(params, default_max_tokens=8)


# ----------------------------------------------------------------------------------------- generation


def test_sampled_log_probs_equal_the_model_log_softmax(model, demo_tokenizer):
    engine = make_engine(model, demo_tokenizer)
    prompts = prompts_for(demo_tokenizer, [(3, 4), (1,), (2, 2, 2)])  # different lengths: left padding
    results = engine.generate(prompts, SamplingSettings.from_verl(SAMPLE, default_max_tokens=6))
    for prompt, result in zip(prompts, results, strict=True):
        assert result.log_probs is not None and len(result.log_probs) == len(result.token_ids) >= 1
        sequence = torch.tensor([prompt + result.token_ids])
        expected = torch.log_softmax(model(input_ids=sequence).logits[0].float(), dim=-1)
        for offset, token in enumerate(result.token_ids):
            assert result.log_probs[offset] == pytest.approx(expected[len(prompt) - 1 + offset, token].item(), abs=1e-4)


def test_greedy_generation_is_the_argmax_continuation(model, demo_tokenizer):
    engine = make_engine(model, demo_tokenizer)
    prompt = prompts_for(demo_tokenizer, [(5, 6)])[0]
    result = engine.generate([prompt], SamplingSettings.from_verl({**GREEDY, "max_tokens": 4}, default_max_tokens=8))[0]
    sequence = list(prompt)
    for token in result.token_ids:
        next_token = int(model(input_ids=torch.tensor([sequence])).logits[0, -1].argmax())
        assert token == next_token
        sequence.append(token)


def test_responses_stop_after_the_first_eos_and_keep_it(demo_tokenizer):
    model = build_model(demo_tokenizer, seed=0)
    with torch.no_grad():  # make EOS overwhelmingly likely right away
        model.lm_head.weight[demo_tokenizer.eos_token_id] += 50.0
    engine = make_engine(model, demo_tokenizer)
    result = engine.generate(
        prompts_for(demo_tokenizer, [(1, 2)]), SamplingSettings.from_verl(SAMPLE, default_max_tokens=8)
    )
    assert result[0].token_ids == [demo_tokenizer.eos_token_id] and result[0].finish_reason == "stop"
    ignored = engine.generate(
        prompts_for(demo_tokenizer, [(1, 2)]),
        SamplingSettings.from_verl({**SAMPLE, "ignore_eos": True}, default_max_tokens=3),
    )
    assert len(ignored[0].token_ids) == 3 and ignored[0].finish_reason == "length"


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    operands=st.lists(st.lists(st.integers(0, 9), min_size=1, max_size=3), min_size=1, max_size=6),
    max_tokens=st.integers(1, 10),
    temperature=st.sampled_from([0.0, 0.7, 1.0, 1.5]),
    top_k=st.sampled_from([-1, 1, 5]),
    top_p=st.sampled_from([1.0, 0.9, 0.5]),
    seed=st.integers(0, 1000),
)
def test_generation_respects_budget_eos_and_log_prob_invariants(
    model, demo_tokenizer, operands, max_tokens, temperature, top_k, top_p, seed
):
    engine = make_engine(model, demo_tokenizer, seed=seed)
    params = {"temperature": temperature, "top_k": top_k, "top_p": top_p, "logprobs": True, "max_tokens": max_tokens}
    results = engine.generate(
        prompts_for(demo_tokenizer, operands), SamplingSettings.from_verl(params, default_max_tokens=8)
    )
    assert len(results) == len(operands)
    for result in results:
        assert 1 <= len(result.token_ids) <= max_tokens
        eos_positions = [i for i, token in enumerate(result.token_ids) if token == demo_tokenizer.eos_token_id]
        assert eos_positions in ([], [len(result.token_ids) - 1])  # EOS only last, and then finish == "stop"
        assert result.finish_reason == ("stop" if eos_positions else "length")
        assert len(result.log_probs) == len(result.token_ids)
        assert all(lp <= 1e-6 for lp in result.log_probs)


def test_same_seed_same_tokens_different_seed_different_tokens(model, demo_tokenizer):
    prompts = prompts_for(demo_tokenizer, [(d, 9 - d) for d in range(10)] * 3)
    sample = SamplingSettings.from_verl({**SAMPLE, "temperature": 2.0, "max_tokens": 6}, default_max_tokens=8)
    run = [
        [r.token_ids for r in make_engine(model, demo_tokenizer, seed=s).generate(prompts, sample)] for s in (7, 7, 8)
    ]
    assert run[0] == run[1]
    assert run[0] != run[2]


def test_generation_leaves_the_global_torch_rng_alone(model, demo_tokenizer):
    engine = make_engine(model, demo_tokenizer)
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    engine.generate(prompts_for(demo_tokenizer, [(1, 1)]), SamplingSettings.from_verl(SAMPLE, default_max_tokens=4))
    assert torch.equal(torch.rand(3), expected)


def test_budget_is_clamped_to_the_model_length_and_long_prompts_are_refused(model, demo_tokenizer):
    prompt = prompts_for(demo_tokenizer, [(1, 2, 3)])[0]  # 14 tokens
    engine = make_engine(model, demo_tokenizer, max_model_len=len(prompt) + 2)
    sample = SamplingSettings.from_verl({**SAMPLE, "ignore_eos": True, "max_tokens": 10}, default_max_tokens=10)
    assert len(engine.generate([prompt], sample)[0].token_ids) == 2
    short = make_engine(model, demo_tokenizer, max_model_len=len(prompt))
    with pytest.raises(ValueError, match="max_prompt_length"):
        short.generate([prompt], sample)


def test_engine_requires_an_eos_token(model, demo_tokenizer):
    with pytest.raises(ValueError, match="eos_token_ids is empty"):
        HFGenerationEngine(model, eos_token_ids=[], pad_token_id=0, max_model_len=64, seed=0)


def test_from_pretrained_loads_weights_or_random_init(random_assets, demo_tokenizer):
    loaded = HFGenerationEngine.from_pretrained(
        str(random_assets.model_dir), eos_token_ids=[demo_tokenizer.eos_token_id], pad_token_id=0
    )
    dummy = HFGenerationEngine.from_pretrained(
        str(random_assets.model_dir), random_init=True, eos_token_ids=[demo_tokenizer.eos_token_id], pad_token_id=0
    )
    reference = build_model(demo_tokenizer, seed=0).state_dict()
    assert all(torch.equal(loaded.model.state_dict()[k], reference[k]) for k in reference)
    assert not all(torch.equal(dummy.model.state_dict()[k], reference[k]) for k in reference)
    assert loaded.max_model_len == 64
    with pytest.raises(ValueError, match="rollout dtype='int8'"):
        HFGenerationEngine.from_pretrained(
            str(random_assets.model_dir), dtype="int8", eos_token_ids=[1], pad_token_id=0
        )


# ----------------------------------------------------------------------------------------- weights


def test_weight_update_replaces_every_parameter_and_changes_generation(demo_tokenizer):
    engine = make_engine(build_model(demo_tokenizer, seed=0), demo_tokenizer)
    source = build_model(demo_tokenizer, seed=1).state_dict()
    engine.begin_weight_update()
    assert engine.load_weights(source.items()) == len(source)
    assert engine.finish_weight_update() == sum(1 for _ in engine.model.parameters())
    assert all(torch.equal(engine.model.state_dict()[k], source[k]) for k in source)


def test_weight_update_detects_stale_parameters(demo_tokenizer):
    engine = make_engine(build_model(demo_tokenizer, seed=0), demo_tokenizer)
    source = list(build_model(demo_tokenizer, seed=1).state_dict().items())
    engine.begin_weight_update()
    engine.load_weights(source[:2])
    with pytest.raises(WeightUpdateError, match="stale"):
        engine.finish_weight_update()
    with pytest.raises(WeightUpdateError, match="without begin_weight_update"):
        engine.finish_weight_update()


def test_tied_embedding_is_updated_through_either_name(demo_tokenizer):
    engine = make_engine(build_model(demo_tokenizer, seed=0), demo_tokenizer)
    source = build_model(demo_tokenizer, seed=1).state_dict()
    without_head = [(k, v) for k, v in source.items() if k != "lm_head.weight"]
    engine.begin_weight_update()
    engine.load_weights(without_head)
    engine.finish_weight_update()
    assert torch.equal(engine.model.lm_head.weight, source["model.embed_tokens.weight"])


def test_weight_update_rejects_unknown_names_and_shapes(model, demo_tokenizer):
    engine = make_engine(build_model(demo_tokenizer, seed=0), demo_tokenizer)
    with pytest.raises(WeightUpdateError, match="'not.a.weight'"):
        engine.load_weights([("not.a.weight", torch.zeros(1))])
    with pytest.raises(WeightUpdateError, match="shape \\(2, 2\\)"):
        engine.load_weights([("model.norm.weight", torch.zeros(2, 2))])


def test_all_tier_problems_fit_the_default_demo_model_length(demo_tokenizer):
    longest = max(len(prompt_token_ids(demo_tokenizer, p)) for p in all_problems(3)[:10])
    assert longest == 14 and longest + 8 <= 64


def test_per_prompt_seeds_make_each_response_independent_of_its_batch(model, demo_tokenizer):
    from cures_verl.cpu.hf_engine import SamplingSettings

    engine = make_engine(model, demo_tokenizer)
    settings = SamplingSettings(
        temperature=1.0, top_p=1.0, top_k=0, repetition_penalty=1.0, max_new_tokens=6, logprobs=True, ignore_eos=True
    )
    a, b, c = [5, 6, 7], [8, 9], [10, 11, 12, 13]
    alone = engine.generate([a], settings, seeds=[123])[0]
    batched = engine.generate([c, a, b], settings, seeds=[7, 123, 9])
    assert batched[1].token_ids == alone.token_ids and batched[1].log_probs == alone.log_probs
    other = [engine.generate([a], settings, seeds=[s])[0].token_ids for s in range(40, 48)]
    assert len({tuple(t) for t in other}) > 1  # the seed matters
    with pytest.raises(ValueError, match="seeds"):
        engine.generate([a, b], settings, seeds=[1])
