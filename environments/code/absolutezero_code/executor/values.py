"""Plain literal values: parsing argument lists / literals and canonical reprs.

This module runs inside the sandbox child (it parses model-written text), but it is
pure and importable anywhere, which is how the tests exercise it directly on trusted
values.

Canonical repr rules (why: two gold outputs must compare equal exactly when the values
are equal *with type awareness*, and the text must round-trip through
:func:`ast.literal_eval` so it can be shown to the model and parsed back):

* allowed exact types: ``None``, ``bool``, ``int``, ``float`` (finite), ``str``,
  ``bytes``, ``list``, ``tuple``, ``dict``, ``set``; subclasses are rejected because
  they can carry a custom ``__eq__``/``__repr__``;
* ``frozenset`` and ``complex`` are rejected: their reprs are not literals;
* set elements and dict items are ordered by the canonical repr of the element / key,
  so iteration order (hash seed, insertion order) never shows;
* ``-0.0`` is written ``0.0`` because ``-0.0 == 0.0``;
* recursion (a list containing itself) and nesting deeper than :data:`MAX_DEPTH` are
  rejected; the repr is abandoned as soon as it exceeds the caller's length limit.
"""

from __future__ import annotations

import ast
import math

__all__ = [
    "MAX_DEPTH",
    "UnsupportedValue",
    "OutputTooLarge",
    "InvalidLiteral",
    "canonical_repr",
    "parse_arguments",
    "parse_literal",
]

#: Deepest container nesting accepted in a value (the parser itself stops near 200).
MAX_DEPTH = 100


class UnsupportedValue(ValueError):
    """The value is not a plain literal (wrong type, NaN, recursive, too deep, ...)."""


class OutputTooLarge(ValueError):
    """The canonical repr would exceed the length limit."""


class InvalidLiteral(ValueError):
    """Text that is not a literal / not a plain argument list."""


class _Writer:
    """Builds one canonical repr while enforcing the length limit and cycle checks."""

    __slots__ = ("limit", "active")

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        # Containers on the current path. Compared with ``is`` (not id()): id() is an
        # audited operation that the armed sandbox blocks.
        self.active: list[object] = []

    def _check(self, size: int) -> None:
        if self.limit is not None and size > self.limit:
            raise OutputTooLarge(f"canonical output longer than {self.limit} characters")

    def items(self, values, depth: int) -> list[str]:
        parts: list[str] = []
        total = 0
        for value in values:
            text = self.repr(value, depth)
            total += len(text) + 2
            self._check(total)
            parts.append(text)
        return parts

    def repr(self, value: object, depth: int) -> str:
        kind = type(value)
        if value is None or kind is bool:
            return "None" if value is None else ("True" if value else "False")
        if kind is int:
            try:
                text = repr(value)
            except ValueError:
                raise UnsupportedValue(
                    "integer too large to write as a literal (more than 4300 digits)"
                ) from None
            self._check(len(text))
            return text
        if kind is float:
            if math.isnan(value):
                raise UnsupportedValue("value contains NaN (not a literal)")
            if math.isinf(value):
                raise UnsupportedValue("value contains infinity (not a literal)")
            return "0.0" if value == 0.0 else repr(value)
        if kind is str or kind is bytes:
            self._check(len(value))
            text = repr(value)
            self._check(len(text))
            return text
        if kind in (list, tuple, dict, set):
            if depth >= MAX_DEPTH:
                raise UnsupportedValue(f"value nested deeper than {MAX_DEPTH} containers")
            for ancestor in self.active:
                if ancestor is value:
                    raise UnsupportedValue(f"recursive {kind.__name__} (contains itself)")
            self.active.append(value)
            try:
                return self._container(kind, value, depth + 1)
            finally:
                self.active.pop()
        if kind is frozenset:
            raise UnsupportedValue("frozenset has no literal form; return a set or a tuple")
        if kind is complex:
            raise UnsupportedValue("complex numbers are not plain literals")
        raise UnsupportedValue(
            f"value of type {kind.__qualname__!r} is not a plain literal "
            "(allowed: None, bool, int, float, str, bytes, list, tuple, dict, set)"
        )

    def _container(self, kind: type, value, depth: int) -> str:
        if kind is list:
            return "[" + ", ".join(self.items(value, depth)) + "]"
        if kind is tuple:
            parts = self.items(value, depth)
            if len(parts) == 1:
                return "(" + parts[0] + ",)"
            return "(" + ", ".join(parts) + ")"
        if kind is set:
            if not value:
                return "set()"
            return "{" + ", ".join(sorted(self.items(value, depth))) + "}"
        pairs: list[tuple[str, str]] = []
        total = 0
        for key, item in value.items():
            key_text = self.repr(key, depth)
            item_text = self.repr(item, depth)
            total += len(key_text) + len(item_text) + 4
            self._check(total)
            pairs.append((key_text, item_text))
        pairs.sort()
        return "{" + ", ".join(k + ": " + v for k, v in pairs) + "}"


