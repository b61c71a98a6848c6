"""The recommended configuration: valid, runnable by the core sampler, and ablated one ingredient at a time."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from cures_verl.config import PRESETS, flatten_keys, preset_config
from cures_verl.core.curriculum import CurriculumSampler
from cures_verl.experiments.curriculum.recommended import (
    ABLATIONS,
    EXTRA_VARIANTS,
    RECOMMENDED_NAME,
    RECOMMENDED_OVERRIDES,
    ablation_overrides,
    merge_overrides,
)
from cures_verl.experiments.strategies import STRATEGIES, CuresStrategy, StrategyContext


def _flat(overrides):
    """Every key of the ``paper`` preset with ``overrides`` applied, flat (``sampler.temperature``), no preset."""
    return {k: v for k, v in flatten_keys(preset_config("paper", overrides).to_dict()).items() if k != "preset"}


def test_recommended_overrides_make_a_valid_config_that_differs_from_the_paper_only_where_documented():
    paper, mine = _flat({}), _flat(RECOMMENDED_OVERRIDES)
    changed = {k for k in paper if paper[k] != mine[k]}
    assert changed == {
        "schedule.mode",
        "schedule.cold_start_rollouts",
        "sampler.score",
        "sampler.temperature",
        "posterior.forgetting",
        "posterior.forgetting_rule",
    }
    # what the verl adapter's sampler needs: no cold-start pass, the paper's allocation and loss weighting
    assert mine["allocation.rule"] == "proportional" and mine["allocation.loss_weighting"] == "prompt"


def test_each_ablation_restores_the_papers_values_for_its_ingredient_only():
    paper, mine = _flat({}), _flat(RECOMMENDED_OVERRIDES)
    for ingredient in ABLATIONS:
        ablated = _flat(ablation_overrides(ingredient))
        changed = {k for k in mine if mine[k] != ablated[k]}
        assert changed, ingredient
        for key in changed:  # every key the ablation touches goes back to the paper's value
            assert ablated[key] == paper[key], (ingredient, key)
        # and every other key keeps the recommended value
        assert all(ablated[k] == mine[k] for k in mine if k not in changed), ingredient
    # together, the ablations cover every ingredient of the preset
    covered = set()
    for ingredient in ABLATIONS:
        ablated = _flat(ablation_overrides(ingredient))
        covered |= {k for k in mine if mine[k] != ablated[k]}
    assert covered == {k for k in paper if paper[k] != mine[k]}


def test_extra_variants_change_only_the_allocation_or_add_screening():
    mine = _flat(RECOMMENDED_OVERRIDES)
    allowed = {"allocation.enable", "allocation.rule", "sampler.screening_rollouts"}
    for name in EXTRA_VARIANTS:
        ablated = _flat(ablation_overrides(name))
        assert {k for k in mine if mine[k] != ablated[k]} <= allowed, name
    assert _flat(ablation_overrides("screening"))["sampler.screening_rollouts"] == 2


def test_unknown_ingredient_is_rejected_with_the_choices():
    with pytest.raises(ValueError, match="schedule"):
        ablation_overrides("nope")


def test_merge_overrides_is_nested_and_leaves_its_inputs_alone():
    base = {"sampler": {"score": "informative", "temperature": 0.03}, "schedule": {"mode": "continuous"}}
    extra = {"sampler": {"score": "mean"}, "posterior": {"forgetting": 0.1}}
    before = copy.deepcopy((base, extra))
    merged = merge_overrides(base, extra)
    assert merged == {
        "sampler": {"score": "mean", "temperature": 0.03},
        "schedule": {"mode": "continuous"},
        "posterior": {"forgetting": 0.1},
    }
    assert (base, extra) == before
    merged["sampler"]["temperature"] = 9.0
    assert base["sampler"]["temperature"] == 0.03


def test_the_config_presets_recommended_entry_matches_the_benchmarks():
    assert _flat(PRESETS["recommended"]) == _flat(RECOMMENDED_OVERRIDES), (
        "PRESETS['recommended'] and cures_verl.experiments.curriculum.recommended.RECOMMENDED_OVERRIDES differ; "
        "RECOMMENDED_OVERRIDES must be read from the preset"
    )
    assert _flat(RECOMMENDED_OVERRIDES) != _flat({})


def test_the_recommended_sampler_trains_from_the_first_step_spends_the_whole_budget_and_forgets():
    config = preset_config("paper", RECOMMENDED_OVERRIDES)
    sampler = CurriculumSampler(200, batch_size=8, rollouts_per_prompt=8, config=config)
    rng = np.random.default_rng(0)
    truth = rng.uniform(size=200)
    observed = 0.0  # the posterior's observed counts, decayed by each step's reported rate
    rates = []
    for step in range(20):
        plan = sampler.plan_step()
        assert plan.is_training and plan.phase == "train" and plan.total_rollouts == 64
        assert np.unique(plan.prompt_indices).size == 8 and plan.rollouts.min() >= 2
        ids = np.repeat(plan.prompt_indices, plan.rollouts)
        p = truth if step < 10 else 1.0 - truth  # the policy moves after step 10
        metrics = sampler.observe(ids, (rng.random(ids.size) < p[ids]).astype(float))
        rate = metrics["posterior/forgetting"]  # reported on every training step
        assert 0.0 <= rate <= 0.1
        rates.append(rate)
        observed = (observed + ids.size) * (1.0 - rate)
        assert sampler.tracker.num_observed().sum() == pytest.approx(observed)  # the counts shrank by that rate
    assert max(rates[:10]) > 0  # adaptive: it forgets a little while the policy is still ...
    assert rates[-1] == 0.1  # ... and up to the cap once the predictions keep failing


def test_recommended_strategy_is_registered_with_these_overrides():
    spec = STRATEGIES[RECOMMENDED_NAME]
    ctx = StrategyContext(num_prompts=640, batch_size=16, rollouts_per_prompt=8, seed=5)
    strategy = spec.factory(ctx)
    assert isinstance(strategy, CuresStrategy)
    assert strategy.config.seed == 5
    got = flatten_keys(strategy.config.to_dict())
    for key, value in _flat(RECOMMENDED_OVERRIDES).items():
        if not key.startswith(("schedule.num_iterations", "schedule.steps_per_iteration")) and key != "seed":
            assert got[key] == value, key
