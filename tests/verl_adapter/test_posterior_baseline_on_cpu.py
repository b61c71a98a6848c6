"""cures.allocation.advantage_baseline=posterior on a real CuresTrainer: verl's real GRPO advantage path runs, then the
small groups' rows are replaced by posterior-baseline advantages (core/advantage.py) and Eq. 16 is applied on top
(TransferQueue replaced by an in-memory store: tests/verl_adapter/conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("verl")

from cures_verl.core import advantage_weights  # noqa: E402
from cures_verl.core.advantage import posterior_advantages  # noqa: E402


def _grpo(rewards: np.ndarray) -> np.ndarray:
    if rewards.std() == 0:
        return np.zeros_like(rewards)
    return (rewards - rewards.mean()) / (rewards.std(ddof=1) + 1e-6)


def _expected(plan, prompts_before, alpha, beta, rewards, max_group, loss_weighting="prompt"):
    """Per rollout: the posterior advantage for groups of <= max_group rollouts, GRPO's otherwise, times Eq. 16."""
    weights = advantage_weights(plan.rollouts) if loss_weighting == "prompt" else np.ones(plan.rollouts.size)
    out, start = [], 0
    for g, n in enumerate(plan.rollouts):
        group = rewards[start : start + n]
        if n <= max_group:
            adv = posterior_advantages(group, np.zeros(n, dtype=np.int64), alpha[[g]], beta[[g]])
        else:
            adv = _grpo(group)
        out.extend((adv * weights[g]).tolist())
        start += n
    return np.array(out)


def _run(trainer, kv_store, rewards_of, max_group, loss_weighting="prompt", *, informative=False):
    """One step through the real _compute_advantage; the advantages written must be the expected ones (with
    ``informative``, scaled by rows / rows with a nonzero advantage, loss_normalizer=informative)."""
    trainer.global_steps += 1
    uids = [str(uid) for uid in trainer._fetch_one_gen_batch()["uid"]]
    plan = trainer._step_plan
    alpha, beta = trainer.curriculum.tracker.alpha_beta(plan.prompt_indices)
    prompts = np.repeat(plan.prompt_indices, plan.rollouts)
    rewards = np.asarray(rewards_of(prompts), dtype=float)
    lengths = [1 + k % 3 for k in range(prompts.size)]
    meta = kv_store.put_rollouts(uids, plan.rollouts.tolist(), rewards.tolist(), lengths)
    metrics: dict = {}
    trainer._compute_advantage(meta, metrics)
    written = kv_store.field(meta.keys, "advantages")
    expected = _expected(plan, prompts, alpha, beta, rewards, max_group, loss_weighting)
    if informative:
        nonzero = np.abs(expected) > 1e-6
        scale = nonzero.size / nonzero.sum() if nonzero.any() else 1.0
        expected = expected * scale
        assert metrics["cures/alloc/informative_scale"] == pytest.approx(scale)
        assert metrics["cures/alloc/informative_share"] == pytest.approx(nonzero.mean())
    for row, value, length in zip(written, expected, lengths, strict=True):
        assert row.shape == (length,)
        np.testing.assert_allclose(row.numpy(), value, rtol=1e-5, atol=1e-6)
    metrics.update(trainer._observe(meta))
    return plan, rewards, metrics


def _rewards_of(prompts):
    """Prompts 0-3 always right, 4-7 always wrong, the rest alternate."""
    alternate = np.arange(prompts.size) % 2 == 0
    return np.where(prompts < 4, 1.0, np.where(prompts < 8, 0.0, alternate))


