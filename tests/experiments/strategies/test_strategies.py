"""Strategies: rollout accounting, determinism, and each strategy's selection and allocation rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cures_verl.experiments.curriculum.experiment import SimulationConfig, resolve_specs, run_strategy, summarise
from cures_verl.experiments.curriculum.simulator import Learner, LearnerConfig, make_problem
from cures_verl.experiments.strategies import (
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
    spearman,
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
    for name in ("uniform", "knapsack", "mopps", "oracle", "cures_recommended"):
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
    from cures_verl.experiments.strategies.rules import zero_variance_groups

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

    def spy(rollouts, loss_weights=None, advantages=None):
        if rollouts.size:  # an empty batch is a no-op
            sizes.append(np.unique(rollouts.group_ids).size)
        original(rollouts, loss_weights, advantages)

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

    def spy(rollouts, loss_weights=None, advantages=None):
        trained.append(rollouts)
        original_train(rollouts, loss_weights, advantages)

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

    def spy(rollouts, loss_weights=None, advantages=None):
        weights_seen.append(loss_weights)
        original(rollouts, loss_weights, advantages)

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


# ---------------------------------------------------------------------------------------------- prediction quality
def test_record_prediction_bins_realised_and_true_accuracy_by_rollouts():
    env, _ = _env(num_prompts=64, m=4, n=8)
    out = env.generate(np.array([3, 9]), np.array([4, 2]))
    truth = env.true_accuracy()[[3, 9]]
    env.record_prediction(np.array([9, 3, 50]), np.array([0.05, 0.72, 0.5]), out)  # prompt 50 has no rollout
    realised = [out.rewards[out.prompt_ids == p].mean() for p in (3, 9)]
    expected = np.zeros((10, 4))
    expected[7] = [4, 4 * 0.72, 4 * realised[0], 4 * truth[0]]  # 0.72 falls in bin 7, weight 4 rollouts
    expected[0] = [2, 2 * 0.05, 2 * realised[1], 2 * truth[1]]
    np.testing.assert_allclose(env.calibration, expected)


def test_record_prediction_rejects_repeated_prompts_and_predictions_outside_the_unit_interval():
    env, _ = _env()
    out = env.generate(np.array([1, 2]), np.array([2, 2]))
    with pytest.raises(ValueError, match="distinct"):
        env.record_prediction(np.array([1, 1]), np.array([0.5, 0.5]), out)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        env.record_prediction(np.array([1, 2]), np.array([0.5, 1.5]), out)


def test_a_step_reports_the_rank_correlation_of_what_was_predicted():
    class Prophet(Strategy):
        """Predicts each prompt's true accuracy: the correlation with the truth is exactly 1."""

        name = "prophet"

        def step(self, env):
            prompts = np.arange(8)
            out = env.generate(prompts, np.full(8, 8))
            env.record_prediction(prompts, env.true_accuracy()[prompts], out)
            env.train(out)

    env, _ = _env(num_prompts=64, m=8, n=8, difficulty_std=3.0)
    record = env.run_step(Prophet())
    assert record.rank_corr_true == pytest.approx(1.0)
    assert -1.0 <= record.rank_corr <= 1.0
    silent = env.run_step(
        STRATEGIES["uniform"].factory(StrategyContext(num_prompts=64, batch_size=8, rollouts_per_prompt=8, seed=0))
    )
    assert math.isnan(silent.rank_corr) and math.isnan(silent.rank_corr_true)


@settings(max_examples=60)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), min_size=2, max_size=30))
def test_spearman_is_pearson_of_average_ranks_and_ignores_monotone_transforms(pairs):
    x, y = (np.array(v) / 20.0 for v in zip(*pairs, strict=True))  # a coarse grid, so that ties occur
    value = spearman(x, y)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        assert math.isnan(value)
        return

    def ranks(v):  # average ranks, by the definition
        return np.array([np.sum(v < a) + (np.sum(v == a) - 1) / 2 for a in v])

    assert value == pytest.approx(np.corrcoef(ranks(x), ranks(y))[0, 1], abs=1e-9)
    assert spearman(np.exp(3 * x), y**3) == pytest.approx(value, abs=1e-9)
    assert spearman(x, -y) == pytest.approx(-value, abs=1e-9)


def test_strategies_with_a_posterior_log_predictions_and_the_others_do_not(small_runs):
    for name, run in small_runs.items():
        logged = run.calibration[:, 0].sum() > 0
        expected = name.startswith("cures") or name in ("mopps", "knapsack")
        assert logged == expected, name
        assert 0.0 < run.coverage <= 1.0, name
    # CurES logs its training steps only; the recommended configuration trains and predicts from the first step
    recommended = small_runs["cures_recommended"]
    assert np.isfinite(recommended.rank_corr).mean() > 0.9
    assert recommended.calibration[:, 0].sum() == recommended.spent.sum()
    paper = small_runs["cures_paper"]
    cold = paper.num_updates == 0
    assert np.all(np.isnan(paper.rank_corr[cold]))


