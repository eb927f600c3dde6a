"""The bytes per GPU of each part of a training run for explicit settings:
:func:`plan_memory`, the formulas of :mod:`absolutezero_policy.memory_plan`'s module text.

One long function because the parts share their intermediate quantities (trainable
parameters, blocks on the gradient path, the compute regime); it needs no config, so
benchmarks print its parts next to measured figures.
"""

from __future__ import annotations

from typing import Any

from absolutezero_policy.architectures import Architecture
from absolutezero_policy.memory_formulas import (
    CPU_VLLM_KV_BYTES,
    CUDA_OVERHEAD_BYTES,
    GB,
    LOGITS_BYTES_PER_ENTRY,
    STRATEGIES,
    VLLM_GRAPHS_BYTES,
    _bytes,
    _ceil,
    _regime,
    block_activation_bytes,
)
from absolutezero_policy.memory_report import MemoryPlan

__all__ = ["plan_memory"]


def plan_memory(
    arch: Architecture,
    *,
    gpus: int = 1,
    gpu_memory_gb: float = 80.0,
    strategy: str = "ddp",
    trainable_layers: int = 0,
    gradient_checkpointing: bool = False,
    tokens_per_micro_batch: int = 4096,
    samples_per_micro_batch: int = 1,
    logits_chunk_tokens: int = 1024,
    completion_tokens: int | None = None,
    compute_dtype_bytes: int = 2,
    cpu_offload: bool = False,
    backend: str = "hf",
    device: str = "cuda",
    generation_dtype_bytes: int = 2,
    generation_batch_size: int = 64,
    sequence_tokens: int | None = None,
    vllm_gpu_memory_utilization: float | None = None,
    vllm_kv_cache_memory_bytes: int | None = None,
    vllm_max_num_batched_tokens: int | None = None,
    overhead_bytes: int | None = None,
    gradient_through_frozen: bool | None = None,
) -> MemoryPlan:
    """Bytes per GPU by part for ``arch`` trained with these settings (no config needed).

    Args:
        gpus: ranks (one GPU each); fsdp2 shards over them.
        gpu_memory_gb: memory per GPU (per rank on CPU), 10^9 bytes.
        strategy: ``"ddp"`` (replicas) or ``"fsdp2"`` (sharded).
        trainable_layers: 0 = every parameter; K = the top K blocks, final norm and head.
        tokens_per_micro_batch: padded tokens (prompt + completion) of one micro-batch.
        samples_per_micro_batch: > 1 means padded rows, so SDPA keeps a (rows x width
            x width) mask per block and k/v repeated to all heads; the rows are
            ``tokens_per_micro_batch // samples_per_micro_batch`` wide (at most
            ``sequence_tokens``).
        logits_chunk_tokens: completion positions whose logits exist at once.
        completion_tokens: completion positions in the micro-batch (caps the chunk);
            None = no cap.
        compute_dtype_bytes: 2 (bf16 autocast / mixed precision) or 4 (fp32).
        cpu_offload: fsdp2's sharded state in host memory.
        backend: ``"vllm"`` or ``"hf"`` generation.
        device: ``"cuda"`` (sleep mode frees vLLM during the update; CUDA overhead) or
            ``"cpu"``.
        generation_dtype_bytes: the generation engine's weight/KV dtype (2 bf16, 4 fp32).
        generation_batch_size: sequences generated together (vLLM's max_num_seqs).
        sequence_tokens: the longest prompt + completion (vLLM's max_model_len);
            None = ``tokens_per_micro_batch // samples_per_micro_batch``.
        vllm_gpu_memory_utilization: vLLM's share of the GPU (None: vLLM's 0.9 on CUDA;
            on CPU a fixed 2 GiB KV cache).
        vllm_kv_cache_memory_bytes: an exact KV budget instead of the share.
        vllm_max_num_batched_tokens: vLLM's step budget (None: 16,384 on >= 70 GB GPUs,
            else 8,192, vLLM's defaults for the offline ``LLM`` class).
        overhead_bytes: CUDA context etc. (None: 3 GB on CUDA, 0 on CPU).
        gradient_through_frozen: whether frozen blocks below the trained ones lie on
            the gradient's path (None: when the head is tied to the embeddings and
            0 < trainable_layers < layers; see :mod:`absolutezero_policy.memory_plan`).

    Raises:
        ValueError: a setting out of range.
    """
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1:
        raise ValueError(f"gpus must be an integer >= 1, got {gpus!r}")
    if not gpu_memory_gb > 0:
        raise ValueError(f"gpu_memory_gb must be > 0, got {gpu_memory_gb!r}")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if cpu_offload and strategy != "fsdp2":
        raise ValueError("cpu_offload needs strategy fsdp2")
    if compute_dtype_bytes not in (2, 4) or generation_dtype_bytes not in (2, 4):
        raise ValueError("compute_dtype_bytes and generation_dtype_bytes must be 2 or 4")
    if isinstance(trainable_layers, bool) or not isinstance(trainable_layers, int) or trainable_layers < 0:
        raise ValueError(f"trainable_layers must be an integer >= 0, got {trainable_layers!r}")
    if tokens_per_micro_batch < 1 or samples_per_micro_batch < 1 or logits_chunk_tokens < 1:
        raise ValueError("tokens_per_micro_batch, samples_per_micro_batch and logits_chunk_tokens must be >= 1")
    if backend not in ("hf", "vllm"):
        raise ValueError(f"backend must be 'hf' or 'vllm', got {backend!r}")
    if vllm_gpu_memory_utilization is not None and not 0 < vllm_gpu_memory_utilization <= 1:
        raise ValueError(f"gpu_memory_utilization must be in (0, 1], got {vllm_gpu_memory_utilization!r}")
    cuda = str(device).startswith("cuda")
    gpu_memory = int(gpu_memory_gb * GB)
    n = gpus
    regime = _regime(compute_dtype_bytes, strategy)
    c, r = _bytes(regime)
    h, layers = arch.hidden_size, arch.num_layers
    warnings: list[str] = []
    details: dict[str, Any] = {}

    # training state
    total_params = arch.total_parameters
    trainable = arch.trainable_parameters(trainable_layers)
    shard = n if strategy == "fsdp2" else 1
    weights = _ceil(4 * total_params, shard)
    gradients = _ceil(4 * trainable, shard)
    optimizer = _ceil(8 * trainable, shard)
    details.update(total_parameters=total_params, trainable_parameters=trainable)

    # which blocks keep activations
    trained_blocks = layers if trainable_layers == 0 else min(trainable_layers, layers)
    if gradient_through_frozen is None:
        gradient_through_frozen = arch.tie_word_embeddings and 0 < trainable_layers < layers
    frozen_on_path = layers - trained_blocks if gradient_through_frozen else 0
    # the embedding lookup's output needs a gradient: full training, or a tied head
    # (trainable) whose gradient reaches the lookup (no frozen block, or through them)
    embeddings_get_grad = trainable_layers == 0 or (
        arch.tie_word_embeddings and (frozen_on_path > 0 or trained_blocks == layers)
    )
    kept_blocks = trained_blocks + frozen_on_path
    if frozen_on_path:
        warnings.append(
            f"the head is tied to the input embeddings, so with trainable_layers={trainable_layers} the gradient "
            f"flows through all {frozen_on_path} frozen blocks to the embedding lookup: they keep activations "
            "and cost a full backward pass (detach the embeddings' output to avoid it)"
        )

    # activations per token
    tokens = tokens_per_micro_batch
    padded = samples_per_micro_batch > 1
    # the widest padded row: the budget split over the rows, at most the longest sequence
    width = tokens // samples_per_micro_batch
    if sequence_tokens:
        width = min(width, sequence_tokens)
    block_trained = block_activation_bytes(arch, regime, trained=True, padded=padded)
    block_frozen = block_activation_bytes(arch, regime, trained=False, padded=padded)
    # the final norm's fp32 input and normalised value, and its output, which the logits
    # chunks' checkpoints keep as their input (fp32 under autocast: the cast to bf16
    # happens inside the recomputed chunk)
    head = 4 * h + 2 * r * h + 4
    # the input ids (for the embedding's backward) and RoPE's cos/sin
    other = (8 if embeddings_get_grad else 0) + 2 * arch.head_dim * r
    # without a gradient into the lowest kept block, its input norm's input is not saved
    first_saving = 0 if embeddings_get_grad else 4 * h + 4
    # rows x width x width mask entries, rows x width <= tokens
    mask_per_block = tokens * width * c if padded else 0
    full_per_token = trained_blocks * block_trained + frozen_on_path * block_frozen + head + other - first_saving
    activations_full = full_per_token * tokens + kept_blocks * mask_per_block
    checkpoint_inputs = kept_blocks * r * h * tokens
    forward_checkpointed = checkpoint_inputs + (head + (8 if embeddings_get_grad else 0)) * tokens
    recompute = max(block_trained, block_frozen) * tokens + mask_per_block
    activations_checkpointed = forward_checkpointed + recompute
    details.update(
        activation_bytes_per_token_per_trained_block=block_trained,
        activation_bytes_per_token_per_frozen_block=block_frozen if frozen_on_path else 0,
        activations_checkpointed_forward=forward_checkpointed,
        activations_recompute=recompute,
        attention_mask_per_block=mask_per_block,
        blocks_keeping_activations=kept_blocks,
    )
    if padded:
        warnings.append(
            f"padded micro-batches (rows of up to {width:,} tokens, {tokens:,} in all): SDPA keeps a "
            f"{mask_per_block / GB:.2f} GB attention mask per block"
            + ("" if gradient_checkpointing else f" ({kept_blocks} blocks)")
        )

    # logits
    positions = min(logits_chunk_tokens, completion_tokens or logits_chunk_tokens, tokens)
    logits = positions * arch.vocab_size * LOGITS_BYTES_PER_ENTRY

    # transient buffers of the update
    block_params = arch.block_parameters
    workspace = tokens * (8 * h + 3 * c * arch.intermediate_size)
    reduce_buffer = 0
    if strategy == "fsdp2":
        copies = c * (2 * block_params + arch.root_parameters)
        tied_or_all = trainable_layers == 0 or arch.tie_word_embeddings
        root_trainable = arch.root_parameters if tied_or_all else arch.root_parameters - arch.vocab_size * h
        grads = (c + (4 if c != 4 else 0)) * block_params + c * root_trainable
        transient = copies + grads + workspace
        transient_note = "FSDP2 unsharded blocks + root, their gradients, backward workspace"
    else:
        if regime == "autocast":
            cast_blocks = 1 if gradient_checkpointing else kept_blocks
            copies = 2 * (cast_blocks * block_params + arch.vocab_size * h)
            transient_note = "bf16 weight casts autograd keeps, backward workspace"
        else:
            copies = 0
            transient_note = "backward workspace"
        transient = copies + workspace
        if n > 1:
            reduce_buffer = 4 * trainable
    details.update(transient_workspace=workspace, gradient_all_reduce_buffer=reduce_buffer)

    # the generation engine
    overhead = (CUDA_OVERHEAD_BYTES if cuda else 0) if overhead_bytes is None else int(overhead_bytes)
    sequence = sequence_tokens or width
    kv_per_token = arch.kv_bytes_per_token(generation_dtype_bytes)
    vllm_other = 0
    if backend == "vllm":
        vllm_weights = generation_dtype_bytes * total_params
        step_tokens = vllm_max_num_batched_tokens or (16384 if gpu_memory >= 70 * GB else 8192)
        if cuda:
            vllm_other = (
                step_tokens * generation_dtype_bytes * (3 * arch.intermediate_size + 4 * h)
                + generation_batch_size * arch.vocab_size * 8
                + VLLM_GRAPHS_BYTES
            )
        else:
            vllm_other = step_tokens * generation_dtype_bytes * (3 * arch.intermediate_size + 4 * h)
        if vllm_kv_cache_memory_bytes is not None:
            kv_cache = int(vllm_kv_cache_memory_bytes)
            kv_source = "kv_cache_memory_bytes"
        elif cuda or vllm_gpu_memory_utilization is not None:
            share = 0.9 if vllm_gpu_memory_utilization is None else vllm_gpu_memory_utilization
            kv_cache = int(share * gpu_memory) - vllm_weights - vllm_other
            kv_source = f"{share:g} x {gpu_memory / GB:g} GB - weights - profile peak"
        else:
            kv_cache = CPU_VLLM_KV_BYTES
            kv_source = "the CPU build's 2 GiB default"
        engine = vllm_weights + max(kv_cache, 0) + vllm_other
        if vllm_gpu_memory_utilization is not None and vllm_kv_cache_memory_bytes is None:
            engine = max(engine, int(vllm_gpu_memory_utilization * gpu_memory))
        sleeps = cuda  # sleep mode frees weights and KV cache during the update
    else:
        vllm_weights = 0 if generation_dtype_bytes == 4 else generation_dtype_bytes * total_params
        kv_cache = generation_batch_size * sequence * kv_per_token
        vllm_other = generation_batch_size * arch.vocab_size * 4
        kv_source = f"batch_size {generation_batch_size} x {sequence:,} tokens"
        engine = vllm_weights + kv_cache + vllm_other
        sleeps = False  # the generation copy stays; its KV cache and logits are freed
    kv_tokens = max(kv_cache, 0) // kv_per_token
    kv_sequences = kv_tokens // max(sequence, 1)
    kv_ok = True
    if backend == "vllm":
        kv_note = f"{kv_tokens:,} tokens = {kv_sequences:,} x {sequence:,}-token sequences ({kv_source})"
        if kv_cache <= 0 or kv_tokens < sequence:
            kv_ok = False
            warnings.append(
                f"vLLM's KV cache ({max(kv_cache, 0) / GB:.2f} GB) cannot hold one {sequence:,}-token sequence: "
                "the engine refuses to start; raise gpu_memory_utilization"
            )
        elif kv_sequences < generation_batch_size:
            warnings.append(
                f"the KV cache holds {kv_sequences:,} sequences of {sequence:,} tokens, fewer than batch_size "
                f"{generation_batch_size}: vLLM preempts (recomputes) requests when many run long"
            )
    else:
        kv_note = kv_source

    # the two phases
    state_on_device = 0 if cpu_offload else weights + gradients + optimizer
    activations = activations_checkpointed if gradient_checkpointing else activations_full
    if sleeps:
        resident_engine = 0
    elif backend == "hf":
        resident_engine = vllm_weights
    else:
        resident_engine = engine  # vLLM without sleep mode (CPU) keeps its KV cache
    update_backward = state_on_device + transient + activations + logits + overhead + resident_engine
    update_reduce = state_on_device + reduce_buffer + overhead + resident_engine
    update_phase = max(update_backward, update_reduce)
    generation_phase = state_on_device + engine + overhead
    total = max(update_phase, generation_phase)
    dominant = "update" if update_phase >= generation_phase else "generation"
    fits = total <= gpu_memory and kv_ok
    # vLLM sleeps at level 2 (vllm_weights.SLEEP_LEVEL): its weights are dropped, not
    # copied to host memory, and the next wake is followed by a full push.
    host = weights + gradients + optimizer if cpu_offload else 0
    details.update(
        transient_note=transient_note,
        kv_note=kv_note,
        kv_tokens=kv_tokens,
        kv_sequences=kv_sequences,
        kv_bytes_per_token=kv_per_token,
        generation_note=(
            ("training state on the GPU" if not cpu_offload else "training state offloaded")
            + f" + {'vLLM' if backend == 'vllm' else 'hf generation'} + overhead"
        ),
        update_note=(
            "training state + transient + activations + logits + overhead"
            + ("" if not resident_engine else (" + the hf generation copy" if backend == "hf" else " + vLLM (no sleep mode)"))
            + (f"; the gradient all-reduce buffer adds {reduce_buffer / GB:.2f} GB after the backward" if reduce_buffer else "")
        ),
        host_note="offloaded training state" if cpu_offload else "",
    )
    settings = dict(
        architecture=arch,
        strategy=strategy,
        regime=regime,
        device=device,
        trainable_layers=trainable_layers,
        tokens_per_micro_batch=tokens,
        tokens_note=f"{samples_per_micro_batch} x {width:,}" if not padded else f"padded rows of up to {width:,}",
        logits_chunk_tokens=logits_chunk_tokens,
        cpu_offload=cpu_offload,
        backend=backend,
        generation_dtype_bytes=generation_dtype_bytes,
    )
    return MemoryPlan(
        weights=weights,
        gradients=gradients,
        optimizer=optimizer,
        transient=transient,
        activations_checkpointed=activations_checkpointed,
        activations_full=activations_full,
        logits=logits,
        vllm_weights=vllm_weights,
        vllm_kv_cache=max(kv_cache, 0),
        vllm_other=vllm_other,
        overhead=overhead,
        generation_phase=generation_phase,
        update_phase=update_phase,
        total=total,
        fits=fits,
        gpu_memory=gpu_memory,
        gpus=n,
        gradient_checkpointing=gradient_checkpointing,
        dominant_phase=dominant,
        host_memory=host,
        warnings=warnings,
        details=details,
        settings=settings,
    )
