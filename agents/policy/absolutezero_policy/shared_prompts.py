"""The update's forward pass in stages, so that prompt tokens shared by rows run once.

Why: in self-play the n solver rollouts of one task have identical prompts, and every
prompt starts with the same long system prompt and instructions. Sent through the model
whole, row by row, those tokens dominate the cost of an update on a CPU. Generation
shares them already (``HFBackend._prefill``); this module does the same for the learner,
with the autograd graph kept, so gradients stay exact.

A :class:`Layout` is a list of :class:`Stage` s. Each stage's rows extend rows of the
previous stage (``parent``) through the KV cache, which is expanded by row index between
stages (:func:`select_rows`; indexing is differentiable, so the gradient of a shared key
is the sum over the rows that read it). With ``share``:

1. the prefix common to the micro-batch's distinct prompts, once (one row; only when at
   least ``min_shared_prefix`` tokens, a shorter one is not worth a model call);
2. the rest of each *distinct* prompt, left-padded (one row per distinct prompt);
3. each sample's completion, right-padded (one row per sample).

Stage 2 and 3 are one stage when no two samples share a prompt; without ``share`` the
layout is one stage of left-padded prompts and right-padded completions, no cache: the
full-sequence pass. Padding inside a row is masked; positions continue across stages,
so every row sees exactly its own prompt and completion at the positions it has in the
full pass: the log-probabilities match it up to floating-point rounding.

Only caches made of plain ``DynamicLayer`` s (full attention) are expanded here;
:func:`unsupported_reason` says why another model cannot share.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Sequence
from typing import Any

import torch

from absolutezero.protocol import Sample
from absolutezero_policy.hf_backend import MIN_SHARED_PREFIX, common_prefix_length

__all__ = ["Layout", "Stage", "layout", "new_cache", "select_rows", "unsupported_reason", "MIN_SHARED_PREFIX"]


@dataclasses.dataclass
class Stage:
    """One model call: ``input_ids``/``position_ids`` ``[rows x width]``, and the
    ``attention_mask`` ``[rows x (cached + width)]`` over everything the row has seen
    (the cached tokens of its ancestors, then its own). ``parent[row]`` is the row of the
    previous stage whose cache this row extends (None: the first stage, no cache).

    ``spans[row]`` = ``(sample, a, b, c, d)``: the row's left (padded-left) tokens are
    positions ``a:b`` of that sample's prompt + completion, its right ones ``c:d`` (where
    :mod:`absolutezero_policy.block_inputs` finds their kept states)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    parent: torch.Tensor | None
    spans: torch.Tensor


@dataclasses.dataclass
class Layout:
    """A micro-batch's stages and its completion targets ``[samples x completion width]``.

    ``prompt_width``: columns of the last stage before the completions; hidden state
    ``prompt_width - 1 + j`` predicts completion token j. 0 when the last stage holds
    only completions: the first token is then predicted by the previous stage's last
    column (the last prompt token), at row ``parent``.
    """

    stages: list[Stage]
    targets: torch.Tensor
    prompt_width: int

    def to(self, device: torch.device) -> Layout:
        def move(stage: Stage) -> Stage:
            fields = (getattr(stage, f.name) for f in dataclasses.fields(stage))
            return Stage(*(None if t is None else t.to(device) for t in fields))

        return Layout([move(s) for s in self.stages], self.targets.to(device), self.prompt_width)

    @property
    def tokens(self) -> int:
        """Token positions the model computes (padding included): the cost measure."""
        return sum(s.input_ids.numel() for s in self.stages)


