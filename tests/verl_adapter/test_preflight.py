"""``python -m cures_verl.preflight``: the run's config, refusals, data, GPUs, plan and disk, checked without GPUs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("verl")
pytest.importorskip("hydra")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
yaml = pytest.importorskip("yaml")

from omegaconf import OmegaConf  # noqa: E402

from cures_verl.config import config_from_overrides  # noqa: E402
from cures_verl.core.schedule import Schedule  # noqa: E402
from cures_verl.verl_adapter.preflight import compose_config, count_parameters, main, preflight  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
GPU_RECIPES = ["cures_1.5b.sh", "cures_7b.sh", "grpo_1.5b.sh", "grpo_7b.sh"]
SUBSET_SIZE = 1100  # 15 subsets of 1100 prompts: 2 cold-start steps of 1024 prompts each
# Qwen2.5-Math-7B's architecture (its config.json on the Hub), without the weights
QWEN_7B = {
    "architectures": ["Qwen2ForCausalLM"],
    "model_type": "qwen2",
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "num_hidden_layers": 28,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "vocab_size": 152064,
    "tie_word_embeddings": False,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-6,
    "torch_dtype": "bfloat16",
}
QWEN_7B_PARAMETERS = 7_615_616_512
TINY = {**QWEN_7B, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "vocab_size": 1000}  # fmt: skip


def _numina_like(path: Path, sizes: list[int], offset: int = 0) -> Path:
    subsets = [s for s, size in enumerate(sizes) for _ in range(size)]
    n = len(subsets)
    table = pa.table(
        {
            "data_source": ["cures-numina_math"] * n,
            "prompt": [[{"role": "user", "content": f"q{i}"}] for i in range(n)],
            "reward_model": [{"style": "rule", "ground_truth": "1"}] * n,
            "extra_info": [{"index": offset + i, "subset": s} for i, s in enumerate(subsets)],
        }
    )
    pq.write_table(table, path)
    return path


def _model_dir(path: Path, config: dict) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config))
    return path


@pytest.fixture(scope="module")
def fixture_data(tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    _numina_like(data / "numina_math.parquet", [SUBSET_SIZE] * 15)
    (data / "eval").mkdir()
    _numina_like(data / "eval" / "math500.parquet", [10])
    return SimpleNamespace(
        dir=data,
        train=data / "numina_math.parquet",
        val=data / "eval" / "math500.parquet",
        tiny=_model_dir(data / "tiny_model", TINY),
    )


def _base(train: list[Path], val: Path, model: Path | str, ckpt: Path, *extra: str) -> list[str]:
    files = ",".join(f"'{f}'" for f in train)
    return [
        f"data.train_files=[{files}]",
        f"data.val_files=['{val}']",
        "data.train_batch_size=1024",
        f"actor_rollout_ref.model.path={model}",
        "actor_rollout_ref.actor.ppo_mini_batch_size=256",
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4",
        "actor_rollout_ref.rollout.n=8",
        "actor_rollout_ref.rollout.tensor_model_parallel_size=1",
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=8",
        "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=8",
        "algorithm.adv_estimator=grpo",
        "cures.schedule.split=field",
        "trainer.total_epochs=1",
        "trainer.logger=['console']",
        f"trainer.default_local_dir={ckpt}",
        "trainer.save_freq=-1",
        *extra,
    ]


# ---- the GPU recipes ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def recipe_overrides(fixture_data, tmp_path_factory):
    """The Hydra overrides each GPU recipe passes to ``python -m cures_verl.main``, captured by a ``python3`` shim
    (the recipe runs unchanged; only the training command is intercepted)."""
    shim_dir = tmp_path_factory.mktemp("shim")
    shim = shim_dir / "python3"
    shim.write_text(
        "#!/usr/bin/env bash\n"
        'if [ "$1" = -m ] && [ "$2" = cures_verl.main ]; then shift 2; printf "%s\\0" "$@" > "$CAPTURE"; exit 0; fi\n'
        'if [ "$1" = -m ] && [ "$2" = cures_verl.preflight ]; then exit 0; fi\n'
        f'exec "{sys.executable}" "$@"\n'
    )
    shim.chmod(0o755)
    captured = {}
    for script in GPU_RECIPES:
        capture = shim_dir / f"{script}.args"
        env = dict(
            os.environ,
            DATA_DIR=str(fixture_data.dir),
            MODEL_PATH=str(fixture_data.tiny),
            CKPT_DIR=str(tmp_path_factory.mktemp("ckpt") / script),
            VERL_FILE_LOGGER_ROOT=str(shim_dir / "logs"),
            CAPTURE=str(capture),
            PATH=f"{shim_dir}{os.pathsep}{os.environ['PATH']}",
        )
        done = subprocess.run(
            ["bash", str(ROOT / "recipes" / script)], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT
        )
        assert done.returncode == 0, done.stderr[-3000:]
        captured[script] = [arg for arg in capture.read_text().split("\0") if arg]
    return captured


@pytest.mark.parametrize("script", GPU_RECIPES)
def test_every_gpu_recipe_passes_preflight_on_a_fixture_dataset(script, recipe_overrides):
    overrides = recipe_overrides[script]
    assert any(arg.startswith("data.train_files=") for arg in overrides)
    report = preflight(overrides)
    assert report.ok, report.render()
    plan = report.plan
    assert plan["num_prompts"] == 15 * SUBSET_SIZE and plan["prompts_per_step"] == 1024
    if script.startswith("cures"):
        # per subset: 2 cold-start steps of 1024 x 4 rollouts, then 10 training steps of 1024 x 8
        assert plan["total_steps"] == 15 * 12 and plan["cold_start_steps"] == 30 and plan["policy_updates"] == 150
        assert plan["total_rollouts"] == 15 * (2 * 1024 * 4 + 10 * 1024 * 8)
        saves = 180 // 50 + 1
    else:
        assert plan["total_steps"] == 150 and plan["cold_start_steps"] == 0 and plan["policy_updates"] == 150
        assert plan["total_rollouts"] == 150 * 1024 * 8
        saves = 150 // 50
    # the recipe keeps 3 checkpoints of fp32 weights + Adam's 2 moments: 12 bytes per parameter
    actor = report.checkpoints["actor"]
    assert actor["kept"] == min(3, saves) and actor["bytes_per_checkpoint"] == 12 * actor["parameters"]
    assert "start-up     passed: cures config, logger credentials, verl 0.9.1" in report.render()


def test_the_command_line_on_the_7b_recipe_exits_0_and_prints_the_plan(recipe_overrides, tmp_path):
    out = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "cures_verl.preflight", "--json", str(out), *recipe_overrides["cures_7b.sh"]],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "PASSED" in done.stdout and "cold-start steps 30 of 4096 rollouts" in done.stdout
    assert "total rollouts 1,351,680" in done.stdout
    report = json.loads(out.read_text())
    assert report["ok"] and report["plan"]["total_steps"] == 180 and report["problems"] == []


def test_the_config_is_the_one_the_entry_point_composes(recipe_overrides):
    overrides = recipe_overrides["cures_7b.sh"]
    done = subprocess.run(
        [sys.executable, "-m", "cures_verl.main", *overrides, "--cfg", "job", "--resolve"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert OmegaConf.to_container(compose_config(overrides), resolve=True) == yaml.safe_load(done.stdout)


def test_cpu_profile_runs_cpu_modes_own_refusals(fixture_data, tmp_path):
    # profile=cpu: CPU mode's plugin and config checks, and the Ray resources it would hang without
    # (a subprocess: preparing CPU mode sets this process's environment)
    extra = ["data.train_batch_size=16", "actor_rollout_ref.actor.ppo_mini_batch_size=8",
             "actor_rollout_ref.rollout.n=4", "cures.preset=recommended", "ray_kwargs.ray_init.num_cpus=2"]  # fmt: skip
    overrides = ["profile=cpu", *_base([fixture_data.train], fixture_data.val, fixture_data.tiny, tmp_path, *extra)]
    command = [sys.executable, "-m", "cures_verl.preflight", *overrides]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 1, done.stdout + done.stderr[-3000:]
    assert "CPU mode plugin, check_trainer_config, validate_cpu_config, verl validate_config" in done.stdout
    assert "FAILED" in done.stdout and "1 problem(s)" in done.stdout, done.stdout
    assert "1. Ray resources: this config would hang" in done.stdout and "ray_init.num_cpus=5" in done.stdout


# ---- data ---------------------------------------------------------------------------------------------------------


def test_colliding_ids_across_two_files_fail_with_the_file_names_and_the_offsets(fixture_data, tmp_path):
    first = _numina_like(tmp_path / "first.parquet", [550] * 15)
    second = _numina_like(tmp_path / "second.parquet", [550] * 15)
    report = preflight(_base([first, second], fixture_data.val, fixture_data.tiny, tmp_path / "ck"))
    assert not report.ok
    [problem] = report.problems
    assert problem.startswith("data: extra_info.index must be unique; 8250 values repeat")
    assert f"{first} and {second} share 8250 ids (0..8249)" in problem
    assert f"{second}: --index-offset 8250" in problem
    assert report.plan == {}
    # the fix the message gives
    _numina_like(second, [550] * 15, offset=8250)
    fixed = preflight(_base([first, second], fixture_data.val, fixture_data.tiny, tmp_path / "ck"))
    assert fixed.ok, fixed.render()
    assert fixed.plan["num_prompts"] == 16500


def test_a_missing_file_and_a_missing_subset_field_are_problems(fixture_data, tmp_path):
    missing = tmp_path / "missing.parquet"
    report = preflight(_base([missing], tmp_path / "val.parquet", fixture_data.tiny, tmp_path / "ck"))
    assert f"data.train_files: {missing} does not exist" in report.problems
    assert f"data.val_files: {tmp_path / 'val.parquet'} does not exist" in report.problems
    no_subsets = preflight(
        _base(
            [fixture_data.train], fixture_data.val, fixture_data.tiny, tmp_path / "ck", "cures.schedule.subset_field=x"
        )
    )
    assert no_subsets.problems == [
        "data: cures.schedule.subset_field=x: the training data's extra_info has no 'x' field (found: index, subset)"
    ]


# ---- the plan -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cures_overrides",
    [
        ["cures.preset=paper", "cures.schedule.split=field"],
        ["cures.preset=official_code", "cures.schedule.split=field", "cures.schedule.cold_start_rollouts=2",
         "cures.schedule.steps_per_iteration=5"],
    ],
)  # fmt: skip
def test_plan_totals_equal_equal_rollouts_and_the_core_schedule(cures_overrides, fixture_data, tmp_path):
    # uneven subsets (1100..1618 prompts): 3 or 4 cold-start steps of 512 prompts each
    sizes = [1100 + 37 * k for k in range(15)]
    train = _numina_like(tmp_path / "uneven.parquet", sizes)
    overrides = _base([train], fixture_data.val, fixture_data.tiny, tmp_path / "ck", "data.train_batch_size=512",
                      "actor_rollout_ref.actor.ppo_mini_batch_size=128", *cures_overrides)  # fmt: skip
    report = preflight(overrides)
    assert report.ok, report.render()
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from equal_rollouts import plan as equal_rollouts_plan
    finally:
        sys.path.pop(0)
    expected = equal_rollouts_plan(str(train), 512, 8, cures_overrides)
    plan = report.plan
    assert plan["total_steps"] == expected["cures_steps"]
    assert plan["policy_updates"] == expected["cures_updates"]
    assert plan["total_rollouts"] == expected["cures_rollouts"]
    assert plan["equal_rollout_grpo_steps"] == expected["equal_steps"]
    cfg = config_from_overrides(cures_overrides)
    subsets = [s for s, size in enumerate(sizes) for _ in range(size)]
    schedule = Schedule(sum(sizes), 512, cfg.schedule, seed=cfg.seed, subset_ids=subsets)
    assert plan["total_rollouts"] == int(schedule.planned_rollouts(plan["total_steps"], 8).sum())
    cold = sum(-(-size // 512) for size in sizes)
    assert plan["cold_start_steps"] == cold
    assert plan["training_steps"] == 15 * cfg.schedule.steps_per_iteration
    assert plan["optimizer_steps"] == plan["policy_updates"] * 4  # 512 prompts / 128 per mini-batch


def test_plain_grpo_plan_is_steps_times_batch_times_n(fixture_data, tmp_path):
    overrides = _base([fixture_data.train], fixture_data.val, fixture_data.tiny, tmp_path / "ck", "cures.enable=false",
                      "trainer.total_epochs=5", "trainer.total_training_steps=40")  # fmt: skip
    report = preflight(overrides)
    assert report.ok, report.render()
    assert report.plan["total_steps"] == 40 and report.plan["cold_start_steps"] == 0
    assert report.plan["total_rollouts"] == 40 * 1024 * 8 and report.plan["policy_updates"] == 40
    assert "cures        enable=false" in report.render()


def test_more_steps_than_the_epochs_allow_is_a_problem(fixture_data, tmp_path):
    # verl's fit loop stops after total_epochs: 1 epoch of 16500 // 1024 = 16 steps, not the 40 asked for
    overrides = _base([fixture_data.train], fixture_data.val, fixture_data.tiny, tmp_path / "ck",
                      "cures.enable=false", "trainer.total_training_steps=40")  # fmt: skip
    report = preflight(overrides)
    assert report.problems == [
        "trainer.total_training_steps=40 but the run stops after trainer.total_epochs=1 x 16 steps per epoch = 16 "
        "steps (verl's fit loop ends after total_epochs); set trainer.total_epochs=3"
    ]
    assert report.plan["total_steps"] == 16
    # CurES's continuous schedule has no epochs: the trainer stretches verl's epoch to the asked length
    continuous = preflight([*overrides[:-2], "cures.preset=recommended", "trainer.total_training_steps=40"])
    assert continuous.problems == [] and continuous.plan["total_steps"] == 40


# ---- checkpoints --------------------------------------------------------------------------------------------------


def test_parameters_are_counted_from_config_json(tmp_path):
    params, source = count_parameters(str(_model_dir(tmp_path / "q7b", QWEN_7B)))
    assert params == QWEN_7B_PARAMETERS and source.endswith("config.json")
    params, why = count_parameters("no-such-org/no-such-model-for-preflight")
    assert params is None and "neither a local directory nor in the Hugging Face cache" in why


def test_insufficient_disk_space_fails_clearly(fixture_data, tmp_path, monkeypatch):
    model = _model_dir(tmp_path / "q7b", QWEN_7B)
    ckpt = tmp_path / "does" / "not" / "exist" / "yet"
    overrides = _base([fixture_data.train], fixture_data.val, model, ckpt, "trainer.save_freq=50",
                      "trainer.max_actor_ckpt_to_keep=3")  # fmt: skip
    need = 3 * 12 * QWEN_7B_PARAMETERS  # 180 steps, saved at 50, 100, 150, 180: 3 kept at a time
    seen = []

    def disk_usage(path):
        seen.append(Path(path))
        return SimpleNamespace(total=10**13, used=0, free=free)

    monkeypatch.setattr(shutil, "disk_usage", disk_usage)
    free = 100 * 10**9
    report = preflight(overrides)
    assert seen == [tmp_path]  # the nearest existing directory on the way to default_local_dir
    assert report.checkpoints["need_bytes"] == need and report.checkpoints["free_bytes"] == free
    assert report.problems == [
        f"trainer.default_local_dir={ckpt}: the checkpoints need about 274.2 GB but its filesystem ({tmp_path}) has "
        "100.0 GB free; free space, lower trainer.max_actor_ckpt_to_keep, raise trainer.save_freq, or point "
        "trainer.default_local_dir (CKPT_DIR in the recipes) to a larger disk"
    ]
    free = 1000 * 10**9
    assert preflight(overrides).ok
    # a model that is not on this machine: no estimate, said as a warning, and the run is not refused for it
    unknown = preflight([*overrides, "actor_rollout_ref.model.path=no-such-org/no-such-model-for-preflight"])
    assert unknown.ok and any("checkpoint disk need of the actor not estimated" in w for w in unknown.warnings)


# ---- every problem at once ----------------------------------------------------------------------------------------


def test_every_problem_is_listed_and_the_exit_code_is_1(fixture_data, tmp_path, monkeypatch, capsys):
    for key in ("WANDB_API_KEY", "WANDB_MODE", "NETRC"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    overrides = _base(
        [fixture_data.train],
        tmp_path / "no_val.parquet",
        fixture_data.tiny,
        tmp_path / "ck",
        "trainer.logger=['console','wandb']",
        "actor_rollout_ref.rollout.tensor_model_parallel_size=3",
        "cures.allocation.grad_std=gradient_norms",
        "actor_rollout_ref.actor.ppo_mini_batch_size=2048",
    )
    assert main(overrides) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "5 problem(s)" in out, out
    for text in (
        "logger: trainer.logger=['console', 'wandb'] includes wandb but no wandb credentials",
        "check_trainer_config: CurES cannot run with these settings:",
        "cures.allocation.grad_std=gradient_norms",
        "verl validate_config: train_batch_size (1024) must be >= actor.ppo_mini_batch_size (2048)",
        f"data.val_files: {tmp_path / 'no_val.parquet'} does not exist",
        "actor_rollout_ref.rollout.tensor_model_parallel_size=3 x data_parallel_size=1 x "
        "pipeline_model_parallel_size=1 = 3 GPUs per rollout replica does not divide the 8 GPUs",
    ):
        assert text in out, text


def test_overrides_that_do_not_compose_are_a_problem():
    report = preflight(["cures.sampler.temprature=0.5"])
    assert not report.ok and "do not compose" in report.problems[0] and "temprature" in report.problems[0]


def test_mini_batch_not_divisible_by_the_data_parallel_ranks_is_a_problem(fixture_data, tmp_path):
    # verl's own validate_config passes (1024 x 3 samples split over 8 GPUs), but each update's 6 x 3 samples do not
    overrides = _base([fixture_data.train], fixture_data.val, fixture_data.tiny, tmp_path / "ck",
                      "actor_rollout_ref.rollout.n=3", "actor_rollout_ref.actor.ppo_mini_batch_size=6")  # fmt: skip
    assert preflight(overrides).problems == [
        "actor_rollout_ref.actor.ppo_mini_batch_size=6 x actor_rollout_ref.rollout.n=3 = 18 samples per update is not "
        "divisible by the 8 data-parallel ranks (8 GPUs / ulysses 1); verl asserts it at the first update"
    ]
