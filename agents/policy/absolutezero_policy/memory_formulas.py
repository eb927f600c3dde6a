"""The memory planner's constants and per-token activation formulas.

What :func:`absolutezero_policy.memory_parts.plan_memory` and the tests build on: the
byte unit, the rough overheads, the precision regimes and the saved-tensor bytes of one
decoder block (:func:`block_activation_bytes`). The model these formulas implement is
explained in :mod:`absolutezero_policy.memory_plan`'s module text.
"""

from __future__ import annotations

from absolutezero_policy.architectures import Architecture

__all__ = [
    "CPU_VLLM_KV_BYTES",
    "CUDA_OVERHEAD_BYTES",
    "GB",
    "LOGITS_BYTES_PER_ENTRY",
    "REGIMES",
    "STRATEGIES",
    "VLLM_GRAPHS_BYTES",
    "block_activation_bytes",
]

GB = 10**9
#: CUDA context, cuBLAS/NCCL workspaces and caching-allocator slack per GPU (rough).
CUDA_OVERHEAD_BYTES = 3 * GB
#: vLLM's CUDA graphs and other memory outside its profiled peak (rough).
VLLM_GRAPHS_BYTES = GB // 2
#: The logits chunk's bytes per (position, vocabulary entry): 4 B x 3 (see memory_plan).
LOGITS_BYTES_PER_ENTRY = 12
#: KV-cache budget of the CPU vLLM build when none is given (vllm_backend.CPU_KV_CACHE_BYTES).
CPU_VLLM_KV_BYTES = 2 * 2**30
STRATEGIES = ("ddp", "fsdp2")
REGIMES = ("fp32", "autocast", "bf16")


def _regime(compute_dtype_bytes: int, strategy: str) -> str:
    if compute_dtype_bytes == 4:
        return "fp32"
    return "bf16" if strategy == "fsdp2" else "autocast"


def _bytes(regime: str) -> tuple[int, int]:
    """(compute bytes c, residual-stream bytes r)."""
    return {"fp32": (4, 4), "autocast": (2, 4), "bf16": (2, 2)}[regime]


def _norm_bytes(arch: Architecture, regime: str, consumers: int) -> int:
    """Per token: an RMSNorm's saved tensors plus its output as saved by its ``consumers``
    linears (fp32 input, normalised value, output or its bf16 casts), and the rsqrt."""
    c, r = _bytes(regime)
    h = arch.hidden_size
    out = consumers * c * h if regime == "autocast" else c * h
    return 4 * h + r * h + out + 4


def _attention_bytes(arch: Architecture, regime: str, padded: bool) -> int:
    c, _ = _bytes(regime)
    kv = arch.q_size if padded and arch.num_kv_heads != arch.num_heads else arch.kv_size
    return c * (arch.q_size + 2 * kv) + c * arch.q_size + 4 * arch.num_heads


def block_activation_bytes(arch: Architecture, regime: str, *, trained: bool = True, padded: bool = False) -> int:
    """Saved-tensor bytes per token of one decoder block (see :mod:`absolutezero_policy.memory_plan`).

    ``trained``: the block's weights get gradients (else it only passes the gradient
    through); ``padded``: a padding mask made transformers repeat k and v to all heads
    (the mask itself is counted separately).
    """
    if regime not in REGIMES:
        raise ValueError(f"regime must be one of {REGIMES}, got {regime!r}")
    c, _ = _bytes(regime)
    attention = _attention_bytes(arch, regime, padded)
    if trained:
        return _norm_bytes(arch, regime, 3) + attention + _norm_bytes(arch, regime, 2) + 4 * c * arch.intermediate_size
    return 2 * (4 * arch.hidden_size + 4) + attention + 3 * c * arch.intermediate_size



def _ceil(a: int, b: int) -> int:
    return -(-a // b)
