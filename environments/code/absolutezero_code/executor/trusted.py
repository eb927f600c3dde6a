"""What a *trusted* part of a ``check`` job gets: a benchmark's own test (and, when a
benchmark's reference solution is checked, that solution).

A benchmark's test code is data shipped with the benchmark, not model output; some of
it needs more than the hardened sandbox offers (HumanEval's tests draw random inputs
with :mod:`random`; two of its reference solutions use :mod:`hashlib` and ``eval``).
:meth:`.pool.Executor.check_many` with ``trusted="test"`` (or ``"reference"``) runs that
part with a wider, explicit allow-list, while the candidate keeps the hardened policy:

* the trusted part is policy-checked like any program, with
  :data:`.policy.TRUSTED_MODULES` added to the import allow-list and ``eval`` allowed
  (:func:`.prepare.compile_program` with ``trusted``); dunders, frame internals and the
  other forbidden builtins stay refused;
* it runs in a namespace of its own whose builtins (:func:`build_trusted_builtins`)
  import from *its own* module shims: the shims of the allowed modules built for tests
  (not the candidate's, so a candidate that reassigns ``math.fabs`` in its shim changes
  nothing here) plus shims of the trusted modules, which only this dict's ``__import__``
  hands out. The candidate's ``__import__`` never returns them and the policy refuses
  ``import random`` in its code, so the candidate holds no reference to them;
* :mod:`random`'s shim draws from a private ``random.Random(0)`` instance, created in
  the worker and never used there, so every child starts from the same state (the
  test's draws are reproducible) and the candidate cannot reach or re-seed it;
* ``eval`` is :func:`safe_eval`: an expression of literals and operators, evaluated by
  walking its syntax tree; nothing is compiled, so the audit hook, which refuses
  ``compile``/``exec`` in the armed child, stays as it is;
* the isolation is the child's: the same audit hook, resource limits, closed
  descriptors and fresh fork per job; the trusted modules are imported in the worker
  (the full tier; a light worker defers such jobs), never in the armed child.

Stdlib only (loaded by the sandbox worker).
"""

from __future__ import annotations

import ast
import importlib
import operator
import types

from .policy import TRUSTED_MODULES

__all__ = ["build_trusted_builtins", "build_trusted_shims", "safe_eval"]

#: Seed of the private generator behind the trusted ``random`` shim.
RANDOM_SEED = 0

_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
    ast.LShift: operator.lshift, ast.RShift: operator.rshift, ast.BitOr: operator.or_,
    ast.BitXor: operator.xor, ast.BitAnd: operator.and_,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg, ast.Not: operator.not_, ast.Invert: operator.invert}
_COMPARE = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}
_MAX_SOURCE = 100_000


def _value(node: ast.AST) -> object:
    kind = type(node)
    if kind is ast.Constant:
        return node.value
    if kind is ast.BinOp and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](_value(node.left), _value(node.right))
    if kind is ast.UnaryOp and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_value(node.operand))
    if kind is ast.BoolOp:
        result = _value(node.values[0])
        for item in node.values[1:]:
            if (type(node.op) is ast.And) != bool(result):
                return result
            result = _value(item)
        return result
    if kind is ast.Compare:
        left = _value(node.left)
        for op, item in zip(node.ops, node.comparators):
            right = _value(item)
            if type(op) not in _COMPARE or not _COMPARE[type(op)](left, right):
                if type(op) not in _COMPARE:
                    raise ValueError(f"eval: the comparison {type(op).__name__} is not supported")
                return False
            left = right
        return True
    if kind is ast.IfExp:
        return _value(node.body) if _value(node.test) else _value(node.orelse)
    if kind is ast.Tuple:
        return tuple(_value(item) for item in node.elts)
    if kind is ast.List:
        return [_value(item) for item in node.elts]
    if kind is ast.Set:
        return {_value(item) for item in node.elts}
    if kind is ast.Dict and None not in node.keys:
        return {_value(key): _value(item) for key, item in zip(node.keys, node.values)}
    raise ValueError(f"eval: only literals and operators are supported, not {kind.__name__}")


