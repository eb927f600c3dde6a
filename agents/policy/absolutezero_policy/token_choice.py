"""Which token each position of a decoding call yields: one random draw per completion position.

Why one draw per position, taken in order from the row's own generator: a row's
completion then depends on its prompt, its seed and the model only, whatever else
happens in the batch, whichever rank generates it, and whether prompt-lookup drafts
(:mod:`absolutezero_policy.prompt_lookup`) were fed. With drafts, a call computes the
logits of several positions of a row at once; the token of position t is drawn with the
row's t-th uniform by inverse-CDF sampling, *exactly* the token the one-token-per-call
loop draws there, and a draft is kept only when it equals that token. Accepting a draft
``d`` this way happens with probability p(d), the most any scheme can accept a
deterministic guess with while sampling exactly from p (speculative sampling's
acceptance rule min(1, p/q) with q a point mass), and a rejected position yields a
token distributed as p given "not d", as rejection sampling's residual would.

Draws are made ahead (several positions of one call are examined together) and kept
until their positions are consumed, so a draw made for a position whose draft was
rejected is used for that position the next time it comes round.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import torch

__all__ = ["RowDraws", "choose_tokens", "top_p_filter"]


def top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Set logits outside the nucleus to -inf (the smallest set with mass >= ``top_p``).

    The most likely token is always kept. ``logits`` is ``[batch, vocab]``; returns a new
    tensor of the same shape.
    """
    if top_p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits, dim=-1)
    mass_before = torch.cumsum(probs, dim=-1) - probs
    drop_sorted = mass_before >= top_p
    drop_sorted[..., 0] = False
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


class RowDraws:
    """The uniform draws of one row's completion positions, in order, from its generator."""

    def __init__(self, generator: torch.Generator) -> None:
        self.generator = generator
        self._ahead: deque[float] = deque()

    def peek(self, count: int) -> list[float]:
        """The draws of the next ``count`` positions (drawn now if not yet drawn), not consumed."""
        while len(self._ahead) < count:
            self._ahead.append(float(torch.rand(1, generator=self.generator)))
        return [self._ahead[i] for i in range(count)]

    def consume(self) -> None:
        """The next position got its token: its draw is used up."""
        if not self._ahead:
            self.peek(1)
        self._ahead.popleft()


def choose_tokens(
    logits: torch.Tensor, uniforms: Sequence[float] | None, *, temperature: float, top_p: float
) -> tuple[list[int], list[float]]:
    """The token of each row of ``logits`` ``[positions, vocab]`` and its log-probability.

    ``uniforms`` (one per position) select the token by inverse-CDF sampling from
    softmax(top_p(logits / temperature)); ``None`` means greedy (argmax). The
    log-probability is that of the *untempered* policy, log_softmax(logits), at the
    chosen token: what the learner trains.
    """
    logits = logits.float()
    logprobs = torch.log_softmax(logits, dim=-1)
    if uniforms is None:
        tokens = logits.argmax(dim=-1)
    else:
        if len(uniforms) != logits.shape[0]:
            raise ValueError(f"{len(uniforms)} uniforms for {logits.shape[0]} positions")
        if temperature == 1.0 and top_p >= 1.0:
            # the untempered policy itself: its probabilities from the log-probabilities
            # already computed (two fewer passes over [positions x vocab] per call)
            cdf = logprobs.exp().cumsum_(dim=-1)
        else:
            cdf = torch.softmax(top_p_filter(logits / temperature, top_p), dim=-1).cumsum_(dim=-1)
        # With right=True the first index whose CDF exceeds u always has p > 0, so tokens
        # removed by top-p can never be drawn (cheaper than torch.multinomial on a CPU).
        draws = torch.tensor(uniforms, dtype=cdf.dtype, device=cdf.device)[:, None] * cdf[:, -1:]
        tokens = torch.searchsorted(cdf, draws, right=True).squeeze(-1).clamp_(max=cdf.shape[-1] - 1)
    chosen = logprobs.gather(-1, tokens[:, None]).squeeze(-1)
    return tokens.tolist(), chosen.tolist()
