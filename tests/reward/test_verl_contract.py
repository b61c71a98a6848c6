"""compute_score as verl 0.9.1 really loads and calls it: pkg:// loading, reward_kwargs merging, and
``NaiveRewardManager.run_single`` running it in an executor thread off the main thread."""

from __future__ import annotations

import asyncio
import threading

import pytest

pytest.importorskip("math_verify")
pytest.importorskip("verl")

from omegaconf import OmegaConf  # noqa: E402

from cures_verl.reward import math_verify as reward  # noqa: E402
from cures_verl.reward.math_verify import RESULT_KEYS  # noqa: E402

MODULE_PATH = "pkg://cures_verl.reward.math_verify"


def _config(reward_kwargs: dict[str, object] | None = None) -> object:
    function = {"path": MODULE_PATH, "name": "compute_score"}
    if reward_kwargs is not None:
        function["reward_kwargs"] = reward_kwargs
    return OmegaConf.create({"reward": {"custom_reward_function": function}})


def test_verl_load_module_accepts_the_pkg_path() -> None:
    from verl.utils.import_utils import load_extern_object

    assert load_extern_object(module_path=MODULE_PATH, object_name="compute_score") is reward.compute_score


def test_verl_get_custom_reward_fn_merges_reward_kwargs_into_the_call() -> None:
    from verl.trainer.ppo.reward import get_custom_reward_fn

    response = "so the final answer is 12"  # no box: only the configured fallback finds the answer
    default_fn = get_custom_reward_fn(_config())
    fallback_fn = get_custom_reward_fn(_config({"extraction": "boxed_or_answer", "timeout": 20}))
    kwargs = {"data_source": "math", "solution_str": response, "ground_truth": "12", "extra_info": {}}
    assert default_fn(**kwargs)["score"] == 0.0
    assert fallback_fn(**kwargs)["score"] == 1.0


class _CharTokenizer:
    """Token id = code point; enough for NaiveRewardManager's decode call."""

    def decode(self, ids: object, skip_special_tokens: bool = True) -> str:
        return "".join(chr(int(i)) for i in ids if int(i) != 0)


def _data_proto(responses: list[str], ground_truths: list[str]) -> object:
    import numpy as np
    import torch
    from verl import DataProto

    width = max(len(text) for text in responses)
    ids = torch.zeros((len(responses), width), dtype=torch.long)
    mask = torch.zeros((len(responses), 3 + width), dtype=torch.long)  # 3 prompt tokens, then the response
    for row, text in enumerate(responses):
        ids[row, : len(text)] = torch.tensor([ord(char) for char in text])
        mask[row, : 3 + len(text)] = 1
    return DataProto.from_dict(
        tensors={"responses": ids, "attention_mask": mask},
        non_tensors={
            "data_source": np.array(["math"] * len(responses), dtype=object),
            "reward_model": np.array([{"ground_truth": gt, "style": "rule"} for gt in ground_truths], dtype=object),
            "extra_info": np.array([{"index": i} for i in range(len(responses))], dtype=object),
        },
    )


def test_naive_reward_manager_runs_compute_score_off_the_main_thread() -> None:
    from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager
    from verl.trainer.ppo.reward import get_custom_reward_fn

    seen_threads: list[threading.Thread] = []
    verl_wrapper = get_custom_reward_fn(_config())  # what load_reward_manager hands to the manager
    assert verl_wrapper is not None

    def spy(**kwargs: object) -> object:
        seen_threads.append(threading.current_thread())
        return verl_wrapper(**kwargs)

    responses = ["... \\boxed{\\frac{1}{2}}", "... \\boxed{3}", "no box at all"]
    data = _data_proto(responses, ["0.5", "4", "1"])

    async def run() -> list[dict[str, object]]:
        manager = NaiveRewardManager(config=_config(), tokenizer=_CharTokenizer(), compute_score=spy)
        return [await manager.run_single(data[i : i + 1]) for i in range(len(responses))]

    outputs = asyncio.run(run())
    assert [output["reward_score"] for output in outputs] == [1.0, 0.0, 0.0]
    assert all(tuple(output["reward_extra_info"]) == RESULT_KEYS for output in outputs)
    assert seen_threads and all(thread is not threading.main_thread() for thread in seen_threads)
