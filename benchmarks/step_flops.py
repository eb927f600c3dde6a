"""Floating-point work of one self-play step, estimated from its token counts.

Used by ``benchmarks/step_speed.py`` (pure arithmetic, no torch, so it is cheap to test).
A multiply-add is 2 FLOPs. Notation, for a decoder-only transformer:

* ``N``  non-embedding parameters: every parameter except the input embedding and an
  untied output head (the decoder blocks and the final norm); a token's forward pass
  through the blocks costs ``2*N`` FLOPs (its matrix multiplications; norms, activations
  and rotary embeddings are left out, they are a few percent);
* ``L``  decoder blocks, ``h`` hidden size, ``V`` vocabulary, ``w`` attention width
  (``heads * head_dim``, = ``h`` for Llama and Qwen2);
* ``k``  decoder blocks that train (``agent_options.trainable_layers``; ``L`` when 0);
* a sequence's positions are 1, 2, ...; the token at position ``p`` attends to ``p``
  positions (causal, itself included): ``Q.K^T`` and ``softmax.V`` cost ``2*p*w`` FLOPs
  each per block, so ``attn(p) = 4*L*w*p``. For ``n`` tokens at positions
  ``s+1 .. s+n`` that is ``4*L*w*(n*s + n*(n+1)/2)`` (:func:`attention_flops`).

Per step:

* **prefill**: once per *distinct* prompt of a generate call (the n learnability
  rollouts of a task share their prompt, and an engine that shares the prefill does
  this work once): ``2*N*P + attn(1..P)`` for a prompt of ``P`` tokens. Its logits are
  counted with the first completion token, below.
* **decoding**: per completion token (the ones an answer template forced included: they
  are fed through the model like sampled ones) ``2*N + 2*V*h`` (blocks + output head)
  ``+ attn(P+j)`` for the j-th completion token after a prompt of ``P``.
* **update forward**: the learner runs only the samples with a non-zero advantage and at
  least one trained token; per such sample of ``P + C`` tokens: ``2*N*(P+C)`` through
  all blocks ``+ attn(1..P+C)`` ``+ 2*V*h*C`` (logits only at the ``C`` completion
  positions).
  With ``update_from_top`` (generation kept the first trained block's inputs), only the
  top ``k`` blocks run: ``(k/L)*(2*N*(P+C) + attn(1..P+C)) + 2*V*h*C``.
* **update backward**: gradients flow through the top ``k`` blocks only, at every
  position: ``4*N*(k/L)*(P+C)`` (weight and input gradients, 2x the forward each)
  ``+ 2*(k/L)*attn(1..P+C)`` ``+ 4*V*h*C`` (the head is always trained). The logits
  chunk's recomputation under activation checkpointing is not counted (it is not
  useful work), nor is micro-batch padding.

What this leaves out: padding in batched generation and training, recomputation, the
optimiser step (``O(parameters)``, small against the token terms), sampling.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

__all__ = ["ModelShape", "StepFlops", "attention_flops", "step_flops"]


@dataclass(frozen=True)
class ModelShape:
    """The sizes the estimate needs (``step_speed``'s child reads them off the model).

    ``params`` counts every parameter once (a tied head is the embedding); ``embedding``
    the input embedding; ``head`` an *untied* output head (0 when tied).
    """

    params: int
    embedding: int
    head: int
    layers: int
    hidden: int
    vocab: int
    attention_width: int
    trainable_layers: int
    #: the update starts at the first trained block from inputs kept by generation
    #: (``agent_options.reuse_frozen_states``): its forward runs the top ``k`` blocks only
    update_from_top: bool = False

    def __post_init__(self) -> None:
        if self.layers < 1 or not 0 <= self.trainable_layers <= self.layers:
            raise ValueError(f"need layers >= 1 and 0 <= trainable_layers <= layers, got {self}")
        if self.non_embedding < 0:
            raise ValueError(f"embedding + head exceed params: {self}")

    @property
    def non_embedding(self) -> int:
        """``N``: the parameters a token's forward pass multiplies with (head aside)."""
        return self.params - self.embedding - self.head

    @property
    def trainable_share(self) -> float:
        """``k / L``: the share of the block stack the backward pass goes through."""
        return self.trainable_layers / self.layers

    @property
    def head_flops(self) -> int:
        """``2*V*h``: one position's logits."""
        return 2 * self.vocab * self.hidden


def attention_flops(layers: int, width: int, start: int, count: int) -> int:
    """Score and value products of ``count`` tokens at positions ``start+1 .. start+count``,
    each attending to every position up to its own: ``4*L*w*(count*start + count*(count+1)/2)``."""
    if start < 0 or count < 0:
        raise ValueError(f"start and count must be >= 0, got {start}, {count}")
    return 4 * layers * width * (count * start + count * (count + 1) // 2)


@dataclass(frozen=True)
class StepFlops:
    """FLOPs of a step's four parts (see the module docstring)."""

    prefill: float = 0.0
    decode: float = 0.0
    update_forward: float = 0.0
    update_backward: float = 0.0

    @property
    def generation(self) -> float:
        return self.prefill + self.decode

    @property
    def update(self) -> float:
        return self.update_forward + self.update_backward

    @property
    def total(self) -> float:
        return self.generation + self.update

    def as_dict(self) -> dict[str, float]:
        """The four parts plus ``generation``, ``update`` and ``total``."""
        return {**asdict(self), "generation": self.generation, "update": self.update, "total": self.total}


def prefill_flops(shape: ModelShape, prompt_lengths: Iterable[int]) -> float:
    """Prefill of each listed prompt (pass the distinct prompts of each generate call)."""
    n, layers, width = shape.non_embedding, shape.layers, shape.attention_width
    return float(sum(2 * n * p + attention_flops(layers, width, 0, p) for p in prompt_lengths))


def decode_flops(shape: ModelShape, generated: Iterable[tuple[int, int]]) -> float:
    """Decoding of ``(prompt tokens, completion tokens)`` pairs, one per completion."""
    per_token = 2 * shape.non_embedding + shape.head_flops
    return float(sum(
        per_token * c + attention_flops(shape.layers, shape.attention_width, p, c) for p, c in generated
    ))


def update_flops(shape: ModelShape, trained: Iterable[tuple[int, int]]) -> tuple[float, float]:
    """``(forward, backward)`` of the learner over ``(prompt, completion)`` token pairs of
    the samples it back-propagates (non-zero advantage, some trained token)."""
    n, share = shape.non_embedding, shape.trainable_share
    forward = backward = 0.0
    for p, c in trained:
        tokens = p + c
        attention = attention_flops(shape.layers, shape.attention_width, 0, tokens)
        ran = share if shape.update_from_top and shape.trainable_layers else 1.0  # blocks run forward
        forward += ran * (2 * n * tokens + attention) + shape.head_flops * c
        backward += 4 * n * share * tokens + 2 * share * attention + 2 * shape.head_flops * c
    return forward, backward


def step_flops(
    shape: ModelShape,
    unique_prompt_lengths: Sequence[int],
    generated: Sequence[tuple[int, int]],
    trained: Sequence[tuple[int, int]],
) -> StepFlops:
    """A step's estimate: distinct prompts prefilled, ``(P, C)`` of every generated
    completion, ``(P, C)`` of every sample the update back-propagates."""
    forward, backward = update_flops(shape, trained)
    return StepFlops(prefill_flops(shape, unique_prompt_lengths), decode_flops(shape, generated), forward, backward)
