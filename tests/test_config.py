"""Validation, presets and mapping round trips of cures_verl.config."""

from __future__ import annotations

import dataclasses

import pytest

from cures_verl.config import (
    PRESETS,
    AllocationConfig,
    CuresConfig,
    PosteriorConfig,
    SamplerConfig,
    ScheduleConfig,
    preset_config,
    preset_values,
)


@pytest.mark.parametrize(
    ("factory", "key"),
    [
        (lambda: SamplerConfig(temperature=0.0), "cures.sampler.temperature"),
        (lambda: SamplerConfig(temperature=1e4), "cures.sampler.temperature"),
        (lambda: SamplerConfig(score="best"), "cures.sampler.score"),
        (lambda: SamplerConfig(informative_group_size=1), "cures.sampler.informative_group_size"),
        (lambda: SamplerConfig(screening_rollouts=1), "cures.sampler.screening_rollouts"),
        (lambda: SamplerConfig(screening_rollouts=-2), "cures.sampler.screening_rollouts"),
        (lambda: SamplerConfig(screening_rollouts=2.0), "cures.sampler.screening_rollouts"),
        (lambda: SamplerConfig(screening_rollouts=True), "cures.sampler.screening_rollouts"),
        (lambda: SamplerConfig(screening_threshold=0.0), "cures.sampler.screening_threshold"),
        (lambda: SamplerConfig(screening_threshold=1.5), "cures.sampler.screening_threshold"),
        (lambda: SamplerConfig(screening_threshold=float("nan")), "cures.sampler.screening_threshold"),
        (lambda: SamplerConfig(screening_threshold="high"), "cures.sampler.screening_threshold"),
        (lambda: PosteriorConfig(prior_correct=0), "cures.posterior.prior_correct"),
        (lambda: PosteriorConfig(forgetting=1.0), "cures.posterior.forgetting"),
        (lambda: PosteriorConfig(reward_rule="soft"), "cures.posterior.reward_rule"),
        (lambda: AllocationConfig(min_per_prompt=0), "cures.allocation.min_per_prompt"),
        (lambda: AllocationConfig(min_per_prompt=4, max_per_prompt=3), "cures.allocation.max_per_prompt"),
        (lambda: AllocationConfig(zero_variance="keep"), "cures.allocation.zero_variance"),
        (lambda: AllocationConfig(multiple_of=0), "cures.allocation.multiple_of"),
        (lambda: ScheduleConfig(cold_start_rollouts=1), "cures.schedule.cold_start_rollouts"),
        (lambda: ScheduleConfig(num_iterations=0), "cures.schedule.num_iterations"),
        (lambda: ScheduleConfig(mode="epochs"), "cures.schedule.mode"),
        (lambda: CuresConfig(preset="best"), "cures.preset"),
        (lambda: CuresConfig(seed=-1), "cures.seed"),
    ],
)
def test_invalid_values_raise_an_error_naming_the_full_key(factory, key):
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        factory()


def test_integer_where_an_integer_is_required_rejects_floats_and_bools():
    with pytest.raises(ValueError, match="expected an integer"):
        AllocationConfig(min_per_prompt=2.0)
    with pytest.raises(ValueError, match="expected an integer"):
        ScheduleConfig(steps_per_iteration=True)


def test_defaults_are_the_paper_preset():
    assert preset_config("paper") == CuresConfig()


def test_screening_is_off_in_every_preset_and_a_one_rollout_screen_says_why_it_is_refused():
    for name in PRESETS:
        assert preset_config(name).sampler.screening_rollouts == 0
        assert preset_config(name).sampler.screening_threshold == 0.9
    with pytest.raises(ValueError, match="never has both outcomes"):
        SamplerConfig(screening_rollouts=1)
    cfg = preset_config("recommended", {"sampler": {"screening_rollouts": 4, "screening_threshold": 1}})
    assert (cfg.sampler.screening_rollouts, cfg.sampler.screening_threshold) == (4, 1.0)


def test_official_code_preset_mimics_the_released_code():
    cfg = preset_config("official_code")
    assert cfg.sampler.temperature == 100.0 and cfg.sampler.temperature_rule == "count_scaled"
    assert cfg.allocation.zero_variance == "drop" and cfg.allocation.accuracy_estimate == "mle"
    assert cfg.posterior.online_update is False
    assert cfg.preset == "official_code"


def test_from_mapping_applies_the_preset_then_the_explicit_keys():
    cfg = CuresConfig.from_mapping({"preset": "official_code", "sampler": {"temperature": 5}})
    assert cfg.sampler.temperature == 5.0 and isinstance(cfg.sampler.temperature, float)
    assert cfg.allocation.zero_variance == "drop"
    assert cfg.differences_from_preset() == {"sampler.temperature": (100.0, 5.0)}


def test_from_mapping_rejects_unknown_keys_with_the_valid_ones_listed():
    with pytest.raises(ValueError, match=r"unknown config key cures\.sampler\.temprature.*temperature"):
        CuresConfig.from_mapping({"sampler": {"temprature": 0.1}})
    with pytest.raises(ValueError, match="must be a mapping"):
        CuresConfig.from_mapping({"sampler": 0.1})


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_round_trips_through_a_plain_dict(name):
    cfg = preset_config(name)
    assert CuresConfig.from_mapping(cfg.to_dict()) == cfg
    flat = preset_values(name)
    assert flat["preset"] == name
    assert all("." in key or key in {"enable", "preset", "seed", "dump_dir"} for key in flat)


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        CuresConfig().seed = 3  # type: ignore[misc]


def test_config_from_command_line_overrides_parses_scalars_and_refuses_unknown_keys():
    from cures_verl.config import config_from_overrides

    cfg = config_from_overrides(
        [
            "data.train_batch_size=16",
            "cures.preset=recommended",
            "cures.sampler.temperature=0.5",
            "cures.allocation.max_per_prompt=null",
            "cures.schedule.train_on_cold_start=true",
            "+cures.seed=7",
        ]
    )
    assert cfg is not None and cfg.preset == "recommended"
    assert cfg.sampler.temperature == 0.5 and cfg.allocation.max_per_prompt is None
    assert cfg.schedule.train_on_cold_start is True
    assert cfg.seed == 7 and cfg.schedule.mode == "continuous"  # the preset's own values stay
    assert config_from_overrides(["cures.enable=false", "cures.preset=paper"]) is None
    with pytest.raises(ValueError, match="cures.sampler.temprature"):
        config_from_overrides(["cures.sampler.temprature=0.5"])