def test_summaries_pool_calibration_over_seeds_and_the_oracle_is_its_own_reference():
    specs = resolve_specs(SMALL)
    names = ("uniform", "mopps", "oracle")
    results = {name: [run_strategy(specs[name], seed, SMALL) for seed in SMALL.seeds] for name in names}
    _, summaries = summarise(SMALL, results, specs)
    np.testing.assert_allclose(summaries["mopps"].calibration, sum(r.calibration for r in results["mopps"]))
    assert summaries["oracle"].oracle_rollouts_ratio.values == (1.0, 1.0)
    assert summaries["mopps"].predicts and not summaries["uniform"].predicts
    assert summaries["uniform"].calibration_error is None
    table = summaries["mopps"].calibration
    used = table[:, 0] > 0
    gaps = np.abs(table[used, 1] - table[used, 2]) / table[used, 0]
    assert summaries["mopps"].calibration_error == pytest.approx(np.average(gaps, weights=table[used, 0]))


def test_speed_rl_trains_on_at_most_m_prompts_and_never_on_a_handful_when_n_exceeds_twice_the_screen():
    # n = 12: continuation 8 > screening 4. Without the cap the updates alternated between 96 prompts and ~3.
    env, ctx = _env(num_prompts=400, m=8, n=12, difficulty_mean=0.0, difficulty_std=2.0)
    speed = SpeedRL(ctx)
    groups_per_update = []
    original_train = env.train

    def spy(rollouts, loss_weights=None, advantages=None):
        groups_per_update.append(np.unique(rollouts.group_ids).size)
        original_train(rollouts, loss_weights, advantages)

    env.train = spy  # type: ignore[method-assign]
    for _ in range(30):
        env.run_step(speed)
        assert env.spent == env.budget
    later = np.array(groups_per_update[5:])
    assert later.max() <= 8
    assert later.mean() >= 4


# ---------------------------------------------------------------------------------------------- screening
def _screening_strategy(ctx, **sampler):
    overrides = {
        "schedule": {"mode": "continuous", "cold_start_rollouts": 0},
        "sampler": {"score": "informative", "temperature": 0.03, "screening_rollouts": 2, **sampler},
    }
    return CuresStrategy(ctx, cures_config_for(ctx, "paper", overrides), name="screening")


def test_screening_never_overspends_and_counts_and_observes_every_screening_rollout():
    env, ctx = _env(num_prompts=200, m=8, n=8, difficulty_mean=0.0, difficulty_std=3.0)
    strategy = _screening_strategy(ctx)
    calls: list[tuple[np.ndarray, np.ndarray | None]] = []
    trained: list[tuple[Rollouts, np.ndarray]] = []
    original_generate, original_train = env.generate, env.train

    def generate(prompt_ids, counts, *, group_ids=None):
        calls.append((np.asarray(counts), group_ids))
        return original_generate(prompt_ids, counts, group_ids=group_ids)

    def train(rollouts, loss_weights=None, advantages=None):
        trained.append((rollouts, loss_weights))
        original_train(rollouts, loss_weights, advantages)

    env.generate, env.train = generate, train  # type: ignore[method-assign]
    screened_total = 0
    for _ in range(25):
        calls.clear()
        observed = strategy.sampler.tracker.num_observed().sum()
        record = env.run_step(strategy)
        screens, continuation, direct = calls  # one call each: screen, continue the kept, the direct prompts
        assert np.all(screens[0] == 2) and continuation[1] is not None and direct[1] is None
        generated = sum(int(c.sum()) for c, _ in calls)
        assert record.spent == generated <= env.budget  # the screens are charged like any rollout
        # the step spends its whole budget unless nothing was left to train (every planned prompt dropped)
        assert record.spent == env.budget or record.num_updates == 0
        # every rollout, dropped screens included, reaches the posterior (no forgetting in this config)
        np.testing.assert_allclose(strategy.sampler.tracker.num_observed().sum() - observed, generated)
        screened_total += int(screens[0].sum())
    assert screened_total > 0
    for batch, weights in trained:
        groups, counts, _ = _groups(batch)
        assert np.all(counts >= 2)
        # prompt weighting (Eq. 16): each rollout weighs n / (its group's size)
        size_of = dict(zip(groups.tolist(), counts.tolist(), strict=True))
        np.testing.assert_allclose(weights, [8 / size_of[g] for g in batch.group_ids.tolist()])