@pytest.mark.parametrize("loss_weighting", ["prompt", "rollout"])
def test_small_groups_get_posterior_advantages_and_the_rest_grpos(make_trainer, kv_store, tmp_path, loss_weighting):
    trainer = make_trainer(
        tmp_path,
        "cures.allocation.advantage_baseline=posterior",
        "cures.allocation.posterior_baseline_max_group=3",
        f"cures.allocation.loss_weighting={loss_weighting}",
    )
    trainer.global_steps = 0
    rewards_of = _rewards_of

    # two cold-start steps of 2 rollouts a prompt: every group is small, all-equal groups get a signal
    shares = []
    for _ in range(2):
        plan, rewards, metrics = _run(trainer, kv_store, rewards_of, 3, loss_weighting)
        assert plan.phase == "cold_start" and (plan.rollouts == 2).all()
        assert metrics["cures/alloc/posterior_baseline_share"] == 1.0
        equal = [rewards_of(np.array([p, p])) for p in plan.prompt_indices]
        share = sum(2 for pair in equal if pair[0] == pair[1]) / plan.rollouts.sum()
        assert metrics["cures/alloc/posterior_baseline_all_equal_share"] == pytest.approx(share)
        shares.append(share)
    assert max(shares) > 0  # the cold start covers prompts 0-7, whose groups are all-equal
    # training steps: uneven groups; the posterior now knows the prompts, both kinds of group occur
    seen_sizes: set[int] = set()
    for _ in range(4):
        plan, _, metrics = _run(trainer, kv_store, rewards_of, 3, loss_weighting)
        assert plan.phase == "train"
        seen_sizes.update(plan.rollouts.tolist())
        small = plan.rollouts[plan.rollouts <= 3].sum() / plan.rollouts.sum()
        assert metrics["cures/alloc/posterior_baseline_share"] == pytest.approx(small)
    assert min(seen_sizes) <= 3 < max(seen_sizes), seen_sizes
    # the step's rewards are read from TransferQueue once: _observe reuses those the posterior baseline read
    observe_reads = [fields for fields in kv_store.reads if "extra_fields" in fields]
    assert observe_reads and all("rm_scores" not in fields for fields in observe_reads)


def test_the_posterior_baseline_is_refused_where_there_is_no_outcome_to_centre(make_trainer, tmp_path):
    from cures_verl.verl_adapter.trainer import check_trainer_config

    trainer = make_trainer(tmp_path, "cures.allocation.advantage_baseline=posterior")
    check_trainer_config(trainer.config, trainer.cures_config)  # GRPO, no KL in the reward: accepted
    from omegaconf import open_dict

    with open_dict(trainer.config):
        trainer.config.algorithm.adv_estimator = "gae"
        trainer.config.algorithm.use_kl_in_reward = True
    with pytest.raises(ValueError) as error:
        check_trainer_config(trainer.config, trainer.cures_config)
    assert "algorithm.adv_estimator=gae" in str(error.value)
    assert "algorithm.use_kl_in_reward=true" in str(error.value)


def test_the_small_groups_preset_is_refused_with_groups_its_baseline_never_touches(make_trainer, tmp_path):
    from omegaconf import open_dict

    from cures_verl.config import preset_config
    from cures_verl.verl_adapter.trainer import check_trainer_config

    trainer = make_trainer(tmp_path)
    small_groups = preset_config("small_groups")
    assert small_groups.allocation.advantage_baseline == "posterior" and small_groups.schedule.cold_start_rollouts == 0
    for n, refused in ((2, False), (4, False), (8, True)):
        with open_dict(trainer.config):
            trainer.config.actor_rollout_ref.rollout.n = n
        if refused:
            with pytest.raises(ValueError, match=r"cures\.preset=small_groups with actor_rollout_ref\.rollout\.n=8"):
                check_trainer_config(trainer.config, small_groups)
        else:
            check_trainer_config(trainer.config, small_groups)


@pytest.mark.parametrize("baseline", ["group", "posterior"])
def test_the_informative_normalizer_scales_the_step_by_rows_over_informative_rows(
    make_trainer, kv_store, tmp_path, baseline
):
    # cures.allocation.loss_normalizer=informative: the loss's mean counts only rows with a nonzero advantage, so
    # every advantage of the step is scaled by rows / such rows (GRPO's all-equal groups have none)
    trainer = make_trainer(
        tmp_path,
        "cures.allocation.loss_normalizer=informative",
        f"cures.allocation.advantage_baseline={baseline}",
        "cures.allocation.posterior_baseline_max_group=3",
    )
    trainer.global_steps = 0
    max_group = 3 if baseline == "posterior" else 0
    scales = []
    for _ in range(5):
        _, _, metrics = _run(trainer, kv_store, _rewards_of, max_group, informative=True)
        scales.append(metrics["cures/alloc/informative_scale"])
    if baseline == "group":
        assert max(scales) > 1.0  # all-equal groups occurred: the test exercised the scaling
