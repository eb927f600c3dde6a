"""Prefill in groups of similar length, then one KV cache for decoding.

Why: a chunk's prompts are prefilled as one left-padded batch, so every prompt pays for
the longest one. Self-play prompts vary a lot in length (a proposer prompt with three
reference programs against one with short ones; solver prompts of short and long
tasks): measured on one default step of the code environment, padding was half of the
prefilled tokens (3,012 real of 5,664, then 1,655 of 3,430), and prefill, not decoding,
was most of the generation time. Prefilling groups of similar length and joining their
caches afterwards computes only a few percent of padding, for one more model call per
group (a few tens of ms of weight reads).

Joining: each group's cache holds ``shared`` prefix positions then its own tail width.
The shorter groups get zero keys and values *between* the prefix and their tail, masked
out in the attention mask, which is exactly the layout a single left-padded batch has
(there the padded positions hold the keys of pad tokens, masked out too), so decoding
sees the same thing up to floating-point rounding. Only caches of plain full-attention
``DynamicLayer`` s are joined (:func:`absolutezero_policy.shared_prompts.unsupported_reason`);
for other models the chunk is prefilled as one group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["PADDING_SLACK", "GroupPrefill", "join", "length_groups"]

#: A group grows while its padded tokens stay within this factor of its real tokens.
PADDING_SLACK = 1.25


def length_groups(lengths: Sequence[int], slack: float = PADDING_SLACK) -> list[list[int]]:
    """Indices of ``lengths`` in groups of similar length, shortest first: a group takes
    the next longer item while ``longest x count <= slack x sum`` (padded vs real)."""
    if slack < 1:
        raise ValueError(f"slack must be >= 1, got {slack}")
    groups: list[list[int]] = []
    current: list[int] = []
    total = 0
    for index in sorted(range(len(lengths)), key=lambda i: (lengths[i], i)):
        if current and lengths[index] * (len(current) + 1) > slack * (total + lengths[index]):
            groups.append(current)
            current, total = [], 0
        current.append(index)
        total += lengths[index]
    if current:
        groups.append(current)
    return groups


@dataclass
class GroupPrefill:
    """One group's prefill: which prompts (``members``), the logits of their last
    positions, their cache, their tail mask ``[rows x tail width]``, next positions and,
    when recorded, the input of the first trained block ``[rows x tail width x hidden]``."""

    members: list[int]
    logits: torch.Tensor
    cache: Any
    tail_mask: torch.Tensor
    next_position: torch.Tensor
    states: torch.Tensor | None = None


def _widen(tensor: torch.Tensor, shared: int, width: int) -> torch.Tensor:
    """Zeros between the ``shared`` prefix positions and the tail, up to ``width`` tail positions."""
    missing = width - (tensor.shape[2] - shared)
    if missing == 0:
        return tensor
    gap = tensor.new_zeros((tensor.shape[0], tensor.shape[1], missing, tensor.shape[3]))
    return torch.cat([tensor[:, :, :shared], gap, tensor[:, :, shared:]], dim=2)


def join(parts: Sequence[GroupPrefill], shared: int, config: Any) -> tuple[torch.Tensor, Any, torch.Tensor, torch.Tensor]:
    """The groups as one batch, rows in the order of their members (0, 1, 2, ...).

    Returns the logits, a new ``DynamicCache`` of every row, the attention mask
    ``[rows x (shared + widest tail)]`` and the next positions.
    """
    from transformers.cache_utils import DynamicCache

    width = max(part.tail_mask.shape[1] for part in parts)
    order = [member for part in parts for member in part.members]
    back = torch.empty(len(order), dtype=torch.long)
    back[torch.tensor(order, dtype=torch.long)] = torch.arange(len(order))
    back = back.to(parts[0].logits.device)
    cache = DynamicCache(config=config)
    for index in range(len(parts[0].cache.layers)):
        keys = torch.cat([_widen(p.cache.layers[index].keys, shared, width) for p in parts])
        values = torch.cat([_widen(p.cache.layers[index].values, shared, width) for p in parts])
        cache.update(keys.index_select(0, back), values.index_select(0, back), index)
    masks = []
    for part in parts:
        rows, tail = part.tail_mask.shape
        masks.append(torch.cat([
            part.tail_mask.new_ones((rows, shared)), part.tail_mask.new_zeros((rows, width - tail)), part.tail_mask,
        ], dim=1))
    attention = torch.cat(masks).index_select(0, back)
    logits = torch.cat([p.logits for p in parts]).index_select(0, back)
    next_position = torch.cat([p.next_position for p in parts]).index_select(0, back)
    return logits, cache, attention, next_position
