"""CPU mode's profile (YAML -> Hydra overrides), environment, config validation and Ray pre-flight check."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("verl")
pytest.importorskip("hydra")

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from cures_verl.config import flatten_keys  # noqa: E402
from cures_verl.cpu import launch  # noqa: E402
from cures_verl.cpu.launch import compose_cpu_config, validate_cpu_config  # noqa: E402
from cures_verl.cpu.profile import (  # noqa: E402
    ADDED_KEYS,
    CPU_PROFILE_PATH,
    cpu_mode_env,
    cpu_profile_overrides,
    format_override_value,
    load_cpu_profile,
)
from cures_verl.cpu.resources import (  # noqa: E402
    RayResourceError,
    check_ray_resources,
    ray_resource_demand,
)


@pytest.fixture(scope="module")
def verl_defaults():
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        return compose(config_name="ppo_trainer")


@pytest.fixture(scope="module")
def cpu_config():
    return compose_cpu_config(["actor_rollout_ref.model.path=/unused"])


# ----------------------------------------------------------------------------------------- profile


def test_profile_keys_exist_in_verl_except_the_declared_additions(verl_defaults):
    flat = flatten_keys(load_cpu_profile())
    for key in flat:
        parent, _, leaf = key.rpartition(".")
        exists = leaf in OmegaConf.select(verl_defaults, parent).keys()
        assert exists != (key in ADDED_KEYS), f"{key}: in verl={exists}, declared added={key in ADDED_KEYS}"
    assert ADDED_KEYS <= set(flat)


def test_profile_yaml_follows_verls_comment_rules():
    """verl's config CI rules: a comment above every key, a blank line between keys, no inline comments."""
    lines = CPU_PROFILE_PATH.read_text().splitlines()
    key_line = re.compile(r"^(\s*)([A-Za-z_][\w]*):")
    for number, line in enumerate(lines):
        match = key_line.match(line)
        if not match:
            continue
        value = line[match.end() :].strip()
        assert "#" not in value, f"line {number + 1}: inline comment"
        if not value:  # a section header such as "trainer:" needs no comment
            continue
        assert lines[number - 1].strip().startswith("#"), f"line {number + 1}: {line.strip()!r} has no comment above"
        comment_start = number - 1
        while comment_start > 0 and lines[comment_start - 1].strip().startswith("#"):
            comment_start -= 1
        assert lines[comment_start - 1].strip() == "" or key_line.match(lines[comment_start - 1]), (
            f"line {number + 1}: missing blank line before the comment of {line.strip()!r}"
        )


def test_profile_overrides_compose_and_user_overrides_win():
    config = compose_cpu_config(
        ["actor_rollout_ref.model.path=/m", "ray_kwargs.ray_init.num_gpus=2", "trainer.n_gpus_per_node=2"]
    )
    assert config.trainer.device == "cpu" and config.actor_rollout_ref.rollout.name == "hf"
    assert config.ray_kwargs.ray_init.num_gpus == 2 and config.trainer.n_gpus_per_node == 2
    assert config.actor_rollout_ref.model.override_config.attn_implementation == "sdpa"
    assert config.actor_rollout_ref.actor.fsdp_config.dtype == "float32"
    assert config.transfer_queue.backend.SimpleStorage.num_data_storage_units == 1


def test_profile_has_no_duplicate_override_targets():
    targets = [override.lstrip("+").split("=", 1)[0] for override in cpu_profile_overrides()]
    assert len(targets) == len(set(targets))


@given(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(10**6), 10**6),
        st.floats(allow_nan=False, allow_infinity=False, width=32),
        st.text(st.characters(codec="ascii", exclude_characters="\x00"), max_size=20),
        st.lists(st.one_of(st.integers(0, 99), st.sampled_from(["console", "a b", "it's"])), max_size=4),
    )
)
def test_override_values_parse_back_to_the_same_value(value):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    override = OverridesParser.create().parse_override(f"key={format_override_value(value)}")
    parsed = override.value()
    if isinstance(value, float):
        assert float(parsed) == pytest.approx(value)
    else:
        assert parsed == value


def test_format_override_value_refuses_mappings():
    with pytest.raises(TypeError, match="dict"):
        format_override_value({"a": 1})


def test_cpu_mode_env_switches_plugin_platform_and_engine():
    env = cpu_mode_env()
    assert env["CURES_CPU_MODE"] == "1" and env["VERL_PLATFORM"] == "cpu" and env["VERL_ENGINE_DEVICE"] == "cuda"
    assert env["HF_HUB_OFFLINE"] == "1" and env["WANDB_MODE"] == "disabled"


# ----------------------------------------------------------------------------------------- validation


def test_composed_cpu_config_passes_validation(cpu_config):
    validate_cpu_config(cpu_config)


