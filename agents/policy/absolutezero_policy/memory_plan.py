"""How much memory the policy agent needs per GPU (or per CPU rank), part by part.

Two entry points:

* :func:`plan_memory` works from an :class:`Architecture` and explicit settings, without a
  config (benchmarks print its parts next to measured figures);
* :func:`memory_plan` takes the agent's constructor options (what
  ``absolutezero.components.agent_kwargs(config)`` gives), resolves the model's shapes, plans,
  and when the plan does not fit searches for settings that make it fit. ``PolicyAgent``
  exposes it as the static method ``PolicyAgent.memory_plan(options, gpus,
  gpu_memory_gb)``, which ``python -m absolutezero.plan`` calls through the agent registry.

Bytes are exact integers; "GB" in the report is 10^9 bytes.

Where the code lives (this module keeps the planner's documentation, below, and
re-exports its public names, so ``from absolutezero_policy.memory_plan import ...`` keeps
working): :mod:`~absolutezero_policy.architectures` (model shapes, :func:`resolve_architecture`),
:mod:`~absolutezero_policy.memory_formulas` (constants, per-token activation bytes),
:mod:`~absolutezero_policy.memory_parts` (:func:`plan_memory`),
:mod:`~absolutezero_policy.memory_report` (:class:`MemoryPlan` and its report text) and
:mod:`~absolutezero_policy.memory_search` (:func:`memory_plan`: the agent's options and
the search for settings that fit).

The model of the trainer
------------------------
Training state (``weights``, ``gradients``, ``optimizer``): fp32 master weights of every
parameter (4 B), fp32 gradients of the trainable ones (4 B), AdamW ``exp_avg`` and
``exp_avg_sq`` (8 B per trainable parameter). ``ddp``: every rank holds all of it.
``fsdp2``: everything divided by the number of ranks N (frozen parameters are sharded
too). ``cpu_offload`` (fsdp2): the sharded state lives in host memory, not on the GPU.

Compute precision ("regime"), which decides the bytes of every saved activation:

* ``fp32``: no autocast (the CPU default): everything 4 B.
* ``autocast`` (ddp with ``autocast_bf16``): fp32 weights and fp32 residual stream;
  each ``nn.Linear`` casts its input to bf16 (one copy *per consumer*: q, k and v each
  cast the norm's output) and its output is bf16; RMSNorm computes in fp32.
* ``bf16`` (fsdp2 with ``MixedPrecisionPolicy(param_dtype=bf16)``): bf16 parameters and
  residual stream; RMSNorm still up-casts its input to fp32 and saves that copy.

Activations (autograd's saved tensors, per token, of a Qwen2/Llama decoder block as
implemented in ``transformers/models/qwen2/modeling_qwen2.py`` with SDPA attention;
counted with ``torch.autograd.graph.saved_tensors_hooks`` on a tiny random Qwen2, unique
storages, parameters excluded: the formulas below reproduce that count exactly, see
tests/test_memory_plan.py). H hidden, Q = heads x head_dim, KV = kv_heads x head_dim,
I = MLP width, c = compute bytes (2 or 4), r = residual-stream bytes:

* each RMSNorm saves its fp32 input (4H: ``pow``'s input; in fp32/autocast that is the
  residual-stream tensor itself), the normalised value before the weight (r·H) and its
  output as the linears' input (c·H; under autocast one bf16 copy per consuming linear);
* attention: SDPA saves q (after RoPE), k, v (c·(Q + 2·KV); with a padding mask
  transformers repeats k and v to all heads first: c·3Q), its output (c·Q, which is also
  ``o_proj``'s input) and the log-sum-exp (4 B x heads); RoPE's multiplications by
  cos/sin save nothing per block (cos and sin are shared);
* SwiGLU: gate output (SiLU's input), SiLU output, up output (the product's inputs) and
  the product (``down_proj``'s input): 4·c·I;
* residual adds save nothing.

So per trained block and token: fp32 ``4·(6H + 2Q + 2KV + 4I) + 4·heads + 8`` bytes;
autocast ``26H + 4Q + 4KV + 8I + 4·heads + 8``; bf16 ``16H + 4Q + 4KV + 8I + 4·heads + 8``.
Outside the blocks: the final norm (its fp32 input, the normalised value and its output,
which the checkpointed logits chunks keep as their input: ``4H + 2·r·H``), the input ids
(8 B) and RoPE's cos/sin (2·head_dim·r). With padded micro-batches (several samples) SDPA also
keeps a (samples x width x width) float mask per block.

Blocks that keep activations: the trained blocks; and, when the input embeddings
receive a gradient, every block below them too (a *frozen* block on the gradient's path
keeps the norm inputs, SDPA's tensors and SiLU's/the product's inputs, but not the
linears' inputs: ``8H + c·(2Q + 2KV) + 4·heads + 3·c·I + 8`` bytes). The latter happens
with ``trainable_layers=K`` on a model with *tied* embeddings (Qwen2.5 0.5B-3B):
``select_trainable`` keeps the shared embedding/head matrix trainable, so autograd
back-propagates through the frozen blocks down to the embedding lookup.

Gradient checkpointing (transformers' non-reentrant checkpoint of each block): each
block on the gradient path keeps only its input (r·H per token); the backward pass
recomputes one block at a time, so the peak adds one block's full activations.

Logits: chunks of ``logits_chunk_tokens`` completion positions, each recomputed in the
backward pass; a chunk's peak is ``chunk x vocab x 4 B x 3`` (fp32 logits kept for
log-softmax's backward, the exp/softmax temporary and the fp32 gradient; under bf16 the
bf16 logits and bf16 gradient are smaller than the third fp32 term they replace).

Transient buffers (``transient``): fsdp2 gathers the current block and one prefetched
block unsharded (c·2·P_block) and keeps the root unit (embeddings, final norm, head)
unsharded through forward and backward (c·P_root); during a block's backward its
unsharded gradient (c, plus the fp32 copy for the reduce-scatter under bf16) and the
root's unsharded gradient (c·P_root trainable) exist. ddp under autocast: the bf16 casts
of the weights that autograd keeps (all blocks on the gradient path plus the head, or one
block plus the head with checkpointing); ddp with N > 1 ranks: the flat fp32 buffer of
the gradient all-reduce (4 B x trainable, after the backward pass). Every backward pass:
the residual-stream gradient and one block's intermediate gradients, ``T·(8H + 3·c·I)``.

Generation: vLLM (one engine per rank, TP 1) holds ``gpu_memory_utilization x GPU
memory`` in all: its bf16 weights, its profiling peak (activations for
``max_num_batched_tokens``, the sampler's logits for ``max_num_seqs``, CUDA graphs;
estimated) and the KV cache, which gets the rest (or exactly
``kv_cache_memory_bytes``). Sleep mode frees all of it during the update on CUDA. The
hf backend keeps a bf16 generation copy (unless generation is fp32) and a KV cache for
``batch_size`` sequences. Peak per GPU = max(generation phase: training state +
generation engine + overhead, update phase: training state + transient + activations +
logits + overhead).
"""

from __future__ import annotations

# Re-exports: the planner's public names (__all__) and its public constants (importable
# from here as before the split), from the modules that hold them.
from absolutezero_policy.architectures import BUILTIN_ARCHITECTURES, Architecture, resolve_architecture
from absolutezero_policy.memory_formulas import (
    CPU_VLLM_KV_BYTES,
    CUDA_OVERHEAD_BYTES,
    GB,
    LOGITS_BYTES_PER_ENTRY,
    REGIMES,
    STRATEGIES,
    VLLM_GRAPHS_BYTES,
    block_activation_bytes,
)
from absolutezero_policy.memory_parts import plan_memory
from absolutezero_policy.memory_report import MemoryPlan
from absolutezero_policy.memory_search import ASSUMED_PROMPT_TOKENS, memory_plan

__all__ = [
    "Architecture",
    "BUILTIN_ARCHITECTURES",
    "GB",
    "MemoryPlan",
    "block_activation_bytes",
    "memory_plan",
    "plan_memory",
    "resolve_architecture",
]
