"""The memory planner's result: :class:`MemoryPlan` (bytes per GPU by part, the two
phases, warnings, suggestions) and its report text.

Its own module so that :mod:`absolutezero_policy.memory_parts` (which fills it in) and
:mod:`absolutezero_policy.memory_search` (which returns it) share one result type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from absolutezero_policy.memory_formulas import GB

__all__ = ["MemoryPlan"]


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
