"""How much memory the policy agent needs per GPU (or per CPU rank), part by part.

Two entry points:

* :func:`plan_memory` works from an :class:`Architecture` and explicit settings, without a
  config (benchmarks print its parts next to measured figures);
* :func:`memory_plan` takes the agent's constructor options (what
  ``absolutezero.run.agent_options(config)`` gives), resolves the model's shapes, plans,
  and when the plan does not fit searches for settings that make it fit. ``PolicyAgent``
  exposes it as the static method ``PolicyAgent.memory_plan(options, gpus,
  gpu_memory_gb)``, which ``python -m absolutezero.plan`` calls through the agent registry.

Bytes are exact integers; "GB" in the report is 10^9 bytes.

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

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from absolutezero.config import ConfigError, did_you_mean

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

GB = 10**9
#: CUDA context, cuBLAS/NCCL workspaces and caching-allocator slack per GPU (rough).
CUDA_OVERHEAD_BYTES = 3 * GB
#: vLLM's CUDA graphs and other memory outside its profiled peak (rough).
VLLM_GRAPHS_BYTES = GB // 2
#: The logits chunk's bytes per (position, vocabulary entry): 4 B x 3 (see the module text).
LOGITS_BYTES_PER_ENTRY = 12
#: KV-cache budget of the CPU vLLM build when none is given (vllm_backend.CPU_KV_CACHE_BYTES).
CPU_VLLM_KV_BYTES = 2 * 2**30
#: Prompt length assumed when generation.max_prompt_tokens is unset and vLLM names no
#: max_model_len (a warning says so).
ASSUMED_PROMPT_TOKENS = 2048
STRATEGIES = ("ddp", "fsdp2")
REGIMES = ("fp32", "autocast", "bf16")


# -- model shapes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Architecture:
    """The shapes of a Qwen2/Llama-style decoder (what the formulas need)."""

    name: str
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    tie_word_embeddings: bool
    head_dim: int = 0  # 0: hidden_size // num_heads
    attention_bias: bool = True  # q/k/v biases (Qwen2: yes, Llama: no)
    source: str = ""  # where the numbers came from

    def __post_init__(self) -> None:
        if not self.head_dim:
            object.__setattr__(self, "head_dim", self.hidden_size // self.num_heads)

    @property
    def q_size(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_size(self) -> int:
        return self.num_kv_heads * self.head_dim

    @property
    def block_parameters(self) -> int:
        h, q, kv, i = self.hidden_size, self.q_size, self.kv_size, self.intermediate_size
        bias = (q + 2 * kv) if self.attention_bias else 0
        return h * q + 2 * h * kv + q * h + bias + 3 * h * i + 2 * h

    @property
    def root_parameters(self) -> int:
        """Embeddings, final norm and head (fsdp2's root unit)."""
        matrices = 1 if self.tie_word_embeddings else 2
        return matrices * self.vocab_size * self.hidden_size + self.hidden_size

    @property
    def total_parameters(self) -> int:
        return self.num_layers * self.block_parameters + self.root_parameters

    def trainable_parameters(self, trainable_layers: int) -> int:
        """Parameters ``select_trainable`` trains: all (0), or the top blocks plus the
        final norm and the head (the input embeddings stay frozen unless tied to it)."""
        if trainable_layers == 0:
            return self.total_parameters
        blocks = min(trainable_layers, self.num_layers)
        return blocks * self.block_parameters + self.hidden_size + self.vocab_size * self.hidden_size

    def kv_bytes_per_token(self, dtype_bytes: int = 2) -> int:
        """KV-cache bytes per token: K and V of every layer."""
        return 2 * self.num_layers * self.kv_size * dtype_bytes

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, name: str, source: str) -> Architecture:
        """From a Hugging Face ``config.json`` mapping.

        Raises:
            ConfigError: not a Qwen2/Llama-style decoder, or a shape is missing.
        """
        model_type = str(config.get("model_type", "?"))
        if model_type not in _SUPPORTED_TYPES:
            raise ConfigError(
                f"model {name!r} is a {model_type!r} model ({source}); the memory planner models "
                f"Qwen2/Llama-style decoders only ({', '.join(sorted(_SUPPORTED_TYPES))})"
            )
        keys = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
        missing = [key for key in keys if not isinstance(config.get(key), int)]
        if missing:
            raise ConfigError(f"the config.json of model {name!r} ({source}) lacks {', '.join(missing)}")
        heads = config["num_attention_heads"]
        return cls(
            name=name,
            vocab_size=config["vocab_size"],
            hidden_size=config["hidden_size"],
            num_layers=config["num_hidden_layers"],
            num_heads=heads,
            num_kv_heads=config.get("num_key_value_heads") or heads,
            intermediate_size=config["intermediate_size"],
            tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
            head_dim=config.get("head_dim") or 0,
            attention_bias=bool(config.get("attention_bias", model_type == "qwen2")),
            source=source,
        )