def canonical_repr(value: object, limit: int | None = None) -> str:
    """The canonical literal text of a plain value.

    Args:
        value: the value to write.
        limit: maximum length of the result in characters, or ``None`` for no limit.

    Returns:
        A string that :func:`ast.literal_eval` turns back into an equal value of the
        same types; two values get the same string exactly when they are equal with type
        awareness.

    Raises:
        UnsupportedValue: the value (or something inside it) is not a plain literal.
        OutputTooLarge: the text would be longer than ``limit``.
    """
    return _Writer(limit).repr(value, 0)


_LITERAL_NODES = (
    ast.Expression, ast.Constant, ast.Tuple, ast.List, ast.Set, ast.Dict, ast.UnaryOp,
    ast.UAdd, ast.USub, ast.BinOp, ast.Add, ast.Sub, ast.Load,
)


def _literal(node: ast.AST, what: str) -> object:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as error:
        detail = type(error).__name__
        if isinstance(error, ValueError):
            for child in ast.walk(node):
                if not isinstance(child, _LITERAL_NODES):
                    line = getattr(child, "lineno", None)
                    where = f" at line {line}" if line is not None else ""
                    detail = f"found a {type(child).__name__} expression{where}"
                    break
            else:
                detail = "malformed literal"
        raise InvalidLiteral(f"{what} is not a literal ({detail})") from None


def _parse(source: str, what: str) -> ast.Expression:
    if "\x00" in source:
        raise InvalidLiteral(f"{what} contains a NUL character")
    try:
        return ast.parse(source, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as error:
        message = getattr(error, "msg", None) or str(error) or type(error).__name__
        raise InvalidLiteral(f"{what} does not parse: {message}") from None


def parse_arguments(text: str) -> tuple:
    """Parse an argument list such as ``"'abc', 3"`` or ``"(1, ), [2]"`` into a tuple.

    The text is parsed as the argument list of a call and every argument must be a
    literal; nothing is evaluated and the text is never pasted into executable source,
    so ``"0) or True or (0"`` is an error, not a clever input. An empty (or blank) text
    means zero arguments; a trailing comma is allowed.

    Returns:
        The tuple of argument values.

    Raises:
        InvalidLiteral: the text is not a plain argument list of literals.
    """
    if not isinstance(text, str):
        raise InvalidLiteral(f"the input must be text, got {type(text).__name__}")
    if not text.strip():
        return ()
    # The newlines keep a trailing comment in the text from swallowing the closing
    # parenthesis; anything that closes the call early leaves a non-Call expression.
    tree = _parse("_(\n" + text + "\n)", "the input")
    call = tree.body
    if (
        not isinstance(call, ast.Call)
        or not isinstance(call.func, ast.Name)
        or call.func.id != "_"
        or call.func.col_offset != 0
        or call.func.lineno != 1
    ):
        raise InvalidLiteral("the input is not a plain argument list (e.g. \"'abc', 3\")")
    if call.keywords:
        raise InvalidLiteral("keyword arguments are not allowed in the input")
    args = []
    for position, node in enumerate(call.args, 1):
        if isinstance(node, ast.Starred):
            raise InvalidLiteral("starred arguments are not allowed in the input")
        args.append(_literal(node, f"argument {position} of the input"))
    return tuple(args)


def parse_literal(text: str) -> object:
    """Parse one literal value (e.g. a model's predicted output) without evaluating it.

    Returns:
        The value.

    Raises:
        InvalidLiteral: the text is not a single literal expression.
    """
    if not isinstance(text, str):
        raise InvalidLiteral(f"the literal must be text, got {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise InvalidLiteral("the literal is empty")
    tree = _parse(stripped, "the literal")
    return _literal(tree.body, "the text")
