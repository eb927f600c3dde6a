"""Prompt-lookup drafts: guess a row's next tokens from where its last tokens occurred before.

Why: a solver's answer often copies spans of its prompt (a deduction output echoes the
input's values, an abduction input the program's literals) and a proposer's program
repeats its own identifiers. When the last ``n`` tokens of a row's text also occur
earlier in its prompt or completion, the tokens that followed them there are a cheap
guess (a *draft*) of what follows now. The decoding loop feeds the drafts with the row's
next token and keeps the ones the model itself would have produced
(:mod:`absolutezero_policy.hf_backend`), so a correct guess saves a decoding step and a
wrong one costs only the extra positions of one forward pass. The guess never changes
what is sampled: that is decided by the model's logits and the row's own random draws.

This is the n-gram lookup of transformers' ``prompt_lookup_num_tokens`` and vLLM's
``ngram`` speculative method, kept incrementally per row: an index from each n-gram
(``min_ngram`` to ``max_ngram`` tokens) to the position after its latest occurrence,
updated in O(max_ngram) per appended token, so a lookup never scans the text.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["DEFAULT_MAX_NGRAM", "DEFAULT_MIN_NGRAM", "NgramIndex"]

#: Longest and shortest n-grams matched (longer matches are tried first).
DEFAULT_MAX_NGRAM = 3
DEFAULT_MIN_NGRAM = 2


class NgramIndex:
    """The token sequence of one row (prompt, then completion) and where its n-grams occurred.

    ``tokens`` is the row's sequence so far; :meth:`extend` appends to it and
    :meth:`draft` proposes up to ``k`` next tokens.
    """

    def __init__(
        self, tokens: Iterable[int] = (), *, max_ngram: int = DEFAULT_MAX_NGRAM, min_ngram: int = DEFAULT_MIN_NGRAM
    ) -> None:
        if not 1 <= min_ngram <= max_ngram:
            raise ValueError(f"need 1 <= min_ngram <= max_ngram, got {min_ngram} and {max_ngram}")
        self.max_ngram = max_ngram
        self.min_ngram = min_ngram
        self.tokens: list[int] = []
        #: n-gram -> the position right after its latest occurrence that has a continuation
        self._after: dict[tuple[int, ...], int] = {}
        self.extend(tokens)

    def extend(self, tokens: Iterable[int]) -> None:
        """Append ``tokens``; each one gives the n-grams that end just before it a
        (newer) continuation."""
        for token in tokens:
            end = len(self.tokens)  # the new token's position: what follows the n-grams ending before it
            for n in range(self.min_ngram, self.max_ngram + 1):
                if end >= n:
                    self._after[tuple(self.tokens[end - n : end])] = end
            self.tokens.append(int(token))

    def draft(self, k: int) -> list[int]:
        """Up to ``k`` tokens that followed the latest earlier occurrence of the longest
        matching suffix (``max_ngram`` down to ``min_ngram`` tokens); empty when no suffix
        occurred before or ``k < 1``."""
        if k < 1:
            return []
        length = len(self.tokens)
        for n in range(min(self.max_ngram, length), self.min_ngram - 1, -1):
            start = self._after.get(tuple(self.tokens[length - n :]))
            if start is not None:
                return self.tokens[start : start + k]
        return []