def safe_eval(
    source: object, globals: object = None, locals: object = None, state: object = None  # noqa: A002
) -> object:
    """``eval`` for trusted code: the value of an expression of literals and operators.

    ``"1 + 2 * 3"``, ``"[1, (2, 3)]"``, ``"2 ** 10 // 7"`` work; names, calls,
    attributes, subscripts and comprehensions raise ``ValueError``. ``globals`` and
    ``locals`` are accepted for signature compatibility and must be empty (nothing to
    look up). Nothing is compiled: the value comes from walking the syntax tree. In the
    armed child, ``state`` (the guard state, bound by :func:`build_trusted_builtins`)
    lets the audit hook pass the ``compile`` event of :func:`ast.parse` alone.

    Raises:
        ValueError: anything but such an expression; TypeError: ``source`` is not text.
    """
    if globals or locals:
        raise ValueError("eval: names are not supported (pass no globals/locals)")
    if isinstance(source, bytes):
        source = source.decode("utf-8")
    if not isinstance(source, str):
        raise TypeError(f"eval() arg 1 must be a string, not {type(source).__name__}")
    if len(source) > _MAX_SOURCE:
        raise ValueError("eval: the expression is too long")
    if state is not None:
        state.parsing = True
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as error:
        raise SyntaxError(f"eval: {error.msg}") from None
    finally:
        if state is not None:
            state.parsing = False
    return _value(tree.body)


def _random_shim(module: types.ModuleType) -> types.ModuleType:
    """``random`` whose module-level functions draw from a private generator."""
    generator = module.Random(RANDOM_SEED)
    shim = types.ModuleType("random", module.__doc__)
    for name in module.__all__:
        value = getattr(module, name, None)
        if value is None:
            continue
        bound_to = getattr(value, "__self__", None)
        if isinstance(bound_to, module.Random):  # a method of the module's own generator
            value = getattr(generator, name)
        setattr(shim, name, value)
    return shim


def _plain_shim(name: str, module: types.ModuleType) -> types.ModuleType:
    shim = types.ModuleType(name, module.__doc__)
    public = getattr(module, "__all__", None)
    names = public if public is not None else [n for n in vars(module) if not n.startswith("_")]
    for attr in names:
        value = getattr(module, attr, None)
        if attr.startswith("_") or value is None or isinstance(value, types.ModuleType):
            continue
        setattr(shim, attr, value)
    return shim


def build_trusted_shims(modules: frozenset[str] = TRUSTED_MODULES) -> dict[str, types.ModuleType]:
    """Import the trusted modules (in the worker, before any fork) and build their shims.

    Raises:
        ValueError: a module outside :data:`.policy.TRUSTED_MODULES`.
    """
    unknown = set(modules) - TRUSTED_MODULES
    if unknown:
        raise ValueError(f"not trusted modules: {sorted(unknown)}")
    shims = {}
    for name in sorted(modules):
        module = importlib.import_module(name)
        shims[name] = _random_shim(module) if name == "random" else _plain_shim(name, module)
    return shims


def build_trusted_builtins(
    test_builtins: dict[str, object], trusted_shims: dict[str, types.ModuleType], state: object = None
) -> dict:
    """The builtins of a trusted part: ``test_builtins`` (the tests' own, with their own
    module shims) whose ``__import__`` also hands out ``trusted_shims``, plus ``eval``
    (:func:`safe_eval` bound to the guard ``state``; a closure, so the state is not an
    attribute anyone can read)."""
    base_import = test_builtins["__import__"]

    def __import__(name, globals=None, locals=None, fromlist=(), level=0):  # noqa: A002
        if not level and name in trusted_shims:
            return trusted_shims[name]
        return base_import(name, globals, locals, fromlist, level)  # type: ignore[operator]

    def eval(source, globals=None, locals=None):  # noqa: A001, A002
        return safe_eval(source, globals, locals, state)

    out = dict(test_builtins)
    out["__import__"] = __import__
    out["eval"] = eval
    return out
