"""recipes/compare_1.5b.sh: equal rollouts from the data, and each arm's composed config (a dry run, no GPU)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("verl")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

ROOT = Path(__file__).resolve().parents[2]
SUBSET_SIZE = 1100  # 15 subsets of 1100 prompts: 2 cold-start steps of 1024 prompts each


def _numina_like(path: Path) -> Path:
    n = 15 * SUBSET_SIZE
    table = pa.table(
        {
            "data_source": ["cures-numina_math"] * n,
            "prompt": [[{"role": "user", "content": f"q{i}"}] for i in range(n)],
            "reward_model": [{"style": "rule", "ground_truth": "1"}] * n,
            "extra_info": [{"index": i, "subset": i // SUBSET_SIZE} for i in range(n)],
        }
    )
    pq.write_table(table, path)
    return path


def test_equal_rollouts_counts_every_cold_start_from_the_subset_sizes(tmp_path):
    train = _numina_like(tmp_path / "numina.parquet")
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from equal_rollouts import plan
    finally:
        sys.path.pop(0)
    overrides = ["cures.preset=paper", "cures.schedule.split=field"]
    result = plan(str(train), 1024, 8, overrides)
    # per subset: 2 cold-start steps x 1024 x 4 + 10 training steps x 1024 x 8 = 8192 + 81920 rollouts
    assert result == {
        "num_prompts": 16500,
        "cures_steps": 15 * 12,
        "cures_updates": 150,
        "cures_rollouts": 15 * 90112,
        "equal_steps": 165,
        "equal_rollouts": 165 * 8192,
    }
    with pytest.raises(SystemExit, match="continuous"):
        plan(str(train), 1024, 8, ["cures.preset=recommended"])
    with pytest.raises(SystemExit, match="needs extra_info.x on every row"):
        plan(str(train), 1024, 8, ["cures.preset=paper", "cures.schedule.split=field", "cures.schedule.subset_field=x"])


def test_compare_recipe_dry_run_composes_every_arm_at_equal_rollouts(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _numina_like(data / "numina_math.parquet")
    env = dict(os.environ, DATA_DIR=str(data), DRY_RUN="1", OUT=str(tmp_path / "out"), CKPT_ROOT=str(tmp_path / "ck"))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    done = subprocess.run(
        ["bash", str(ROOT / "recipes" / "compare_1.5b.sh")],
        capture_output=True, text=True, timeout=600, env=env, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "a full-budget arm matches it in 165 steps" in (tmp_path / "out" / "plan.txt").read_text()
    configs = {arm: yaml.safe_load((tmp_path / "out" / f"{arm}.yaml").read_text()) for arm in
               ("grpo", "paper", "official_code", "recommended")}  # fmt: skip
    assert configs["grpo"]["cures"]["enable"] is False
    assert configs["grpo"]["trainer"]["total_training_steps"] == 165
    rec = configs["recommended"]
    assert rec["cures"]["preset"] == "recommended" and rec["trainer"]["total_training_steps"] == 165
    assert rec["cures"]["schedule"]["mode"] == "continuous" and rec["cures"]["schedule"]["cold_start_rollouts"] == 0
    assert rec["cures"]["sampler"]["score"] == "informative"
    for arm in ("paper", "official_code"):
        cures = configs[arm]["cures"]
        assert cures["preset"] == arm and cures["schedule"]["mode"] == "iterations"
        assert cures["schedule"]["num_iterations"] == 15 and cures["schedule"]["steps_per_iteration"] == 10
    for arm, cfg in configs.items():
        assert cfg["trainer"]["test_freq"] == 5 and "file" in cfg["trainer"]["logger"], arm
        assert len(cfg["data"]["val_files"]) == 8 and cfg["data"]["val_files"][0].endswith("math500.parquet"), arm
        assert cfg["trainer"]["experiment_name"] == f"cures-compare-{arm}-Qwen2.5-Math-1.5B", arm
    assert "--rollouts-per-step 8192" in done.stdout and "--steps-log paper=" in done.stdout
