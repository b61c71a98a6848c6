"""The GPU recipes pass only the cures.* keys the user chose: a preset means what it says.

The recipes are run with a stand-in ``python3`` on the PATH that prints the launch's arguments instead of starting
verl, and the arguments' cures.* overrides are read the way Hydra applies them (``config_from_overrides``). The
composed Hydra config of the same recipes is checked in tests/verl_adapter/test_config_compose_on_cpu.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cures_verl.config import CuresConfig, config_from_overrides, preset_config

ROOT = Path(__file__).resolve().parents[1]
CURES_RECIPES = ["cures_1.5b.sh", "cures_7b.sh"]
SCHEDULE_VARIABLES = ("NUM_ITERATIONS", "STEPS_PER_ITERATION", "COLD_START_ROLLOUTS", "PRESET", "GRPO_TOTAL_STEPS")
# what the recipes set beyond the preset whatever it is: the data's own subsets, and the curriculum record
RECIPE_KEYS = {"schedule.split", "dump_dir"}


def _stub_python(tmp_path: Path) -> Path:
    """A ``python3`` that prints its arguments one per line, except for scripts/equal_rollouts.py, which it runs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    stub = bin_dir / "python3"
    stub.write_text(
        "#!/usr/bin/env bash\n"
        f'case "$1" in *equal_rollouts.py) exec "{sys.executable}" "$@" ;; esac\n'
        "printf '%s\\n' \"$@\" ---\n"
    )
    stub.chmod(0o755)
    return bin_dir


def _run(tmp_path: Path, script: str, *args: str, **env_vars: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in SCHEDULE_VARIABLES}
    env.update(DATA_DIR="/data/placeholder", REWARD_PATH="/reward.py", VERL_FILE_LOGGER_ROOT=str(tmp_path / "logs"))
    env.update(env_vars)
    env["PATH"] = f"{_stub_python(tmp_path)}{os.pathsep}{env['PATH']}"
    return subprocess.run(
        ["bash", str(ROOT / "recipes" / script), *args], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT
    )


def _launch(tmp_path: Path, script: str, *args: str, **env_vars: str) -> list[str]:
    done = _run(tmp_path, script, *args, **env_vars)
    assert done.returncode == 0, done.stderr[-3000:]
    calls = [call.strip("\n").splitlines() for call in done.stdout.split("---\n") if call.strip()]
    # the recipe pre-flights the exact command it then launches
    assert [call[:2] for call in calls] == [["-m", "cures_verl.preflight"], ["-m", "cures_verl.main"]], calls
    assert calls[0][2:] == calls[1][2:]
    return calls[1][2:]


def _cures(overrides: list[str]) -> CuresConfig:
    config = config_from_overrides(overrides)
    assert config is not None
    return config


def _value(overrides: list[str], key: str) -> str:
    values = [item.partition("=")[2] for item in overrides if item.partition("=")[0] == key]
    assert values, key
    return values[-1]  # Hydra: the last override of a key wins


@pytest.mark.parametrize("script", CURES_RECIPES)
@pytest.mark.parametrize("how", ["override", "environment"])
def test_recommended_on_a_paper_recipe_runs_the_recommended_schedule(tmp_path, script, how):
    args, env = (["cures.preset=recommended"], {}) if how == "override" else ([], {"PRESET": "recommended"})
    overrides = _launch(tmp_path, script, *args, **env)
    cures = _cures(overrides)
    recommended = preset_config("recommended")
    assert cures.schedule.mode == "continuous" and cures.schedule.cold_start_rollouts == 0
    assert cures.sampler == recommended.sampler and cures.posterior == recommended.posterior
    assert set(cures.differences_from_preset()) == RECIPE_KEYS
    assert not any(item.startswith("cures.schedule.") and "split" not in item for item in overrides)
    # the run is named after the preset in effect, so it gets its own checkpoint directory
    size = "7B" if "7b" in script else "1.5B"
    assert _value(overrides, "trainer.experiment_name") == f"cures-recommended-Qwen2.5-Math-{size}"
    assert f"/cures-recommended-Qwen2.5-Math-{size}" in _value(overrides, "trainer.default_local_dir")


@pytest.mark.parametrize("preset", ["paper", "official_code"])
def test_the_paper_schedule_comes_from_the_paper_and_official_code_presets(tmp_path, preset):
    cures = _cures(_launch(tmp_path, "cures_7b.sh", f"cures.preset={preset}"))
    schedule = cures.schedule
    assert (schedule.mode, schedule.num_iterations, schedule.steps_per_iteration) == ("iterations", 15, 10)
    assert schedule.cold_start_rollouts == 4 and schedule.split == "field"
    assert set(cures.differences_from_preset()) == RECIPE_KEYS


