"""CurriculumSampler: the step loop's invariants, presets, determinism and exact resume."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cures_verl.config import preset_config
from cures_verl.core.curriculum import CurriculumSampler


def _sampler(num_prompts=200, m=8, n=8, preset="paper", prior_accuracy=None, **overrides):
    return CurriculumSampler(
        num_prompts,
        batch_size=m,
        rollouts_per_prompt=n,
        config=preset_config(preset, overrides),
        prior_accuracy=prior_accuracy,
    )


def _rollout(plan, truth, rng):
    ids = np.repeat(plan.prompt_indices, plan.rollouts)
    return ids, (rng.random(ids.size) < truth[ids]).astype(float)


def _run(sampler, steps, truth, seed=0):
    rng = np.random.default_rng(seed)
    plans = []
    for _ in range(steps):
        plan = sampler.plan_step()
        sampler.observe(*_rollout(plan, truth, rng))
        plans.append(plan)
    return plans


TRUTH = np.random.default_rng(7).random(200)


@pytest.mark.parametrize("preset", ["paper", "official_code", "recommended"])
def test_every_plan_respects_the_step_invariants(preset):
    sampler = _sampler(preset=preset, schedule={"num_iterations": 2, "steps_per_iteration": 5})
    for plan in _run(sampler, 60, TRUTH):
        assert plan.prompt_indices.size == 8 and np.unique(plan.prompt_indices).size == 8
        pool = sampler.schedule.subset(sampler.schedule.phase(plan.step).subset)
        assert np.isin(plan.prompt_indices, pool).all()
        if plan.phase == "cold_start":
            assert (plan.rollouts == 4).all() and not plan.is_training
        else:
            kept = plan.rollouts > 0
            assert plan.is_training and (plan.rollouts[kept] >= 2).all()
            if preset == "official_code":
                assert plan.total_rollouts <= 64
            else:
                assert plan.total_rollouts == 64 and kept.all()


def test_posterior_counts_equal_the_observed_rewards():
    sampler = _sampler(schedule={"mode": "continuous", "cold_start_rollouts": 0})
    rng = np.random.default_rng(0)
    seen_correct = np.zeros(200)
    seen_total = np.zeros(200)
    for _ in range(30):
        plan = sampler.plan_step()
        ids, rewards = _rollout(plan, TRUTH, rng)
        sampler.observe(ids, rewards)
        np.add.at(seen_correct, ids, rewards)
        np.add.at(seen_total, ids, 1)
    np.testing.assert_array_equal(sampler.tracker.num_correct, seen_correct)
    np.testing.assert_array_equal(sampler.tracker.num_observed(), seen_total)


def test_cold_start_initialises_every_prompt_of_the_subset_then_training_draws_from_it():
    sampler = _sampler(num_prompts=100, m=10, schedule={"num_iterations": 2, "steps_per_iteration": 3})
    plans = _run(sampler, 8, TRUTH)
    assert [p.phase for p in plans] == ["cold_start"] * 5 + ["train"] * 3
    first_subset = sampler.schedule.subset(0)
    assert (sampler.tracker.num_observed(first_subset) >= 4).all()
    assert (sampler.tracker.num_observed(sampler.schedule.subset(1)) == 0).all()


def test_official_code_preset_ignores_training_rewards_and_drops_zero_variance_prompts():
    truth = np.where(np.arange(200) % 2 == 0, 0.0, 0.5)  # even prompts are never solved
    sampler = _sampler(preset="official_code", schedule={"num_iterations": 2, "steps_per_iteration": 4})
    plans = _run(sampler, sampler.schedule.num_cold_start_steps(0), truth)
    frozen = sampler.tracker.state_dict()
    for plan in _run(sampler, 4, truth, seed=1):
        assert plan.phase == "train"
        never_solved = plan.prompt_indices % 2 == 0
        assert (plan.rollouts[never_solved] == 0).all()  # MLE accuracy 0 -> sigma 0 -> dropped
    np.testing.assert_array_equal(sampler.tracker.num_correct, frozen["num_correct"])  # no online update
    assert len(plans) == 13


def test_small_temperature_concentrates_draws_on_uncertain_prompts():
    truth = np.concatenate([np.full(100, 0.5), np.zeros(100)])
    cold = _sampler(schedule={"num_iterations": 1, "steps_per_iteration": 40}, sampler={"temperature": 0.05})
    flat = _sampler(schedule={"num_iterations": 1, "steps_per_iteration": 40}, sampler={"temperature": 1000.0})
    share = []
    for sampler in (cold, flat):
        plans = [p for p in _run(sampler, 25 + 40, truth) if p.phase == "train"]
        drawn = np.concatenate([p.prompt_indices for p in plans])
        share.append(np.mean(drawn < 100))
    # tau = 0.05 puts e^(0.5/0.05) = 22000x more weight on p = 0.5 than on a known p = 0; the share stays below 1
    # only while cold-start estimates of the p = 0 prompts (posterior mean 1/6 after 0/4) still look uncertain
    assert share[0] > 0.85 and abs(share[1] - 0.5) < 0.1


def test_more_rollouts_go_to_prompts_near_half_accuracy():
    truth = np.concatenate([np.full(100, 0.5), np.full(100, 0.97)])
    sampler = _sampler(schedule={"mode": "continuous", "cold_start_rollouts": 8}, sampler={"temperature": 1000.0})
    plans = [p for p in _run(sampler, 60, truth) if p.phase == "train"]
    n = np.concatenate([p.rollouts for p in plans])
    ids = np.concatenate([p.prompt_indices for p in plans])
    assert n[ids < 100].mean() > 1.3 * n[ids >= 100].mean()


@pytest.mark.parametrize("score", ["mean", "thompson", "expected_std", "informative"])
def test_same_seed_gives_the_same_plans(score):
    plans = [_run(_sampler(seed=5, sampler={"score": score}), 30, TRUTH) for _ in range(2)]
    for a, b in zip(*plans, strict=True):
        np.testing.assert_array_equal(a.prompt_indices, b.prompt_indices)
        np.testing.assert_array_equal(a.rollouts, b.rollouts)
    other = _run(_sampler(seed=6, sampler={"score": score}), 30, TRUTH)
    assert any(not np.array_equal(a.prompt_indices, b.prompt_indices) for a, b in zip(plans[0], other, strict=True))


@settings(max_examples=12, deadline=None)
@given(
    st.integers(0, 40),
    st.sampled_from(["paper", "official_code"]),
    st.sampled_from(["mean", "thompson", "informative"]),
    st.sampled_from([0.0, 0.05]),
)
def test_state_round_trip_continues_the_same_stream(steps_before, preset, score, forgetting):
    overrides = {
        "schedule": {"num_iterations": 2, "steps_per_iteration": 6},
        "sampler": {"score": score},
        "posterior": {"forgetting": forgetting},
    }
    reference = _sampler(preset=preset, **overrides)
    plans = _run(reference, steps_before + 10, TRUTH)
    resumed_from = _sampler(preset=preset, **overrides)
    _run(resumed_from, steps_before, TRUTH)
    state = resumed_from.state_dict()
    fresh = _sampler(preset=preset, **overrides)
    fresh.load_state_dict(state)
    # the remaining steps see the same rewards as the reference: replay its reward stream from step steps_before
    rng = np.random.default_rng(0)
    for plan in plans[:steps_before]:
        _rollout(plan, TRUTH, rng)
    for expected in plans[steps_before:]:
        got = fresh.plan_step()
        np.testing.assert_array_equal(got.prompt_indices, expected.prompt_indices)
        np.testing.assert_array_equal(got.rollouts, expected.rollouts)
        fresh.observe(*_rollout(got, TRUTH, rng))


def _steps_with_metrics(sampler, start, stop, truth):
    """Plans and observe() metrics of steps start..stop-1; step t's rewards come from a generator seeded by t,
    so an uninterrupted run and a resumed one see the same rewards for the same plan."""
    out = []
    for step in range(start, stop):
        plan = sampler.plan_step()
        metrics = sampler.observe(*_rollout(plan, truth, np.random.default_rng(step)))
        metrics.update(sampler.metrics(plan))
        out.append((plan, metrics))
    return out


# paper here: 2 subsets of 100 prompts, so steps 0-12 are the first cold start (resume at 1, 3 and 12 lands in
# it) and 17 in training; recommended has no cold start and adaptive forgetting from the first step
@pytest.mark.parametrize("resume_at", [1, 3, 12, 17])
@pytest.mark.parametrize("preset", ["recommended", "paper"])
def test_a_resumed_run_continues_with_the_same_plans_and_metrics(preset, resume_at):
    # every piece of state the preset uses (adaptive forgetting's residual ratio, generator, counts, position)
    # must survive a checkpoint: the plans and metrics after it equal an uninterrupted run's
    import pickle

    overrides = {} if preset == "recommended" else {"schedule": {"num_iterations": 2, "steps_per_iteration": 6}}
    horizon = resume_at + 15
    reference = _steps_with_metrics(_sampler(preset=preset, **overrides), 0, horizon, TRUTH)
    before = _sampler(preset=preset, **overrides)
    _steps_with_metrics(before, 0, resume_at, TRUTH)
    state = pickle.loads(pickle.dumps(before.state_dict()))  # verl torch.save()s it with the dataloader
    resumed = _sampler(preset=preset, **overrides)
    resumed.load_state_dict(state)
    got = _steps_with_metrics(resumed, resume_at, horizon, TRUTH)
    phases = set()
    for (plan, metrics), (want_plan, want_metrics) in zip(got, reference[resume_at:], strict=True):
        phases.add(plan.phase)
        np.testing.assert_array_equal(plan.prompt_indices, want_plan.prompt_indices)
        np.testing.assert_array_equal(plan.rollouts, want_plan.rollouts)
        assert metrics.keys() == want_metrics.keys()
        for key, value in metrics.items():
            assert value == pytest.approx(want_metrics[key], nan_ok=True), key
    if preset == "recommended":
        assert any("forgetting" in key for _, m in got for key in m), "adaptive forgetting never ran"
    else:
        assert got[0][0].phase == ("cold_start" if resume_at < 13 else "train")
        assert phases == {"cold_start", "train"} or resume_at >= 13


def test_load_rejects_a_different_config_or_dataset():
    state = _sampler().state_dict()
    with pytest.raises(ValueError, match=r"sampler\.temperature"):
        _sampler(sampler={"temperature": 0.3}).load_state_dict(state)
    with pytest.raises(ValueError, match="num_prompts=200"):
        _sampler(num_prompts=300).load_state_dict(state)


def test_infeasible_budget_and_prior_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="min_per_prompt"):
        _sampler(n=1)
    with pytest.raises(ValueError, match="max_per_prompt"):
        _sampler(allocation={"max_per_prompt": 4})
    with pytest.raises(ValueError, match="prior_source=dataset"):
        _sampler(prior_accuracy=np.full(200, 0.5))
    with pytest.raises(ValueError, match="needs per-prompt pass rates"):
        _sampler(posterior={"prior_source": "dataset"})


def test_dataset_priors_centre_each_prompt_on_its_pass_rate():
    rates = np.linspace(0, 1, 200)
    sampler = _sampler(prior_accuracy=rates, posterior={"prior_source": "dataset", "prior_correct": 5.0})
    mean = sampler.tracker.posterior_mean()
    np.testing.assert_allclose(mean, np.clip(rates, 1e-3, 1 - 1e-3))
    np.testing.assert_allclose(sampler.tracker.alpha() + sampler.tracker.beta(), 6.0)


def test_gradient_norm_allocation_needs_statistics_and_uses_eq21():
    overrides = {
        "schedule": {"mode": "continuous", "cold_start_rollouts": 0},
        "allocation": {"grad_std": "gradient_norms"},
    }
    with pytest.raises(ValueError, match="set_gradient_norm_stats"):
        _sampler(**overrides).plan_step()
    sampler = _sampler(**overrides)
    norms = np.where(np.arange(200) < 100, 100.0, 1.0)
    sampler.set_gradient_norm_stats(np.arange(200), norms, norms)
    plan = sampler.plan_step()
    big = plan.prompt_indices < 100
    if big.any() and (~big).any():
        assert plan.rollouts[big].min() > plan.rollouts[~big].max()


def test_gradient_norm_statistics_survive_a_checkpoint():
    import pickle

    overrides = {
        "schedule": {"mode": "continuous", "cold_start_rollouts": 0},
        "allocation": {"grad_std": "gradient_norms"},
    }
    rng = np.random.default_rng(3)
    before = _sampler(**overrides)
    even = np.arange(0, 200, 2)  # the even prompts without the gap term (stored as NaN), the odd ones with it
    before.set_gradient_norm_stats(even, rng.uniform(1, 100, even.size), rng.uniform(1, 100, even.size))
    before.set_gradient_norm_stats(
        np.arange(1, 200, 2), rng.uniform(1, 100, 100), rng.uniform(1, 100, 100), np.ones(100)
    )
    state = pickle.loads(pickle.dumps(before.state_dict()))  # verl torch.save()s it with the dataloader
    saved = before.allocator.grad_stats.copy()
    reference = _steps_with_metrics(before, 0, 5, TRUTH)
    assert all(np.unique(plan.rollouts).size > 2 for plan, _ in reference)  # the statistics shape every allocation
    resumed = _sampler(**overrides)
    resumed.load_state_dict(state)
    np.testing.assert_array_equal(resumed.allocator.grad_stats, saved)  # NaN where unknown, on both sides
    for (plan, _), (want, _) in zip(_steps_with_metrics(resumed, 0, 5, TRUTH), reference, strict=True):
        np.testing.assert_array_equal(plan.rollouts, want.rollouts)
        np.testing.assert_array_equal(plan.prompt_indices, want.prompt_indices)
    # a sampler that lost them cannot allocate
    lost = dict(state, allocator={"grad_stats": None})
    blank = _sampler(**overrides)
    blank.load_state_dict(lost)
    with pytest.raises(ValueError, match="no gradient-norm statistics"):
        blank.plan_step()


def test_forgetting_decays_counts_toward_the_prior():
    sampler = _sampler(schedule={"mode": "continuous", "cold_start_rollouts": 0}, posterior={"forgetting": 0.5})
    plan = sampler.plan_step()
    ids = np.repeat(plan.prompt_indices, plan.rollouts)
    sampler.observe(ids, np.ones(ids.size))
    np.testing.assert_allclose(sampler.tracker.num_observed().sum(), 0.5 * ids.size)


def test_metrics_are_finite_and_namespaced():
    sampler = _sampler(schedule={"num_iterations": 2, "steps_per_iteration": 5})
    rng = np.random.default_rng(0)
    for _ in range(15):
        plan = sampler.plan_step()
        batch = sampler.observe(*_rollout(plan, TRUTH, rng))
    report = sampler.metrics()
    assert {k.split("/")[0] for k in {**batch, **report}} <= {"batch", "posterior", "sampler", "alloc", "schedule"}
    assert report["alloc/total"] == 64 and 0 <= report["sampler/weight_entropy"] <= 1
    assert all(math.isfinite(v) for k, v in report.items())
    assert -1 <= batch["posterior/pred_realised_rank_corr"] <= 1
    # reporting must not consume the generator: metrics() between steps leaves the draws unchanged
    a, b = _sampler(sampler={"score": "thompson"}), _sampler(sampler={"score": "thompson"})
    for _ in range(30):
        pa, pb = a.plan_step(), b.plan_step()
        a.metrics()
        np.testing.assert_array_equal(pa.prompt_indices, pb.prompt_indices)
        a.observe(np.repeat(pa.prompt_indices, pa.rollouts), np.zeros(pa.total_rollouts))
        b.observe(np.repeat(pb.prompt_indices, pb.rollouts), np.zeros(pb.total_rollouts))


def test_extreme_temperature_falls_back_to_exact_log_space_draws():
    # with tau = 1e-3 and the informative score, weights of near-certain prompts underflow to zero
    truth = np.concatenate([np.full(4, 0.5), np.ones(196)])
    sampler = _sampler(
        schedule={"mode": "continuous", "cold_start_rollouts": 8},
        sampler={"temperature": 1e-3, "score": "informative"},
    )
    plans = _run(sampler, 30, truth)
    for plan in plans:
        assert np.unique(plan.prompt_indices).size == 8


def test_drop_policy_redraws_a_batch_in_which_every_prompt_would_be_dropped():
    truth = np.where(np.arange(200) < 190, 0.0, 0.5)  # 190 prompts are never solved
    sampler = _sampler(preset="official_code", m=4, schedule={"num_iterations": 1, "steps_per_iteration": 50})
    plans = _run(sampler, sampler.schedule.num_cold_start_steps(0) + 50, truth)
    for plan in plans:
        if plan.phase == "train":
            assert plan.total_rollouts > 0  # never an empty step
    never = _sampler(preset="official_code", m=4, schedule={"num_iterations": 1, "steps_per_iteration": 5})
    _run(never, never.schedule.num_cold_start_steps(0), np.zeros(200))
    with pytest.raises(RuntimeError, match="zero_variance=floor"):
        never.plan_step()


def test_resume_ignores_where_records_go_but_not_algorithm_settings():
    state = _sampler(dump_dir="/runs/a").state_dict()
    _sampler(dump_dir="/runs/b").load_state_dict(state)  # a different dump directory is fine
    with pytest.raises(ValueError, match=r"allocation\.min_per_prompt"):
        _sampler(dump_dir="/runs/a", allocation={"min_per_prompt": 3}).load_state_dict(state)


FORMAT1 = Path(__file__).resolve().parents[1] / "fixtures" / "sampler_state_format1.pkl"


@pytest.mark.parametrize("case", ["recommended_bounded", "paper_continuous_gradient_norms"])
def test_a_state_saved_before_the_split_resumes_with_the_plans_that_followed_it(case):
    """tests/fixtures/sampler_state_format1.pkl was written by the unsplit sampler (state format 1, commit 6eab1bb):
    60 prompts, m=6, n=8, 13 steps of rewards drawn with default_rng(t) < default_rng(3).random(60), the state, then
    the plans of steps 13..20. A run saved then must resume here with exactly those plans."""
    saved = pickle.loads(FORMAT1.read_bytes())[case]
    assert saved["state"]["format"] == 1
    truth = np.random.default_rng(3).random(60)
    sampler = CurriculumSampler(
        60, batch_size=6, rollouts_per_prompt=8, config=preset_config(saved["preset"], saved["overrides"])
    )
    if saved["dense_pool_max"] is not None:
        sampler.dense_pool_max = saved["dense_pool_max"]
    sampler.load_state_dict(saved["state"])
    assert sampler.step == 13
    for t, (prompts, rollouts) in enumerate(zip(saved["prompts"], saved["rollouts"], strict=True), start=13):
        plan = sampler.plan_step()
        assert plan.prompt_indices.tolist() == prompts and plan.rollouts.tolist() == rollouts, t
        ids = np.repeat(plan.prompt_indices, plan.rollouts)
        sampler.observe(ids, (np.random.default_rng(t).random(ids.size) < truth[ids]).astype(float))
    state = sampler.state_dict()
    assert state["format"] == 2 and {"tracker", "timeline", "policy", "allocator"} <= state.keys()


def test_load_refuses_an_unknown_state_format():
    state = _sampler().state_dict()
    for version in (None, 0, 3):
        with pytest.raises(ValueError, match=rf"unsupported sampler state format {version!r}.*formats 1 and 2"):
            _sampler().load_state_dict(dict(state, format=version))


def test_a_state_saved_before_a_key_existed_resumes_when_the_key_keeps_its_default():
    config = preset_config("paper")
    sampler = CurriculumSampler(240, batch_size=8, rollouts_per_prompt=4, config=config)
    sampler.observe(sampler.plan_step().prompt_indices.repeat(1), np.zeros(8))
    state = sampler.state_dict()
    del state["config"]["allocation"]["advantage_baseline"]  # as written before the key was added
    CurriculumSampler(240, batch_size=8, rollouts_per_prompt=4, config=config).load_state_dict(state)
    changed = preset_config("paper", {"allocation": {"advantage_baseline": "posterior"}})
    with pytest.raises(ValueError, match=r"allocation.advantage_baseline': \('group', 'posterior'\)"):
        CurriculumSampler(240, batch_size=8, rollouts_per_prompt=4, config=changed).load_state_dict(state)
