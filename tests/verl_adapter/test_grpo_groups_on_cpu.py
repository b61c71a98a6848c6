"""verl's own GRPO advantage on the uneven groups CurES produces, and the Eq. 16 prompt weighting CuresTrainer writes
over it (verl's real advantage path, TransferQueue replaced by an in-memory store: tests/verl_adapter/conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("verl")

from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage  # noqa: E402

from cures_verl.core import allocate_rollouts, reward_std  # noqa: E402


def _grpo(counts, rewards):
    uid = np.repeat(np.arange(len(counts)), counts).astype(object)
    scores = torch.zeros(len(rewards), 3)
    scores[:, -1] = torch.tensor(rewards, dtype=torch.float32)
    mask = torch.ones(len(rewards), 3)
    adv, _ = compute_grpo_outcome_advantage(scores, mask, uid)
    return adv[:, -1].numpy()


def test_uneven_groups_from_an_allocation_get_per_group_normalised_advantages():
    accuracy = np.array([0.5, 0.2, 0.9])
    counts = allocate_rollouts(reward_std(accuracy), budget=24)
    assert counts.sum() == 24 and counts.min() >= 2
    rng = np.random.default_rng(0)
    rewards = np.concatenate([(rng.random(n) < p).astype(float) for n, p in zip(counts, accuracy, strict=True)])
    rewards[: counts[0]] = [1.0] + [0.0] * (counts[0] - 1)  # make group 0 informative
    adv = _grpo(counts, rewards)
    start = 0
    for n in counts:
        group, a = rewards[start : start + n], adv[start : start + n]
        if group.std() == 0:
            np.testing.assert_allclose(a, 0.0, atol=1e-5)
        else:
            # verl: (r - mean) / (unbiased std + eps)
            np.testing.assert_allclose(a, (group - group.mean()) / (group.std(ddof=1) + 1e-6), rtol=1e-4)
        start += n


def test_a_group_of_one_gets_its_raw_reward_which_is_why_the_minimum_is_two():
    adv = _grpo([1, 2], [1.0, 1.0, 0.0])
    assert adv[0] == pytest.approx(1.0, abs=1e-4)  # not a centred advantage: a singleton is not a GRPO group
    assert adv[1] == pytest.approx(0.7071, abs=1e-3) and adv[2] == pytest.approx(-0.7071, abs=1e-3)


def _cold_start_rewards(prompts):
    """Prompt j answers (j % 9) * 8 // 9 of its 8 cold-start rollouts right (prompts 0 and 9 none: mle drops them)."""
    return np.arange(prompts.size) % 8 < (prompts % 9) * 8 // 9


def test_cures_trainer_writes_grpo_advantages_times_mean_n_over_n_i_for_every_group(make_trainer, kv_store, tmp_path):
    from hypothesis import example, given, settings
    from hypothesis import strategies as st

    trainer = make_trainer(
        tmp_path,
        "cures.schedule.cold_start_rollouts=8",
        "cures.schedule.train_on_cold_start=true",
        "cures.allocation.accuracy_estimate=mle",
        "cures.allocation.zero_variance=drop",
    )
    trainer.global_steps = 0
    # the cold start, trained on: 8 rollouts a prompt against rollout.n=4, so mean_n = 8 and every weight is 1
    for _ in range(2):
        cold, _, meta, metrics = kv_store.run_step(trainer, _cold_start_rewards)
        assert cold.phase == "cold_start" and (cold.rollouts == 8).all()
        expected = _grpo(cold.rollouts, _cold_start_rewards(np.repeat(cold.prompt_indices, 8)).astype(float))
        for row, value in zip(kv_store.field(meta.keys, "advantages"), expected, strict=True):
            np.testing.assert_allclose(row.numpy(), [value, value], rtol=1e-5, atol=1e-6)
        assert metrics["cures/alloc/advantage_weight_max"] == 1.0
    # the first training step: under mle + drop the all-wrong prompts get no rollouts, the others uneven counts
    trainer.global_steps += 1
    uids = [str(uid) for uid in trainer._fetch_one_gen_batch()["uid"]]
    plan = trainer._step_plan
    assert plan.phase == "train"
    counts = plan.rollouts
    sampled = counts > 0
    assert not sampled.all() and np.unique(counts[sampled]).size > 1, counts  # dropped prompts and uneven groups
    mean_n = counts.sum() / np.count_nonzero(sampled)
    assert mean_n != trainer.config.actor_rollout_ref.rollout.n  # the nominal n would give other weights
    total = int(counts.sum())

    @settings(max_examples=40, deadline=None)
    @example(rewards=[float(k % 2) for k in range(total)], lengths=[1 + k % 6 for k in range(total)], pads=2)
    @given(
        rewards=st.lists(st.sampled_from([0.0, 1.0]), min_size=total, max_size=total),
        lengths=st.lists(st.integers(1, 6), min_size=total, max_size=total),
        pads=st.integers(0, 3),
    )
    def check(rewards, lengths, pads):
        kv_store.rows.clear()
        kv_store.tags.clear()
        trainer._step_plan = plan
        real = kv_store.put_rollouts(uids, counts.tolist(), rewards, lengths)
        pad = kv_store.put_rollouts(["pad0"], [pads], [1.0] * pads, [3] * pads, padding=True) if pads else None
        keys = real.keys + (pad.keys if pad else [])
        metrics: dict = {}
        trainer._compute_advantage(kv_store.batch(keys), metrics)
        grpo = _grpo(np.append(counts[sampled], [pads] if pads else []).astype(int), rewards + [1.0] * pads)
        written = [row.numpy() for row in kv_store.field(keys, "advantages")]
        group = np.repeat(np.arange(counts.size), counts)
        applied: dict[int, list[float]] = {}  # group -> the factor the trainer put on each of its rows
        for r, key in enumerate(real.keys):
            assert written[r].shape == (lengths[r],), key
            if grpo[r] == 0:  # an all-equal group: nothing to weigh
                np.testing.assert_array_equal(written[r], 0.0, err_msg=key)
                continue
            factors = written[r] / grpo[r]
            np.testing.assert_allclose(factors, factors[0], rtol=1e-6, err_msg=key)  # the same on every token
            applied.setdefault(int(group[r]), []).append(float(factors[0]))
        # Eq. 16, the exact per-group identity: each group's rows carry factors summing to mean_n (n_i x mean_n / n_i),
        # the same for every group whatever its size, so the factors average 1 over the step's rollouts
        for g, factors in applied.items():
            assert len(factors) == counts[g]
            assert sum(factors) == pytest.approx(mean_n, rel=1e-5), (g, counts[g], factors)
        for r in range(len(real.keys), len(keys)):  # verl's padding rows are not ours to weigh
            np.testing.assert_allclose(written[r], grpo[r], atol=1e-6)
        assert metrics == {"cures/alloc/advantage_weight_max": pytest.approx(mean_n / counts[sampled].min())}

    check()
