#!/usr/bin/env bash
# The paper's training setting (CurES, arXiv 2510.01037, Sec. 5 and the released scripts) on GPUs, for CurES or
# for plain GRPO with the same per-step rollout budget. Called by cures_1.5b.sh, cures_7b.sh, grpo_1.5b.sh and
# grpo_7b.sh. Every value below can be set from the environment; any Hydra override can be appended and wins
# (passed through "$@"), e.g.  bash recipes/cures_7b.sh cures.preset=official_code trainer.nnodes=2
#
# Data: python scripts/prepare_data.py dataset numina_math --output "$DATA_DIR/numina_math.parquet"
#       python scripts/prepare_data.py eval --output-dir "$DATA_DIR/eval"          (see docs/data.md)
set -xeuo pipefail

# ---- algorithm
# cures: CurES prompt selection and rollout allocation; grpo: plain verl GRPO through the same entry point
method=${METHOD:-cures}
# paper | official_code | recommended (docs/configuration.md#presets-and-explicit-keys). The preset decides every
# cures.* key this recipe does not pass, the schedule included. A cures.preset=... override appended to the command
# counts as well (it names the run and its checkpoint directory); PRESET and such an override must agree.
preset=${PRESET:-paper}
for arg in "$@"; do
    case "$arg" in
        cures.preset=* | +cures.preset=* | ++cures.preset=*) preset_override=${arg#*=} ;;
    esac
done
if [ -n "${preset_override:-}" ]; then
    if [ -n "${PRESET:-}" ] && [ "$PRESET" != "$preset_override" ]; then
        echo "PRESET=$PRESET and the override cures.preset=$preset_override disagree: set only one of them" >&2
        exit 2
    fi
    preset=$preset_override
fi
# The schedule is the preset's: paper and official_code train Numina-Math's 15 subsets (T = 15 iterations) for
# M = 10 steps each after a cold start of N' = 4 rollouts per prompt; recommended trains continuously without a
# cold start. The recipe passes a schedule key only when you set it here, and then it wins over any preset:
#   NUM_ITERATIONS (T), STEPS_PER_ITERATION (M), COLD_START_ROLLOUTS (N')
schedule_args=()
if [ -n "${NUM_ITERATIONS:-}" ]; then schedule_args+=(cures.schedule.num_iterations="$NUM_ITERATIONS"); fi
if [ -n "${STEPS_PER_ITERATION:-}" ]; then schedule_args+=(cures.schedule.steps_per_iteration="$STEPS_PER_ITERATION"); fi
if [ -n "${COLD_START_ROLLOUTS:-}" ]; then schedule_args+=(cures.schedule.cold_start_rollouts="$COLD_START_ROLLOUTS"); fi

# ---- batch sizes
# m: prompts per step
train_batch_size=${TRAIN_BATCH_SIZE:-1024}
# nominal n: the step's rollout budget is N = m x n = 8 x 1024 (the paper's budget)
rollout_n=${ROLLOUT_N:-8}
# prompts per optimizer update: m / 256 = 4 updates per step (released scripts)
ppo_mini_batch_size=${PPO_MINI_BATCH_SIZE:-256}
ppo_micro_batch_size_per_gpu=${PPO_MICRO_BATCH_SIZE_PER_GPU:-4}
log_prob_micro_batch_size_per_gpu=${LOG_PROB_MICRO_BATCH_SIZE_PER_GPU:-8}
# plain GRPO trains as many steps as CurES's paper schedule does: T x M = 150 (CurES adds its cold-start steps,
# which do not train). GRPO_TOTAL_STEPS=equal: the steps that spend the paper schedule's rollouts instead, cold
# starts included: floor(sum over subsets of (ceil(|subset| / m) x N' + M x n) x m / (m x n)), read from the
# training file by scripts/equal_rollouts.py (225 for 15 subsets of 10k prompts: 15 x (10 x 4 + 10 x 8) / 8)
grpo_total_steps=${GRPO_TOTAL_STEPS:-$((${NUM_ITERATIONS:-15} * ${STEPS_PER_ITERATION:-10}))}

# ---- optimisation (released scripts: constant lr, KL loss 0.001 with low_var_kl, no KL in the reward)
lr=${LR:-1e-6}
kl_loss_coef=${KL_LOSS_COEF:-0.001}
max_prompt_length=${MAX_PROMPT_LENGTH:-1024}
max_response_length=${MAX_RESPONSE_LENGTH:-3072}
rollout_temperature=${ROLLOUT_TEMPERATURE:-1.0}
gpu_memory_utilization=${GPU_MEMORY_UTILIZATION:-0.7}

# ---- paths and cluster
MODEL_PATH=${MODEL_PATH:?set MODEL_PATH (e.g. Qwen/Qwen2.5-Math-7B or a local copy)}
DATA_DIR=${DATA_DIR:-$HOME/data/cures}
TRAIN_FILE=${TRAIN_FILE:-$DATA_DIR/numina_math.parquet}
VAL_FILES=${VAL_FILES:-"['$DATA_DIR/eval/math500.parquet']"}
NNODES=${NNODES:-1}
N_GPUS_PER_NODE=${N_GPUS_PER_NODE:-8}
PROJECT_NAME=${PROJECT_NAME:-cures}
EXPERIMENT_NAME=${EXPERIMENT_NAME:-${method}-${preset}-$(basename "$MODEL_PATH")}
# absolute, so a resume launched from another directory finds the checkpoints instead of starting from scratch
CKPT_DIR=${CKPT_DIR:-$PWD/checkpoints/$PROJECT_NAME/$EXPERIMENT_NAME}
# checkpoints kept (older ones are deleted). One FSDP checkpoint holds fp32 weights and Adam's two fp32 moments,
# about 12 bytes per parameter: about 18.5 GB for the 1.5B model, about 91 GB for the 7B model.
max_ckpt_to_keep=${MAX_CKPT_TO_KEEP:-3}
# console + verl's file logger (metrics as JSON lines under $VERL_FILE_LOGGER_ROOT/<project>/<experiment>.jsonl);
# wandb is opt-in: LOGGER="['console','wandb']" with WANDB_API_KEY set (checked before any worker starts)
LOGGER=${LOGGER:-"['console','file']"}
export VERL_FILE_LOGGER_ROOT=${VERL_FILE_LOGGER_ROOT:-$PWD/logs}
# our math-verify reward (process-isolated timeouts; docs/reward.md)
REWARD_PATH=${REWARD_PATH:-$(python3 -c 'import cures_verl.reward.math_verify as m; print(m.__file__)')}

if [ "$method" = cures ]; then
    # split=field is a property of the data, not a preset's choice: the iteration schedule takes Numina-Math's own
    # 15 subsets (extra_info.subset) as its subsets; the continuous schedule has no subsets and ignores it.
    method_args=(
        cures.enable=true
        cures.preset="$preset"
        "${schedule_args[@]}"
        cures.schedule.split=field
        cures.dump_dir="$CKPT_DIR/cures"
        trainer.total_epochs=1
    )
elif [ "$method" = grpo ]; then
    if [ "$grpo_total_steps" = equal ]; then
        budget=$(python3 "$(dirname "$0")/../scripts/equal_rollouts.py" --train-file "$TRAIN_FILE" \
            --batch-size "$train_batch_size" --rollout-n "$rollout_n" cures.preset=paper "${schedule_args[@]}" \
            cures.schedule.split=field)
        eval "$budget"
        echo "GRPO_TOTAL_STEPS=equal: the paper schedule spends $cures_rollouts rollouts; GRPO matches it in" \
            "$equal_steps steps" >&2
        grpo_total_steps=$equal_steps
    fi
    method_args=(cures.enable=false trainer.total_training_steps="$grpo_total_steps")
else
    echo "METHOD must be cures or grpo, got $method" >&2
    exit 2
fi

main_args=(
    data.train_files="['$TRAIN_FILE']"
    data.val_files="$VAL_FILES"
    data.train_batch_size="$train_batch_size"
    data.max_prompt_length="$max_prompt_length"
    data.max_response_length="$max_response_length"
    data.filter_overlong_prompts=true
    data.truncation=error
    actor_rollout_ref.model.path="$MODEL_PATH"
    actor_rollout_ref.model.use_remove_padding=true
    actor_rollout_ref.model.enable_gradient_checkpointing=true
    actor_rollout_ref.actor.optim.lr="$lr"
    actor_rollout_ref.actor.optim.weight_decay=0.01
    actor_rollout_ref.actor.ppo_mini_batch_size="$ppo_mini_batch_size"
    actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu="$ppo_micro_batch_size_per_gpu"
    actor_rollout_ref.actor.use_kl_loss=true
    actor_rollout_ref.actor.kl_loss_coef="$kl_loss_coef"
    actor_rollout_ref.actor.kl_loss_type=low_var_kl
    actor_rollout_ref.actor.entropy_coeff=0
    actor_rollout_ref.actor.fsdp_config.param_offload=true
    actor_rollout_ref.actor.fsdp_config.optimizer_offload=true
    actor_rollout_ref.rollout.name=vllm
    actor_rollout_ref.rollout.n="$rollout_n"
    actor_rollout_ref.rollout.temperature="$rollout_temperature"
    actor_rollout_ref.rollout.tensor_model_parallel_size=1
    actor_rollout_ref.rollout.gpu_memory_utilization="$gpu_memory_utilization"
    actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu="$log_prob_micro_batch_size_per_gpu"
    actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu="$log_prob_micro_batch_size_per_gpu"
    actor_rollout_ref.ref.fsdp_config.param_offload=true
    algorithm.adv_estimator=grpo
    algorithm.use_kl_in_reward=false
    reward.custom_reward_function.path="$REWARD_PATH"
    reward.custom_reward_function.name=compute_score
    "${method_args[@]}"
    trainer.project_name="$PROJECT_NAME"
    trainer.experiment_name="$EXPERIMENT_NAME"
    trainer.default_local_dir="$CKPT_DIR"
    trainer.logger="$LOGGER"
    trainer.nnodes="$NNODES"
    trainer.n_gpus_per_node="$N_GPUS_PER_NODE"
    trainer.val_before_train=true
    trainer.test_freq=5
    trainer.save_freq=50
    trainer.max_actor_ckpt_to_keep="$max_ckpt_to_keep"
    "$@"
)
# Pre-flight (docs/reproduction.md#pre-flight): compose the config, check the data ids, presets, logger credentials,
# GPU counts and checkpoint disk space, and print the step plan, in seconds and without GPUs, so a run that would
# fail does not take the GPUs first. PREFLIGHT=0 skips it; a Hydra dry run (--cfg job) has nothing to pre-flight.
case " $* " in
    *" --cfg "* | *" -c "*) ;;
    *) if [ "${PREFLIGHT:-1}" != 0 ]; then python3 -m cures_verl.preflight "${main_args[@]}"; fi ;;
esac
python3 -m cures_verl.main "${main_args[@]}"
