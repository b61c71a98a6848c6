#!/usr/bin/env bash
# GRPO baseline with the same per-step budget (8 x 1024 rollouts) on Qwen2.5-Math-7B, the paper's setting (8 GPUs, vLLM rollout, Numina-Math 15 x 10 steps).
# Usage: MODEL_PATH=/path/to/model DATA_DIR=~/data/cures bash recipes/grpo_7b.sh [hydra overrides...]
# Settings and their defaults: recipes/paper_setting.sh. Multi-node: docs/reproduction.md.
set -euo pipefail
export METHOD=grpo
export MODEL_PATH=${MODEL_PATH:-Qwen/Qwen2.5-Math-7B}
export GPU_MEMORY_UTILIZATION=${GPU_MEMORY_UTILIZATION:-0.6}
exec bash "$(dirname "$0")/paper_setting.sh" "$@"