_SUPPORTED_TYPES = frozenset({"qwen2", "llama", "mistral"})

_QWEN_SOURCE = "built-in table (the model's config.json on the Hugging Face Hub)"


def _qwen(name: str, vocab: int, hidden: int, layers: int, heads: int, kv: int, mlp: int, tied: bool) -> Architecture:
    return Architecture(name, vocab, hidden, layers, heads, kv, mlp, tied, attention_bias=True, source=_QWEN_SOURCE)


#: Shapes of models without a local copy, from their config.json on the Hugging Face Hub
#: (Qwen/Qwen2.5-Coder-{0.5B,1.5B,3B,7B,14B}[-Instruct]; the base and instruct models
#: share them; checked against copies of those files and the model cards' parameter
#: counts: 0.49 B, 1.54 B, 3.09 B, 7.61 B, 14.7 B). The 0.5B-3B models tie the head to the
#: embeddings. "embedded" is this project's GGUF-derived copy of the 0.5B instruct model,
#: whose head is *not* tied (its safetensors hold lm_head.weight: 630 M parameters);
#: the copy's own config.json wins when the cache folder exists.
BUILTIN_ARCHITECTURES: Mapping[str, Architecture] = {
    arch.name: arch
    for arch in (
        _qwen("Qwen/Qwen2.5-Coder-0.5B", 151936, 896, 24, 14, 2, 4864, True),
        _qwen("Qwen/Qwen2.5-Coder-1.5B", 151936, 1536, 28, 12, 2, 8960, True),
        _qwen("Qwen/Qwen2.5-Coder-3B", 151936, 2048, 36, 16, 2, 11008, True),
        _qwen("Qwen/Qwen2.5-Coder-7B", 152064, 3584, 28, 28, 4, 18944, False),
        _qwen("Qwen/Qwen2.5-Coder-14B", 152064, 5120, 48, 40, 8, 13824, False),
    )
}
_EMBEDDED_FALLBACK = dataclasses.replace(
    BUILTIN_ARCHITECTURES["Qwen/Qwen2.5-Coder-0.5B"],
    name="embedded",
    tie_word_embeddings=False,
    source="built-in table (Qwen2.5-Coder-0.5B shapes, untied head as in the embedded GGUF copy)",
)


def _builtin(model: str) -> Architecture | None:
    key = model.removesuffix("-Instruct").lower()
    for name, arch in BUILTIN_ARCHITECTURES.items():
        if name.lower() == key:
            return dataclasses.replace(arch, name=model)
    return None


def _read_config(folder: Path, name: str) -> Architecture:
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read {path}: {error}") from error
    if not isinstance(config, dict):
        raise ConfigError(f"{path} does not hold a JSON object")
    return Architecture.from_config(config, name=name, source=str(path))


