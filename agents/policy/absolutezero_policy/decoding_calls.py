"""One decoding call of the HF backend: what each row feeds, and what it keeps afterwards.

A call feeds every active row its next token and, when the call is small enough,
*extras* after it: the ids the row's answer template forces next, else prompt-lookup
drafts (:mod:`absolutezero_policy.prompt_lookup`). The call then gives the logits of
every fed position; the row's tokens are chosen position by position
(:mod:`absolutezero_policy.token_choice`) and an extra is kept while it equals the token
chosen before it, so the row's completion is the one a one-token-per-call loop makes.
The cache slots of rejected extras are masked out by the caller (they stay in the cache
as holes, like padding).

Why a budget of tokens per call: on a CPU a decoding call of a few rows costs about the
same for 1 and for 6 positions per row (it reads every weight either way), while with
tens of rows the extra positions cost nearly their full price. Measured on
Qwen2.5-Coder-0.5B (bf16, 2 cores, 500-token context): 90 ms for 1 row and 1 position,
98 ms for 1 row and 5; 91 and 117 ms for 4 rows; 105 and 205 ms for 12 rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from absolutezero_policy.prompt_lookup import NgramIndex
from absolutezero_policy.templating import RowCursor
from absolutezero_policy.token_choice import RowDraws

__all__ = ["advance_row", "feed_inputs", "plan_extras"]


def advance_row(
    cursor: RowCursor,
    draws: RowDraws | None,
    extra: Sequence[int],
    tokens: Sequence[int],
    logprobs: Sequence[float],
    max_new_tokens: int,
) -> tuple[int, int | None]:
    """Push one row's chosen tokens (one per fed position) while the fed extras match them.

    ``tokens[j]`` was chosen from the logits at fed position j (the row's last token,
    then ``extra[0]``, ...), so ``extra[j]`` stays valid only if the token pushed at j
    is ``extra[j]``. ``draws`` (None: greedy) gives up one draw per pushed token.

    Returns how many fed positions were valid and the token to feed next (None: the row
    finished or reached ``max_new_tokens``).
    """
    for slot, (token, logprob) in enumerate(zip(tokens, logprobs)):
        if draws is not None:
            draws.consume()
        token = cursor.push(token, logprob)
        if cursor.finished or len(cursor.completion) >= max_new_tokens:
            return slot + 1, None
        if slot < len(extra) and token == extra[slot]:
            continue
        return slot + 1, token
    raise ValueError(f"{len(tokens)} chosen tokens for {len(extra)} extras: need one more token than extras")


def plan_extras(
    active: Sequence[int],
    cursors: Sequence[RowCursor],
    prompts: Sequence[Sequence[int]],
    lookups: dict[int, NgramIndex],
    *,
    budget: int,
    most: int,
    max_new_tokens: int,
) -> list[list[int]]:
    """What each active row feeds after its next token: nothing unless the call stays
    within ``budget`` tokens (0: never); then the ids its template forces next, else
    prompt-lookup drafts from ``lookups[row]`` (made on first use), at most ``most``
    and never past ``max_new_tokens``. ``cursors[row]`` must already hold the next token."""
    per_row = min(most, budget // len(active) - 1) if budget else 0
    extras: list[list[int]] = []
    for row in active:
        cursor = cursors[row]
        room = min(per_row, max_new_tokens - len(cursor.completion) - 1)
        if room < 1:
            extras.append([])
        elif cursor.queued:
            extras.append(cursor.queued[:room])
        else:
            lookup = lookups.get(row)
            if lookup is None:
                lookup = lookups[row] = NgramIndex(prompts[row])
            lookup.extend(cursor.completion[len(lookup.tokens) - len(prompts[row]) :])
            extras.append(lookup.draft(room))
    return extras


def feed_inputs(
    nexts: Sequence[int], extras: Sequence[Sequence[int]], next_position: torch.Tensor, pad_token_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One decoding call's input: each row's next token and extras, left-padded to the
    longest; the mask of fed slots (pads masked out); their positions (the row's next
    position onwards)."""
    width = 1 + max(len(extra) for extra in extras)
    rows = len(nexts)
    input_ids = torch.full((rows, width), pad_token_id, dtype=torch.long)
    fed = torch.zeros((rows, width), dtype=torch.long)
    offsets = torch.zeros((rows, width), dtype=torch.long)
    for position, (token, extra) in enumerate(zip(nexts, extras)):
        count = 1 + len(extra)
        input_ids[position, width - count :] = torch.tensor([token, *extra], dtype=torch.long)
        fed[position, width - count :] = 1
        offsets[position, width - count :] = torch.arange(count)
    device = next_position.device
    return input_ids.to(device), fed.to(device), next_position[:, None] + offsets.to(device)
