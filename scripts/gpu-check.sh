#!/usr/bin/env bash
# The GPU check: 2 self-play steps of the paper's machinery on the GPUs present, in under
# 10 minutes, then a report of tokens/s, the step time by phase and each GPU's peak
# memory next to the memory planner's prediction.
#
#   bash scripts/gpu-check.sh                 # every GPU of this node: vLLM colocated on each
#                                             # rank (sleep mode), FSDP2, gradient checkpointing
#   bash scripts/gpu-check.sh --cpu MODEL     # the reduced form CI runs: 2 gloo ranks on the
#                                             # CPU, HF generation, MODEL (e.g. a tiny model)
#   ... key=value ...                         # run-config overrides after the above
#
# GPU prerequisites: `pip install -e '.[vllm]'` (CUDA torch and vLLM) and the embedded
# model's safetensors cache (`python -m absolutezero_policy.embedded --build embedded`,
# as scripts/setup.sh does). Environment: PYTHON (default .venv/bin/python if present,
# else python3), OUT (default runs/gpu-check), STEPS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
OUT="${OUT:-runs/gpu-check}"
STEPS="${STEPS:-2}"
mode=gpu
model=embedded
if [ "${1:-}" = "--cpu" ]; then
    mode=cpu
    model="${2:?usage: gpu-check.sh --cpu MODEL [key=value ...]}"
    shift 2
fi

common=(
    "out=$OUT" "name=$mode-$(date +%Y%m%d-%H%M%S)" "steps=$STEPS" "env=code" "agent_options.model=$model"
    "checkpoint_every=$STEPS" "progress=false" "probe.every=0" "selfplay.seed_size=0"
    "agent_options.strategy=fsdp2" "agent_options.gradient_checkpointing=true" "agent_options.trainable_layers=0"
    "agent_options.max_tokens_per_micro_batch=8192" "agent_options.max_prompt_tokens=6144"
)
if [ "$mode" = gpu ]; then
    command -v nvidia-smi >/dev/null || { echo "gpu-check: no nvidia-smi; for the CPU form: --cpu MODEL" >&2; exit 2; }
    ranks="$(nvidia-smi -L | wc -l)"
    [ "$ranks" -ge 1 ] || { echo "gpu-check: no GPU found" >&2; exit 2; }
    gpu_memory_gb="$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1 | awk '{printf "%.1f", $1/1024}')"
    settings=(
        "agent_options.backend=vllm" "agent_options.device=cuda" "agent_options.dtype=bfloat16" "agent_options.autocast_bf16=true"
        "agent_options.max_new_tokens=1024" "agent_options.batch_size=256"
        "selfplay.propose_batch=16" "selfplay.solve_batch=16" "selfplay.learnability_samples=4"
        "agent_options.vllm_options.gpu_memory_utilization=0.3"
        "agent_options.vllm_options.max_model_len=7168"
    )
else
    ranks=2
    gpu_memory_gb=24
    settings=(
        "agent_options.backend=hf" "agent_options.dtype=float32" "agent_options.autocast_bf16=false"
        "agent_options.max_new_tokens=16" "agent_options.batch_size=8"
        "selfplay.propose_batch=2" "selfplay.solve_batch=2" "selfplay.learnability_samples=2"
    )
fi

echo "gpu-check: $mode, $ranks rank(s), model $model, $STEPS steps -> $OUT" >&2
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" TOKENIZERS_PARALLELISM=false
started=$(date +%s)
"$PYTHON" -m torch.distributed.run --standalone --nproc_per_node="$ranks" \
    -m absolutezero.run "${common[@]}" "${settings[@]}" "$@"
echo "gpu-check: wall time $(( $(date +%s) - started )) s (model load and engine start included)" >&2
run_dir="$(ls -td "$OUT"/"$mode"-* | head -1)"
"$PYTHON" benchmarks/gpu_check_report.py "$run_dir" --gpus "$ranks" --gpu-memory-gb "$gpu_memory_gb"
