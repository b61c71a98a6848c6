"""Validation, presets and mapping round trips of cures_verl.config."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cures_verl.config import (
    PRESETS,
    AllocationConfig,
    CuresConfig,
    PosteriorConfig,
    SamplerConfig,
    ScheduleConfig,
    flatten_keys,
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


def test_describe_lists_every_key_once_and_marks_what_differs_from_the_preset():
    cfg = preset_config("recommended", {"schedule": {"mode": "iterations"}, "dump_dir": "true"})
    lines = cfg.describe().splitlines()
    assert lines[0] == "CurES config: preset recommended, 2 keys differ from it (marked *)"
    assert "* cures.schedule.mode=iterations  # preset recommended: continuous" in lines
    assert "* cures.dump_dir='true'  # preset recommended: null" in lines  # quoted: a bare true is a bool
    assert "  cures.sampler.score=informative" in lines and "  cures.posterior.online_update=true" in lines
    keys = [line[2:].partition("=")[0] for line in lines[1:]]
    assert keys == [f"cures.{key}" for key in flatten_keys(cfg.to_dict())]
    first = preset_config("paper").describe().splitlines()[0]
    assert first == "CurES config: preset paper, 0 keys differ from it (marked *)"


_PATH_TEXT = st.text(alphabet="ab1/._- #,=", min_size=1, max_size=12)
_OVERRIDES = st.fixed_dictionaries(
    {},
    optional={
        "seed": st.integers(0, 2**31),
        "dump_dir": st.none() | st.text(alphabet="ab1/._- #,=", max_size=12),
        "posterior": st.fixed_dictionaries(
            {},
            optional={
                "prior_correct": st.floats(1e-6, 1e6),
                "prior_source": st.sampled_from(["uniform", "dataset"]),
                "prior_field": _PATH_TEXT | st.sampled_from(["1", "null", "true", "1e3"]),
                "online_update": st.booleans(),
                "forgetting": st.floats(0.0, 0.999),
                "forgetting_rule": st.sampled_from(["constant", "adaptive"]),
            },
        ),
        "sampler": st.fixed_dictionaries(
            {},
            optional={
                "temperature": st.floats(1e-3, 1e3),
                "temperature_rule": st.sampled_from(["constant", "count_scaled"]),
                "score": st.sampled_from(["mean", "thompson", "expected_std", "informative"]),
                "screening_rollouts": st.just(0) | st.integers(2, 16),
            },
        ),
        "allocation": st.fixed_dictionaries(
            {},
            optional={
                "min_per_prompt": st.integers(1, 4),
                "max_per_prompt": st.none() | st.integers(4, 64),
                "zero_variance": st.sampled_from(["floor", "drop"]),
                "enable": st.booleans(),
            },
        ),
        "schedule": st.fixed_dictionaries(
            {},
            optional={
                "mode": st.sampled_from(["iterations", "continuous"]),
                "num_iterations": st.integers(1, 40),
                "cold_start_rollouts": st.just(0) | st.integers(2, 16),
                "split": st.sampled_from(["contiguous", "shuffled", "field"]),
                "subset_field": _PATH_TEXT,
            },
        ),
    },
)


@settings(max_examples=200, deadline=None)
@given(preset=st.sampled_from(sorted(PRESETS)), overrides=_OVERRIDES)
def test_describe_reads_back_as_the_same_config_and_marks_exactly_the_differences(preset, overrides):
    from cures_verl.config import config_from_overrides

    cfg = preset_config(preset, overrides)
    lines = cfg.describe().splitlines()
    marked = {line[2:].partition("=")[0].removeprefix("cures.") for line in lines[1:] if line.startswith("* ")}
    assert marked == set(cfg.differences_from_preset())
    assert all(line[:2] in ("* ", "  ") for line in lines[1:])
    # the marked lines end with the preset's value as a comment (the last "  # preset " of the line)
    items = [line[2:].rpartition(f"  # preset {preset}: ")[0] if line[0] == "*" else line[2:] for line in lines[1:]]
    assert config_from_overrides(items) == cfg
