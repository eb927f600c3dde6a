"""Answer templates during generation: which token comes next, sampled or forced.

A :class:`~absolutezero.protocol.Prompt` with ``segments`` asks for an answer of the form
``free_1 then_1 free_2 then_2 ...``. :class:`RowCursor` follows one row of a batch through
that template, token by token, inside the backend's ordinary batched decoding loop:

* while a free segment is open the row's next token is the sampled one; once the text
  written *in that segment* contains the segment's stop string, the segment closes and
  the ids of its forced text are queued;
* while forced ids are queued the row's next token is the next forced id, whatever was
  sampled (the sample is discarded; its log-probability is recorded as 0.0 and the
  position is marked ``forced`` so the learner masks it);
* after the last segment's forced text the row is finished (``"stop"``).

Why inside the loop and not one ``generate`` per segment: the rows of a batch reach their
segment ends at different times, and a forced token costs one decoding step of an
already-running batch, far less than restarting generation per segment. The forced text
is tokenised on its own (never re-tokenised together with the model's text), so the ids
the learner sees are exactly the ids the model was conditioned on.

Rows without a template behave as before: sampled until an end token or stop string.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

#: One template step as the backend sees it: the stop string, the forced ids after it and
#: the most tokens the free part may take (None: no bound of its own).
TemplateStep = tuple[str, list[int], "int | None"]


@dataclass
class RowCursor:
    """Where one row stands in its template (``steps`` empty = no template).

    ``decode`` turns completion ids into text (for stop-string checks); ``stop_strings``
    end a row anywhere in a free segment (e.g. ``</answer>``), like end tokens do.
    """

    steps: Sequence[TemplateStep]
    stop_token_ids: frozenset[int]
    stop_strings: tuple[str, ...]
    decode: Callable[[list[int]], str]
    completion: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    forced: list[bool] = field(default_factory=list)
    finished: bool = False
    truncated: bool = False  # ended because a free part reached its max_tokens
    segment: int = 0
    segment_start: int = 0
    queued: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        longest = max([len(s) for s in self.stop_strings] + [len(step[0]) for step in self.steps] + [0])
        # A stop string of n characters is covered by the last n tokens (each token decodes
        # to at least one character), +1 for a token that straddles its start.
        self._tail_tokens = longest + 1

    @property
    def templated(self) -> bool:
        return bool(self.steps)

    def push(self, sampled: int, logprob: float) -> int:
        """Record this step's token for the row and return it (the id fed back to the model).

        ``sampled`` is what the sampler drew for the row; it is replaced by the next forced
        id when forced text is queued.
        """
        if self.finished:
            raise RuntimeError("push on a finished row")
        if self.queued:
            token = self.queued.pop(0)
            self._append(token, 0.0, True)
            if not self.queued and self.segment >= len(self.steps):
                self.finished = True
            return token
        self._append(sampled, logprob, False)
        if sampled in self.stop_token_ids:
            self.finished = True
            return sampled
        text = self.decode(self.completion[max(self.segment_start, len(self.completion) - self._tail_tokens):])
        open_segment = self.templated and self.segment < len(self.steps)
        if open_segment and self.steps[self.segment][0] in text:
            then_ids = list(self.steps[self.segment][1])
            self.segment += 1
            self.queued = then_ids
            self.segment_start = len(self.completion) + len(then_ids)
            if not then_ids and self.segment >= len(self.steps):
                self.finished = True
        elif any(stop in text for stop in self.stop_strings):
            self.finished = True
        elif open_segment:
            limit = self.steps[self.segment][2]
            if limit is not None and len(self.completion) - self.segment_start >= limit:
                self.finished = self.truncated = True
        return sampled

    def _append(self, token: int, logprob: float, forced: bool) -> None:
        self.completion.append(int(token))
        self.logprobs.append(float(logprob))
        self.forced.append(forced)
