"""Strategies: rollout accounting, determinism, and each strategy's selection and allocation rule."""

from __future__ import annotations

import numpy as np
import pytest

from cures_verl.bench.experiment import SimulationConfig, resolve_specs, run_strategy
from cures_verl.bench.simulator import Learner, LearnerConfig, make_problem
from cures_verl.bench.strategies import (
    DEFAULT_STRATEGIES,
    STRATEGIES,
    CuresStrategy,
    DynamicSampling,
    Environment,
    MoPPS,
    Oracle,
    Rollouts,
    SpeedRL,
    Strategy,
    StrategyContext,
    StrategyOptions,
    cures_config_for,
    cures_strategy_spec,
    parse_cures_variant,
    register_strategy,
)

SMALL = SimulationConfig(
    learner=LearnerConfig(num_prompts=640, num_clusters=8),
    batch_size=16,
    rollouts_per_prompt=8,
    steps=40,
    seeds=(0, 1),
)


@pytest.fixture(scope="module")
def small_runs():
    specs = resolve_specs(SMALL)
    return {name: run_strategy(specs[name], 3, SMALL) for name in specs}


def test_every_default_strategy_is_registered_with_a_citation():
    assert set(DEFAULT_STRATEGIES) <= set(STRATEGIES)
    for name in DEFAULT_STRATEGIES:
        assert STRATEGIES[name].citation and STRATEGIES[name].description


def test_every_strategy_spends_exactly_its_budget_in_every_step_and_in_total(small_runs):
    for name, run in small_runs.items():
        assert run.spent.size == SMALL.steps, name
        assert np.all(run.spent == SMALL.budget), name
        assert run.cumulative[-1] == SMALL.total_budget, name
        assert np.all(run.trained <= run.spent.cumsum()), name


def test_accuracy_changes_only_in_steps_with_an_update(small_runs):
    for name, run in small_runs.items():
        accuracy = np.concatenate([[run.start_accuracy], run.accuracy])
        still = run.num_updates == 0
        np.testing.assert_array_equal(accuracy[1:][still], accuracy[:-1][still], err_msg=name)
        assert np.all(accuracy[1:][~still] != accuracy[:-1][~still]), name


def test_strategies_without_screening_update_every_step_and_cold_start_ones_do_not(small_runs):
    for name in ("uniform", "knapsack", "mopps", "oracle"):
        assert np.all(small_runs[name].num_updates == 1), name
    # CurES and GVM: 640 / 4 subsets = 160 prompts -> 5 cold-start steps of 128 rollouts, then 10 training steps
    for name in ("cures_paper", "cures_official_code", "gvm"):
        pattern = np.tile(np.r_[np.zeros(5), np.ones(10)], 3)[:40]
        np.testing.assert_array_equal(small_runs[name].num_updates, pattern, err_msg=name)
    assert small_runs["speed_rl"].num_updates[0] == 0  # the first step only screens
    assert small_runs["dapo"].num_updates.sum() < SMALL.steps  # it needs more than one round per update


def test_runs_are_deterministic_under_a_seed():
    spec = STRATEGIES["cures_paper"]
    a, b = run_strategy(spec, 11, SMALL), run_strategy(spec, 11, SMALL)
    np.testing.assert_array_equal(a.accuracy, b.accuracy)
    c = run_strategy(spec, 12, SMALL)
    assert not np.array_equal(a.accuracy, c.accuracy)


def test_all_strategies_start_from_the_same_learner_for_a_seed(small_runs):
    starts = {run.start_accuracy for run in small_runs.values()}
    assert len(starts) == 1


def _env(num_prompts=64, m=4, n=8, seed=0, **learner):
    config = LearnerConfig(num_prompts=num_prompts, num_clusters=4, **learner)
    learner_obj = Learner(make_problem(config, np.random.default_rng(seed)), config)
    env = Environment(learner_obj, batch_size=m, rollouts_per_prompt=n, rng=np.random.default_rng(seed + 1))
    ctx = StrategyContext(num_prompts=num_prompts, batch_size=m, rollouts_per_prompt=n, seed=seed)
    return env, ctx


def test_environment_refuses_to_exceed_the_step_budget():
    class Greedy(Strategy):
        name = "greedy"

        def step(self, env):
            env.generate(np.array([0]), np.array([env.budget + 1]))

    env, _ = _env()
    with pytest.raises(RuntimeError, match="budget"):
        env.run_step(Greedy())