def test_screening_trains_a_screened_prompt_only_when_its_screen_has_both_outcomes():
    env, ctx = _env(num_prompts=200, m=8, n=8, difficulty_mean=0.0, difficulty_std=3.0)
    strategy = _screening_strategy(ctx, screening_threshold=1.0)  # screen every prompt planned more than s
    generated: list[Rollouts] = []
    trained: list[Rollouts] = []
    original_generate, original_train = env.generate, env.train

    def generate(prompt_ids, counts, *, group_ids=None):
        generated.append(original_generate(prompt_ids, counts, group_ids=group_ids))
        return generated[-1]

    def train(rollouts, loss_weights=None, advantages=None):
        trained.append(rollouts)
        original_train(rollouts, loss_weights, advantages)

    env.generate, env.train = generate, train  # type: ignore[method-assign]
    checked = 0
    for _ in range(10):
        generated.clear()
        trained.clear()
        env.run_step(strategy)
        screen = generated[0]  # the first call of a step is the screen
        ids, _, flat = _groups(screen)
        mixed = set(ids[flat == 0].tolist())
        batch = Rollouts.concat(trained)
        # a screened group is trained iff its screen was mixed; a trained screened group is never all-equal
        assert set(np.unique(batch.group_ids).tolist()) & set(ids.tolist()) == mixed
        if mixed:  # screen + continuation: both outcomes whatever the continuation gave
            _, counts, batch_flat = _groups(batch.select_groups(np.array(sorted(mixed))))
            assert batch_flat.sum() == 0 and np.all(counts > 2)
        checked += len(mixed)
    assert checked > 0


def test_screening_runs_are_deterministic_under_a_seed():
    spec = cures_strategy_spec("rec_screening", "recommended", {"sampler": {"screening_rollouts": 2}})
    a, b = run_strategy(spec, 11, SMALL), run_strategy(spec, 11, SMALL)
    np.testing.assert_array_equal(a.accuracy, b.accuracy)
    np.testing.assert_array_equal(a.spent, b.spent)
    assert np.all(a.spent <= SMALL.budget)
    c = run_strategy(spec, 12, SMALL)
    assert not np.array_equal(a.accuracy, c.accuracy)


def test_screening_with_a_threshold_no_prompt_falls_below_is_plain_cures():
    plain = cures_strategy_spec("rec", "recommended")
    never = cures_strategy_spec(
        "rec_never_screens", "recommended", {"sampler": {"screening_rollouts": 2, "screening_threshold": 1e-9}}
    )
    a, b = run_strategy(plain, 5, SMALL), run_strategy(never, 5, SMALL)
    np.testing.assert_array_equal(a.accuracy, b.accuracy)
    np.testing.assert_array_equal(a.spent, b.spent)


def test_a_screen_as_large_as_a_group_is_rejected_with_the_key_named():
    ctx = StrategyContext(num_prompts=640, batch_size=16, rollouts_per_prompt=4, seed=0)
    spec = cures_strategy_spec("x", "recommended", {"sampler": {"screening_rollouts": 4}})
    with pytest.raises(ValueError, match=r"cures\.sampler\.screening_rollouts=4"):
        spec.factory(ctx)


def test_the_informative_normalizer_scales_an_sgd_step_by_rows_over_informative_rows():
    # allocation.loss_normalizer=informative multiplies the step's loss weights by rows / rows with a nonzero
    # advantage; with plain SGD the parameter change is that multiple of the plain run's, on the same rollouts
    learner_cfg = LearnerConfig(num_prompts=640, num_clusters=8, optimizer="sgd", lr=1.0)
    ctx = StrategyContext(num_prompts=640, batch_size=16, rollouts_per_prompt=8, seed=0)
    changes, scales = {}, {}
    for normalizer in ("all", "informative"):
        learner = Learner(make_problem(learner_cfg, np.random.default_rng(1)), learner_cfg)
        env = Environment(learner, batch_size=16, rollouts_per_prompt=8, rng=np.random.default_rng(2))
        overrides = {"schedule": {"mode": "continuous", "cold_start_rollouts": 0}}
        overrides["allocation"] = {"loss_normalizer": normalizer}
        strategy = CuresStrategy(ctx, cures_config_for(ctx, "paper", overrides))
        before = learner.params.copy()
        strategy.step(env)
        changes[normalizer] = learner.params - before
        plan = strategy.sampler.last_plan
        rewards = strategy.sampler.tracker.num_correct[plan.prompt_indices]
        mixed = (rewards > 0) & (rewards < plan.rollouts)
        scales[normalizer] = plan.rollouts.sum() / plan.rollouts[mixed].sum()
    assert scales["informative"] > 1.0  # some groups were all-equal
    np.testing.assert_allclose(changes["informative"], scales["informative"] * changes["all"], rtol=1e-9, atol=1e-12)