def _hub_cache_config(model: str) -> Path | None:
    """A config.json of ``org/name`` in the local Hugging Face cache, if any."""
    root = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface"), "hub"
    )
    snapshots = Path(root) / ("models--" + model.replace("/", "--")) / "snapshots"
    if not snapshots.is_dir():
        return None
    found = sorted(snapshots.glob("*/config.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    return found[0].parent if found else None


def resolve_architecture(model: str, cache_dir: str | Path | None = None) -> Architecture:
    """The shapes of ``model`` (what ``model=`` accepts), without loading any weights.

    Order: an existing folder's ``config.json``; an embedded model's cache folder
    (falling back to the built-in table for ``embedded``); the built-in table of
    Qwen2.5-Coder names; the local Hugging Face cache.

    Raises:
        ConfigError: none of these knows the model.
    """
    if not isinstance(model, str) or not model.strip():
        raise ConfigError(f"model must be a name or a folder, got {model!r}")
    from absolutezero_policy.embedded import CATALOGUE, EMBEDDED

    if model == EMBEDDED or model in CATALOGUE:
        from absolutezero_policy.model_loading import default_cache_dir
        from absolutezero_policy.embedded import get_embedded

        root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        folder = root / get_embedded(model).cache_name
        if (folder / "config.json").is_file():
            return _read_config(folder, model)
        if get_embedded(model).name == get_embedded(EMBEDDED).name:
            return dataclasses.replace(_EMBEDDED_FALLBACK, name=model)
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConfigError(f"model folder {path} has no config.json (the planner reads the model's shapes there)")
        return _read_config(path, model)
    builtin = _builtin(model)
    if builtin is not None:
        return builtin
    cached = _hub_cache_config(model) if "/" in model else None
    if cached is not None:
        return _read_config(cached, model)
    known = list(BUILTIN_ARCHITECTURES)
    raise ConfigError(
        f"unknown model architecture {model!r}{did_you_mean(model, known)}: pass a local model folder "
        f"with config.json (model=/path/to/folder), or one of the built-in names: {', '.join(known)}"
    )


# -- the formulas ---------------------------------------------------------------------------


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
    """Saved-tensor bytes per token of one decoder block (see the module text).

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


@dataclass
class MemoryPlan:
    """Bytes per GPU (per rank) by part; ``total`` is the peak of the two phases.

    ``weights``, ``gradients``, ``optimizer``: this rank's training state (sharded under
    fsdp2), in host memory instead of on the GPU when ``cpu_offload``.
    ``activations_full`` / ``activations_checkpointed``: the update's activations without
    / with gradient checkpointing (the latter including one block's recompute);
    ``gradient_checkpointing`` says which one ``total`` counts. ``details`` breaks the
    parts down further (e.g. ``activations_checkpointed_forward``: what the forward pass
    alone keeps). ``vllm_weights`` / ``vllm_kv_cache`` / ``vllm_other``: the generation
    engine (vLLM, or with the hf backend its bf16 generation copy and KV cache).
    ``suggestions``: agent option -> value (``"gpus"`` for the rank count,
    ``"vllm_options.<key>"`` for engine options) that make a non-fitting plan fit.
    """

    weights: int
    gradients: int
    optimizer: int
    transient: int
    activations_checkpointed: int
    activations_full: int
    logits: int
    vllm_weights: int
    vllm_kv_cache: int
    vllm_other: int
    overhead: int
    generation_phase: int
    update_phase: int
    total: int
    fits: bool
    gpu_memory: int
    gpus: int
    gradient_checkpointing: bool
    dominant_phase: str
    host_memory: int = 0
    suggestions: dict[str, Any] = field(default_factory=dict)
    suggested_plan: MemoryPlan | None = None
    warnings: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def training_state(self) -> int:
        return self.weights + self.gradients + self.optimizer

    @property
    def activations(self) -> int:
        """The activations ``total`` counts."""
        return self.activations_checkpointed if self.gradient_checkpointing else self.activations_full

    def report(self) -> str:
        """The per-part table, the two phases and the warnings (no verdict line)."""
        s, d = self.settings, self.details
        arch = s["architecture"]
        sharded = f", 1/{self.gpus}" if s["strategy"] == "fsdp2" else ""
        host = ", in host RAM" if s["cpu_offload"] else ""
        chosen = self.gradient_checkpointing
        engine = "vLLM" if s["backend"] == "vllm" else "hf generation"
        if s["backend"] == "hf" and not self.vllm_weights:
            engine_weights = "shares the fp32 model"
        else:
            engine_weights = "bf16" if s["generation_dtype_bytes"] == 2 else "fp32"
        rows: list[tuple[str, int, str]] = [
            (f"weights (fp32 master{sharded}{host})", self.weights, ""),
            (f"gradients (fp32, trainable{sharded}{host})", self.gradients, ""),
            (f"optimiser (AdamW 2 x fp32{sharded}{host})", self.optimizer, ""),
            ("transient", self.transient, d["transient_note"]),
            ("activations, checkpointing" + (" [counted]" if chosen else ""), self.activations_checkpointed,
             f"forward {d['activations_checkpointed_forward'] / GB:.2f} + one block recomputed "
             f"{d['activations_recompute'] / GB:.2f}"),
            ("activations, no checkpointing" + ("" if chosen else " [counted]"), self.activations_full,
             f"{d['blocks_keeping_activations']} blocks x {d['activation_bytes_per_token_per_trained_block']:,} B/token"),
            ("logits", self.logits, "chunk x vocabulary x 12 B"),
            (f"{engine} weights ({engine_weights})", self.vllm_weights, ""),
            (f"{engine} KV cache", self.vllm_kv_cache, d["kv_note"]),
        ]
        if self.vllm_other:
            rows.append((f"{engine} activations/sampler/graphs", self.vllm_other, "estimate"))
        if self.overhead:
            rows.append(("CUDA context, NCCL, allocator", self.overhead, "estimate"))
        lines = [
            f"model {arch.name}: {arch.total_parameters / 1e9:.2f} B parameters, {arch.num_layers} blocks, "
            f"vocabulary {arch.vocab_size:,}",
            f"  shapes from: {arch.source}",
            f"{self.gpus} x {self.gpu_memory / GB:g} GB ({s['device']}), strategy {s['strategy']}, "
            f"{_REGIME_TEXT[s['regime']]}",
            f"trainable {d['trainable_parameters'] / 1e9:.2f} B parameters"
            + (f" (top {s['trainable_layers']} blocks)" if s["trainable_layers"] else " (all)")
            + f"; micro-batch {s['tokens_per_micro_batch']:,} tokens ({s['tokens_note']}); "
            f"logits chunk {s['logits_chunk_tokens']:,}",
            "",
            f"{'part':<44}{'GB/GPU':>8}",
        ]
        for label, value, note in rows:
            lines.append(f"{label:<44}{value / GB:8.2f}" + (f"   {note}" if note else ""))
        lines += [
            "",
            f"generation phase {self.generation_phase / GB:7.2f} GB   {d['generation_note']}",
            f"update phase     {self.update_phase / GB:7.2f} GB   {d['update_note']}",
            f"peak             {self.total / GB:7.2f} GB of {self.gpu_memory / GB:g} GB: "
            f"the {self.dominant_phase} phase dominates",
        ]
        if self.host_memory:
            lines.append(f"host memory per rank {self.host_memory / GB:.2f} GB: {d['host_note']}")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


_REGIME_TEXT = {
    "fp32": "fp32 compute",
    "autocast": "bf16 autocast over fp32 weights",
    "bf16": "bf16 mixed precision (FSDP2 param_dtype=bf16, reduce fp32)",
}


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
            0 < trainable_layers < layers; see the module text).

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
    host = (weights + gradients + optimizer if cpu_offload else 0) + (vllm_weights if backend == "vllm" and cuda else 0)
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
        host_note=(
            ("offloaded training state" if cpu_offload else "")
            + (" + " if cpu_offload and backend == "vllm" and cuda else "")
            + ("vLLM's weights while it sleeps" if backend == "vllm" and cuda else "")
        ),
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


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


# -- from the agent's options ----------------------------------------------------------------

#: The agent options the planner reads, with the run config's defaults.
_DEFAULTS: dict[str, Any] = {
    "model": "embedded",
    "backend": "hf",
    "device": "cpu",
    "dtype": "auto",
    "max_new_tokens": 256,
    "max_prompt_tokens": None,
    "batch_size": 64,
    "micro_batch": 4,
    "trainable_layers": 4,
    "autocast_bf16": None,
    "strategy": "ddp",
    "gradient_checkpointing": False,
    "max_tokens_per_micro_batch": None,
    "logits_chunk_tokens": 1024,
    "cpu_offload": False,
    "vllm_options": None,
    "cache_dir": None,
}
_DTYPE_BYTES = {"float32": 4, "fp32": 4, "bfloat16": 2, "bf16": 2, "float16": 2, "fp16": 2}


def _native_bf16(device: str) -> bool:
    """bf16 is native on GPUs (planning happens off the GPU: assume it) and on CPUs with
    AVX512-BF16/AMX (as ``precision.native_bf16`` decides at run time)."""
    if str(device).startswith("cuda"):
        return True
    from absolutezero_policy.precision import cpu_has_native_bf16

    return cpu_has_native_bf16()


def _option(options: Mapping[str, Any], key: str) -> Any:
    value = options.get(key, _DEFAULTS[key])
    return _DEFAULTS[key] if value is None and key in ("batch_size", "micro_batch", "logits_chunk_tokens") else value


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
        raise ConfigError(f"generation.dtype must be auto, float32, bfloat16 or float16, got {dtype!r}")
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
            f"generation.max_prompt_tokens is unset: assumed prompts of up to {ASSUMED_PROMPT_TOKENS:,} tokens "
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
            f"sequences of up to {longest:,} tokens exceed train.max_tokens_per_micro_batch={int(budget):,}: "
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
    return options.get(key, _DEFAULTS.get(key))


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

    ``options`` are the agent's constructor keywords (``absolutezero.run.agent_options``);
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
