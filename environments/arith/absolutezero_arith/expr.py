"""Integer arithmetic expressions: parse into a whitelisted tree, evaluate, punch a hole.

Model-written text is never ``eval``'d: it is parsed with :mod:`ast` (after a length
check, so parsing itself is cheap and cannot recurse deeply) and every node is checked
against a whitelist of integer literals, ``+ - * // %`` and unary ``+ -``; parentheses are
just tree structure. Size, depth and magnitude limits keep every evaluation tiny, and
intermediate values are bounded so ``999 * 999 * ...`` cannot blow up.

Semantics are Python's: ``//`` floors and ``%`` takes the sign of the divisor; dividing by
zero makes an expression invalid.
"""

from __future__ import annotations

import ast
import copy
from dataclasses import dataclass

__all__ = ["ExpressionError", "ExpressionSyntaxError", "Limits", "HOLE", "evaluate", "literals", "parse", "render", "substitute"]

HOLE = "?"

_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.FloorDiv: "//", ast.Mod: "%"}
_UNARY = {ast.UAdd: "+", ast.USub: "-"}


class ExpressionError(ValueError):
    """The text is not an allowed expression, or evaluating it failed; ``str`` says why."""


class ExpressionSyntaxError(ExpressionError):
    """The text does not even parse as an expression (empty, too long, syntax error)."""


@dataclass(frozen=True)
class Limits:
    """Bounds on one expression.

    ``max_chars``: source length; ``max_nodes``: operators plus literals; ``max_depth``:
    nesting of operators; ``max_literal``: largest absolute integer literal;
    ``max_value``: largest absolute value of the result and of every intermediate value.
    """

    max_chars: int = 200
    max_nodes: int = 31
    max_depth: int = 6
    max_literal: int = 1000
    max_value: int = 10**9

    def __post_init__(self) -> None:
        for name in ("max_chars", "max_nodes", "max_depth", "max_literal", "max_value"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")


def parse(text: str, limits: Limits) -> ast.expr:
    """Parse ``text`` into a checked expression tree.

    Returns:
        The root node; it contains only whitelisted nodes and respects ``limits``.

    Raises:
        ExpressionError: empty, too long, not an expression, a forbidden construct
            (names, calls, floats, ``**``, ``/``, ...), or over a size limit.
    """
    if not isinstance(text, str):
        raise ExpressionError(f"expected expression text, got {type(text).__name__}")
    source = text.strip()
    if not source:
        raise ExpressionSyntaxError("empty expression")
    if len(source) > limits.max_chars:
        raise ExpressionSyntaxError(f"expression is {len(source)} characters long (limit {limits.max_chars})")
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        detail = error.msg if isinstance(error, SyntaxError) else type(error).__name__
        raise ExpressionSyntaxError(f"not a valid expression: {detail}") from None
    nodes = _check(tree.body, limits, depth=0)
    if nodes > limits.max_nodes:
        raise ExpressionError(f"expression has {nodes} operators and numbers (limit {limits.max_nodes})")
    return tree.body


def _check(node: ast.AST, limits: Limits, depth: int) -> int:
    """Whitelist check; returns the number of nodes below and including ``node``."""
    if depth > limits.max_depth:
        raise ExpressionError(f"expression is nested more than {limits.max_depth} levels deep")
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int):
            raise ExpressionError(f"only integer numbers are allowed, found {value!r:.40}")
        if abs(value) > limits.max_literal:
            raise ExpressionError(f"number {value} is larger than {limits.max_literal} in absolute value")
        return 1
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return 1 + _check(node.left, limits, depth + 1) + _check(node.right, limits, depth + 1)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return 1 + _check(node.operand, limits, depth + 1)
    if isinstance(node, ast.BinOp):
        raise ExpressionError(
            f"operator {type(node.op).__name__} is not allowed (use + - * // % and parentheses)"
        )
    raise ExpressionError(
        f"{type(node).__name__} is not allowed: only integers, + - * // % and parentheses"
    )


def evaluate(node: ast.expr, limits: Limits) -> int:
    """The integer value of a tree from :func:`parse` (Python semantics).

    Raises:
        ExpressionError: division or modulo by zero, or an intermediate value larger than
            ``limits.max_value`` in absolute value.
    """
    if isinstance(node, ast.Constant):
        value = int(node.value)
    elif isinstance(node, ast.UnaryOp):
        operand = evaluate(node.operand, limits)
        value = -operand if isinstance(node.op, ast.USub) else operand
    elif isinstance(node, ast.BinOp):
        left = evaluate(node.left, limits)
        right = evaluate(node.right, limits)
        op = type(node.op)
        if op in (ast.FloorDiv, ast.Mod) and right == 0:
            raise ExpressionError("division by zero")
        if op is ast.Add:
            value = left + right
        elif op is ast.Sub:
            value = left - right
        elif op is ast.Mult:
            value = left * right
        elif op is ast.FloorDiv:
            value = left // right
        else:
            value = left % right
    else:  # only reachable with a tree that did not come from parse()
        raise ExpressionError(f"unexpected node {type(node).__name__}")
    if abs(value) > limits.max_value:
        raise ExpressionError(f"a value in the expression exceeds {limits.max_value} in absolute value")
    return value


def literals(node: ast.expr) -> list[ast.Constant]:
    """The integer literals of a tree in source (left-to-right) order."""
    found = [n for n in ast.walk(node) if isinstance(n, ast.Constant)]
    return sorted(found, key=lambda n: (n.lineno, n.col_offset))


def render(node: ast.expr, hole: int | None = None) -> str:
    """Canonical text of a tree; with ``hole`` = i, the i-th literal is shown as ``?``.

    The canonical text (normalised spacing and parentheses) is what tasks store, so
    ``1+1`` and ``(1) + 1`` are the same task.
    """
    if hole is None:
        return ast.unparse(node)
    return ast.unparse(_replace(node, hole, ast.Name(id=HOLE, ctx=ast.Load())))


def substitute(node: ast.expr, index: int, value: int) -> ast.expr:
    """A copy of ``node`` whose ``index``-th literal is replaced by the integer ``value``.

    This is how a solver's answer enters an expression: as a literal node, never as text.
    Evaluate the result with :func:`evaluate`, which bounds every value (the answer too).

    Raises:
        ExpressionError: there is no literal number ``index``.
    """
    return _replace(node, index, ast.Constant(value=int(value)))


def _replace(node: ast.expr, index: int, replacement: ast.expr) -> ast.expr:
    """A copy of ``node`` with its ``index``-th literal replaced by ``replacement``."""
    clone = copy.deepcopy(node)
    targets = literals(clone)
    if not 0 <= index < len(targets):
        raise ExpressionError(f"no number #{index} in the expression")
    target = targets[index]

    class _Swap(ast.NodeTransformer):
        def visit_Constant(self, constant: ast.Constant) -> ast.expr:
            return ast.copy_location(replacement, constant) if constant is target else constant

    return _Swap().visit(clone)
