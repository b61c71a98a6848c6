"""Exact evaluation of the demo policy agrees with what sampling and the demo's reward actually give."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from cures_verl.experiments.trainer import DigitSumProblem, answer_probabilities, build_model, build_tokenizer  # noqa: E402
from cures_verl.experiments.trainer.exact import exact_accuracy, transparent_token_ids  # noqa: E402
from cures_verl.experiments.trainer.reward import compute_score  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(27)


@pytest.fixture(scope="module")
def random_model(tokenizer):
    # a random model spreads mass over transparent tokens, so multi-token paths matter
    return build_model(tokenizer, hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, seed=3)


PROBLEMS = [DigitSumProblem((3, 4)), DigitSumProblem((0,)), DigitSumProblem((9, 9, 9))]


def test_transparent_tokens_are_the_ones_that_decode_to_nothing(tokenizer):
    names = sorted(tokenizer.convert_ids_to_tokens(transparent_token_ids(tokenizer)))
    assert names == ["\n", "<pad>", "<unk>", "<|im_start|>"]
    assert tokenizer.eos_token_id not in transparent_token_ids(tokenizer)


def _monte_carlo(model, tokenizer, problem, samples, temperature, top_k, top_p, max_len, seed):
    from cures_verl.experiments.trainer.model import prompt_token_ids

    prompt = torch.tensor([prompt_token_ids(tokenizer, problem)])
    torch.manual_seed(seed)
    out = model.generate(
        prompt.repeat(samples, 1),
        attention_mask=torch.ones(samples, prompt.shape[1], dtype=torch.long),
        do_sample=True,
        temperature=temperature,
        top_k=top_k if top_k > 0 else None,
        top_p=top_p,
        max_new_tokens=max_len,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )[:, prompt.shape[1] :]
    scores = []
    for row in out.tolist():
        # cut after the first EOS, as the rollout does, then decode as verl does (special tokens skipped)
        if tokenizer.eos_token_id in row:
            row = row[: row.index(tokenizer.eos_token_id) + 1]
        text = tokenizer.decode(row, skip_special_tokens=True)
        scores.append(compute_score("digit_sum", text, problem.answer)["score"])
    return float(np.mean(scores))


@pytest.mark.parametrize(("temperature", "top_k", "top_p"), [(1.0, -1, 1.0), (0.7, 6, 1.0), (1.0, -1, 0.8)])
def test_exact_accuracy_matches_sampling_with_the_demo_reward(tokenizer, random_model, temperature, top_k, top_p):
    exact = exact_accuracy(
        random_model, tokenizer, PROBLEMS, temperature=temperature, top_k=top_k, top_p=top_p, max_response_length=4
    )
    assert exact.unresolved.max() < 1e-4
    samples = 4000
    for i, problem in enumerate(PROBLEMS):
        estimate = _monte_carlo(random_model, tokenizer, problem, samples, temperature, top_k, top_p, 4, seed=i)
        p = exact.probability[i]
        sd = max(np.sqrt(p * (1 - p) / samples), 1e-3)
        assert abs(estimate - p) < 4.5 * sd, (problem, estimate, p)


def test_exact_accuracy_adds_transparent_paths_to_the_first_token_probability(tokenizer, random_model):
    first = answer_probabilities(random_model, tokenizer, PROBLEMS)
    one_token = exact_accuracy(random_model, tokenizer, PROBLEMS, max_response_length=1)
    longer = exact_accuracy(random_model, tokenizer, PROBLEMS, max_response_length=6)
    # with one response token only the first token can decide
    np.testing.assert_allclose(one_token.probability, first, rtol=1e-5)
    assert np.all(longer.probability > first)


def test_exact_accuracy_refuses_settings_it_cannot_evaluate(tokenizer, random_model):
    with pytest.raises(ValueError, match="temperature"):
        exact_accuracy(random_model, tokenizer, PROBLEMS, temperature=0.0)
    with pytest.raises(ValueError, match="top_p"):
        exact_accuracy(random_model, tokenizer, PROBLEMS, top_p=0.0)
    with pytest.raises(ValueError, match="max_response_length"):
        exact_accuracy(random_model, tokenizer, PROBLEMS, max_response_length=0)


def test_policies_loaded_from_several_threads_at_once_are_the_saved_one(random_assets):
    # transformers' from_pretrained patches process-wide state: concurrent loads (the comparison scores two runs in
    # threads) gave uninitialised weights until load_policy serialised them
    import threading

    import torch

    from cures_verl.experiments.trainer.exact import load_policy

    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        want = load_policy(random_assets.model_dir)(ids).logits
    wrong: list[float] = []

    def load_repeatedly() -> None:
        for _ in range(4):
            with torch.no_grad():
                got = load_policy(random_assets.model_dir)(ids).logits
            if not torch.equal(got, want):
                wrong.append(float((got - want).abs().max()))

    threads = [threading.Thread(target=load_repeatedly) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
