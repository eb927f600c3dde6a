"""The memory plan of the agent's options: :func:`memory_plan` maps the PolicyAgent's
constructor options onto :func:`~absolutezero_policy.memory_parts.plan_memory`'s
settings, and when the plan does not fit searches for settings that make it fit.

``PolicyAgent.memory_plan`` (what ``python -m absolutezero.plan`` calls) is this
function; :mod:`absolutezero_policy.memory_plan` re-exports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from absolutezero.config import ConfigError
from absolutezero_policy.architectures import Architecture, resolve_architecture
from absolutezero_policy.memory_parts import plan_memory
from absolutezero_policy.memory_report import MemoryPlan

__all__ = ["ASSUMED_PROMPT_TOKENS", "memory_plan"]

#: Prompt length assumed when agent_options.max_prompt_tokens is unset and vLLM names no
#: max_model_len (a warning says so).
ASSUMED_PROMPT_TOKENS = 2048

# -- from the agent's options ----------------------------------------------------------------

def _agent_defaults() -> dict[str, Any]:
    """PolicyAgent's declared option defaults (the one place they are written)."""
    from absolutezero.options import defaults
    from absolutezero_policy.agent import PolicyAgent

    return defaults(PolicyAgent)


_DTYPE_BYTES = {"float32": 4, "fp32": 4, "bfloat16": 2, "bf16": 2, "float16": 2, "fp16": 2}


def _native_bf16(device: str) -> bool:
    """bf16 is native on GPUs (planning happens off the GPU: assume it) and on CPUs with
    AVX512-BF16/AMX (as ``precision.native_bf16`` decides at run time)."""
    if str(device).startswith("cuda"):
        return True
    from absolutezero_policy.precision import cpu_has_native_bf16

    return cpu_has_native_bf16()


def _option(options: Mapping[str, Any], key: str) -> Any:
    default = _agent_defaults()[key]
    value = options.get(key, default)
    return default if value is None and key in ("batch_size", "micro_batch", "logits_chunk_tokens") else value


def _kwargs(arch: Architecture, options: Mapping[str, Any], gpus: int, gpu_memory_gb: float) -> tuple[dict[str, Any], list[str]]:
    """plan_memory's keyword arguments for the agent ``options``, and warnings."""
    notes: list[str] = []
    device = str(_option(options, "device"))
    backend = _option(options, "backend")
    vllm_options = dict(_option(options, "vllm_options") or {})
    if vllm_options and backend != "vllm":
        raise ConfigError("agent_options.vllm_options only apply to backend=vllm")
    dtype = str(_option(options, "dtype")).lower()
    if dtype == "auto":
        generation_bytes = 2 if _native_bf16(device) else 4
    elif dtype in _DTYPE_BYTES:
        generation_bytes = _DTYPE_BYTES[dtype]
    else:
        raise ConfigError(f"agent_options.dtype must be auto, float32, bfloat16 or float16, got {dtype!r}")
    autocast = _option(options, "autocast_bf16")
    autocast = _native_bf16(device) if autocast is None else bool(autocast)
    new_tokens = int(_option(options, "max_new_tokens"))
    prompt_tokens = _option(options, "max_prompt_tokens")
    max_model_len = vllm_options.get("max_model_len")
    if prompt_tokens:
        longest = int(prompt_tokens) + new_tokens
        if max_model_len:
            longest = min(longest, int(max_model_len))
    elif max_model_len:
        longest = int(max_model_len)
    else:
        longest = ASSUMED_PROMPT_TOKENS + new_tokens
        notes.append(
            f"agent_options.max_prompt_tokens is unset: assumed prompts of up to {ASSUMED_PROMPT_TOKENS:,} tokens "
            f"(sequences of {longest:,})"
        )
    micro_batch = int(_option(options, "micro_batch"))
    budget = _option(options, "max_tokens_per_micro_batch")
    if budget is None:
        samples, tokens = micro_batch, micro_batch * longest
    elif int(budget) >= longest:
        # rows padded to the longest in the micro-batch; the worst case for the attention
        # mask is two rows of half the budget
        samples, tokens = 2, int(budget)
    else:
        samples, tokens = 1, longest
        notes.append(
            f"sequences of up to {longest:,} tokens exceed agent_options.max_tokens_per_micro_batch={int(budget):,}: "
            "such a sample is a micro-batch of its own"
        )
    kwargs = dict(
        gpus=gpus,
        gpu_memory_gb=gpu_memory_gb,
        strategy=_option(options, "strategy"),
        trainable_layers=_option(options, "trainable_layers"),
        gradient_checkpointing=bool(_option(options, "gradient_checkpointing")),
        tokens_per_micro_batch=tokens,
        samples_per_micro_batch=samples,
        logits_chunk_tokens=int(_option(options, "logits_chunk_tokens")),
        completion_tokens=min(tokens, samples * new_tokens),
        compute_dtype_bytes=2 if autocast else 4,
        cpu_offload=bool(_option(options, "cpu_offload")),
        backend=backend,
        device=device,
        generation_dtype_bytes=generation_bytes,
        generation_batch_size=int(vllm_options.get("max_num_seqs") or _option(options, "batch_size")),
        sequence_tokens=int(max_model_len) if max_model_len else longest,
        vllm_gpu_memory_utilization=vllm_options.get("gpu_memory_utilization"),
        vllm_kv_cache_memory_bytes=vllm_options.get("kv_cache_memory_bytes"),
        vllm_max_num_batched_tokens=vllm_options.get("max_num_batched_tokens"),
    )
    return kwargs, notes