def test_dapo_trains_only_on_informative_groups_and_only_once_it_has_m():
    env, ctx = _env(m=4, n=8)
    dapo = DynamicSampling(ctx)
    trained: list[Rollouts] = []
    env.train = lambda rollouts, loss_weights=None: trained.append(rollouts)  # type: ignore[method-assign]
    for _ in range(6):
        env.run_step(dapo)
        assert env.spent == env.budget
    for batch in trained:
        groups, counts, flat = _groups(batch)
        assert flat.sum() == 0  # no all-equal group
        assert groups.size == 4 and np.all(counts == 8)  # exactly m groups of n


def _groups(batch):
    from cures_verl.bench.rules import zero_variance_groups

    return zero_variance_groups(batch.group_ids, batch.rewards)


def test_dapo_trains_on_what_it_has_after_the_maximum_number_of_rounds():
    # a nearly solved dataset (p ~ 0.98): a group of 4 is informative ~7% of the time, so m = 4 never arrive
    env, _ = _env(m=4, n=4, difficulty_mean=4.0, difficulty_std=0.1)
    ctx = StrategyContext(
        num_prompts=64, batch_size=4, rollouts_per_prompt=4, seed=0, options=StrategyOptions(dapo_max_rounds=3)
    )
    dapo = DynamicSampling(ctx)
    sizes = []
    original = env.train

    def spy(rollouts, loss_weights=None):
        if rollouts.size:  # an empty batch is a no-op
            sizes.append(np.unique(rollouts.group_ids).size)
        original(rollouts, loss_weights)

    env.train = spy  # type: ignore[method-assign]
    updates = [env.run_step(dapo).num_updates for _ in range(60)]
    steps_with_update = [i + 1 for i, u in enumerate(updates) if u]
    assert steps_with_update and all(step % 3 == 0 for step in steps_with_update)  # only when the bound is hit
    assert all(0 < size < 4 for size in sizes)  # trained on the few informative groups it had


def test_speed_rl_keeps_only_mixed_screens_and_trains_on_groups_of_n():
    env, ctx = _env(num_prompts=200, m=4, n=8, difficulty_mean=0.0, difficulty_std=3.0)
    speed = SpeedRL(ctx)
    trained: list[Rollouts] = []
    original_train = env.train

    def spy(rollouts, loss_weights=None):
        trained.append(rollouts)
        original_train(rollouts, loss_weights)

    env.train = spy  # type: ignore[method-assign]
    for _ in range(8):
        env.run_step(speed)
        assert env.spent == env.budget
        for screened in speed.queue:  # queued screens are mixed: 0 < accuracy < 1
            assert 0 < screened.rewards.mean() < 1 and screened.size == 4
    batches = [b for b in trained if b.size]
    assert batches
    for batch in batches:
        _, counts, flat = _groups(batch)
        assert np.all(counts == 8) and flat.sum() == 0  # screening (mixed) + continuation = n, never all-equal


def test_mopps_selects_the_candidates_whose_posterior_sits_at_one_half():
    env, ctx = _env(num_prompts=16, m=4, n=8)
    ctx = StrategyContext(
        num_prompts=16, batch_size=4, rollouts_per_prompt=8, seed=0, options=StrategyOptions(mopps_candidate_ratio=4)
    )
    mopps = MoPPS(ctx)
    # near-certain posteriors: prompts 0-3 at 0.5, the rest at 0.02 or 0.98
    mopps.alpha[:] = np.where(np.arange(16) % 2 == 0, 2.0, 98.0)
    mopps.beta[:] = 100.0 - mopps.alpha
    mopps.alpha[:4] = mopps.beta[:4] = 1000.0
    chosen: list[np.ndarray] = []
    original = env.generate

    def spy(ids, counts, group_ids=None):
        chosen.append(np.sort(ids))
        return original(ids, counts, group_ids=group_ids)

    env.generate = spy  # type: ignore[method-assign]
    env.run_step(mopps)
    assert chosen[0].tolist() == [0, 1, 2, 3]


