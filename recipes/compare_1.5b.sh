#!/usr/bin/env bash
# The real-loop comparison on GPUs: plain GRPO against CurES (paper, official_code, recommended) at EQUAL ROLLOUTS
# on the paper's data and model (Qwen2.5-Math-1.5B, Numina-Math, 8 GPUs, vLLM), validated on MATH500 and the
# paper's benchmarks. The CPU version of the same protocol: recipes/compare_cpu.sh, docs/results/real_loop/.
#
# Equal rollouts: the paper arm's schedule (T x M training steps plus a cold start over every subset) fixes the
# budget; scripts/equal_rollouts.py reads the subset sizes from the training file and gives the steps a full-budget
# arm needs to spend the same rollouts (GRPO and recommended run that many steps). official_code runs the paper's
# schedule too: it drops zero-variance prompts, but without a max_per_prompt the kept prompts absorb the whole
# budget, so it spends what paper spends (curves are placed by each run's actual rollouts, from cures_steps.jsonl).
#
# Usage: MODEL_PATH=... DATA_DIR=~/data/cures bash recipes/compare_1.5b.sh [hydra overrides for every arm...]
#        ARMS="grpo paper" bash recipes/compare_1.5b.sh          # a subset of the arms
#        DRY_RUN=1 bash recipes/compare_1.5b.sh                  # print the plan, compose each arm's config, no run
# Then plot each benchmark against cumulative rollouts (the command is printed at the end).
set -euo pipefail

# ---- what to compare
arms=${ARMS:-"grpo paper official_code recommended"}
# ---- the paper's schedule, for the paper and official_code arms and the budget (the presets' own values). The
# recommended arm runs its preset's schedule (continuous, no cold start): these are not passed to it.
num_iterations=${NUM_ITERATIONS:-15}
steps_per_iteration=${STEPS_PER_ITERATION:-10}
cold_start_rollouts=${COLD_START_ROLLOUTS:-4}
train_batch_size=${TRAIN_BATCH_SIZE:-1024}
rollout_n=${ROLLOUT_N:-8}
# validation every test_freq trainer steps on every benchmark file (curves are then mapped to cumulative rollouts)
test_freq=${TEST_FREQ:-5}
DRY_RUN=${DRY_RUN:-0}

# ---- paths
export MODEL_PATH=${MODEL_PATH:-Qwen/Qwen2.5-Math-1.5B}
export DATA_DIR=${DATA_DIR:-$HOME/data/cures}
export TRAIN_FILE=${TRAIN_FILE:-$DATA_DIR/numina_math.parquet}
benchmarks=${BENCHMARKS:-"math500 aime24 aime25 amc23 gsm8k minerva_math olympiadbench gaokao2023en"}
val_list=""
for name in $benchmarks; do val_list+="'$DATA_DIR/eval/$name.parquet',"; done
export VAL_FILES=${VAL_FILES:-"[${val_list%,}]"}
PROJECT_NAME=${PROJECT_NAME:-cures-compare}
OUT=${OUT:-outputs/compare_1.5b}
mkdir -p "$OUT"
here=$(cd "$(dirname "$0")" && pwd)

schedule_args=(
    cures.schedule.mode=iterations
    cures.schedule.num_iterations="$num_iterations"
    cures.schedule.steps_per_iteration="$steps_per_iteration"
    cures.schedule.cold_start_rollouts="$cold_start_rollouts"
    cures.schedule.split=field
)
# the budget: what the paper arm spends, cold starts included
budget=$(python3 "$here/../scripts/equal_rollouts.py" --train-file "$TRAIN_FILE" --batch-size "$train_batch_size" \
    --rollout-n "$rollout_n" cures.preset=paper "${schedule_args[@]}")
eval "$budget"
echo "budget: paper spends $cures_rollouts rollouts in $cures_steps steps ($cures_updates updates) on $num_prompts" \
    "prompts; a full-budget arm matches it in $equal_steps steps ($equal_rollouts rollouts)" | tee "$OUT/plan.txt"

plot_runs=()
plot_logs=()
for arm in $arms; do
    name="$PROJECT_NAME-$arm-$(basename "$MODEL_PATH")"
    ckpt="${CKPT_ROOT:-$PWD/checkpoints}/$PROJECT_NAME/$name"
    case "$arm" in
        grpo) arm_env=(METHOD=grpo GRPO_TOTAL_STEPS="$equal_steps"); arm_args=() ;;
        paper | official_code)
            arm_env=(METHOD=cures PRESET="$arm" NUM_ITERATIONS="$num_iterations"
                STEPS_PER_ITERATION="$steps_per_iteration" COLD_START_ROLLOUTS="$cold_start_rollouts")
            arm_args=() ;;
        # its preset's schedule (paper_setting.sh passes no schedule key it is not given), run for the equal steps
        recommended)
            arm_env=(-u NUM_ITERATIONS -u STEPS_PER_ITERATION -u COLD_START_ROLLOUTS METHOD=cures PRESET=recommended)
            arm_args=(trainer.total_training_steps="$equal_steps") ;;
        *) echo "unknown arm $arm (grpo, paper, official_code, recommended)" >&2; exit 2 ;;
    esac
    command=(env "${arm_env[@]}" PROJECT_NAME="$PROJECT_NAME" EXPERIMENT_NAME="$name" CKPT_DIR="$ckpt"
        LOGGER="${LOGGER:-['console','file']}" TRAIN_BATCH_SIZE="$train_batch_size" ROLLOUT_N="$rollout_n"
        VERL_FILE_LOGGER_PATH="$OUT/$arm.jsonl"
        bash "$here/paper_setting.sh" trainer.test_freq="$test_freq" "${arm_args[@]}" "$@")
    echo "== $arm: ${command[*]}"
    if [ "$DRY_RUN" = 1 ]; then
        "${command[@]}" --cfg job --resolve > "$OUT/$arm.yaml"
        echo "   composed: $OUT/$arm.yaml"
    else
        "${command[@]}"
    fi
    plot_runs+=(--run "$arm=$OUT/$arm.jsonl")
    [ "$arm" = grpo ] || plot_logs+=(--steps-log "$arm=$ckpt/cures/cures_steps.jsonl")
done

echo "plot a benchmark against cumulative rollouts:"
echo "  python scripts/plot_curriculum.py curves ${plot_runs[*]} ${plot_logs[*]}" \
    "--rollouts-per-step $((train_batch_size * rollout_n)) --metric val-core/cures-math500/acc/mean@1" \
    "--out $OUT/math500.png"
