"""Reading model output: the last ``<answer>...</answer>`` block, and integers in it.

The model may think aloud before answering and may even quote the tags while doing so;
the *last* complete block is its answer.
"""

from __future__ import annotations

import re

__all__ = ["ParseError", "extract_answer", "parse_int"]

_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_INT = re.compile(r"[+-]?\d{1,40}")


class ParseError(ValueError):
    """The response has no usable answer; ``str`` says what was missing."""


def extract_answer(response: str) -> str:
    """The stripped content of the last ``<answer>...</answer>`` block.

    Raises:
        ParseError: ``response`` is not a string or has no complete block.
    """
    if not isinstance(response, str):
        raise ParseError(f"response must be text, got {type(response).__name__}")
    blocks = _ANSWER.findall(response)
    if not blocks:
        raise ParseError("no <answer>...</answer> block in the response")
    return blocks[-1].strip()


def parse_int(text: str) -> int:
    """An integer written as optional sign and decimal digits (spaces around allowed).

    Raises:
        ParseError: anything else (words, floats, expressions, more than 40 digits).
    """
    candidate = text.strip()
    if not _INT.fullmatch(candidate):
        raise ParseError(f"the answer {text!r:.60} is not a plain integer")
    return int(candidate)
