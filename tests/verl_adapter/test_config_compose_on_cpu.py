"""Every recipe's Hydra config composes against the pinned verl, and the cures: block mirrors the dataclasses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")
pytest.importorskip("hydra")
pytest.importorskip("verl")

from hydra import compose, initialize_config_module  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from cures_verl.config import CuresConfig, flatten_keys, preset_config  # noqa: E402
from cures_verl.verl_adapter.hydra_config import cures_config_from, register_resolvers  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
GPU_RECIPES = ["cures_1.5b.sh", "cures_7b.sh", "grpo_1.5b.sh", "grpo_7b.sh"]


def _compose(overrides=()):
    register_resolvers()
    with initialize_config_module(config_module="cures_verl.verl_adapter.config", version_base=None):
        return compose(config_name="cures_trainer", overrides=list(overrides))


def test_yaml_cures_block_has_exactly_the_dataclass_keys_and_defaults():
    cfg = _compose()
    resolved = OmegaConf.to_container(cfg.cures, resolve=True)
    assert flatten_keys(resolved) == flatten_keys(CuresConfig().to_dict())


@pytest.mark.parametrize("preset", ["paper", "official_code", "recommended"])
def test_selecting_a_preset_on_the_command_line_changes_every_default(preset):
    assert cures_config_from(_compose([f"cures.preset={preset}"])) == preset_config(preset)


def test_explicit_keys_win_over_the_preset_in_any_order():
    cfg = _compose(["cures.sampler.temperature=0.5", "cures.preset=official_code"])
    expected = preset_config("official_code", {"sampler": {"temperature": 0.5}})
    assert cures_config_from(cfg) == expected


def test_invalid_values_fail_with_the_full_key():
    with pytest.raises(ValueError, match=r"cures\.allocation\.zero_variance"):
        cures_config_from(_compose(["cures.allocation.zero_variance=keep"]))
    with pytest.raises(Exception, match="temprature"):
        _compose(["cures.sampler.temprature=0.5"])  # Hydra refuses unknown keys (struct config)


def test_verl_keys_keep_verls_defaults():
    register_resolvers()
    ours = OmegaConf.to_container(_compose(), resolve=False)
    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        theirs = OmegaConf.to_container(compose(config_name="ppo_trainer"), resolve=False)
    ours.pop("cures")
    assert ours == theirs


def _recipe_config(script: str, *overrides: str) -> dict:
    env = dict(os.environ, DATA_DIR="/data/placeholder", PYTHONUNBUFFERED="1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    out = subprocess.run(
        # overrides before Hydra's flags: argparse wants the positional overrides in one run
        ["bash", str(ROOT / "recipes" / script), *overrides, "--cfg", "job", "--resolve"],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return yaml.safe_load(out.stdout)


@pytest.mark.parametrize("script", GPU_RECIPES)
def test_every_gpu_recipe_composes_with_the_papers_setting(script):
    from cures_verl.verl_adapter.trainer import check_trainer_config

    cfg = _recipe_config(script)
    cures = CuresConfig.from_mapping(cfg["cures"])
    assert cfg["data"]["train_batch_size"] == 1024
    assert cfg["actor_rollout_ref"]["rollout"]["n"] == 8 and cfg["actor_rollout_ref"]["rollout"]["name"] == "vllm"
    assert cfg["actor_rollout_ref"]["actor"]["optim"]["lr"] == 1e-6
    assert cfg["actor_rollout_ref"]["actor"]["kl_loss_coef"] == 0.001
    assert cfg["data"]["max_response_length"] == 3072 and cfg["trainer"]["n_gpus_per_node"] == 8
    size = "7B" if "7b" in script else "1.5B"
    assert cfg["actor_rollout_ref"]["model"]["path"] == f"Qwen/Qwen2.5-Math-{size}"
    assert cfg["data"]["train_files"] == ["/data/placeholder/numina_math.parquet"]
    # no API key needed by default; a bounded number of checkpoints; a directory that does not depend on the cwd
    assert cfg["trainer"]["logger"] == ["console", "file"]
    assert cfg["trainer"]["max_actor_ckpt_to_keep"] == 3
    assert Path(cfg["trainer"]["default_local_dir"]).is_absolute()
    if script.startswith("cures"):
        assert cures.enable and cures.schedule.num_iterations == 15 and cures.schedule.steps_per_iteration == 10
        assert cures.schedule.cold_start_rollouts == 4 and cures.schedule.split == "field"
        check_trainer_config(OmegaConf.create(cfg), cures)
    else:
        assert not cures.enable and cfg["trainer"]["total_training_steps"] == 150


def test_recipe_overrides_pass_through():
    cfg = _recipe_config("cures_7b.sh")
    assert cfg["cures"]["preset"] == "paper"
    env_cfg = subprocess.run(
        # overrides before Hydra's flags: argparse wants the positional overrides in one run
        ["bash", str(ROOT / "recipes" / "cures_7b.sh"), "cures.preset=official_code", "--cfg", "job", "--resolve"],
        capture_output=True,
        text=True,
        timeout=180,
        env=dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"),
        cwd=ROOT,
    )
    assert env_cfg.returncode == 0, env_cfg.stderr[-2000:]
    assert yaml.safe_load(env_cfg.stdout)["cures"]["sampler"]["temperature_rule"] == "count_scaled"


def test_recommended_on_a_paper_recipe_composes_the_recommended_schedule():
    from cures_verl.verl_adapter.trainer import check_trainer_config

    cfg = _recipe_config("cures_7b.sh", "cures.preset=recommended")
    cures = CuresConfig.from_mapping(cfg["cures"])
    # the recipe sets the data's subsets (unused by the continuous schedule) and the record's directory, nothing else
    assert cures.schedule == preset_config("recommended", {"schedule": {"split": "field"}}).schedule
    assert cures.schedule.mode == "continuous" and cures.schedule.cold_start_rollouts == 0
    assert set(cures.differences_from_preset()) == {"schedule.split", "dump_dir"}
    assert cfg["trainer"]["experiment_name"] == "cures-recommended-Qwen2.5-Math-7B"
    check_trainer_config(OmegaConf.create(cfg), cures)


def test_the_adapter_refuses_screening_naming_the_key_and_accepts_the_default():
    from cures_verl.verl_adapter.trainer import check_trainer_config

    cfg = _compose(["cures.sampler.screening_rollouts=2"])
    cures = cures_config_from(cfg)
    assert cures.sampler.screening_rollouts == 2
    with pytest.raises(ValueError, match=r"cures\.sampler\.screening_rollouts=2: screening is a benchmark/core option"):
        check_trainer_config(cfg, cures)
    default = _compose()
    check_trainer_config(default, cures_config_from(default))


def test_wandb_without_credentials_is_refused_before_any_worker_starts(tmp_path):
    from cures_verl.verl_adapter.main import check_logger_credentials

    wandb = OmegaConf.create({"trainer": {"logger": ["console", "wandb"]}})
    home = {"HOME": str(tmp_path)}
    with pytest.raises(ValueError, match=r"trainer.logger=\['console', 'wandb'\] includes wandb"):
        check_logger_credentials(wandb, home)
    check_logger_credentials(wandb, {**home, "WANDB_API_KEY": "k"})
    check_logger_credentials(wandb, {**home, "WANDB_MODE": "offline"})
    (tmp_path / ".netrc").write_text("machine api.wandb.ai\n  login user\n  password k\n")
    check_logger_credentials(wandb, home)
    check_logger_credentials(OmegaConf.create({"trainer": {"logger": ["console", "file"]}}), {"HOME": "/nonexistent"})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["trainer.use_v1=false"], r"trainer\.use_v1=false: CurES runs on verl's V1 trainer"),
        (["trainer.v1.trainer_mode=colocate_async"], r"trainer\.v1\.trainer_mode=colocate_async: .*trainer_mode=sync"),
        (["+trainer.v1.sync.parameter_sync_step=2"], r"trainer\.v1\.sync\.parameter_sync_step must be 1"),
        (["algorithm.filter_groups.enable=true"], r"algorithm\.filter_groups\.enable=true: DAPO's group filtering"),
        (["+data.gen_batch_size=2048"], r"data\.gen_batch_size=2048: .*leave data\.gen_batch_size unset"),
        (["trainer.v1.sampler.sync_refill_failed_groups=true"], r"sync_refill_failed_groups=true is not supported"),
        (["model_engine=megatron"], r"actor_rollout_ref.actor.strategy=megatron .*not supported"),
        (
            ["cures.allocation.grad_std=gradient_norms"],
            r"cures.allocation.grad_std=gradient_norms: .*grad_std=accuracy",
        ),
        (["cures.allocation.min_per_prompt=1"], r"min_per_prompt=1 with algorithm.adv_estimator=grpo: .*raw"),
    ],
)
def test_the_adapter_refuses_settings_it_cannot_honour_before_any_worker_starts(overrides, message):
    from cures_verl.verl_adapter.trainer import check_trainer_config

    cfg = _compose(["algorithm.adv_estimator=grpo", *overrides])
    with pytest.raises(ValueError, match=message) as refused:
        check_trainer_config(cfg, cures_config_from(cfg))
    assert str(refused.value).count("\n  - ") == 1  # that key alone is named


def test_every_refused_setting_is_named_at_once_and_the_allowed_neighbours_pass():
    from cures_verl.verl_adapter.trainer import check_trainer_config

    # with GAE (no groups) a single rollout per prompt is fine
    gae = _compose(["algorithm.adv_estimator=gae", "cures.allocation.min_per_prompt=1"])
    check_trainer_config(gae, cures_config_from(gae))
    # several problems are named in one error (the separate-async trainer also defaults to parameter_sync_step=4)
    cfg = _compose(["trainer.v1.trainer_mode=separate_async", "trainer.use_v1=false"])
    with pytest.raises(ValueError) as refused:
        check_trainer_config(cfg, cures_config_from(cfg))
    problems = str(refused.value).split("\n  - ")[1:]
    assert [p.split(":")[0].split(" ")[0] for p in problems] == [
        "trainer.use_v1=false",
        "trainer.v1.trainer_mode=separate_async",
        "trainer.v1.separate_async.parameter_sync_step",
    ]
    same = _compose(["+data.gen_batch_size=1024", "data.train_batch_size=1024"])  # one step per fetch, as unset
    check_trainer_config(same, cures_config_from(same))