def _block(left: Sequence[Sequence[int]], right: Sequence[Sequence[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Rows of ``left`` left-padded then ``right`` right-padded, their mask and the
    left width (where every ``right`` starts)."""
    left_width = max(len(x) for x in left)
    width = left_width + max(len(x) for x in right)
    ids = torch.full((len(left), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, (head, tail) in enumerate(zip(left, right)):
        start, end = left_width - len(head), left_width + len(tail)
        ids[row, start:end] = torch.tensor(list(head) + list(tail), dtype=torch.long)
        mask[row, start:end] = 1
    return ids, mask, left_width


def layout(
    samples: Sequence[Sample], pad_token_id: int, *, share: bool = False,
    min_shared_prefix: int = MIN_SHARED_PREFIX,
) -> Layout:
    """The stages of ``samples``' forward pass (see the module docstring)."""
    prompts = [list(s.prompt_ids) for s in samples]
    completions = [list(s.completion_ids) for s in samples]
    # Splitting completions off needs at least one completion token to compute.
    if share and any(completions):
        distinct: dict[tuple[int, ...], int] = {}
        rows = [distinct.setdefault(tuple(p), len(distinct)) for p in prompts]
        unique = [list(p) for p in distinct]
    else:
        rows, unique = list(range(len(prompts))), prompts
    shared = common_prefix_length(unique) if share and len(unique) > 1 else 0
    if shared < max(1, min_shared_prefix):
        shared = 0
    first = [rows.index(m) for m in range(len(unique))]  # a sample of each distinct prompt
    # (left, right, parent, spans) per stage
    specs: list[tuple[list[list[int]], list[list[int]], torch.Tensor | None, list[tuple[int, ...]]]] = []
    if shared:
        specs.append(([unique[0][:shared]], [[]], None, [(0, 0, shared, 0, 0)]))
    tails = [p[shared:] for p in unique]
    tails_parent = torch.zeros(len(unique), dtype=torch.long) if shared else None
    ends = [len(p) for p in prompts]
    if len(unique) < len(prompts):
        specs.append((tails, [[] for _ in unique], tails_parent, [(i, shared, ends[i], 0, 0) for i in first]))
        specs.append((
            [[] for _ in prompts], completions, torch.tensor(rows, dtype=torch.long),
            [(i, 0, 0, ends[i], ends[i] + len(c)) for i, c in enumerate(completions)],
        ))
    else:
        specs.append((
            tails, completions, tails_parent,
            [(i, shared, ends[i], ends[i], ends[i] + len(c)) for i, c in enumerate(completions)],
        ))
    stages: list[Stage] = []
    seen = torch.zeros((1, 0), dtype=torch.long)  # previous stage's attention mask
    count = torch.zeros(1, dtype=torch.long)  # previous stage's real tokens per row
    for left, right, parent, spans in specs:
        ids, own, left_width = _block(left, right, pad_token_id)
        past, offset = (seen[parent], count[parent]) if parent is not None else (own[:, :0], 0 * own[:, 0])
        positions = offset[:, None] + (own.cumsum(-1) - 1).clamp(min=0)
        stages.append(Stage(ids, torch.cat([past, own], dim=1), positions, parent, torch.tensor(spans, dtype=torch.long)))
        seen, count = stages[-1].attention_mask, offset + own.sum(-1)
    return Layout(stages, stages[-1].input_ids[:, left_width:], left_width)


# -- the KV cache ---------------------------------------------------------------------


def unsupported_reason(lm: torch.nn.Module) -> str | None:
    """Why ``lm``'s forward cannot run in stages here (None: it can).

    Needs transformers' ``DynamicCache`` built from the model's config with one plain
    ``DynamicLayer`` per block: full attention, keys and values held as whole tensors
    that :func:`select_rows` can index (a sliding-window layer drops old tokens, a
    linear-attention layer holds a state instead of keys).
    """
    try:
        from transformers.cache_utils import DynamicCache, DynamicLayer
    except ImportError:
        return "this transformers has no per-layer DynamicCache (transformers >= 4.56 has)"
    try:
        cache = DynamicCache(config=lm.config)
    except Exception as error:  # noqa: BLE001 - any failure means: do not share
        return f"no DynamicCache for {type(lm).__name__}: {error}"
    layers = getattr(cache, "layers", None)
    if not layers:
        return f"{type(lm).__name__}'s config does not say its cache layers"
    odd = sorted({type(layer).__name__ for layer in layers if type(layer) is not DynamicLayer})
    if odd:
        return f"{type(lm).__name__}'s cache has {', '.join(odd)} layers (only full-attention DynamicLayer is expanded)"
    if cache_keyword(lm.base_model) is None:
        return f"{type(lm.base_model).__name__}.forward takes no cache argument"
    return None


def cache_keyword(body: torch.nn.Module) -> str | None:
    """The name under which ``body.forward`` takes a cache: ``cache`` (transformers >= 5.2x;
    ``past_key_values`` is deprecated there) or ``past_key_values``."""
    parameters = inspect.signature(body.forward).parameters
    for name in ("cache", "past_key_values"):
        if name in parameters:
            return name
    return None


def new_cache(lm: torch.nn.Module) -> Any:
    """An empty cache for ``lm`` (checked by :func:`unsupported_reason`)."""
    from transformers.cache_utils import DynamicCache

    return DynamicCache(config=lm.config)


def select_rows(cache: Any, index: torch.Tensor) -> None:
    """Keep rows ``index`` (with repeats) of every layer's keys and values.

    Out of place on purpose (``index_select`` makes new tensors): the cached keys of a
    trained block are part of the autograd graph, and its backward sums the gradients of
    the copies into the shared row. Done here rather than with ``batch_select_indices``
    so that no version of transformers can turn it into an in-place copy.
    """
    for layer in cache.layers:
        if getattr(layer, "keys", None) is not None and layer.keys.numel():
            layer.keys = layer.keys.index_select(0, index)
            layer.values = layer.values.index_select(0, index)