def test_schedule_variables_set_by_the_user_win_over_the_preset(tmp_path):
    overrides = _launch(
        tmp_path, "cures_1.5b.sh", PRESET="recommended", COLD_START_ROLLOUTS="8", STEPS_PER_ITERATION="5"
    )
    cures = _cures(overrides)
    assert cures.schedule.mode == "continuous" and cures.schedule.cold_start_rollouts == 8
    assert cures.schedule.steps_per_iteration == 5
    assert cures.differences_from_preset()["schedule.cold_start_rollouts"] == (0, 8)
    assert not any(item.startswith("cures.schedule.num_iterations=") for item in overrides)


def test_a_preset_variable_and_a_preset_override_that_disagree_are_refused(tmp_path):
    done = _run(tmp_path, "cures_7b.sh", "cures.preset=recommended", PRESET="paper")
    assert done.returncode == 2
    assert "PRESET=paper and the override cures.preset=recommended disagree" in done.stderr
    assert "cures_verl.main" not in done.stdout
    assert _cures(_launch(tmp_path, "cures_7b.sh", "cures.preset=recommended", PRESET="recommended")).preset == (
        "recommended"
    )


def test_grpo_trains_the_paper_schedules_steps_or_the_users(tmp_path):
    assert _value(_launch(tmp_path, "grpo_7b.sh"), "trainer.total_training_steps") == "150"
    overrides = _launch(tmp_path, "grpo_1.5b.sh", NUM_ITERATIONS="3")
    assert _value(overrides, "trainer.total_training_steps") == "30"
    assert config_from_overrides(overrides) is None  # cures.enable=false


def _fixture_data(tmp_path: Path, subsets: int = 15, per_subset: int = 100) -> Path:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    data = tmp_path / "data"
    data.mkdir()
    n = subsets * per_subset
    table = pa.table(
        {
            "prompt": [[{"role": "user", "content": f"q{i}"}] for i in range(n)],
            "extra_info": [{"index": i, "subset": i // per_subset} for i in range(n)],
        }
    )
    pq.write_table(table, data / "numina_math.parquet")
    return data


def test_grpo_at_equal_rollouts_spends_the_paper_schedules_rollouts(tmp_path):
    data = _fixture_data(tmp_path, subsets=15, per_subset=100)
    # m = 64: each subset has ceil(100 / 64) = 2 cold-start steps of 64 x 4 and 10 training steps of 64 x 8,
    # i.e. 15 x (2 x 4 + 10 x 8) x 64 rollouts = 15 x 88 / 8 = 165 GRPO steps of 64 x 8
    overrides = _launch(tmp_path, "grpo_1.5b.sh", DATA_DIR=str(data), TRAIN_BATCH_SIZE="64", GRPO_TOTAL_STEPS="equal")
    assert _value(overrides, "trainer.total_training_steps") == "165"
    fewer = _launch(
        tmp_path, "grpo_1.5b.sh", DATA_DIR=str(data), TRAIN_BATCH_SIZE="64", GRPO_TOTAL_STEPS="equal",
        STEPS_PER_ITERATION="5",
    )  # fmt: skip  # 15 x (2 x 4 + 5 x 8) / 8 = 90
    assert _value(fewer, "trainer.total_training_steps") == "90"


def test_compare_gives_recommended_its_own_schedule_even_with_schedule_variables_in_the_environment(tmp_path):
    data = _fixture_data(tmp_path)
    out = tmp_path / "out"
    done = _run(
        tmp_path,
        "compare_1.5b.sh",
        DATA_DIR=str(data),
        DRY_RUN="1",
        OUT=str(out),
        CKPT_ROOT=str(tmp_path / "ck"),
        TRAIN_BATCH_SIZE="64",
        COLD_START_ROLLOUTS="4",  # the paper arms' N', set in the caller's environment
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    arms = {arm: (out / f"{arm}.yaml").read_text().splitlines() for arm in ("paper", "official_code", "recommended")}
    recommended = _cures(arms["recommended"])
    assert recommended.preset == "recommended" and recommended.schedule.cold_start_rollouts == 0
    assert set(recommended.differences_from_preset()) == RECIPE_KEYS
    for arm in ("paper", "official_code"):
        cures = _cures(arms[arm])
        assert cures.preset == arm and cures.schedule.mode == "iterations" and cures.schedule.cold_start_rollouts == 4
