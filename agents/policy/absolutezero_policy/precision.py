"""Which floating-point format is fast on this machine.

Why this exists: on CPUs without native bfloat16 arithmetic (AVX2-only x86) PyTorch
emulates bf16 matmuls, and they are several times *slower* than float32 (measured
figures: docs/results.md, "Figures quoted in the code"). So "bf16 to go faster" holds on GPUs and on CPUs
with AVX512-BF16 or AMX, and is backwards elsewhere. ``"auto"`` picks per machine.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch

AUTO = "auto"
_NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@lru_cache(maxsize=None)
def cpu_has_native_bf16() -> bool:
    """True when ``/proc/cpuinfo`` lists AVX512-BF16 or AMX-BF16 (False where unreadable)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[-1].split())
            return any(flag in flags for flag in _NATIVE_BF16_FLAGS)
    return False


def native_bf16(device: str | torch.device) -> bool:
    """Whether bfloat16 is computed natively (fast) on ``device``."""
    kind = torch.device(device).type
    if kind == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if kind == "cpu":
        return cpu_has_native_bf16()
    return False


def generation_dtype_name(dtype: str, device: str | torch.device) -> str:
    """``dtype`` with ``"auto"`` resolved: ``"bfloat16"`` where native, else ``"float32"``."""
    if dtype != AUTO:
        return dtype
    return "bfloat16" if native_bf16(device) else "float32"


def autocast_default(autocast_bf16: bool | None, device: str | torch.device) -> bool:
    """``autocast_bf16`` with ``None`` (auto) resolved to :func:`native_bf16`."""
    return native_bf16(device) if autocast_bf16 is None else bool(autocast_bf16)