def _plan(arch: Architecture, options: Mapping[str, Any], gpus: int, gpu_memory_gb: float) -> MemoryPlan:
    kwargs, notes = _kwargs(arch, options, gpus, gpu_memory_gb)
    try:
        plan = plan_memory(arch, **kwargs)
    except ValueError as error:
        raise ConfigError(str(error)) from error
    plan.warnings[:0] = notes
    plan.settings["longest_sequence"] = kwargs["sequence_tokens"]
    return plan


def _with(options: Mapping[str, Any], key: str, value: Any) -> dict[str, Any]:
    changed = dict(options)
    if key.startswith("vllm_options."):
        engine = dict(changed.get("vllm_options") or {})
        engine[key.removeprefix("vllm_options.")] = value
        changed["vllm_options"] = engine
    else:
        changed[key] = value
    return changed


def _get(options: Mapping[str, Any], key: str) -> Any:
    if key.startswith("vllm_options."):
        return (options.get("vllm_options") or {}).get(key.removeprefix("vllm_options."))
    return options.get(key, _agent_defaults().get(key))


def _search(arch: Architecture, options: Mapping[str, Any], gpus: int, gpu_memory_gb: float) -> tuple[dict[str, Any], MemoryPlan | None]:
    """Settings that make the plan fit, tried cumulatively in this order: strategy fsdp2,
    gradient checkpointing, a smaller token budget per micro-batch, a smaller vLLM share,
    CPU offload, more GPUs; then every change that is not needed is dropped again.

    Returns:
        (changes, the plan with them): agent option -> value (``"gpus"`` for the rank
        count); the plan is None when even the last combination fails to fit.
    """

    def attempt(opts: Mapping[str, Any], ranks: int) -> MemoryPlan | None:
        try:
            return _plan(arch, opts, ranks, gpu_memory_gb)
        except ConfigError:
            return None

    def fits(opts: Mapping[str, Any], ranks: int) -> bool:
        plan = attempt(opts, ranks)
        return plan is not None and plan.fits

    current, ranks = dict(options), gpus
    changes: dict[str, Any] = {}

    def apply(key: str, value: Any) -> None:
        nonlocal current, ranks
        if key == "gpus":
            ranks = value
        else:
            current = _with(current, key, value)
        changes[key] = value

    def first_fitting(key: str, candidates: list[Any]) -> bool:
        """Apply the first candidate that fits; else the last one; True when it fits."""
        for value in candidates:
            if fits(_with(current, key, value), ranks):
                apply(key, value)
                return True
        if candidates:
            apply(key, candidates[-1])
        return False

    base = attempt(current, ranks)
    if base is None:
        return {}, None
    longest = base.settings["longest_sequence"]
    steps = []
    if _get(current, "strategy") != "fsdp2" and gpus > 1:
        steps.append(lambda: (apply("strategy", "fsdp2"), fits(current, ranks))[1])
    if not _get(current, "gradient_checkpointing"):
        steps.append(lambda: (apply("gradient_checkpointing", True), fits(current, ranks))[1])

    def smaller_budget() -> bool:
        budget = base.settings["tokens_per_micro_batch"]
        candidates, value = [], budget
        while True:
            value = max((value // 2) // 1024 * 1024, longest)
            if value >= budget or (candidates and value >= candidates[-1]):
                break
            candidates.append(value)
            if value == longest:
                break
        return first_fitting("max_tokens_per_micro_batch", candidates)

    steps.append(smaller_budget)

    def smaller_share() -> bool:
        if _get(current, "backend") != "vllm" or not str(_get(current, "device")).startswith("cuda"):
            return False
        kv_bytes = _get(current, "vllm_options.kv_cache_memory_bytes")
        one_sequence = arch.kv_bytes_per_token(base.settings["generation_dtype_bytes"]) * longest
        if kv_bytes is not None:
            candidates, value = [], int(kv_bytes)
            while value // 2 >= one_sequence:
                value //= 2
                candidates.append(value)
            return first_fitting("vllm_options.kv_cache_memory_bytes", candidates)
        share = _get(current, "vllm_options.gpu_memory_utilization") or 0.9
        candidates = []
        value = round(share - 0.05, 2)
        while value > 0:
            plan = attempt(_with(current, "vllm_options.gpu_memory_utilization", value), ranks)
            if plan is None or plan.details["kv_tokens"] < longest:
                break
            candidates.append(value)
            value = round(value - 0.05, 2)
        return first_fitting("vllm_options.gpu_memory_utilization", candidates)

    steps.append(smaller_share)

    def offload() -> bool:
        if _get(current, "strategy") != "fsdp2":
            apply("strategy", "fsdp2")
        apply("cpu_offload", True)
        return fits(current, ranks)

    steps.append(offload)

    def more_gpus() -> bool:
        candidates, value = [], ranks
        while value < 64:
            value *= 2
            candidates.append(value)
        for value in candidates:
            if fits(current, value):
                apply("gpus", value)
                return True
        return False

    steps.append(more_gpus)
    found = False
    for step in steps:
        if step():
            found = True
            break
    if not found:
        return changes, None
    # drop what is not needed (in order), keeping the plan fitting
    for key in list(changes):
        if key == "gpus":
            continue
        trial = {k: v for k, v in changes.items() if k != key}
        opts, trial_ranks = dict(options), gpus
        for k, v in trial.items():
            if k == "gpus":
                trial_ranks = v
            else:
                opts = _with(opts, k, v)
        if fits(opts, trial_ranks):
            changes = trial
    opts, final_ranks = dict(options), gpus
    for k, v in changes.items():
        if k == "gpus":
            final_ranks = v
        else:
            opts = _with(opts, k, v)
    return changes, attempt(opts, final_ranks)


def memory_plan(options: Mapping[str, Any], gpus: int, gpu_memory_gb: float) -> MemoryPlan:
    """The memory plan of a PolicyAgent built with ``options`` on ``gpus`` ranks of
    ``gpu_memory_gb`` each (``PolicyAgent.memory_plan``).

    ``options`` are the agent's constructor keywords (``absolutezero.components.agent_kwargs``);
    missing ones take the run config's defaults. When the plan does not fit,
    ``suggestions`` holds the settings that make it fit (see :func:`_search`) and
    ``suggested_plan`` the plan with them.

    Raises:
        ConfigError: an unknown model architecture, or a setting out of range.
    """
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1:
        raise ConfigError(f"gpus must be an integer >= 1, got {gpus!r}")
    if not isinstance(gpu_memory_gb, (int, float)) or isinstance(gpu_memory_gb, bool) or not gpu_memory_gb > 0:
        raise ConfigError(f"gpu_memory_gb must be a number > 0, got {gpu_memory_gb!r}")
    if not isinstance(options, Mapping):
        raise ConfigError(f"options must be a mapping, got {type(options).__name__}")
    arch = resolve_architecture(str(_option(options, "model")), _option(options, "cache_dir"))
    plan = _plan(arch, options, gpus, float(gpu_memory_gb))
    if not plan.fits:
        plan.suggestions, plan.suggested_plan = _search(arch, options, gpus, float(gpu_memory_gb))
    return plan
