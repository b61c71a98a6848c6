#!/usr/bin/env bash
# CurES on a laptop: the paper's algorithm in verl's real trainer on CPU, in about 8 minutes on 2 cores.
# Builds a tiny verifiable task (sums of 1-3 digits) and a tiny model locally (no downloads), warm-starts it,
# runs CurES GRPO through `python -m cures_verl.main profile=cpu`, and plots the curriculum.
# Usage: bash recipes/cures_cpu_demo.sh [extra Hydra overrides...]   (docs/cpu_mode.md)
set -euo pipefail

# ---- algorithm
# paper | official_code | recommended
preset=${PRESET:-paper}
# training steps after the cold start (the cold start adds num_prompts / batch_size steps)
steps=${STEPS:-50}
# ---- task and batch sizes
num_prompts=${NUM_PROMPTS:-64}
batch_size=${BATCH_SIZE:-16}
# nominal rollouts per prompt: the step budget is batch_size x rollout_n
rollout_n=${ROLLOUT_N:-8}
seed=${SEED:-0}
# ---- paths
OUT=${OUT:-outputs/cpu_demo}
# a hard limit: a CPU run this small never needs it, a misconfigured one is stopped instead of hanging
TIMEOUT_S=${TIMEOUT_S:-1200}

exec python3 -m cures_verl.experiments.trainer.demo run --out "$OUT" --preset "$preset" --steps "$steps" --num-prompts "$num_prompts" \
    --batch-size "$batch_size" --rollout-n "$rollout_n" --seed "$seed" --timeout "$TIMEOUT_S" "$@"
