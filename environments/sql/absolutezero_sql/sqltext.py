"""A small SQL tokenizer for the two questions the authorizer cannot answer.

1. Does a query have a *top-level* ORDER BY (one at parenthesis depth 0, so not inside
   a subquery, a CTE or a window's ``OVER (...)``)? That decides whether its result is
   compared as a list or as a multiset.
2. Does a database script use SELECT or WITH? SQLite reports a multi-row ``VALUES`` list
   to the authorizer as a SELECT, so the authorizer alone cannot tell
   ``INSERT ... VALUES (1), (2)`` from ``INSERT ... SELECT 1``; this keyword check is the
   second layer that enforces "literal rows only".

It is not a parser and never decides what is safe to run: the authorizer does that.
Strings, quoted identifiers and comments are skipped correctly, so a keyword inside
``'ORDER BY'`` or ``/* SELECT */`` does not count.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["words_at_depth", "has_top_level_order_by", "script_keywords", "single_table", "row_skeleton"]

_TOKEN = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<line_comment>--[^\n]*)
    | (?P<block_comment>/\*.*?(?:\*/|\Z))
    | (?P<string>'(?:[^']|'')*'?)
    | (?P<quoted>"(?:[^"]|"")*"?|`(?:[^`]|``)*`?|\[[^\]]*\]?)
    | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
    | (?P<open>\()
    | (?P<close>\))
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


def words_at_depth(sql: str) -> list[tuple[str, int]]:
    """Upper-cased bare words with their parenthesis depth, in order."""
    words: list[tuple[str, int]] = []
    depth = 0
    for match in _TOKEN.finditer(sql):
        kind = match.lastgroup
        if kind == "open":
            depth += 1
        elif kind == "close":
            depth = max(0, depth - 1)
        elif kind == "word":
            words.append((match.group().upper(), depth))
    return words


def has_top_level_order_by(query: str) -> bool:
    """True when ``ORDER BY`` appears at depth 0 (it orders the whole result)."""
    top = [word for word, depth in words_at_depth(query) if depth == 0]
    return any(a == "ORDER" and b == "BY" for a, b in zip(top, top[1:]))


def script_keywords(script: str) -> set[str]:
    """Every bare keyword-like word of ``script`` (strings and quoted names skipped)."""
    return {word for word, _ in words_at_depth(script)}


_CREATE = re.compile(
    r"""\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?("(?:[^"]|"")+"|`[^`]+`|\[[^\]]+\]|[A-Za-z_][A-Za-z0-9_$]*)""",
    re.IGNORECASE,
)


def single_table(schema: Sequence[str]) -> str | None:
    """The name (as written) of the only table in ``schema``; None for several or none.

    Used to force ``INSERT INTO <table> VALUES (`` in induction proposals.
    """
    if len(schema) != 1:
        return None
    match = _CREATE.match(str(schema[0]))
    return match.group(1) if match else None


_CONSTRAINTS = ("PRIMARY", "UNIQUE", "CHECK", "FOREIGN", "CONSTRAINT")


def _affinity_placeholder(declared: str) -> str:
    """SQLite's type-affinity rules, as a placeholder a model can fill in."""
    upper = declared.upper()
    if "INT" in upper:
        return "<integer>"
    if any(word in upper for word in ("CHAR", "CLOB", "TEXT")):
        return "'<text>'"
    if any(word in upper for word in ("REAL", "FLOA", "DOUB")):
        return "<real>"
    return "<value>"


def row_skeleton(create: str) -> str | None:
    """``('<text>', <integer>)``-style row placeholder for a ``CREATE TABLE`` statement.

    Shown to induction proposers so they write one value per column with the right
    quoting (measured: without it the 0.5B model dropped columns, left text unquoted or
    left out the parentheses). Best effort: None when the statement is not understood.
    """
    start, end = create.find("("), create.rfind(")")
    if start < 0 or end <= start:
        return None
    body, parts, depth, current = create[start + 1 : end], [], 0, ""
    for char in body:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    placeholders = []
    for part in parts:
        words = part.split()
        if not words or words[0].upper() in _CONSTRAINTS:
            continue
        placeholders.append(_affinity_placeholder(" ".join(words[1:2])))
    return "(" + ", ".join(placeholders) + ")" if placeholders else None
