"""The hook-overhead benchmark (cures_verl/experiments/trainer/hook_overhead.py) runs the adapter's real per-step
hooks end to end, and
what they do there is right: the advantages it stores, the posterior counts and the ``__rollout_n__`` column."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("verl")

# a fresh copy of the module per test, loaded from its file (tests patch its functions)
SCRIPT = Path(importlib.util.find_spec("cures_verl.experiments.trainer.hook_overhead").origin or "")
ARGV = ["--num-prompts", "300", "--batch-size", "16", "--rollout-n", "4", "--response-tokens", "6", "--steps", "2"]


def _load():
    spec = importlib.util.spec_from_file_location("hook_overhead", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _checked(module, checked_steps: list[tuple[str, int]]):
    """``module._one_step`` wrapped: each step's hooks are checked against the plan and the rollouts they saw."""
    original = module._one_step

    def one_step(trainer, rows, store, args, rng):
        from cures_verl.core import advantage_weights

        tracker = trainer.curriculum.tracker
        correct_before, observed_before = tracker.num_correct.copy(), tracker.num_observed().copy()
        fetched, observed = [], []

        def fetch():  # the hook itself, keeping what it returns
            fetched.append(type(trainer)._fetch_one_gen_batch(trainer))
            return fetched[-1]

        def observe(batch):
            observed.append(type(trainer)._observe(trainer, batch))
            return observed[-1]

        trainer._fetch_one_gen_batch, trainer._observe = fetch, observe
        store.log.clear()
        try:
            times = original(trainer, rows, store, args, rng)
        finally:
            del trainer._fetch_one_gen_batch, trainer._observe
        plan = trainer.batch_sampler.current_plan
        (batch,) = fetched
        # the fetch: each prompt's planned count in __rollout_n__, the planned prompts, uids mapped to them
        assert list(batch["__rollout_n__"]) == plan.rollouts.tolist()
        assert list(batch["index"]) == trainer.batch_sampler.index.stable_ids[plan.prompt_indices].tolist()
        uids = [str(uid) for uid in batch["uid"]]
        assert trainer._prompt_of_uid == dict(zip(uids, plan.prompt_indices.tolist(), strict=True))
        # the advantage hook: the stored advantages are the ones it read, row by row times mean_n / n_i
        (read_keys, read), (put_keys, written) = store.log["get:advantages"], store.log["put:advantages"]
        assert read_keys == put_keys and len(put_keys) == plan.total_rollouts
        weight = dict(zip(uids, advantage_weights(plan.rollouts).tolist(), strict=True))
        assert written.offsets().tolist() == read.offsets().tolist()
        for key, before, after in zip(put_keys, read.unbind(), written.unbind(), strict=True):
            torch.testing.assert_close(after, before * weight[key.rsplit("_", 2)[0]], rtol=1e-6, atol=0)
        # the observe hook: the posterior counts the rewards on the rollouts' last tokens, prompt by prompt
        (score_keys, scores) = store.log["get:rm_scores"]
        prompts = np.array([plan.prompt_indices[uids.index(key.rsplit("_", 2)[0])] for key in score_keys])
        rewards = np.array([float(row.sum()) for row in scores.unbind()])
        assert set(np.unique(rewards)) <= {0.0, 1.0} and np.bincount(prompts).max() > 1
        n = trainer.curriculum.num_prompts
        keep = 1.0 - observed[0].get("cures/posterior/forgetting", 0.0)  # the recommended preset forgets
        np.testing.assert_allclose(
            tracker.num_correct, (correct_before + np.bincount(prompts, weights=rewards, minlength=n)) * keep
        )
        np.testing.assert_allclose(tracker.num_observed(), (observed_before + np.bincount(prompts, minlength=n)) * keep)
        assert observed[0]["cures/reward/acc"] == pytest.approx(rewards.mean())
        assert observed[0]["cures/reward/pred_parsed"] == 1.0
        checked_steps.append((plan.phase, int(np.unique(plan.rollouts).size)))
        return times

    return one_step


def test_benchmark_runs_the_hooks_and_restores_verl(capsys, monkeypatch):
    from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

    from cures_verl.verl_adapter import trainer as trainer_module

    before = (PPOTrainerSync._compute_advantage, PPOTrainerSync._fetch_one_gen_batch, trainer_module.tq)
    own_before = dict(vars(PPOTrainerSync))  # restored exactly: no inherited method left as an override
    module = _load()

    class RecordingStore(module._Store):
        """The benchmark's store, also keeping (keys, value) of the last get and put of each field."""

        def __init__(self) -> None:
            super().__init__()
            self.log: dict = {}

        def kv_batch_get(self, keys, partition_id, select_fields):
            out = super().kv_batch_get(keys, partition_id, select_fields)
            self.log.update({f"get:{name}": (list(keys), out[name]) for name in select_fields})
            return out

        def kv_batch_put(self, keys, partition_id, fields):
            self.log.update({f"put:{name}": (list(keys), fields[name]) for name in fields.keys()})
            super().kv_batch_put(keys, partition_id, fields)

    steps: list[tuple[str, int]] = []
    monkeypatch.setattr(module, "_Store", RecordingStore)
    monkeypatch.setattr(module, "_one_step", _checked(module, steps))
    assert module.main(ARGV) == 0
    # 2 presets x (2 warm-up + 2 timed) steps, each checked: the paper's cold start, then uneven training steps
    assert len(steps) == 8 and ("cold_start", 1) in steps and any(p == "train" and k > 1 for p, k in steps), steps
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if re.match(r"\s+(paper|recommended)\s", line)]
    assert [row[0] for row in rows] == ["paper", "recommended"]
    for row in rows:
        plan, advantage, observe, total = map(float, row[1:])
        assert min(plan, advantage, observe) > 0 and total >= max(plan, advantage, observe)
    # the benchmark patches verl's advantage and the TransferQueue client only while it runs
    assert (PPOTrainerSync._compute_advantage, PPOTrainerSync._fetch_one_gen_batch, trainer_module.tq) == before
    assert dict(vars(PPOTrainerSync)) == own_before
