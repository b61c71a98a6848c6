"""The real-loop comparison harness: arms, budgets, evaluation grid and the summary's arithmetic."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cures_verl.experiments.trainer.compare import (
    ARMS,
    SETTINGS,
    Setting,
    _on_grid,
    _replace,
    format_summary,
    markdown_summary,
    merge_results,
    parse_arm,
    plan_arm,
    summarise,
)

DEFAULT = SETTINGS["default"]


def test_parse_arm_accepts_named_and_custom_arms():
    assert parse_arm("grpo") == ("grpo", ("cures.enable=false",))
    assert parse_arm("hot=cures.preset=paper, cures.sampler.temperature=1.0") == (
        "hot",
        ("cures.preset=paper", "cures.sampler.temperature=1.0"),
    )


@pytest.mark.parametrize("text", ["nope", "x=", "=cures.preset=paper", "x=cures.preset"])
def test_parse_arm_refuses_what_it_cannot_run(text):
    with pytest.raises(ValueError, match="--arm"):
        parse_arm(text)


def test_every_default_arm_spends_the_same_budget_with_its_cold_start_counted():
    for setting in SETTINGS.values():
        full = setting.step_rollouts
        for name, overrides in ARMS.items():
            plan = plan_arm(overrides, setting)
            spent = plan.cold_start_rollouts + plan.train_steps * full
            # within one step of the budget, never above it
            assert setting.budget_rollouts - full < spent <= setting.budget_rollouts, name


def test_paper_arm_pays_its_cold_start_out_of_the_training_steps():
    grpo = plan_arm(ARMS["grpo"], DEFAULT)
    paper = plan_arm(ARMS["paper"], DEFAULT)
    assert grpo.total_steps == grpo.train_steps == 54
    # 64 prompts / 16 a step = 4 cold-start steps of 16 x 4 rollouts = 256 rollouts = 2 full steps
    assert (paper.cold_start_steps, paper.cold_start_rollouts, paper.train_steps) == (4, 256, 52)
    assert paper.total_steps == 56
    assert paper.extra_overrides == ("cures.schedule.num_iterations=1", "cures.schedule.steps_per_iteration=52")
    large = plan_arm(ARMS["paper"], SETTINGS["large_pool"])
    assert (large.cold_start_steps, large.cold_start_rollouts, large.train_steps) == (32, 2048, 38)


def test_recommended_arm_has_no_cold_start_and_no_iteration_keys():
    plan = plan_arm(ARMS["recommended"], DEFAULT)
    assert (plan.cold_start_steps, plan.total_steps, plan.extra_overrides) == (0, 54, ())


def test_arm_that_drops_prompts_gets_extra_steps_only_when_a_maximum_can_leave_budget_unspent():
    # official_code drops zero-variance prompts but has no maximum: the kept prompts absorb the whole budget
    plan = plan_arm(ARMS["official_code"], DEFAULT)
    assert not plan.may_underspend and plan.total_steps == plan.cold_start_steps + plan.train_steps
    capped = plan_arm((*ARMS["official_code"], "cures.allocation.max_per_prompt=12"), DEFAULT)
    assert capped.may_underspend
    assert capped.total_steps == capped.cold_start_steps + 2 * capped.train_steps


def test_custom_arm_overrides_change_the_plan():
    plan = plan_arm(("cures.preset=paper", "cures.schedule.cold_start_rollouts=2"), DEFAULT)
    assert (plan.cold_start_rollouts, plan.train_steps) == (128, 53)


def test_budget_too_small_for_the_cold_start_names_the_setting():
    tiny = _replace(DEFAULT, budget_rollouts=300)
    with pytest.raises(ValueError, match="default.*cold start"):
        plan_arm(ARMS["paper"], tiny)


def _points(rollouts, heldout):
    return [{"rollouts": r, "heldout": h, "train": h / 2} for r, h in zip(rollouts, heldout, strict=True)]


def test_grid_reads_the_policy_after_the_last_update_within_each_budget():
    setting = _replace(DEFAULT, budget_rollouts=1000, eval_every_rollouts=400)
    # cold start: 3 steps of 64 rollouts, then full steps of 128
    points = _points([0, 64, 128, 192, 320, 448, 576, 704, 832, 960], [0.1 * i for i in range(10)])
    grid = _on_grid(points, setting)
    assert grid["rollouts"] == [0, 400, 800, 1000]
    # 400 -> last checkpoint at <= 400 is 320 (index 4); 800 -> 704 (index 7); 1000 -> 960 (index 9)
    np.testing.assert_allclose(grid["heldout"], [0.0, 0.4, 0.7, 0.9])
    np.testing.assert_allclose(grid["train"], [0.0, 0.2, 0.35, 0.45])


def _run(seed, start, final, curve, train=None):
    rollouts = list(range(0, 512 * len(curve), 512))
    train = train or [start, *curve[1:]]
    return {
        "seed": seed,
        "final_accuracy": final,
        "final_train_accuracy": train[-1],
        "train_wall_s": 100.0,
        "grid": {"rollouts": rollouts, "heldout": [start, *curve[1:]], "train": train},
    }


def _results(arms):
    setting = json.loads(json.dumps(_replace(DEFAULT).__dict__, default=str))
    setting["target_gain_fraction"] = 0.8
    return {"settings": {"s": {"setting": setting, "arms": {a: {"overrides": [], "runs": r} for a, r in arms.items()}}}}


def test_summary_pairs_arms_with_grpo_by_seed_and_measures_rollouts_to_target():
    results = _results(
        {
            "grpo": [_run(0, 0.2, 0.6, [0.2, 0.4, 0.6]), _run(1, 0.2, 0.4, [0.2, 0.3, 0.4])],
            "x": [_run(0, 0.2, 0.7, [0.2, 0.6, 0.7]), _run(1, 0.2, 0.3, [0.2, 0.25, 0.3])],
        }
    )
    summary = summarise(results)["s"]
    assert summary["grpo"]["final_heldout_mean"] == pytest.approx(0.5)
    assert summary["x"]["diff_vs_baseline_mean"] == pytest.approx(0.0)  # +0.1 and -0.1
    assert summary["x"]["diff_vs_baseline_sd"] == pytest.approx(np.std([0.1, -0.1], ddof=1), abs=1e-4)
    assert summary["x"]["seeds_above_baseline"] == 1
    # target = 0.2 + 0.8 * (0.5 - 0.2) = 0.44: grpo seed 0 reaches it at 1024, x at 512 (0.5x); seed 1 never
    assert summary["x"]["target_heldout"] == pytest.approx(0.44)
    assert summary["x"]["rollouts_to_target_vs_baseline"] == [0.5, None]
    assert summary["grpo"]["rollouts_to_target_vs_baseline"] == [1.0, None]
    text = format_summary(summarise(results))
    assert "0.000 +- 0.141" in text and "0.50x (1 never)" in text
    markdown = markdown_summary(results)
    assert "| `x` | 2 | 0.500 +- 0.283 [0.300, 0.700] |" in markdown and "target 0.440" in markdown


def test_summary_leaves_the_target_undefined_when_grpo_does_not_improve():
    # held-out falls for every arm while the training pool rises (memorisation): only the pool has a target
    results = _results(
        {
            "grpo": [_run(0, 0.5, 0.4, [0.5, 0.45, 0.4], train=[0.5, 0.6, 0.7])],
            "x": [_run(0, 0.5, 0.45, [0.5, 0.5, 0.45], train=[0.5, 0.7, 0.8])],
        }
    )
    row = summarise(results)["s"]["x"]
    assert row["target_heldout"] is None and "rollouts_to_target_vs_baseline" not in row
    # train target 0.5 + 0.8 * 0.2 = 0.66: grpo at 1024, x at 512
    assert row["target_train"] == pytest.approx(0.66)
    assert row["train_rollouts_to_target_vs_baseline"] == [0.5]
    assert row["train_diff_vs_baseline_mean"] == pytest.approx(0.1)
    assert "undefined" in format_summary(summarise(results))


def test_merge_replaces_a_rerun_seed_and_keeps_the_others():
    base = _results({"grpo": [_run(0, 0.2, 0.5, [0.2]), _run(1, 0.2, 0.6, [0.2])]})
    new = _results({"grpo": [_run(1, 0.2, 0.9, [0.2])], "paper": [_run(0, 0.2, 0.1, [0.2])]})
    merged = merge_results(base, new)
    runs = merged["settings"]["s"]["arms"]["grpo"]["runs"]
    assert [(r["seed"], r["final_accuracy"]) for r in runs] == [(0, 0.5), (1, 0.9)]
    assert [r["seed"] for r in merged["settings"]["s"]["arms"]["paper"]["runs"]] == [0]


def test_settings_are_the_preregistered_ones():
    # docs/results/real_loop/README.md fixed these before any result; a change here must change that page too
    assert SETTINGS["default"] == Setting(
        name="default",
        description=SETTINGS["default"].description,
        num_prompts=64,
        tier_weights={1: 0.05, 2: 0.65, 3: 0.30},
        warm_start_steps=120,
    )
    large = SETTINGS["large_pool"]
    assert (large.num_prompts, dict(large.tier_weights), large.warm_start_steps) == (
        512,
        {1: 0.015, 2: 0.155, 3: 0.83},
        300,
    )
    assert {s.budget_rollouts for s in SETTINGS.values()} == {6912}


@pytest.mark.parametrize("batch", [16, 64])
def test_the_training_command_runs_every_planned_step_whatever_the_arms_batch(tmp_path, batch):
    # verl's fit loop stops after trainer.total_epochs epochs of len(dataset) // batch steps: an arm that sets the
    # batch to the whole 64-prompt pool (one step an epoch) stopped at step 30 of 54 before the command set the bound
    pytest.importorskip("verl")
    from pathlib import Path

    from hydra import compose, initialize_config_module

    from cures_verl.experiments.trainer.assets import DemoAssets
    from cures_verl.experiments.trainer.compare import training_command
    from cures_verl.verl_adapter.hydra_config import register_resolvers

    arm = ("cures.enable=false", f"data.train_batch_size={batch}", "actor_rollout_ref.rollout.n=2")
    plan = plan_arm(arm, DEFAULT)
    paths = {name: Path(tmp_path / name) for name in ("model", "tok", "train", "val", "reward")}
    assets = DemoAssets(
        model_dir=paths["model"],
        tokenizer_dir=paths["tok"],
        train_parquet=paths["train"],
        val_parquet=paths["val"],
        reward_path=paths["reward"],
        **{
            name: None
            for name in DemoAssets.__dataclass_fields__
            if name not in ("model_dir", "tokenizer_dir", "train_parquet", "val_parquet", "reward_path")
        },
    )
    command = training_command(DEFAULT, "n2", arm, plan, 0, assets, tmp_path / "run")
    assert command[1:4] == ["-m", "cures_verl.main", "profile=cpu"]
    register_resolvers()
    with initialize_config_module(config_module="cures_verl.verl_adapter.config", version_base=None):
        config = compose(config_name="cures_trainer", overrides=command[3:])
    steps_per_epoch = DEFAULT.num_prompts // config.data.train_batch_size
    assert config.data.train_batch_size == batch  # the arm's override wins
    assert config.trainer.total_training_steps == plan.total_steps
    assert config.trainer.total_epochs * steps_per_epoch >= plan.total_steps


def test_a_second_comparison_in_the_same_directory_is_refused(tmp_path):
    # two comparisons in one --out train into, and delete, the same run directories: the second must stop at once
    import fcntl
    import subprocess
    import sys

    from cures_verl.experiments.trainer.compare import SETTINGS, ComparisonSpec, run_comparison

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time; f = open(sys.argv[1], 'a+'); fcntl.flock(f, fcntl.LOCK_EX); "
            "f.write('pid 4242'); f.flush(); print('locked', flush=True); time.sleep(60)",
            str(tmp_path / ".compare.lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        spec = ComparisonSpec(
            settings=[SETTINGS["default"]], arms={"grpo": ("cures.enable=false",)}, seeds=[0], out=tmp_path
        )
        with pytest.raises(RuntimeError, match=r"another comparison \(pid 4242\) is running in"):
            run_comparison(spec, progress=lambda *_: None)
    finally:
        holder.kill()
        holder.wait()
    # once the holder is gone the lock is free again (flock is released with the process)
    with open(tmp_path / ".compare.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
