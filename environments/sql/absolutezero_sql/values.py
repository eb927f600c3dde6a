"""Result rows as text, parsed back and compared type-aware.

Why SQL literal syntax: the solver writes a result the way SQLite would write the
values in a query, one row per line, ``(1, 'Ann', 2.5, NULL, X'0aff')``. The five
storage classes stay distinguishable on paper: INTEGER ``1``, REAL ``1.0`` (always a
decimal point or an exponent), TEXT ``'1'`` (quotes doubled inside), BLOB ``X'..'``
and ``NULL``. So ``1`` ≠ ``1.0`` ≠ ``'1'``, as SQLite's ``typeof`` says.

The parser here is a tiny hand-written one: answers are never pasted into SQL, not even
into a sandboxed ``SELECT``.

Encoded values (what the sandbox sends back, JSON): ``["i", 3]``, ``["r", 2.5]``,
``["t", "abc"]``, ``["b", "0aff"]``, ``["n", None]``.
"""

from __future__ import annotations

import collections
import math
import re
from collections.abc import Sequence
from typing import Any

__all__ = [
    "ResultFormatError",
    "Value",
    "Row",
    "format_value",
    "format_rows",
    "parse_rows",
    "decode_rows",
    "same_result",
]

#: One typed value: (storage class tag, Python value). Tags: i, r, t, b, n.
Value = tuple[str, Any]
Row = tuple[Value, ...]


class ResultFormatError(ValueError):
    """A result text that is not rows of SQL literals; the message says where."""


def format_value(value: Value) -> str:
    """SQL literal text of one typed value."""
    tag, item = value
    if tag == "n":
        return "NULL"
    if tag == "i":
        return str(int(item))
    if tag == "r":
        text = repr(float(item))
        return text if any(c in text for c in ".en") else text + ".0"
    if tag == "t":
        return "'" + str(item).replace("'", "''") + "'"
    if tag == "b":
        return "X'" + str(item).upper() + "'"
    raise ValueError(f"unknown value tag {tag!r}")


def format_rows(rows: Sequence[Row]) -> str:
    """One ``(v1, v2, ...)`` line per row; empty text for no rows."""
    return "\n".join("(" + ", ".join(format_value(v) for v in row) + ")" for row in rows)


def decode_rows(encoded: Sequence[Sequence[Sequence[Any]]]) -> list[Row]:
    """Rows from the sandbox's JSON encoding (tags checked)."""
    rows: list[Row] = []
    for row in encoded:
        values = []
        for tag, item in row:
            if tag not in ("i", "r", "t", "b", "n"):
                raise ValueError(f"unknown value tag {tag!r} from the sandbox")
            values.append((tag, float(item) if tag == "r" else item))
        rows.append(tuple(values))
    return rows


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<open>\() | (?P<close>\)) | (?P<comma>,)
      | (?P<blob>[xX]'(?P<hex>[0-9a-fA-F]*)')
      | (?P<text>'(?:[^']|'')*')
      | (?P<null>NULL\b|null\b|Null\b)
      | (?P<real>[-+]?(?:\d+\.\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?\d+[eE][-+]?\d+)
      | (?P<int>[-+]?\d+)
    )""",
    re.VERBOSE,
)


def parse_rows(text: str, max_rows: int = 1000) -> list[Row]:
    """Parse result text: rows ``(v, ...)`` separated by whitespace (usually newlines).

    Raises:
        ResultFormatError: anything that is not a row of literals, an odd-length hex
            blob, a non-finite REAL, more than ``max_rows`` rows, or rows of different
            widths.
    """
    rows: list[Row] = []
    position, end = 0, len(text.rstrip())
    while position < end:
        match = _TOKEN.match(text, position)
        if match is None or match.lastgroup != "open":
            raise ResultFormatError(f"expected a row '(...)' at {text[position:position + 30].strip()!r}")
        position = match.end()
        values: list[Value] = []
        while True:
            match = _TOKEN.match(text, position)
            if match is None or match.lastgroup in ("open", "close", "comma"):
                found = text[position:position + 30].strip() if match is None else match.group(match.lastgroup)
                raise ResultFormatError(f"expected a value (number, 'text', X'hex' or NULL) at {found!r}")
            values.append(_value(match))
            position = match.end()
            match = _TOKEN.match(text, position)
            if match is not None and match.lastgroup == "comma":
                position = match.end()
                continue
            if match is not None and match.lastgroup == "close":
                position = match.end()
                break
            raise ResultFormatError(f"expected ',' or ')' at {text[position:position + 30].strip()!r}")
        rows.append(tuple(values))
        if len(rows) > max_rows:
            raise ResultFormatError(f"more than {max_rows} rows")
        while position < end and text[position].isspace():
            position += 1
    if rows and len({len(row) for row in rows}) != 1:
        raise ResultFormatError("rows have different numbers of values")
    return rows


def _value(match: re.Match[str]) -> Value:
    kind = match.lastgroup
    if kind == "null":
        return ("n", None)
    if kind == "int":
        return ("i", int(match.group("int")))
    if kind == "real":
        number = float(match.group("real"))
        if not math.isfinite(number):
            raise ResultFormatError(f"REAL {match.group('real')!r} is not finite")
        return ("r", number)
    if kind == "text":
        return ("t", match.group("text")[1:-1].replace("''", "'"))
    hexdigits = match.group("hex")
    if len(hexdigits) % 2:
        raise ResultFormatError(f"blob X'{hexdigits}' has an odd number of hex digits")
    return ("b", hexdigits.lower())


def _key(value: Value) -> tuple[str, Any]:
    tag, item = value
    return (tag, item.lower() if tag == "b" else item)


def same_result(expected: Sequence[Row], actual: Sequence[Row], ordered: bool) -> bool:
    """Type-aware equality: as lists when ``ordered``, else as multisets of rows.

    INTEGER 1, REAL 1.0 and TEXT '1' are three different values; REALs compare by
    value (``0.1 + 0.2`` equals ``0.30000000000000004``, not ``0.3``).
    """
    left = [tuple(_key(v) for v in row) for row in expected]
    right = [tuple(_key(v) for v in row) for row in actual]
    if ordered:
        return left == right
    return collections.Counter(left) == collections.Counter(right)
