#!/usr/bin/env bash
# Does CurES beat plain GRPO for the same compute, in verl's own loop? On a laptop, exactly evaluated.
# Runs grpo / paper / official_code / recommended through `python -m cures_verl.main profile=cpu` on the digit-sums
# task, equal rollouts per arm (cold starts included), 3 seeds, both pre-registered settings, and scores every
# policy exactly (no sampling noise). Settings and protocol: docs/results/real_loop/README.md.
# Usage: bash recipes/compare_cpu.sh [extra options of python -m cures_verl.experiments.trainer.demo compare, e.g. --arm NAME=k=v,...]
# An interrupted comparison resumes: finished runs (same command) are read back, not trained again.
set -euo pipefail

# ---- what to compare
settings=${SETTINGS:-default,large_pool}
seeds=${SEEDS:-0,1,2}
# runs at a time: each keeps about 2 cores busy half of the time
jobs=${JOBS:-2}
# ---- paths
OUT=${OUT:-outputs/compare}
RESULTS_DIR=${RESULTS_DIR:-$OUT}

exec python3 -m cures_verl.experiments.trainer.demo compare --settings "$settings" --seeds "$seeds" --jobs "$jobs" --out "$OUT" \
    --results-dir "$RESULTS_DIR" "$@"