@pytest.mark.parametrize(
    ("override", "named_key"),
    [
        ("actor_rollout_ref.rollout.name=vllm", "actor_rollout_ref.rollout.name='vllm'"),
        ("actor_rollout_ref.rollout.tensor_model_parallel_size=2", "tensor_model_parallel_size=2"),
        ("actor_rollout_ref.actor.strategy=fsdp", "actor_rollout_ref.actor.strategy='fsdp'"),
        ("actor_rollout_ref.model.use_remove_padding=true", "use_remove_padding=True"),
        ("trainer.device=cuda", "trainer.device='cuda'"),
        ("actor_rollout_ref.model.override_config.attn_implementation=flash_attention_2", "attn_implementation"),
        ("trainer.v1.trainer_mode=separate_async", "separate_async"),
    ],
)
def test_validation_names_each_key_cpu_mode_cannot_run_with(override, named_key):
    config = compose_cpu_config(["actor_rollout_ref.model.path=/m", override])
    with pytest.raises(ValueError, match=re.escape(named_key)):
        validate_cpu_config(config)


def test_prepare_refuses_conflicting_environment(monkeypatch):
    for key in (*cpu_mode_env(), "RAY_ADDRESS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("VERL_PLATFORM", "nvidia")
    with pytest.raises(RuntimeError, match="VERL_PLATFORM='nvidia'"):
        launch.prepare_cpu_mode()
    monkeypatch.delenv("VERL_PLATFORM")
    monkeypatch.setenv("RAY_ADDRESS", "ray://cluster:10001")
    with pytest.raises(RuntimeError, match="unset RAY_ADDRESS"):
        launch.prepare_cpu_mode()


# ----------------------------------------------------------------------------------------- Ray resources


def v1_config(*, gpus=1, nnodes=1, units=1, num_cpus=5.0, num_gpus=1, **extra):
    config = {
        "trainer": {"n_gpus_per_node": gpus, "nnodes": nnodes, "use_v1": True},
        "transfer_queue": {
            "backend": {"storage_backend": "SimpleStorage", "SimpleStorage": {"num_data_storage_units": units}}
        },
        "ray_kwargs": {"ray_init": {"num_cpus": num_cpus, "num_gpus": num_gpus}},
    }
    for dotted, value in extra.items():
        node = config
        *parents, leaf = dotted.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return config


@given(gpus=st.integers(1, 4), nnodes=st.integers(1, 2), units=st.integers(0, 8), use_v1=st.booleans())
def test_cpu_demand_follows_the_documented_formula(gpus, nnodes, units, use_v1):
    config = v1_config(gpus=gpus, nnodes=nnodes, units=units)
    config["trainer"]["use_v1"] = use_v1
    demand = ray_resource_demand(config)
    transfer_queue = 1 + units if use_v1 else 0
    assert demand.required_cpus == 3 * gpus * nnodes + transfer_queue
    assert demand.required_gpus == gpus * nnodes


def test_extra_pools_and_remote_reward_workers_add_to_the_demand():
    config = v1_config(
        reward__reward_model__enable_resource_pool=True,
        reward__reward_model__n_gpus_per_node=2,
        reward__reward_model__nnodes=1,
        reward__reward_manager__name="remote",
        reward__num_workers=3,
        distillation__enabled=True,
        distillation__n_gpus_per_node=1,
        distillation__nnodes=1,
    )
    demand = ray_resource_demand(config)
    assert demand.gpus_by_pool == {"global_pool": 1, "reward_pool": 2, "teacher_pool": 1}
    assert demand.required_cpus == 3 * 4 + 2 + 9


def test_cpu_profile_demand_fits_the_profile(cpu_config):
    demand = check_ray_resources(cpu_config)
    assert demand.required_cpus == 5 and demand.available_cpus == 12  # measured: 5 runs, 4 hangs
    assert demand.required_gpus == 1 == demand.available_gpus


def test_a_config_that_would_hang_is_refused_naming_the_keys(cpu_config):
    """verl's default 8 storage units on 8 logical CPUs: V1 blocks forever in TransferQueue's bootstrap."""
    hanging = OmegaConf.merge(
        cpu_config,
        {
            "transfer_queue": {"backend": {"SimpleStorage": {"num_data_storage_units": 8}}},
            "ray_kwargs": {"ray_init": {"num_cpus": 8}},
        },
    )
    with pytest.raises(RayResourceError, match="would hang") as raised:
        check_ray_resources(hanging)
    message = str(raised.value)
    assert "12 logical CPUs are needed" in message and "Ray gets 8" in message
    assert "ray_kwargs.ray_init.num_cpus=12" in message and "num_data_storage_units" in message


def test_missing_logical_gpus_are_refused():
    with pytest.raises(RayResourceError, match=r"2 logical GPUs are needed.*num_gpus=2"):
        check_ray_resources(v1_config(gpus=2, num_cpus=100, num_gpus=0))


def test_unset_num_cpus_means_the_machine_cores(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    config = v1_config()
    config["ray_kwargs"]["ray_init"]["num_cpus"] = None
    with pytest.raises(RayResourceError, match="Ray gets 2"):
        check_ray_resources(config)
