"""Per-token log-probabilities of completions, with bounded memory at any length.

Why this module exists: the learner needs ``log p(token)`` for every completion token,
and the obvious ``model(...).logits.log_softmax(-1)`` holds a ``[tokens x vocab]`` fp32
tensor (an 8k-token response of a 152k-vocabulary model: 5 GB) plus its gradient. Here
the decoder's hidden states are computed once, and the output head is applied to
``chunk_tokens`` completion positions at a time, each chunk one autograd node that
recomputes its logits in the backward (:mod:`absolutezero_policy.head_logprobs`; a head
with a bias or of another kind: the plain ops under activation checkpointing), so at
most one chunk's logits exist at once, in the forward pass and again in the backward.

:class:`TokenLogprobs` is an ``nn.Module`` wrapping the causal LM, so that under FSDP2 it
is the *root* unit (see :mod:`absolutezero_policy.sharding`): its forward unshards the
parameters outside the decoder blocks (embeddings, final norm, output head) for the whole
pass, which the separate head calls need.

The decoder runs the stages of a :class:`~absolutezero_policy.shared_prompts.Layout`:
one full-sequence pass, or shared prompt tokens once and each row's rest through the
expanded KV cache (see :mod:`absolutezero_policy.shared_prompts`).

:func:`pack_micro_batches` splits a batch into micro-batches by padded token count, so a
single long response cannot blow the memory of a micro-batch sized for short ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.checkpoint import checkpoint

from absolutezero.protocol import Sample
from absolutezero_policy.block_inputs import run_top_blocks
from absolutezero_policy.head_logprobs import HeadWorkspace, fusable, target_logprobs
from absolutezero_policy.shared_prompts import Layout, cache_keyword, new_cache, select_rows


def padded_tokens(samples: Sequence[Sample]) -> int:
    """Tokens of the padded ``[rows x (longest prompt + longest completion)]`` layout."""
    if not samples:
        return 0
    width = max(len(s.prompt_ids) for s in samples) + max(len(s.completion_ids) for s in samples)
    return len(samples) * width


def pack_micro_batches(
    items: Sequence[Any], *, sample_of: Any = lambda item: item, max_samples: int | None = None,
    max_tokens: int | None = None,
) -> list[list[Any]]:
    """Consecutive micro-batches of ``items`` (kept in order: sort them by length first).

    With ``max_tokens`` a micro-batch grows while its padded token count stays within the
    budget (a sample longer than the budget alone is a micro-batch of one: the floor);
    otherwise it holds ``max_samples`` items.
    """
    if max_tokens is None:
        size = max(1, int(max_samples or 1))
        return [list(items[i : i + size]) for i in range(0, len(items), size)]
    batches: list[list[Any]] = []
    current: list[Any] = []
    for item in items:
        candidate = current + [item]
        if current and padded_tokens([sample_of(x) for x in candidate]) > max_tokens:
            batches.append(current)
            candidate = [item]
        current = candidate
    if current:
        batches.append(current)
    return batches


class TokenLogprobs(torch.nn.Module):
    """``forward(...)`` = log-probabilities ``[rows x completion width]`` of the targets.

    ``lm`` is a Hugging Face causal LM whose logits are ``output_head(last hidden
    state)`` (Llama, Qwen2, Mistral, SmolLM...; not models with logit soft-capping).
    """

    def __init__(self, lm: torch.nn.Module, chunk_tokens: int = 1024) -> None:
        super().__init__()
        if chunk_tokens < 1:
            raise ValueError(f"logits_chunk_tokens must be >= 1, got {chunk_tokens}")
        self.lm = lm
        self.chunk_tokens = int(chunk_tokens)
        self.head_space = HeadWorkspace()  # ``with scorer.head_space.reusing():`` over an update

    def _chunk(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = self.lm.get_output_embeddings()(hidden).float()
        return logits.gather(-1, targets[..., None]).squeeze(-1) - torch.logsumexp(logits, dim=-1)

    def forward(
        self, layout: Layout, block_inputs: Sequence[torch.Tensor] | None = None, first_block: int = 0,
    ) -> torch.Tensor:
        """``block_inputs``: per stage of ``layout``, the input of block ``first_block``
        at each of its positions (kept from generation, :mod:`absolutezero_policy.block_inputs`);
        only the blocks from there on then run."""
        hidden = self._hidden(layout, block_inputs, first_block)
        targets = layout.targets
        head = self.lm.get_output_embeddings()
        pieces = []
        for start in range(0, targets.shape[1], self.chunk_tokens):
            h = hidden[:, start : start + self.chunk_tokens]
            t = targets[:, start : start + self.chunk_tokens]
            if fusable(head):  # one node per chunk (absolutezero_policy.head_logprobs)
                pieces.append(target_logprobs(h, head, t, self.head_space))
            elif torch.is_grad_enabled() and h.requires_grad:
                pieces.append(checkpoint(self._chunk, h, t, use_reentrant=False))
            else:
                pieces.append(self._chunk(h, t))
        return torch.cat(pieces, dim=1)

    def _hidden(
        self, layout: Layout, block_inputs: Sequence[torch.Tensor] | None = None, first_block: int = 0,
    ) -> torch.Tensor:
        """Last hidden states ``[rows x completion width]``; position j predicts
        completion token j.

        One stage: the plain full-sequence pass (no cache). Several: one cache carries
        each stage's keys and values to the next, its rows selected by ``parent``; it is
        part of the autograd graph, so shared prompt tokens get the summed gradient of
        every row that attends to them. With ``block_inputs`` each stage runs the blocks
        from ``first_block`` on only (the cache then holds just theirs).
        """
        body = self.lm.base_model
        stages = layout.stages
        cache = new_cache(self.lm) if len(stages) > 1 else None
        keyword = cache_keyword(body) if cache is not None else None
        previous_last: torch.Tensor | None = None  # each row's last hidden state so far
        hidden = None
        for index, stage in enumerate(stages):
            if stage.parent is not None:
                select_rows(cache, stage.parent)
            if index:
                previous_last = hidden[:, -1:]
            if block_inputs is not None:
                hidden = run_top_blocks(
                    body, first_block, block_inputs[index], stage.attention_mask, stage.position_ids, cache
                )
                continue
            hidden = body(
                input_ids=stage.input_ids, attention_mask=stage.attention_mask,
                position_ids=stage.position_ids, use_cache=cache is not None,
                **({keyword: cache} if keyword else {}),
            ).last_hidden_state
        del cache  # frees the frozen blocks' keys and values before the output head
        width, start = layout.targets.shape[1], layout.prompt_width - 1
        if start >= 0:  # hidden[:, j] predicts the token at j + 1
            return hidden[:, start : start + width]
        first = previous_last[stages[-1].parent]  # the last prompt token's, per row
        return torch.cat([first, hidden[:, : width - 1]], dim=1)