def test_oracle_takes_the_prompts_with_the_largest_true_variance_and_spends_the_budget():
    env, ctx = _env(num_prompts=40, m=5, n=8)
    p = env.true_accuracy()
    expected = set(np.argsort(-(p * (1 - p)))[:5].tolist())
    seen: list[np.ndarray] = []
    original = env.generate

    def spy(ids, counts, group_ids=None):
        seen.append(ids)
        assert counts.min() >= 2
        return original(ids, counts, group_ids=group_ids)

    env.generate = spy  # type: ignore[method-assign]
    env.run_step(Oracle(ctx))
    assert set(seen[0].tolist()) == expected and env.spent == env.budget


def test_cures_strategy_maps_the_paper_schedule_onto_the_simulator():
    ctx = StrategyContext(num_prompts=9600, batch_size=64, rollouts_per_prompt=8, seed=3)
    config = cures_config_for(ctx, "paper")
    assert (config.schedule.num_iterations, config.schedule.steps_per_iteration) == (15, 10)
    assert config.schedule.cold_start_rollouts == 4 and config.seed == 3
    overridden = cures_config_for(ctx, "paper", {"schedule": {"steps_per_iteration": 20}})
    assert overridden.schedule.steps_per_iteration == 20 and overridden.schedule.num_iterations == 15


def test_cures_official_code_drops_zero_variance_prompts_and_weights_by_rollout():
    env, ctx = _env(num_prompts=160, m=4, n=8, difficulty_mean=0.0, difficulty_std=4.0)
    ctx = StrategyContext(num_prompts=160, batch_size=4, rollouts_per_prompt=8, seed=0)
    strategy = CuresStrategy(ctx, cures_config_for(ctx, "official_code"), name="official")
    weights_seen: list[np.ndarray] = []
    original = env.train

    def spy(rollouts, loss_weights=None):
        weights_seen.append(loss_weights)
        original(rollouts, loss_weights)

    env.train = spy  # type: ignore[method-assign]
    for _ in range(15):  # 40-prompt subsets: 5 cold-start steps (2 plans each), then 10 training steps
        record = env.run_step(strategy)
        # the whole budget goes to the kept prompts; a batch whose prompts are all dropped spends nothing (as the
        # released code skips it)
        assert record.spent in (0, env.budget) and (record.spent > 0 or record.num_updates == 0)
    assert weights_seen and all(np.all(w == 1.0) for w in weights_seen)
    tracker = strategy.sampler.tracker
    plan = strategy.sampler.last_plan
    assert plan is not None and plan.phase == "train"
    mle = tracker.mle_accuracy(plan.prompt_indices)
    np.testing.assert_array_equal(plan.rollouts == 0, (mle == 0) | (mle == 1))


def test_cures_variants_register_from_a_preset_and_overrides():
    name, preset, overrides = parse_cures_variant('cures_t1=paper:{"sampler": {"temperature": 1.0}}')
    spec = cures_strategy_spec(name, preset, overrides)
    ctx = StrategyContext(num_prompts=640, batch_size=16, rollouts_per_prompt=8, seed=0)
    strategy = spec.factory(ctx)
    assert isinstance(strategy, CuresStrategy) and strategy.config.sampler.temperature == 1.0
    config = SimulationConfig(
        learner=SMALL.learner,
        batch_size=16,
        steps=5,
        seeds=(0,),
        strategies=("uniform", name),
        cures_variants=((name, preset, overrides),),
    )
    assert list(resolve_specs(config)) == ["uniform", name]


def test_bad_cures_variants_fail_early_with_the_key_named():
    with pytest.raises(ValueError, match="unknown config key cures.sampler.tau"):
        cures_strategy_spec("x", "paper", {"sampler": {"tau": 1.0}})
    with pytest.raises(ValueError, match="unknown CurES preset"):
        cures_strategy_spec("x", "nope")
    with pytest.raises(ValueError, match="NAME=PRESET"):
        parse_cures_variant("no-equals-sign")
    with pytest.raises(ValueError, match="valid JSON"):
        parse_cures_variant("x=paper:{oops")


def test_register_strategy_refuses_duplicates():
    with pytest.raises(ValueError, match="already registered"):
        register_strategy("uniform", STRATEGIES["uniform"].factory, description="d", citation="c")


def test_a_cold_start_larger_than_the_budget_is_rejected():
    ctx = StrategyContext(num_prompts=640, batch_size=16, rollouts_per_prompt=2, seed=0)
    with pytest.raises(ValueError, match="cold-start"):
        STRATEGIES["cures_paper"].factory(ctx)
